"""Check cells of exercise sheet 06: CRF-as-RNN.

=========  ===========================================  ====================================
exercise   the student writes                           checked against
=========  ===========================================  ====================================
6.1        ``crf_as_rnn_step(unary, q, filters,         :func:`crfkit.inference.mean_field`
           weights, compat)``: one differentiable       on a :class:`crfkit.DenseCRF` with
           mean-field step of a dense CRF, given each   tensor weights and compatibilities,
           kernel's normalised filter                   ``iterations=1, init=q,
                                                        filter="exact"`` (which it must not
                                                        call), values and gradients
6.2        ``compat_gradient_fd(loss_fn, compat,        a quadratic with a known gradient,
           eps)``: central finite differences of a      and autograd through two iterations
           scalar function of a ``[K, K]`` table        of :class:`crfkit.nn.MeanFieldCRF`
6.3        an open question (no checker)
=========  ===========================================  ====================================

One step of CRF-as-RNN (Zheng et al. 2015, Sec. 4), with ``M`` kernels::

    Q~_m  = filters[m](Q)                                  message passing
    M(k)  = sum_m w_m sum_k' mu~_m(k, k') Q~_m(k')         weighting + compatibility transform,
                                                           mu~ = (mu + mu^T) / 2
    Q_new = softmax(-U - M)  over the labels               unary addition + normalisation

Only the symmetric part of a compatibility table acts: the pair of pixels ``{i, j}`` is
unordered, so :class:`crfkit.DenseCRF` (like pydensecrf) uses ``(mu + mu^T) / 2``. The checker
gives asymmetric tables, so forgetting to symmetrise shows.

When an answer is wrong the checkers recompute the usual slips and name the one the answer
matches. Every checker makes its own random numbers with a private ``torch.Generator``.

References
----------
S. Zheng, S. Jayasumana, B. Romera-Paredes, V. Vineet, Z. Su, D. Du, C. Huang, P. H. S. Torr.
Conditional random fields as recurrent neural networks. ICCV 2015.
P. Krähenbühl, V. Koltun. Efficient inference in fully connected CRFs with Gaussian edge
potentials. NIPS 2011.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from crfkit import inference
from crfkit.checks._common import (
    F64,
    CheckFailed,
    asymmetric_table,
    call,
    close,
    exercise,
    expect_tensor,
    generator,
    unchanged,
)
from crfkit.dense import BilateralKernel, DenseCRF, GaussianKernel
from crfkit.filters import dense_filters
from crfkit.nn import MeanFieldCRF

#: comparisons of 6.1 (values and gradients), in float64
TOL = dict(atol=1e-6, rtol=1e-6)


# ---------------------------------------------------------------------------
# 6.1: one step of CRF-as-RNN


def grid_filters(crf: DenseCRF, filter: str = "exact") -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """The normalised filters of ``crf`` (:func:`crfkit.filters.dense_filters`), each wrapped to
    map ``[B, K, H, W] -> [B, K, H, W]`` (crfkit's filters take ``[B, N, K]``)."""
    b, k, h, w = crf.shape

    def on_grid(points_filter):
        def grid_filter(q: torch.Tensor) -> torch.Tensor:
            points = q.reshape(b, k, h * w).transpose(1, 2)  # [B, N, K]
            return points_filter(points).transpose(1, 2).reshape(b, k, h, w)  # [B, K, H, W]

        return grid_filter

    return [on_grid(f) for f in dense_filters(crf, filter=filter)]


def _messages(q: torch.Tensor, filters, weights, tables, *, filtered: bool = True) -> torch.Tensor:
    """``sum_m weights[m] tables[m] (filters[m](q))`` over the labels, ``[B, K, H, W]``."""
    m = torch.zeros_like(q)
    for filt, w, table in zip(filters, weights, tables):
        qm = filt(q) if filtered else q
        m = m + w * torch.einsum("kl,blhw->bkhw", table, qm)
    return m


def _symmetric(compat: torch.Tensor) -> torch.Tensor:
    return 0.5 * (compat + compat.transpose(-1, -2))  # [M, K, K]


def _kernels(weights: torch.Tensor, compat: torch.Tensor, widths) -> tuple:
    out = []
    for m, width in enumerate(widths):
        if len(width) == 1:
            out.append(GaussianKernel(sxy=width[0], weight=weights[m], compat=compat[m]))
        else:
            out.append(BilateralKernel(sxy=width[0], srgb=width[1], weight=weights[m], compat=compat[m]))
    return tuple(out)


#: (B, K, H, W, kernel widths): (sxy,) a Gaussian kernel, (sxy, srgb) a bilateral one
CASES_61 = (
    (2, 3, 4, 5, ((1.5,), (3.0, 40.0))),
    (1, 4, 3, 3, ((2.0, 30.0),)),
    (1, 3, 2, 6, ((1.0,), (2.5, 50.0), (4.0,))),
)


@exercise(
    "6.1",
    refuses=(inference.mean_field, inference.dense_mean_field, MeanFieldCRF.forward),
    refused="your function calls crfkit's mean field ({called}), the answer this exercise "
            "rebuilds. Write the step yourself: filter Q with each kernel, weight and apply the "
            "compatibility tables, add the unary, normalise.",
)
def check_crf_as_rnn_step(fn: Callable[..., torch.Tensor]) -> None:
    """Exercise 6.1: values and gradients vs ``mean_field(DenseCRF(...), 1, init=q, filter="exact")``."""
    n = "6.1"
    gen = generator(61)
    for b, k, h, w, widths in CASES_61:
        nk = len(widths)
        unary = 2 * torch.rand(b, k, h, w, generator=gen, dtype=F64)
        image = 255 * torch.rand(b, 3, h, w, generator=gen, dtype=F64)
        q = torch.softmax(3 * torch.randn(b, k, h, w, generator=gen, dtype=F64), dim=1)
        weights = 0.5 + 2 * torch.rand(nk, generator=gen, dtype=F64)  # [M], positive, not 1
        compat = torch.stack([asymmetric_table(k, gen) for _ in range(nk)])  # [M, K, K]
        probe = torch.randn(b, k, h, w, generator=gen, dtype=F64)  # loss = <probe, Q_new>
        where = f"With {nk} kernel{'s' if nk > 1 else ''} on a {h} x {w} image (B = {b}, K = {k})"

        # crfkit's answer, and its gradients w.r.t. the weights and the tables
        w_ref, c_ref = weights.clone().requires_grad_(), compat.clone().requires_grad_()
        crf = DenseCRF(unary, image, _kernels(w_ref, c_ref, widths))
        want = inference.mean_field(crf, iterations=1, init=q, filter="exact")
        want_grads = torch.autograd.grad((want * probe).sum(), (w_ref, c_ref))
        want = want.detach()
        filters = grid_filters(DenseCRF(unary, image, _kernels(weights, compat, widths)))

        w_in, c_in = weights.clone().requires_grad_(), compat.clone().requires_grad_()
        keep = unary.clone(), q.clone(), weights.clone(), compat.clone()
        got = call(n, fn, unary, q, list(filters), w_in, c_in)
        for before, after, name in zip(keep, (unary, q, w_in, c_in), ("unary", "q", "weights", "compat")):
            unchanged(n, before, after.detach(), name)
        got = _shaped(n, got, (b, k, h, w))
        if not close(got.detach(), want, **TOL):
            _explain_61(n, where, got.detach(), want, unary, q, filters, weights, compat)
        _check_gradients_61(n, where, got, probe, w_in, c_in, want_grads)


def _shaped(n: str, got: Any, shape: tuple[int, ...]) -> torch.Tensor:
    """``got`` itself (its graph kept) once it passes :func:`expect_tensor`."""
    expect_tensor(n, got.detach() if isinstance(got, torch.Tensor) else got, shape, "the new Q")
    return got


def _explain_61(n: str, where: str, got: torch.Tensor, want: torch.Tensor, unary, q, filters,
                weights, compat) -> None:
    """Name the slip ``got`` matches (it differs from ``want``), else say by how much it is off."""
    sym = _symmetric(compat)
    msg = _messages(q, filters, weights, sym)
    sums = got.sum(dim=1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-6):
        if close(got, torch.exp(-unary - msg), **TOL) or close(got / sums.unsqueeze(1), want, **TOL):
            raise CheckFailed(
                f"Exercise {n}: {where} your Q is proportional to the right one but does not sum to 1 "
                "over the labels: you took exp(-U - M) without dividing by its sum over the labels. "
                "Q_new is a distribution per pixel: torch.softmax(-unary - M, dim=1) does both steps "
                "(and does not overflow)."
            )
        for dim in (0, 2, 3):
            other = got.sum(dim=dim)
            if torch.allclose(other, torch.ones_like(other), atol=1e-6):
                name = {0: "B, the batch", 2: "H, the height", 3: "W, the width"}[dim]
                raise CheckFailed(
                    f"Exercise {n}: {where} your Q sums to 1 over dimension {dim} ({name}), not over "
                    "the labels: normalise each pixel's scores over the labels, "
                    "torch.softmax(..., dim=1) for [B, K, H, W]."
                )
        raise CheckFailed(
            f"Exercise {n}: {where} your Q does not sum to 1 over the labels: normalise each pixel "
            "with torch.softmax(-unary - M, dim=1)."
        )
    ones = torch.ones_like(weights)
    slips = [
        (torch.softmax(-unary + msg, dim=1),
         "Your messages have the wrong sign. M is an expected pairwise ENERGY, added to the unary "
         "energy: Q_new = softmax(-U - M), so a label that disagrees with the neighbours gets less "
         "probability."),
        (torch.softmax(unary - msg, dim=1),
         "Your unary has the wrong sign: Q_new = softmax(-U - M) with U an energy (low = likely)."),
        (torch.softmax(-unary - _messages(q, filters, weights, compat), dim=1),
         "You used each table mu_m as it is. Only its symmetric part acts: the pair of pixels "
         "{i, j} is unordered (the kernel k(f_i, f_j) is symmetric), so the dense CRF uses "
         "mu~ = (mu + mu^T) / 2, as crfkit.DenseCRF.compat_matrix and pydensecrf do."),
        (torch.softmax(-unary - _messages(q, filters, weights, compat.transpose(1, 2)), dim=1),
         "You used each table transposed (mu^T), without symmetrising. Only the symmetric part "
         "mu~ = (mu + mu^T) / 2 acts: the pair {i, j} is unordered, so neither orientation alone is right."),
        (torch.softmax(-unary - 2 * msg, dim=1),
         "Your messages are twice too large: the symmetric part of mu is (mu + mu^T) / 2, not mu + mu^T."),
        (torch.softmax(-unary - _messages(q, filters, ones, sym), dim=1),
         "You left out the kernel weights: M(k) = sum_m w_m sum_k' mu~_m(k, k') Q~_m(k'), each "
         "kernel's message scaled by its weight w_m."),
        (torch.softmax(-unary - _messages(q, filters, weights.exp(), sym), dim=1),
         "You used exp(weights): `weights` are the kernel weights w_m themselves (MeanFieldCRF "
         "stores log w and hands out w = exp(log w); here you get w)."),
        (torch.softmax(-unary - _messages(q, filters, weights, sym, filtered=False), dim=1),
         "You skipped the message passing: apply each kernel's filter to Q first, "
         "Q~_m = filters[m](q), then the compatibility transform to Q~_m."),
        (torch.softmax(-unary - _messages(torch.softmax(-unary, dim=1), filters, weights, sym), dim=1),
         "You computed the messages from softmax(-unary); the step filters the CURRENT Q, the argument "
         "`q` (the previous iteration's output in the unrolled RNN)."),
        (torch.softmax(-msg, dim=1),
         "You left out the unary energies: Q_new = softmax(-U - M)."),
        (torch.softmax(-unary, dim=1),
         "You left out the messages: Q_new = softmax(-U - M), with M the pairwise energy expected "
         "under the filtered Q."),
    ]
    if len(filters) > 1:
        slips += [
            (torch.softmax(-unary - _messages(q, filters[:1], weights[:1], sym[:1]), dim=1),
             "You used only the first kernel: M sums the messages of ALL kernels, m = 0 .. M-1."),
            (torch.softmax(-unary - _messages(q, filters[-1:], weights[-1:], sym[-1:]), dim=1),
             "You used only the last kernel (did the loop overwrite M instead of adding to it?): "
             "M sums the messages of ALL kernels."),
        ]
    for slip, hint in slips:
        if close(got, slip, **TOL):
            raise CheckFailed(f"Exercise {n}: {where}: {hint}")
    worst = float((got - want).abs().max())
    raise CheckFailed(
        f"Exercise {n}: {where} your Q is off by up to {worst:.3g}. Expected Q_new = softmax(-U - M) over "
        "the labels, M(k) = sum_m w_m sum_k' mu~_m(k, k') Q~_m(k'), Q~_m = filters[m](q), "
        "mu~_m = (compat[m] + compat[m].T) / 2."
    )


def _check_gradients_61(n: str, where: str, got: torch.Tensor, probe: torch.Tensor, weights: torch.Tensor,
                        compat: torch.Tensor, want_grads: tuple[torch.Tensor, torch.Tensor]) -> None:
    """The right values must also be differentiable in ``weights`` and ``compat``, as crfkit's."""
    if not got.requires_grad:
        raise CheckFailed(
            f"Exercise {n}: {where} your Q is right but carries no gradient: it was computed under "
            "torch.no_grad() or detached (.detach(), .numpy(), a new torch.tensor(...)). CRF-as-RNN "
            "trains the weights and tables by backpropagating through every step: keep the "
            "computation in torch operations on the given tensors."
        )
    try:
        grads = torch.autograd.grad((got * probe).sum(), (weights, compat), allow_unused=True)
    except RuntimeError as err:
        raise CheckFailed(
            f"Exercise {n}: {where} backpropagating through your Q failed ({err}). An in-place "
            "operation (+=, .exp_(), ...) on a tensor autograd still needs is the usual cause: write "
            "m = m + ... instead."
        ) from None
    for grad, want, name in zip(grads, want_grads, ("weights", "compat")):
        if grad is None or not torch.any(grad != 0):
            raise CheckFailed(
                f"Exercise {n}: {where} your Q is right but has no gradient with respect to `{name}`: "
                f"somewhere `{name}` left the graph (.item(), float(...), .tolist(), .detach(), "
                "torch.tensor(...) of it). The layer learns it by backpropagation: use the tensor itself."
            )
        if not close(grad, want, **TOL):
            worst = float((grad - want).abs().max())
            raise CheckFailed(
                f"Exercise {n}: {where} your Q is right but its gradient with respect to `{name}` differs "
                f"from crfkit's by up to {worst:.3g}: part of the computation is detached (a .detach() "
                "or .data on one of the terms) or uses a copy of the tensor made outside autograd."
            )


# ---------------------------------------------------------------------------
# 6.2: the gradient of a loss w.r.t. a compatibility table, by finite differences


class _Loss:
    """A scalar function of a ``[K, K]`` table that refuses anything else, counting its calls."""

    def __init__(self, k: int, fn: Callable[[torch.Tensor], Any]) -> None:
        self.k, self.fn, self.calls = k, fn, 0

    def __call__(self, table: torch.Tensor) -> Any:
        if not isinstance(table, torch.Tensor) or tuple(table.shape) != (self.k, self.k):
            shape = list(table.shape) if isinstance(table, torch.Tensor) else type(table).__name__
            raise TypeError(f"loss_fn takes the whole table, a tensor [K, K] = [{self.k}, {self.k}]; got {shape}")
        self.calls += 1
        return self.fn(table.to(F64))

    def __repr__(self) -> str:
        return f"loss_fn (a number from a [{self.k}, {self.k}] table)"

    def value(self, table: torch.Tensor) -> float:
        return float(self.fn(table))


def _quadratic(k: int, gen: torch.Generator):
    """``f(C) = sum(A C) + sum(B C^2) / 2`` (its gradient ``A + B C``), returning a 0-d tensor."""
    a = asymmetric_table(k, gen) - 1.0
    bq = asymmetric_table(k, gen, scale=1.0)

    def f(table: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return (a * table).sum() + 0.5 * (bq * table.square()).sum()

    return f, lambda table: a + bq * table


def _mean_field_nll(k: int, gen: torch.Generator):
    """The NLL of a labelling after 2 iterations of :class:`crfkit.nn.MeanFieldCRF` whose bilateral
    kernel's compatibility is the table, as a Python float; and its autograd gradient."""
    h, w = 5, 6
    unary = torch.randn(1, k, h, w, generator=gen, dtype=F64)
    image = 255 * torch.rand(1, 3, h, w, generator=gen, dtype=F64)
    labels = torch.randint(0, k, (1, h, w), generator=gen)

    def layer(table: torch.Tensor) -> MeanFieldCRF:
        kernels = (GaussianKernel(sxy=1.5, weight=1.0), BilateralKernel(sxy=3.0, srgb=40.0, weight=2.0, compat=table))
        return MeanFieldCRF(k, kernels, iterations=2, filter="exact", dtype=F64)

    def f(table: torch.Tensor) -> float:
        with torch.no_grad():
            return float(F.nll_loss(layer(table)(unary, image).log(), labels))

    def grad(table: torch.Tensor) -> torch.Tensor:
        net = layer(table.detach())
        F.nll_loss(net(unary, image).log(), labels).backward()
        return net.compat.grad[1].detach()

    return f, grad


@exercise("6.2")
def check_compat_gradient_fd(fn: Callable[..., torch.Tensor]) -> None:
    """Exercise 6.2: central differences vs the known (autograd) gradient."""
    n = "6.2"
    gen = generator(62)
    cases = [
        ("a quadratic f(C) = sum(A C) + sum(B C^2) / 2", 3, 1e-2, _quadratic),
        ("the NLL after 2 iterations of ck.nn.MeanFieldCRF", 3, 1e-3, _mean_field_nll),
    ]
    for what, k, eps, make in cases:
        f, gradient = make(k, gen)
        compat = asymmetric_table(k, gen, scale=1.0)
        loss = _Loss(k, f)
        keep = compat.clone()
        try:
            got = call(n, fn, loss, compat, eps)
        except CheckFailed as err:
            if isinstance(err.__cause__, RuntimeError) and "grad" in str(err.__cause__):
                raise CheckFailed(
                    f"{err}\nloss_fn is a black box that returns a number, with no graph to backpropagate "
                    "through: that is when finite differences are needed. Evaluate loss_fn at "
                    "C + eps E_ij and C - eps E_ij instead of calling autograd."
                ) from err.__cause__
            raise
        unchanged(n, keep, compat, "compat")
        got = expect_tensor(n, got, (k, k), "the gradient")
        want = gradient(compat)
        scale = max(1.0, float(want.abs().max()))
        tol = dict(atol=1e-6 * scale, rtol=1e-5)
        if close(got, want, **tol):
            continue
        where = f"For {what} at eps = {eps:g}"
        if loss.calls == 0:
            raise CheckFailed(
                f"Exercise {n}: {where} your function never called loss_fn. Finite differences "
                "evaluate the function itself: f(C + eps E_ij) and f(C - eps E_ij) for every entry (i, j)."
            )
        base = loss.value(compat)

        def shifted(sign: float, i: int, j: int, everywhere: bool = False) -> float:
            step = torch.full_like(compat, eps) if everywhere else torch.zeros_like(compat)
            step[i, j] = eps
            return loss.value(compat + sign * step)

        ij = [(i, j) for i in range(k) for j in range(k)]
        plus = torch.tensor([shifted(1.0, i, j) for i, j in ij], dtype=F64).view(k, k)
        minus = torch.tensor([shifted(-1.0, i, j) for i, j in ij], dtype=F64).view(k, k)
        central = (plus - minus) / (2 * eps)
        everywhere = (shifted(1.0, 0, 0, True) - shifted(-1.0, 0, 0, True)) / (2 * eps)
        slips = [
            ((plus - base) / eps,
             "You took one-sided (forward) differences (f(C + eps E_ij) - f(C)) / eps. Their error "
             "shrinks only like eps (the second derivative times eps / 2); the central difference "
             "(f(C + eps E_ij) - f(C - eps E_ij)) / (2 eps) cancels that term and errs like eps^2."),
            ((base - minus) / eps,
             "You took one-sided (backward) differences (f(C) - f(C - eps E_ij)) / eps. Their error "
             "shrinks only like eps; the central difference (f(C + eps E_ij) - f(C - eps E_ij)) / (2 eps) "
             "errs like eps^2."),
            (2 * central,
             "Your gradient is twice too large: the two points C + eps E_ij and C - eps E_ij are "
             "2 eps apart, so divide their difference by 2 eps."),
            (central * eps**2,
             "Your gradient is eps^2 times too small: `(fp - fm) / 2 * eps` MULTIPLIES by eps "
             "(Python reads it as ((fp - fm) / 2) * eps); write `(fp - fm) / (2 * eps)`."),
            (-central,
             "Your gradient has the wrong sign: (f(C + eps E_ij) - f(C - eps E_ij)) / (2 eps), the "
             "plus point first."),
            (central.T,
             "You returned the transpose: entry (i, j) is the derivative with respect to compat[i, j], "
             "row i, column j."),
            (torch.full_like(compat, everywhere),
             "You perturbed every entry at once (C + eps times a matrix of ones): that gives the "
             "derivative along one direction, the sum of all partial derivatives. Perturb one entry "
             "at a time, E_ij with a single 1 at (i, j)."),
        ]
        for slip, hint in slips:
            if close(got, slip, **tol):
                raise CheckFailed(f"Exercise {n}: {where}: {hint}")
        worst = float((got - want).abs().max())
        raise CheckFailed(
            f"Exercise {n}: {where} your gradient is off by up to {worst:.3g}. Entry (i, j) is "
            "(f(C + eps E_ij) - f(C - eps E_ij)) / (2 eps), E_ij the [K, K] matrix with a single 1 at "
            "(i, j), f = loss_fn; perturb a copy of compat, never compat itself."
        )
