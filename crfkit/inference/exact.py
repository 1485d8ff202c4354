"""Exact inference: enumeration on tiny grids, forward-backward and Viterbi on chains.

For a :class:`~crfkit.GridCRF` with ``p(y) = exp(-E(y)) / Z``, these functions compute

.. math::

    \\log Z = \\log \\sum_y e^{-E(y)}, \\qquad
    \\mu_p(k) = \\sum_{y:\\, y_p = k} \\frac{e^{-E(y)}}{Z}, \\qquad
    y^\\star = \\arg\\min_y E(y)

exactly. :func:`exact` enumerates all ``K^N`` labellings (the brute-force oracle every
approximate algorithm in crfkit is tested against); :func:`forward_backward` and
:func:`viterbi` run the sum-product and min-sum recursions on a chain (a ``1 x W`` or
``H x 1`` grid) in O(L·K²).

References
----------
- D. Koller and N. Friedman, *Probabilistic Graphical Models*, MIT Press 2009,
  ch. 9 (variable elimination) and 13.3 (max-product / MAP).
- L. R. Rabiner, "A tutorial on hidden Markov models and selected applications in
  speech recognition", Proc. IEEE 77(2), 1989 (forward-backward, Viterbi).
- A. Kirillov et al., "Joint training of generic CNN-CRF models with stochastic
  optimization", ACCV 2016 (edge classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from crfkit._validate import check_instance
from crfkit.crf import GridCRF

__all__ = ["ExactResult", "ChainResult", "ViterbiResult", "exact", "forward_backward", "labellings", "viterbi"]

#: Default largest number of labellings ``K^(H W)`` that :func:`exact` enumerates.
MAX_STATES = 2**20


@dataclass(frozen=True)
class ExactResult:
    """What :func:`exact` returns.

    Attributes
    ----------
    marginals : Tensor ``[B, K, H, W]``
        ``mu_p(k) = p(y_p = k)``; sums to 1 over ``K``.
    log_z : Tensor ``[B]``
        ``log Z = log sum_y exp(-E(y))``.
    map : Tensor ``[B, H, W]`` int64
        A minimum-energy labelling (ties: the first in enumeration order).
    map_energy : Tensor ``[B]``
        ``E(map)``.
    """

    marginals: torch.Tensor
    log_z: torch.Tensor
    map: torch.Tensor
    map_energy: torch.Tensor


@dataclass(frozen=True)
class ChainResult:
    """What :func:`forward_backward` returns: ``.marginals [B, K, H, W]``, ``.log_z [B]``."""

    marginals: torch.Tensor
    log_z: torch.Tensor


@dataclass(frozen=True)
class ViterbiResult:
    """What :func:`viterbi` returns: ``.map [B, H, W]`` int64 and ``.map_energy [B]``."""

    map: torch.Tensor
    map_energy: torch.Tensor


def _check_model(crf, fn: str) -> GridCRF:
    return check_instance("crf", crf, GridCRF, fn)


def labellings(num_labels: int, num_pixels: int, start: int, stop: int, device=None) -> torch.Tensor:
    """Labellings number ``start .. stop-1`` in enumeration order, shape ``[S, N]`` int64.

    Labelling ``s`` writes ``s`` in base ``K`` with pixel 0 (top-left, row-major order) as the
    most significant digit: the order of ``itertools.product(range(K), repeat=N)``.
    """
    s = torch.arange(start, stop, device=device)  # [S]
    powers = num_labels ** torch.arange(num_pixels - 1, -1, -1, device=device)  # [N]
    return torch.div(s[:, None], powers[None, :], rounding_mode="floor") % num_labels  # [S, N]


def exact(crf: GridCRF, max_states: int = MAX_STATES, chunk_size: int | None = None) -> ExactResult:
    """Marginals, log Z and MAP of a tiny :class:`~crfkit.GridCRF` by enumerating every labelling.

    .. math::

        \\log Z = \\operatorname{logsumexp}_y\\, (-E(y)), \\quad
        \\mu_p(k) = \\sum_y [y_p = k]\\, e^{-E(y) - \\log Z}, \\quad
        y^\\star = \\arg\\min_y E(y)

    All ``S = K^N`` labellings (``N = H W``) are enumerated in chunks, vectorised over the
    chunk and the batch. Cost O(B·S·(N + #edges)) time and O(B·S) memory for the energies;
    differentiable in ``unary`` and ``pairwise`` (``d log Z / d unary = -marginals``).

    Parameters
    ----------
    crf : GridCRF
        The model, ``unary [B, K, H, W]``.
    max_states : int
        Refuse models with more than this many labellings (default ``2**20``).
    chunk_size : int, optional
        Labellings per vectorised chunk (default: about 4 million numbers per chunk).

    Returns
    -------
    ExactResult
        ``.marginals [B, K, H, W]``, ``.log_z [B]``, ``.map [B, H, W]`` int64 and
        ``.map_energy [B]``. Ties for the MAP go to the labelling that comes first in
        enumeration order, that of ``itertools.product(range(K), repeat=N)`` over the pixels in
        row-major order (so, among equal energies, the one with the smallest labels at the
        top-left). Ties are equality of the computed floating-point energies.

    Raises
    ------
    ValueError
        If ``K^N > max_states``; the message gives both numbers.
    """
    _check_model(crf, "exact")
    b, k, h, w = crf.shape
    n = h * w
    states = k**n
    if states > max_states:
        hint = (
            " This grid is a chain: forward_backward(crf) and viterbi(crf) are exact in O(W K^2)."
            if h == 1 or w == 1
            else " Use an approximate method (mean_field), or a smaller grid."
        )
        raise ValueError(
            f"crf: exact enumeration needs K^(H*W) = {k}^({h}*{w}) = {states} labellings, more than "
            f"max_states = {max_states}.{hint}"
        )
    dev = crf.unary.device
    edges = crf.num_edges()
    if chunk_size is None:
        chunk_size = max(1, 2**22 // (b * (n + edges + k * n)))
    # pass 1: the energy of every labelling
    energies = torch.cat(
        [crf.energies(labellings(k, n, s, min(s + chunk_size, states), dev).reshape(-1, h, w))
         for s in range(0, states, chunk_size)],
        dim=1,
    )  # [B, S]
    log_z = torch.logsumexp(-energies, dim=1)  # [B]
    prob = torch.exp(-energies - log_z[:, None])  # [B, S]
    # pass 2: marginals mu_p(k) = sum_y p(y) [y_p = k]
    marg = torch.zeros(b, n * k, dtype=crf.unary.dtype, device=dev)
    for s in range(0, states, chunk_size):
        y = labellings(k, n, s, min(s + chunk_size, states), dev)  # [S', N]
        onehot = torch.nn.functional.one_hot(y, k).to(crf.unary.dtype).reshape(y.shape[0], n * k)  # [S', N*K]
        marg = marg + prob[:, s : s + y.shape[0]] @ onehot  # [B, N*K]
    marginals = marg.reshape(b, h, w, k).permute(0, 3, 1, 2)  # [B, K, H, W]
    best = energies.argmin(dim=1)  # [B], first minimum
    map_labels = torch.stack([labellings(k, n, int(s), int(s) + 1, dev)[0] for s in best]).reshape(b, h, w)  # [B, H, W]
    map_energy = energies.gather(1, best[:, None])[:, 0]  # [B]
    return ExactResult(marginals=marginals, log_z=log_z, map=map_labels, map_energy=map_energy)


def _chain(crf: GridCRF, fn: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The model as a chain: unary ``[B, L, K]`` and pairwise ``[B, L-1, K, K]`` along it.

    ``pair[b, t, a, c]`` is the energy of ``a`` at chain position ``t`` and ``c`` at ``t + 1``,
    summed over every offset whose edges join these two pixels.
    """
    _check_model(crf, fn)
    b, k, h, w = crf.shape
    if h != 1 and w != 1:
        raise ValueError(
            f"crf: {fn} needs a chain, a 1 x W or H x 1 grid, got H x W = {h} x {w}; use exact() or mean_field()"
        )
    along_w = h == 1  # a 1 x W chain (a 1 x 1 grid is a chain of length 1 either way)
    length = w if along_w else h
    unary = crf.unary.reshape(b, k, length).transpose(1, 2)  # [B, L, K]
    pair = unary.new_zeros(b, max(length - 1, 0), k, k)  # [B, L-1, K, K]
    for e, (dy, dx) in enumerate(crf.offsets):
        (sr, sc), _ = crf.edge_slices(e)
        if sr.stop <= sr.start or sc.stop <= sc.start:
            continue  # no edge of this class lies on the grid
        step = dx if along_w else dy
        if (dy if along_w else dx) != 0 or abs(step) != 1:
            raise ValueError(
                f"crf: {fn} needs a chain, where every edge joins neighbours along it; offset {(dy, dx)} "
                f"joins other pixels of this {h} x {w} grid"
            )
        table = crf.edge_table(e)  # [B', K, K, H', W']
        table = table.expand(b, k, k, h, w).reshape(b, k, k, length).permute(0, 3, 1, 2)  # [B, L, K, K] at sources
        if step == 1:  # source t, target t + 1
            pair = pair + table[:, :-1]
        else:  # source t + 1, target t: the table is [k at t+1, k' at t]
            pair = pair + table[:, 1:].transpose(2, 3)
    return unary, pair


def forward_backward(crf: GridCRF) -> ChainResult:
    """Exact marginals and log Z of a chain (``1 x W`` or ``H x 1`` grid) by sum-product.

    With ``u_t`` the unary and ``P_t[a, c]`` the pairwise between positions ``t`` and ``t+1``,
    in log space (Rabiner 1989, eqs. 19-25, with energies):

    .. math::

        \\alpha_0(a) = -u_0(a), \\quad
        \\alpha_{t+1}(c) = -u_{t+1}(c) + \\operatorname{logsumexp}_a [\\alpha_t(a) - P_t(a, c)]

        \\beta_{L-1}(a) = 0, \\quad
        \\beta_t(a) = \\operatorname{logsumexp}_c [-P_t(a, c) - u_{t+1}(c) + \\beta_{t+1}(c)]

        \\log Z = \\operatorname{logsumexp}_a \\alpha_{L-1}(a), \\quad
        \\mu_t(a) = \\exp(\\alpha_t(a) + \\beta_t(a) - \\log Z) = \\operatorname{softmax}_a(\\alpha_t + \\beta_t)

    Every offset whose edges lie on the grid must join chain neighbours (``(0, ±1)`` on a
    ``1 x W`` grid, ``(±1, 0)`` on ``H x 1``); offsets with no edge on the grid (the
    default ``(1, 0)`` of a ``1 x W`` grid) are ignored. Cost O(B·L·K²); stable for long
    chains; differentiable.

    Returns
    -------
    ChainResult
        ``.marginals [B, K, H, W]``, ``.log_z [B]``.
    """
    unary, pair = _chain(crf, "forward_backward")  # [B, L, K], [B, L-1, K, K]
    b, length, k = unary.shape
    alpha = [-unary[:, 0]]  # [B, K] each
    for t in range(length - 1):
        # alpha_{t+1}(c) = -u_{t+1}(c) + logsumexp_a (alpha_t(a) - P_t(a, c))
        alpha.append(-unary[:, t + 1] + torch.logsumexp(alpha[t][:, :, None] - pair[:, t], dim=1))
    beta = [torch.zeros_like(alpha[0])] * length
    for t in range(length - 2, -1, -1):
        # beta_t(a) = logsumexp_c (-P_t(a, c) - u_{t+1}(c) + beta_{t+1}(c))
        beta[t] = torch.logsumexp(-pair[:, t] + (-unary[:, t + 1] + beta[t + 1])[:, None, :], dim=2)
    log_z = torch.logsumexp(alpha[-1], dim=1)  # [B]
    # mu_t = exp(alpha_t + beta_t - log Z); normalising each position over K instead of by
    # log Z is the same in exact arithmetic and keeps float32 sums at 1 on long chains
    mu = torch.softmax(torch.stack(alpha, 1) + torch.stack(beta, 1), dim=2)  # [B, L, K]
    marginals = mu.transpose(1, 2).reshape(crf.shape)  # [B, K, H, W]
    return ChainResult(marginals=marginals, log_z=log_z)


def viterbi(crf: GridCRF) -> ViterbiResult:
    """The minimum-energy labelling of a chain (``1 x W`` or ``H x 1`` grid) by min-sum.

    .. math::

        \\delta_0(a) = u_0(a), \\quad
        \\delta_{t+1}(c) = u_{t+1}(c) + \\min_a [\\delta_t(a) + P_t(a, c)], \\quad
        \\psi_{t+1}(c) = \\arg\\min_a [\\delta_t(a) + P_t(a, c)]

    then ``y_{L-1} = argmin delta_{L-1}`` and ``y_t = psi_{t+1}(y_{t+1})`` backwards
    (Rabiner 1989, eqs. 30-35, with energies; ties go to the smallest label at each
    step). The chain conditions are those of :func:`forward_backward`. Cost O(B·L·K²).

    Returns
    -------
    ViterbiResult
        ``.map [B, H, W]`` int64 and ``.map_energy [B]`` (differentiable).
    """
    unary, pair = _chain(crf, "viterbi")  # [B, L, K], [B, L-1, K, K]
    b, length, k = unary.shape
    delta = unary[:, 0]  # [B, K]
    back = []
    for t in range(length - 1):
        # delta_{t+1}(c) = u_{t+1}(c) + min_a (delta_t(a) + P_t(a, c)); remember the argmin
        best, arg = (delta[:, :, None] + pair[:, t]).min(dim=1)  # [B, K] each
        delta = unary[:, t + 1] + best
        back.append(arg)
    energy, last = delta.min(dim=1)  # [B] each
    path = [last]
    for arg in reversed(back):
        path.append(arg.gather(1, path[-1][:, None])[:, 0])  # y_t = psi_{t+1}(y_{t+1})
    labels = torch.stack(path[::-1], dim=1).reshape(b, *crf.shape[2:])  # [B, H, W]
    return ViterbiResult(map=labels, map_energy=energy)
