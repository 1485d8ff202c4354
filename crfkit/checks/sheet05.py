"""Check cells of exercise sheet 05: mean field and the fully connected CRF.

=========  ===========================================  ====================================
exercise   the student writes                           checked against
=========  ===========================================  ====================================
5.1        ``mean_field_step(unary, pairwise, q)``:     :func:`crfkit.inference.mean_field`
           one parallel mean-field update on the        with ``iterations=1, init=q`` (which
           4-connected grid, one ``[K, K]`` table       it must not call); asymmetric tables
5.2        ``compatibility_transform(filtered,          ``einsum("kl,bl...->bk...")``;
           compat)``: ``m(k) = sum_k' mu(k, k')         Potts and asymmetric tables,
           Q~(k')`` for ``[B, K, ...]`` messages        ``[B, K, H, W]`` and ``[B, K, N]``
5.3        ``gaussian_filter_naive(image, values,       :func:`crfkit.permutohedral.
           sxy, srgb)``: the O(N^2) bilateral sum       gaussian_filter_exact` on
           on ``(x / sxy, y / sxy, rgb / srgb)``        ``[B, N, 5]`` features (which it
                                                        must not call)
=========  ===========================================  ====================================

The mean-field update of a pairwise CRF with ``p(y) ∝ exp(-E(y))`` sets every pixel to

.. math::

    Q_p(k) \\propto \\exp\\Big(-u_p(k) - \\sum_{q \\sim p} \\sum_{k'} \\psi_{pq}(k, k')\\, Q_q(k')\\Big),

where on the grid an edge ``p -> p + o`` reads its table at the source, so the right and lower
neighbours send ``sum_k' P[k, k'] Q(k')`` (a row of ``P``) and the left and upper ones
``sum_k' P[k', k] Q(k')`` (a column). In the fully connected CRF (Krähenbühl & Koltun 2011)
the sum over neighbours is a Gaussian filter followed by the compatibility transform.

When an answer is wrong the checkers recompute the usual slips (one direction of the edges
only, the table transposed, wrap-around, the sign of the messages, the 1/2 in the Gaussian,
the pixel itself left out ...) and name the one the answer matches. Every checker makes its
own random numbers with a private ``torch.Generator``.

References
----------
D. Koller, N. Friedman. Probabilistic graphical models. MIT Press 2009, §11.5.
P. Krähenbühl, V. Koltun. Efficient inference in fully connected CRFs with Gaussian edge
potentials. NIPS 2011.
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
from crfkit.crf import GridCRF, potts
from crfkit.permutohedral import gaussian_filter_exact

#: comparisons of 5.1 (and 5.2's Potts slips), in float64
TOL = dict(atol=1e-6, rtol=1e-6)


def _random_q(b: int, k: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    return torch.softmax(3 * torch.randn(b, k, h, w, generator=gen, dtype=F64), dim=1)


# ---------------------------------------------------------------------------
# 5.1: one parallel mean-field update on the grid


def _messages(pairwise: torch.Tensor, q: torch.Tensor, *, forward: bool = True, backward: bool = True,
              back_table: str = "T", wrap: bool = False) -> torch.Tensor:
    """Grid messages ``[B, K, H, W]`` with knobs for the usual slips.

    ``forward``: right and lower neighbours send ``P q`` (rows); ``backward``: left and upper
    neighbours send ``P^T q`` (columns; ``back_table="P"`` sends rows instead).
    """
    m = torch.zeros_like(q)
    back = pairwise.T if back_table == "T" else pairwise
    for dim in (2, 3):
        n = q.shape[dim]
        if wrap:
            if forward:
                m = m + torch.einsum("kl,blhw->bkhw", pairwise, q.roll(-1, dims=dim))
            if backward:
                m = m + torch.einsum("kl,blhw->bkhw", back, q.roll(1, dims=dim))
            continue
        if n < 2:
            continue
        if forward:  # pixel t receives from t + 1
            sent = torch.einsum("kl,blhw->bkhw", pairwise, q.narrow(dim, 1, n - 1))
            m = m + torch.cat([sent, torch.zeros_like(q.narrow(dim, 0, 1))], dim=dim)
        if backward:  # pixel t receives from t - 1
            sent = torch.einsum("kl,blhw->bkhw", back, q.narrow(dim, 0, n - 1))
            m = m + torch.cat([torch.zeros_like(q.narrow(dim, 0, 1)), sent], dim=dim)
    return m


def _step(unary: torch.Tensor, pairwise: torch.Tensor, q: torch.Tensor, **knobs: Any) -> torch.Tensor:
    return torch.softmax(-unary - _messages(pairwise, q, **knobs), dim=1)


@exercise(
    "5.1",
    refuses=(inference.grid_messages, inference.mean_field),
    refused="your function calls crfkit's mean field ({called}), the answer this exercise "
            "rebuilds. Compute the messages from the four neighbours yourself.",
)
def check_mean_field_step(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 5.1: one parallel update vs ``mean_field(GridCRF(unary, pairwise), 1, init=q)``."""
    n = "5.1"
    gen = generator(51)
    for b, k, h, w in ((2, 3, 4, 5), (1, 4, 3, 3), (2, 2, 1, 6)):
        unary = 2 * torch.rand(b, k, h, w, generator=gen, dtype=F64)
        pairwise = asymmetric_table(k, gen)
        q = _random_q(b, k, h, w, gen)
        where = f"On a {h} x {w} grid (B = {b}, K = {k})"
        want = inference.mean_field(GridCRF(unary, pairwise), iterations=1, init=q)
        keep = unary.clone(), pairwise.clone(), q.clone()
        got = call(n, fn, unary, pairwise, q)
        for before, after, name in zip(keep, (unary, pairwise, q), ("unary", "pairwise", "q")):
            unchanged(n, before, after, name)
        got = expect_tensor(n, got, (b, k, h, w), "the new Q")
        if close(got, want, **TOL):
            continue
        sums = got.sum(dim=1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-6):
            raise CheckFailed(
                f"Exercise {n}: {where} your Q does not sum to 1 over the labels: normalise each pixel "
                "with torch.softmax(-unary - messages, dim=1)."
            )
        slips = [
            (_step(unary, pairwise, q, back_table="P"),
             "Your left and upper neighbours use the table the same way as the right and lower ones. "
             "The edge from r to p (r on the left of or above p) has its source at r, so it costs "
             "P[y_r, y_p]: p receives sum_k' P[k', k] Q_r(k'), a COLUMN of P (P.T @ Q_r)."),
            (_step(unary, pairwise.T.contiguous(), q),
             "You read the table transposed: the right and lower neighbours q send sum_k' P[k, k'] Q_q(k') "
             "(p is the source: its label is the row), the left and upper ones sum_k' P[k', k] Q(k')."),
            (_step(unary, pairwise, q, backward=False),
             "Only the right and lower neighbours send messages. Every edge informs BOTH its ends: "
             "the left and upper neighbours send sum_k' P[k', k] Q(k') too."),
            (_step(unary, pairwise, q, forward=False),
             "Only the left and upper neighbours send messages. Every edge informs BOTH its ends: "
             "the right and lower neighbours send sum_k' P[k, k'] Q(k') too."),
            (_step(unary, pairwise, q, wrap=True),
             "Your messages wrap around the border (torch.roll): pixels on the border have fewer "
             "neighbours, edges off the grid do not exist. Pad with zeros instead of rolling."),
            (torch.softmax(-unary + _messages(pairwise, q), dim=1),
             "Your messages have the wrong sign: they are expected ENERGIES, Q_p(k) ∝ exp(-u_p(k) - m_p(k))."),
            (torch.softmax(unary - _messages(pairwise, q), dim=1),
             "Your unary has the wrong sign: Q_p(k) ∝ exp(-u_p(k) - m_p(k)), low energy = likely."),
            (torch.softmax(-_messages(pairwise, q), dim=1),
             "You left out the unary energies: Q_p(k) ∝ exp(-u_p(k) - m_p(k))."),
            (torch.softmax(-unary, dim=1),
             "You left out the messages: Q_p(k) ∝ exp(-u_p(k) - m_p(k)) with m_p(k) the expected "
             "pairwise energy of label k at p under the neighbours' Q."),
            (torch.softmax(-unary - _messages(pairwise, torch.softmax(-unary, dim=1)), dim=1),
             "You computed the messages from softmax(-unary); the update takes the CURRENT Q, the "
             "argument `q`."),
        ]
        for slip, hint in slips:
            if close(got, slip, **TOL):
                raise CheckFailed(f"Exercise {n}: {where}: {hint}")
        worst = float((got - want).abs().max())
        raise CheckFailed(
            f"Exercise {n}: {where} your Q is off by up to {worst:.3g}. m_p(k) = sum over the right and "
            "lower neighbours q of sum_k' P[k, k'] Q_q(k') + over the left and upper neighbours r of "
            "sum_k' P[k', k] Q_r(k'); then Q_p = softmax(-u_p - m_p) over the labels."
        )


# ---------------------------------------------------------------------------
# 5.2: the compatibility transform


def _transform(filtered: torch.Tensor, compat: torch.Tensor) -> torch.Tensor:
    return torch.einsum("kl,bl...->bk...", compat, filtered)


@exercise("5.2")
def check_compatibility_transform(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 5.2: ``m[b, k, ...] = sum_k' compat[k, k'] filtered[b, k', ...]``."""
    n = "5.2"
    gen = generator(52)
    cases = [
        ("a Potts table", (2, 3, 4, 5), lambda k: potts(k, 1.5, dtype=F64)),
        ("an asymmetric table", (2, 4, 3, 5), lambda k: asymmetric_table(k, gen)),
        ("messages of shape [B, K, N]", (3, 3, 7), lambda k: asymmetric_table(k, gen)),
    ]
    for what, shape, table in cases:
        filtered = 3 * torch.rand(*shape, generator=gen, dtype=F64)
        compat = table(shape[1])
        keep = filtered.clone(), compat.clone()
        got = call(n, fn, filtered, compat)
        unchanged(n, keep[0], filtered, "filtered")
        unchanged(n, keep[1], compat, "compat")
        got = expect_tensor(n, got, shape, "the messages")
        want = _transform(filtered, compat)
        if close(got, want, atol=1e-9, rtol=1e-9):
            continue
        where = f"With {what} ({list(shape)})"
        if what == "a Potts table":
            w = 1.5
            if close(got, -w * filtered, **TOL):
                raise CheckFailed(
                    f"Exercise {n}: {where} you returned -w Q~(k), as pydensecrf does. It differs from "
                    "sum_k' mu(k, k') Q~(k') = w (sum_k' Q~(k') - Q~(k)) by w sum_k' Q~(k'), the same for "
                    "every label of a pixel, so the softmax of the update does not see it; but this "
                    "exercise asks for the transform itself: apply the table."
                )
            if close(got, w * filtered.sum(1, keepdim=True).expand_as(filtered), **TOL):
                raise CheckFailed(
                    f"Exercise {n}: {where}: you summed over every label, including k' = k. The Potts "
                    "table has zeros on its diagonal: a label does not penalise itself."
                )
        slips = [
            (_transform(filtered, compat.T), "You applied the table transposed: m(k) = sum_k' compat[k, k'] Q~(k'), "
             "the row of the table is the label k that receives the message."),
            (-want, "Your messages have the wrong sign: m(k) = + sum_k' compat[k, k'] Q~(k')."),
            (filtered * compat.diagonal().view(-1, *[1] * (len(shape) - 2)),
             "You multiplied each label by its own diagonal entry only; the transform mixes the labels: "
             "m(k) = sum_k' compat[k, k'] Q~(k')."),
        ]
        for slip, hint in slips:
            if close(got, slip, atol=1e-9, rtol=1e-9):
                raise CheckFailed(f"Exercise {n}: {where}: {hint}")
        worst = float((got - want).abs().max())
        raise CheckFailed(
            f"Exercise {n}: {where} your messages are off by up to {worst:.3g}. Expected "
            "m[b, k, ...] = sum_k' compat[k, k'] filtered[b, k', ...] (torch.einsum('kl,bl...->bk...'))."
        )


# ---------------------------------------------------------------------------
# 5.3: the naive O(N^2) bilateral filter


def _features(image: torch.Tensor, sxy: float, srgb: float, *, spatial: bool = True, colour: bool = True
              ) -> torch.Tensor:
    """Bilateral features ``[B, N, d]``: ``(x / sxy, y / sxy, r / srgb, g / srgb, b / srgb)``."""
    b, c, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=image.dtype), torch.arange(w, dtype=image.dtype), indexing="ij")
    parts = []
    if spatial:
        parts.append(torch.stack([xs, ys]).reshape(1, 2, h * w).expand(b, 2, h * w) / sxy)
    if colour:
        parts.append(image.reshape(b, c, h * w) / srgb)
    return torch.cat(parts, dim=1).transpose(1, 2)  # [B, N, d]


def _filter(image: torch.Tensor, values: torch.Tensor, sxy: float, srgb: float, *, scale: float = 1.0,
            include_self: bool = True, **parts: bool) -> torch.Tensor:
    b, c, h, w = values.shape
    feats = _features(image, sxy, srgb, **parts) * scale
    v = values.reshape(b, c, h * w).transpose(1, 2)  # [B, N, C]
    out = gaussian_filter_exact(feats, v, include_self=include_self)  # [B, N, C]
    return out.transpose(1, 2).reshape(b, c, h, w)


@exercise(
    "5.3",
    refuses=(gaussian_filter_exact,),
    refused="your function calls {called}, crfkit's own answer to this exercise. Write the sum "
            "yourself: features, squared distances, Gaussian weights, then one matrix product.",
)
def check_gaussian_filter_naive(fn: Callable[..., torch.Tensor]) -> None:
    """Exercise 5.3: the bilateral Gaussian sum vs ``crfkit.permutohedral.gaussian_filter_exact``."""
    n = "5.3"
    gen = generator(53)
    for b, c, h, w, sxy, srgb in ((2, 2, 5, 7, 3.0, 20.0), (1, 3, 4, 4, 1.5, 60.0)):
        image = 255 * torch.rand(b, 3, h, w, generator=gen, dtype=F64)  # [B, 3, H, W], 0..255
        values = torch.rand(b, c, h, w, generator=gen, dtype=F64)  # [B, C, H, W]
        keep = image.clone(), values.clone()
        got = call(n, fn, image, values, sxy, srgb)
        unchanged(n, keep[0], image, "image")
        unchanged(n, keep[1], values, "values")
        got = expect_tensor(n, got, (b, c, h, w), "the filtered values")
        want = _filter(image, values, sxy, srgb)
        if close(got, want, atol=1e-8, rtol=1e-7):
            continue
        where = f"On a {h} x {w} image (sxy = {sxy}, srgb = {srgb})"
        ones = _filter(image, torch.ones_like(values), sxy, srgb)
        slips = [
            (_filter(image, values, sxy, srgb, include_self=False),
             "You left out the pixel itself (j = i). The sum runs over ALL pixels j, i included, "
             "with weight exp(0) = 1."),
            (_filter(image, values, sxy, srgb, scale=2 ** 0.5),
             "Your Gaussian has no 1/2: the weight is exp(-|f_i - f_j|^2 / 2)."),
            (_filter(image, values, sxy, srgb, colour=False),
             "You used only the positions; the bilateral kernel also compares colours: "
             "f = (x / sxy, y / sxy, r / srgb, g / srgb, b / srgb)."),
            (_filter(image, values, sxy, srgb, spatial=False),
             "You used only the colours; the bilateral kernel also compares positions: "
             "f = (x / sxy, y / sxy, r / srgb, g / srgb, b / srgb)."),
            (want / ones,
             "You normalised the sum by the total weight sum_j k(i, j). The filter is the plain sum "
             "sum_j exp(-|f_i - f_j|^2 / 2) v_j (the dense CRF normalises later)."),
            (_filter(image, values, sxy ** 2, srgb ** 2),
             "You divided by the variances sxy^2 and srgb^2; the features are divided by the standard "
             "deviations sxy and srgb (then squared in the distance)."),
            (_filter(image / 255, values, sxy, srgb),
             "You rescaled the colours to 0..1; srgb is in the units of the image (0..255)."),
        ]
        for slip, hint in slips:
            if close(got, slip, atol=1e-8, rtol=1e-7):
                raise CheckFailed(f"Exercise {n}: {where}: {hint}")
        worst = float((got - want).abs().max())
        raise CheckFailed(
            f"Exercise {n}: {where} your output is off by up to {worst:.3g}. out[b, :, i] = sum over all "
            "pixels j of exp(-|f_i - f_j|^2 / 2) values[b, :, j], with f = (x / sxy, y / sxy, r / srgb, "
            "g / srgb, b / srgb) for pixel (y, x)."
        )
