"""Check cells of exercise sheet 04: CRFs and exact inference.

=========  ===========================================  ====================================
exercise   the student writes                           checked against
=========  ===========================================  ====================================
4.1        ``energy(unary, pairwise, labels) -> [B]``   :meth:`crfkit.GridCRF.energy`
           on the 4-connected grid, one shared          (asymmetric tables, square and
           ``[K, K]`` table                             non-square grids, a 1 x W grid)
4.2        ``brute_force(unary, pairwise)`` ->          :func:`crfkit.inference.exact`
           ``(marginals [B, K, H, W], log_z [B])``      (which it must not call), incl.
           by enumerating every labelling               energies in the thousands
4.3        ``chain_log_z(unary [B, K, W], pairwise)``   :func:`crfkit.inference.
           ``-> [B]`` by the forward recursion in       forward_backward` on 1 x W grids,
           log space                                    (which it must not call), incl. a
                                                        chain of 300 pixels
=========  ===========================================  ====================================

The model is that of :class:`crfkit.GridCRF` with the default offsets
``((0, 1), (1, 0))``: ``p(y) = exp(-E(y)) / Z`` with

.. math::

    E(y) = \\sum_p u_p(y_p) + \\sum_{p} P(y_p, y_{p + (0, 1)}) + \\sum_{p} P(y_p, y_{p + (1, 0)}),

the table read at the *source* pixel ``p`` (its label is the row), and edges whose partner
falls off the grid do not exist (no wrap-around).

When an answer is wrong the checkers recompute the usual slips (one edge direction only,
the table transposed, wrap-around edges, ``exp(+E)`` instead of ``exp(-E)``, a max instead
of a log-sum-exp, ...) and name the one the answer matches. Every checker makes its own
random numbers with a private ``torch.Generator``, so running a check cell does not change
the random state of the notebook.

References
----------
D. Koller, N. Friedman. Probabilistic graphical models. MIT Press 2009, ch. 4 and 9.
L. R. Rabiner. A tutorial on hidden Markov models and selected applications in speech
recognition. Proc. IEEE 77(2), 1989.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

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
from crfkit.crf import GridCRF
from crfkit.potentials import unary_energy

#: energies of 4.1 are sums of about 50 terms below 6: float32 answers pass, slips differ by > 0.1
TOL_41 = dict(atol=1e-4, rtol=1e-5)


def _fmt(values: torch.Tensor) -> str:
    return str([round(v, 4) for v in values.reshape(-1).tolist()])


# ---------------------------------------------------------------------------
# 4.1: the energy of a labelling


def _pair_energy(pairwise: torch.Tensor, labels: torch.Tensor, *, right: bool = True, down: bool = True,
                 wrap: bool = False, transpose: bool = False) -> torch.Tensor:
    """Pairwise energy ``[B]`` of a 4-connected grid, with knobs that reproduce the usual slips."""
    t = pairwise.T if transpose else pairwise
    total = labels.new_zeros(labels.shape[0], dtype=pairwise.dtype)
    for use, dim in ((right, 2), (down, 1)):
        if not use:
            continue
        if wrap:  # torch.roll: the last column (row) is joined to the first
            partner = labels.roll(-1, dims=dim)
            total = total + t[labels, partner].flatten(1).sum(1)
        else:
            n = labels.shape[dim]
            src, dst = labels.narrow(dim, 0, n - 1), labels.narrow(dim, 1, n - 1)
            total = total + t[src, dst].flatten(1).sum(1)
    return total


def _energy_oracle(unary: torch.Tensor, pairwise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return GridCRF(unary, pairwise).energy(labels)


_PAIR_MISTAKES: list[tuple[dict[str, bool], str]] = [
    (dict(down=False),
     "You counted only the horizontal edges (to the right neighbour): add the vertical ones, "
     "P(y[i, j], y[i + 1, j])."),
    (dict(right=False),
     "You counted only the vertical edges (to the pixel below): add the horizontal ones, "
     "P(y[i, j], y[i, j + 1])."),
    (dict(transpose=True),
     "You read the table transposed, P(y_q, y_p) instead of P(y_p, y_q): its row is the label "
     "of the SOURCE pixel p, its column that of the neighbour p + offset (right or below). "
     "The table of this check is not symmetric, so the order matters."),
    (dict(wrap=True),
     "You joined the last column to the first and the last row to the first (torch.roll wraps "
     "around). Edges whose partner falls off the grid do not exist: pair y[:, :, :-1] with "
     "y[:, :, 1:] (and y[:, :-1] with y[:, 1:]), each pixel (the row of the table) with its "
     "right and its lower neighbour (the column)."),
    (dict(wrap=True, transpose=True),
     "You paired each pixel with its LEFT and UPPER neighbour with wrap-around (torch.roll by +1; "
     "the same as reading the table transposed with torch.roll by -1). The partners are p + (0, 1) "
     "and p + (1, 0), the row of the table is the label of the source pixel p, and edges whose "
     "partner falls off the grid do not exist: pair y[:, :, :-1] with y[:, :, 1:] (and y[:, :-1] "
     "with y[:, 1:])."),
]


def _energy_mistakes(unary: torch.Tensor, pairwise: torch.Tensor, labels: torch.Tensor
                     ) -> list[tuple[torch.Tensor, str]]:
    """(energies of a typical slip, hint) for one case."""
    u = unary_energy(unary, labels)  # [B]
    pair = _pair_energy(pairwise, labels)
    out = [(u + _pair_energy(pairwise, labels, **knobs), hint) for knobs, hint in _PAIR_MISTAKES]
    both_ways = pair + _pair_energy(pairwise, labels, transpose=True)
    out += [
        (u + both_ways,
         "You counted every edge twice, once from each end (P(y_p, y_q) + P(y_q, y_p)). Each "
         "pair of neighbours is ONE edge: take only the right and the lower neighbour of each pixel."),
        (u + 2 * pair,
         "Your pairwise energy is twice the right one: each pair of neighbours is one edge, "
         "counted once (only the right and the lower neighbour of each pixel)."),
        (u, "You left out the pairwise energy: add P(y_p, y_q) of every edge."),
        (u - pair,
         "You subtracted the pairwise energies; the energy is a plain sum of unary and pairwise terms."),
        (-u - pair, "Your energies have the wrong sign: E(y) is the sum of the terms, no minus."),
        (pair, "You left out the unary energies: every pixel adds unary[b, y_p, i, j]."),
    ]
    return out


def _energy_shape(n: str, got: Any, b: int, h: int, w: int) -> torch.Tensor:
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(f"Exercise {n}: expected the energies as a torch.Tensor, got {type(got).__name__}.")
    if got.dim() == 0 or tuple(got.shape) == (1,) and b > 1:
        raise CheckFailed(
            f"Exercise {n}: you return a single number for the whole batch. The energy is one "
            f"number per image: sum over the pixels and edges of each image, giving shape [B] = [{b}]."
        )
    if got.dim() >= 3 and tuple(got.shape[-2:]) in ((h, w), (h - 1, w), (h, w - 1)):
        raise CheckFailed(
            f"Exercise {n}: you return energies per pixel or per edge, shape {list(got.shape)}. The "
            f"energy of a labelling is one number per image: sum them, giving shape [B] = [{b}]."
        )
    if tuple(got.shape) != (b,):
        raise CheckFailed(f"Exercise {n}: expected energies of shape [B] = [{b}], got {list(got.shape)}.")
    if not got.is_floating_point():
        raise CheckFailed(f"Exercise {n}: expected floating-point energies, got {got.dtype}.")
    return got


def _energy_case(n: str, fn: Callable, unary: torch.Tensor, pairwise: torch.Tensor, labels: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    keep = unary.clone(), pairwise.clone(), labels.clone()
    got = call(n, fn, unary, pairwise, labels)
    for before, after, name in zip(keep, (unary, pairwise, labels), ("unary", "pairwise", "labels")):
        unchanged(n, before, after, name)
    b, _, h, w = unary.shape
    return _energy_shape(n, got, b, h, w), _energy_oracle(unary, pairwise, labels)


@exercise("4.1")
def check_energy(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 4.1: ``E(y) = sum_p u_p(y_p) + sum_edges P(y_p, y_q)`` on the 4-connected grid."""
    n = "4.1"
    gen = generator(41)
    # 1. no pairwise energy: only the unary part can be wrong
    unary = 3 * torch.rand(3, 3, 4, 5, generator=gen, dtype=F64)  # [B, K, H, W]
    labels = torch.randint(0, 3, (3, 4, 5), generator=gen)  # [B, H, W]
    zero = torch.zeros(3, 3, dtype=F64)
    got, want = _energy_case(n, fn, unary, zero, labels)
    if not close(got, want, **TOL_41):
        if close(got, -want):
            raise CheckFailed(f"Exercise {n}: your energies have the wrong sign: E(y) is the sum of the terms, no minus.")
        if close(got, unary.sum(dim=(1, 2, 3))):
            raise CheckFailed(
                f"Exercise {n}: you summed the unary energies of all labels. Each pixel contributes "
                "only the energy of ITS label: unary[b, labels[b, i, j], i, j] (torch.gather along dim 1)."
            )
        if close(got, torch.full_like(want, float(want.sum()))):
            raise CheckFailed(f"Exercise {n}: every image got the energy of the whole batch: sum over each image separately.")
        raise CheckFailed(
            f"Exercise {n}: with a pairwise table of zeros the energies should be the unary energies "
            f"{_fmt(want)}, yours are {_fmt(got)}. Each pixel (i, j) of image b adds unary[b, labels[b, i, j], i, j]: "
            "pick the energy of the pixel's own label (torch.gather along dim 1), then sum."
        )
    # 2. the full model on square, non-square and 1 x W grids with an asymmetric table
    for b, k, h, w in ((2, 3, 4, 4), (3, 4, 3, 5), (2, 2, 5, 2), (2, 3, 1, 6)):
        unary = 3 * torch.rand(b, k, h, w, generator=gen, dtype=F64)
        pairwise = asymmetric_table(k, gen)
        labels = torch.randint(0, k, (b, h, w), generator=gen)
        got, want = _energy_case(n, fn, unary, pairwise, labels)
        if close(got, want, **TOL_41):
            continue
        where = f"On a {h} x {w} grid (B = {b}, K = {k})"
        if close(got, torch.full_like(want, float(want.sum()))):
            raise CheckFailed(f"Exercise {n}: {where} every image got the energy of the whole batch: sum over each image separately.")
        for slip, hint in _energy_mistakes(unary, pairwise, labels):
            if close(got, slip, **TOL_41):
                raise CheckFailed(f"Exercise {n}: {where}: {hint}")
        raise CheckFailed(
            f"Exercise {n}: {where} your energies are {_fmt(got)}, expected {_fmt(want)}. E(y) = "
            "sum of unary[b, y_p, i, j] over the pixels + P(y_p, y_q) over the edges, where the "
            "edges join each pixel to its right and its lower neighbour (when they are on the grid)."
        )


# ---------------------------------------------------------------------------
# 4.2: marginals and log Z by enumeration


def _all_energies(crf: GridCRF) -> torch.Tensor:
    """Energies ``[B, S]`` of all ``S = K^N`` labellings, in the order of itertools.product."""
    b, k, h, w = crf.shape
    return crf.energies(inference.labellings(k, h * w, 0, k ** (h * w)).reshape(-1, h, w))  # [B, S]


def _pair(n: str, got: Any, what: str) -> tuple[Any, Any]:
    if isinstance(got, (tuple, list)) and len(got) == 2:
        return got[0], got[1]
    kind = f"a {type(got).__name__} of length {len(got)}" if isinstance(got, (tuple, list)) else type(got).__name__
    raise CheckFailed(f"Exercise {n}: expected a pair ({what}), e.g. `return marginals, log_z`; got {kind}.")


_OVERFLOW = (
    "exp(-E) of energies in the thousands underflows to 0 (exp(-746) is already 0 in float64), "
    "so Z = 0 and 0 / 0 = NaN. Work in log space: log Z = torch.logsumexp(-E, dim=...) over the "
    "labellings, and p(y) = exp(-E(y) - log Z)."
)


@exercise(
    "4.2",
    refuses=(inference.exact, inference.labellings),
    refused="your function calls {called}, the answer this exercise rebuilds. Enumerate the "
            "labellings yourself with itertools.product(range(K), repeat=H * W).",
)
def check_brute_force(fn: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Exercise 4.2: marginals and log Z of tiny grids by enumeration, vs ``crfkit.inference.exact``."""
    n = "4.2"
    gen = generator(42)
    cases = [  # (B, K, H, W, scale, offset)
        (2, 2, 2, 3, 2.0, 0.0),
        (2, 3, 2, 2, 2.0, 0.0),
        (2, 2, 2, 2, 400.0, 1000.0),  # energies in the thousands
    ]
    for b, k, h, w, scale, offset in cases:
        unary = scale * torch.rand(b, k, h, w, generator=gen, dtype=F64) + offset
        pairwise = asymmetric_table(k, gen, scale=scale / 2)
        large = offset > 0
        where = (f"For energies in the thousands ({h} x {w} grid, K = {k})" if large
                 else f"On a {h} x {w} grid with K = {k} (B = {b})")
        crf = GridCRF(unary, pairwise)
        want = inference.exact(crf)
        keep = unary.clone(), pairwise.clone()
        got = call(n, fn, unary, pairwise)
        unchanged(n, keep[0], unary, "unary")
        unchanged(n, keep[1], pairwise, "pairwise")
        marginals, log_z = _pair(n, got, "marginals [B, K, H, W] and log Z [B]")
        marginals = expect_tensor(n, marginals, (b, k, h, w), "the marginals", finite=False)
        extra = " One log Z per image." if isinstance(log_z, torch.Tensor) and log_z.numel() == 1 else ""
        log_z = expect_tensor(n, log_z, (b,), "log Z", extra=extra, finite=False)
        if not (torch.isfinite(marginals).all() and torch.isfinite(log_z).all()):
            if large:
                raise CheckFailed(f"Exercise {n}: {where} your marginals or log Z contain NaN or inf: {_OVERFLOW}")
            raise CheckFailed(f"Exercise {n}: {where} your marginals or log Z contain NaN or inf.")
        # the marginals
        flipped = inference.exact(GridCRF(-unary, -pairwise))
        if close(marginals, flipped.marginals, atol=1e-6, rtol=1e-6):
            raise CheckFailed(
                f"Exercise {n}: {where} your marginals are those of p(y) ∝ exp(+E(y)): the most likely "
                "labelling is the one with the LOWEST energy, p(y) = exp(-E(y)) / Z. (Kirillov et al. "
                "2016 write exp(+E), with the opposite sign of the energy; crfkit never does.)"
            )
        scrambled = want.marginals.permute(0, 2, 3, 1).reshape(b, k, h, w)
        if close(marginals, scrambled, atol=1e-6, rtol=1e-6):
            raise CheckFailed(
                f"Exercise {n}: {where} your marginals have the right values in the wrong places: you "
                "reshaped a [B, H, W, K] (or [B, H*W, K]) tensor to [B, K, H, W]. Reshape to "
                "[B, H, W, K] first, then move the labels with .permute(0, 3, 1, 2)."
            )
        sums = marginals.sum(dim=1)  # [B, H, W]
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-6):
            z = torch.exp(want.log_z)[:, None, None]
            if not large and torch.allclose(sums, z.expand_as(sums), rtol=1e-6):
                raise CheckFailed(
                    f"Exercise {n}: {where} your marginals sum to Z over the labels, not to 1: divide "
                    "the summed exp(-E(y)) by Z, or sum p(y) = exp(-E(y) - log Z)."
                )
            raise CheckFailed(
                f"Exercise {n}: {where} the marginals of a pixel must sum to 1 over the labels "
                "(dimension 1 of [B, K, H, W]); yours sum to "
                f"{_fmt(sums[0, 0, :2])}... mu_p(k) sums p(y) over the labellings with y_p = k."
            )
        if not close(marginals, want.marginals, atol=1e-6, rtol=1e-6):
            worst = float((marginals - want.marginals).abs().max())
            raise CheckFailed(
                f"Exercise {n}: {where} your marginals are off by up to {worst:.3g}. "
                "mu_p(k) = sum of p(y) = exp(-E(y)) / Z over every labelling y with y_p = k."
            )
        # log Z
        if close(log_z, want.log_z, atol=1e-6, rtol=1e-9):
            continue
        energies = _all_energies(crf)  # [B, S]
        slips = [
            (torch.logsumexp(energies, dim=1),
             "Your log Z is log sum_y exp(+E(y)); with p(y) = exp(-E(y)) / Z it is log sum_y exp(-E(y))."),
            (-want.log_z, "Your log Z has the wrong sign: log Z = log sum_y exp(-E(y))."),
            (torch.exp(want.log_z), "You returned Z, not log Z."),
            ((-energies).sum(dim=1),
             "You summed the logarithms, sum_y (-E(y)). log Z is the log of a SUM: "
             "log sum_y exp(-E(y)), torch.logsumexp(-E, dim=...)."),
            ((-energies).max(dim=1).values,
             "You kept only the largest term, -min_y E(y) (the MAP energy). log Z sums over all "
             "labellings: torch.logsumexp(-E, dim=...)."),
            (want.log_z - torch.log(torch.tensor(float(energies.shape[1]), dtype=F64)),
             "You averaged exp(-E(y)) over the labellings; Z is their sum."),
        ]
        for slip, hint in slips:
            if close(log_z, slip, atol=1e-6, rtol=1e-9):
                raise CheckFailed(f"Exercise {n}: {where}: {hint}")
        raise CheckFailed(
            f"Exercise {n}: {where} your log Z is {_fmt(log_z)}, expected {_fmt(want.log_z)}. "
            "log Z = log sum_y exp(-E(y)) over all K^(H W) labellings."
        )


# ---------------------------------------------------------------------------
# 4.3: log Z of a chain by the forward recursion


def _chain_crf(unary: torch.Tensor, pairwise: torch.Tensor) -> GridCRF:
    return GridCRF(unary[:, :, None, :], pairwise)  # [B, K, 1, W]: a 1 x W grid


def _chain_oracle(unary: torch.Tensor, pairwise: torch.Tensor) -> torch.Tensor:
    return inference.forward_backward(_chain_crf(unary, pairwise)).log_z


@exercise(
    "4.3",
    refuses=(inference.forward_backward, inference.viterbi, inference.exact, inference.labellings),
    refused="your function calls {called} (crfkit.inference's forward_backward, viterbi and exact "
            "are off limits here), the answer this exercise rebuilds. Write the forward recursion "
            "yourself.",
)
def check_chain_log_z(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 4.3: log Z of a chain in O(W K^2), vs ``crfkit.inference.forward_backward``."""
    n = "4.3"
    gen = generator(43)
    cases = [  # (B, K, W, scale, offset)
        (3, 3, 7, 2.0, 0.0),
        (2, 4, 1, 2.0, 0.0),  # a single pixel: no edges
        (2, 2, 2, 2.0, 0.0),
        (2, 4, 300, 20.0, 50.0),  # a long chain: energies around 20 000
    ]
    for b, k, w, scale, offset in cases:
        unary = scale * torch.rand(b, k, w, generator=gen, dtype=F64) + offset  # [B, K, W]
        pairwise = asymmetric_table(k, gen, scale=scale / 2)
        long = w >= 100
        where = (f"On a chain of {w} pixels with energies in the tens of thousands" if long
                 else f"On a chain of {w} pixel{'s' * (w > 1)} (B = {b}, K = {k})")
        want = _chain_oracle(unary, pairwise)
        keep = unary.clone(), pairwise.clone()
        got = call(n, fn, unary, pairwise)
        unchanged(n, keep[0], unary, "unary")
        unchanged(n, keep[1], pairwise, "pairwise")
        if isinstance(got, torch.Tensor) and got.dim() == 2 and tuple(got.shape) in ((b, k), (k, b)):
            raise CheckFailed(
                f"Exercise {n}: you return alpha of the last pixel, shape {list(got.shape)}. log Z "
                "sums it over the labels: torch.logsumexp(alpha, dim=...) gives one number per image, [B]."
            )
        extra = " One log Z per image." if isinstance(got, torch.Tensor) and got.numel() == 1 else ""
        got = expect_tensor(n, got, (b,), "log Z", extra=extra, finite=False)
        if not torch.isfinite(got).all():
            if long:
                raise CheckFailed(
                    f"Exercise {n}: {where} your log Z is {_fmt(got[:2])}. Products of exp(-energy) "
                    "along a long chain underflow to 0 (and their log to -inf). Keep alpha in log "
                    "space: alpha_{t+1}(c) = -u_{t+1}(c) + logsumexp_a(alpha_t(a) - P(a, c))."
                )
            raise CheckFailed(f"Exercise {n}: {where} your log Z contains NaN or inf: {_fmt(got)}.")
        tol = dict(atol=1e-6, rtol=1e-9) if long else dict(atol=1e-5, rtol=1e-6)
        if close(got, want, **tol):
            continue
        crf = _chain_crf(unary, pairwise)
        slips = [
            (_chain_oracle(unary, pairwise.T.contiguous()),
             "You read the table transposed: P[a, c] is the energy of label a at pixel t and c at "
             "pixel t + 1, so alpha_{t+1}(c) = -u_{t+1}(c) + logsumexp_a(alpha_t(a) - P[a, c]), "
             "summing over the FIRST index of P. (This check's table is not symmetric.)"),
            (_chain_oracle(-unary, -pairwise),
             "Your log Z is that of p(y) ∝ exp(+E(y)): with energies, alpha_0 = -u_0 and every term "
             "enters as exp(-energy)."),
            (-_chain_oracle(unary, pairwise), "Your log Z has the wrong sign: log Z = log sum_y exp(-E(y))."),
            (-inference.viterbi(crf).map_energy,
             "You took a max (min over energies) where the sum-product recursion takes a "
             "log-sum-exp: that is the Viterbi (min-sum) recursion, giving -min_y E(y), the MAP "
             "energy. Use torch.logsumexp over the previous label, and over the labels at the end."),
            (_chain_oracle(unary, torch.zeros_like(pairwise)),
             "You left out the pairwise energies: each step adds -P(a, c) inside the logsumexp."),
        ]
        for slip, hint in slips:
            if close(got, slip, **tol):
                raise CheckFailed(f"Exercise {n}: {where}: {hint}")
        if long:
            raise CheckFailed(
                f"Exercise {n}: {where} your log Z is {_fmt(got[:2])}, expected {_fmt(want[:2])}, "
                "although short chains pass. Keep every step in log space (no exp of alpha, float64 "
                "throughout, no rescaling that drops a factor)."
            )
        raise CheckFailed(
            f"Exercise {n}: {where} your log Z is {_fmt(got)}, expected {_fmt(want)}. Start from "
            "alpha_0 = -u_0, step alpha_{t+1}(c) = -u_{t+1}(c) + logsumexp_a(alpha_t(a) - P[a, c]), "
            "and end with log Z = logsumexp_a alpha_{W-1}(a)."
        )
