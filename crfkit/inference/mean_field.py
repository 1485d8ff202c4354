"""Naive mean field: the best fully factorised approximation ``Q(y) = prod_p Q_p(y_p)``.

Mean field minimises the variational free energy over product distributions,

.. math::

    F(Q) = \\mathbb{E}_Q[E(y)] - H(Q) = \\mathrm{KL}(Q \\,\\|\\, p) - \\log Z \\;\\ge\\; -\\log Z,

by setting each factor to its optimum given the others (Koller & Friedman 2009, eq. 11.54):

.. math::

    Q_p(k) \\propto \\exp\\Big(-\\psi_u(k) - \\sum_{q \\sim p} \\sum_{k'} \\psi_{pq}(k, k')\\, Q_q(k')\\Big).

On a :class:`~crfkit.GridCRF` an edge ``(p, q = p + o_e)`` with table ``T = psi^e_p`` (read
at its source ``p``) sends ``sum_k' T[k, k'] Q_q(k')`` to ``p`` (a row of the table) and
``sum_k' T[k', k] Q_p(k')`` to ``q`` (a column). With ``schedule="parallel"`` every pixel is
updated at once from the previous ``Q`` (as in CRF-as-RNN; fast, but not guaranteed to
decrease ``F``, damping helps); with ``schedule="checkerboard"`` the pixels are updated one
colour class at a time, pixels of one class sharing no edge, so each step is an exact
block-coordinate minimisation of ``F`` and ``F`` never increases.

References
----------
- D. Koller and N. Friedman, *Probabilistic Graphical Models*, MIT Press 2009, §11.5.
- M. J. Wainwright and M. I. Jordan, "Graphical models, exponential families, and
  variational inference", Found. Trends Mach. Learn. 1(1-2), 2008, §5.
- S. Zheng et al., "Conditional random fields as recurrent neural networks", ICCV 2015.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from crfkit._validate import check_finite, check_tensor
from crfkit.crf import GridCRF

__all__ = ["mean_field", "mean_field_free_energy", "grid_messages"]

#: The model types mean_field accepts (DenseCRF joins when it lands).
ACCEPTED = (GridCRF,)
SCHEDULES = ("parallel", "checkerboard")


def _check_model(model, fn: str):
    if not isinstance(model, ACCEPTED):
        names = " or ".join(f"crfkit.{t.__name__}" for t in ACCEPTED)
        raise TypeError(f"model: {fn} expects a {names}, got {type(model).__name__}")
    return model


def _check_q(name: str, q, model: GridCRF) -> torch.Tensor:
    check_tensor(name, q, ndim=4, floating=True, dims="[B, K, H, W]")
    if q.shape != model.shape:
        raise ValueError(f"{name}: expected shape [B, K, H, W] = {list(model.shape)}, got {list(q.shape)}")
    if q.dtype != model.unary.dtype or q.device != model.unary.device:
        raise TypeError(
            f"{name}: expected dtype {model.unary.dtype} on {model.unary.device} (those of unary), "
            f"got {q.dtype} on {q.device}"
        )
    check_finite(name, q)
    values = q.detach()
    if float(values.min()) < 0:
        raise ValueError(f"{name}: expected probabilities >= 0, got a minimum of {float(values.min()):.3g}")
    worst = float((values.sum(1) - 1).abs().max())
    if worst > 1e-4:
        raise ValueError(f"{name}: expected probabilities that sum to 1 over dimension 1 (K), off by {worst:.3g}")
    return q


def _place(x: torch.Tensor, rows: slice, cols: slice, height: int, width: int) -> torch.Tensor:
    """Zero-pad a window ``[B, K, h', w']`` back to its place on the ``H x W`` grid."""
    return F.pad(x, (cols.start, width - cols.stop, rows.start, height - rows.stop))  # [B, K, H, W]


def _crop(table: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
    """The window of a ``[B', K, K, H', W']`` table, leaving broadcast (size-1) axes alone."""
    if table.shape[-2] > 1:
        table = table[..., rows, :]
    if table.shape[-1] > 1:
        table = table[..., cols]
    return table


def grid_messages(model: GridCRF, q: torch.Tensor) -> torch.Tensor:
    """Mean-field messages of a :class:`~crfkit.GridCRF`: the expected pairwise energy of each label.

    .. math::

        m_p(k) = \\sum_e \\Big[\\sum_{k'} \\psi^e_p(k, k')\\, Q_{p + o_e}(k')
                 + \\sum_{k'} \\psi^e_{p - o_e}(k', k)\\, Q_{p - o_e}(k')\\Big]

    (terms whose partner is off the grid are absent). This is message passing and the
    compatibility transform of the mean-field update in one step. ``q [B, K, H, W]`` →
    ``[B, K, H, W]``; cost O(B·E·N·K²).
    """
    b, k, h, w = model.shape
    m = torch.zeros_like(q)  # [B, K, H, W]
    for e in range(model.num_edge_classes):
        (sr, sc), (dr, dc) = model.edge_slices(e)
        if sr.stop <= sr.start or sc.stop <= sc.start:
            continue  # no edge of this class on the grid
        table = _crop(model.edge_table(e), sr, sc)  # [B', K, K, h' or 1, w' or 1]
        q_src, q_dst = q[:, :, sr, sc], q[:, :, dr, dc]  # [B, K, h', w'] each
        if model.spatially_constant:
            t = table[:, :, :, 0, 0]  # [1, K, K]
            to_src = torch.einsum("kl,blhw->bkhw", t[0], q_dst)  # sum_k' T[k, k'] Q_q(k')
            to_dst = torch.einsum("lk,blhw->bkhw", t[0], q_src)  # sum_k' T[k', k] Q_p(k')
        else:
            to_src = (table * q_dst[:, None, :, :, :]).sum(2)  # [B, K, h', w']
            to_dst = (table * q_src[:, :, None, :, :]).sum(1)  # [B, K, h', w']
        m = m + _place(to_src, sr, sc, h, w) + _place(to_dst, dr, dc, h, w)
    return m


def _colouring(model: GridCRF) -> list[torch.Tensor]:
    """Masks ``[1, 1, H, W]`` of pixel classes that share no edge (a proper colouring of the grid).

    If every offset has odd ``|dy| + |dx|`` (4-connectivity), the two checkerboard classes
    ``(i + j) mod 2``; otherwise the ``(m+1)(n+1)`` classes ``(i mod (m+1), j mod (n+1))`` with
    ``m = max |dy|`` and ``n = max |dx|``: two pixels of one class differ by a multiple of
    ``m+1`` rows and of ``n+1`` columns, so by no offset.
    """
    _, _, h, w = model.shape
    dev = model.unary.device
    i = torch.arange(h, device=dev)[:, None]  # [H, 1]
    j = torch.arange(w, device=dev)[None, :]  # [1, W]
    if all((abs(dy) + abs(dx)) % 2 == 1 for dy, dx in model.offsets):
        colour, n_colours = (i + j) % 2, 2  # [H, W]
    else:
        m = max(abs(dy) for dy, _ in model.offsets) + 1
        n = max(abs(dx) for _, dx in model.offsets) + 1
        colour, n_colours = (i % m) * n + (j % n), m * n  # [H, W]
    return [(colour == c)[None, None] for c in range(n_colours)]


def mean_field(
    model,
    iterations: int = 10,
    history: bool = False,
    damping: float = 0.0,
    init: torch.Tensor | None = None,
    schedule: str = "parallel",
):
    """Naive mean-field marginals of a :class:`~crfkit.GridCRF`.

    Each iteration (one algorithm box; Koller & Friedman 2009, alg. 11.7):

    1. message passing + compatibility transform:
       ``m_p(k) = sum_{q ~ p} sum_k' psi_pq(k, k') Q_q(k')`` (:func:`grid_messages`);
    2. local update: ``a_p(k) = -unary_p(k) - m_p(k)``;
    3. normalise: ``Q_p = softmax(a_p)``;
    4. damp: ``Q <- (1 - damping) Q_new + damping Q_old``.

    Parameters
    ----------
    model : GridCRF
        The model (``unary [B, K, H, W]``). Anything else is a ``TypeError``.
    iterations : int
        Number of updates (>= 0). With ``schedule="checkerboard"`` one iteration updates
        every colour class once, in turn.
    history : bool
        Also return the list of ``Q`` after each iteration.
    damping : float
        In ``[0, 1)``; 0 is the plain update.
    init : Tensor ``[B, K, H, W]``, optional
        Starting ``Q`` (probabilities over ``K``); default ``softmax(-unary)``.
    schedule : ``"parallel"`` or ``"checkerboard"``
        Update every pixel at once (default), or one class of a colouring of the grid at a
        time (pixels of a class share no edge; two classes for 4-connectivity), which never
        increases :func:`mean_field_free_energy`.

    Returns
    -------
    Tensor ``[B, K, H, W]``, or ``(Tensor, list of Tensor)`` if ``history``
        The marginals ``Q`` (sum to 1 over ``K``), and with ``history`` the list of length
        ``iterations`` whose entry ``t`` is ``Q`` after ``t + 1`` iterations (the last one is
        the marginals). Differentiable in ``unary``, ``pairwise`` and ``init``. Cost
        O(iterations·B·E·N·K²).
    """
    _check_model(model, "mean_field")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise ValueError(f"iterations: expected an integer >= 0, got {iterations!r}")
    if not 0.0 <= float(damping) < 1.0:
        raise ValueError(f"damping: expected a value in [0, 1), got {damping}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: expected one of {SCHEDULES}, got {schedule!r}")
    q = torch.softmax(-model.unary, dim=1) if init is None else _check_q("init", init, model)  # [B, K, H, W]
    masks = _colouring(model) if schedule == "checkerboard" else [None]
    trace = []
    for _ in range(iterations):
        for mask in masks:
            # 1. message passing + compatibility transform: m_p(k) = sum_q sum_k' psi(k, k') Q_q(k')
            m = grid_messages(model, q)  # [B, K, H, W]
            # 2. local update: add the unary energies
            a = -model.unary - m  # [B, K, H, W]
            # 3. normalise over labels
            q_new = torch.softmax(a, dim=1)  # [B, K, H, W]
            # 4. damp, and (checkerboard) keep the pixels outside this colour class
            q_new = (1 - damping) * q_new + damping * q if damping else q_new
            q = q_new if mask is None else torch.where(mask, q_new, q)
        trace.append(q)
    return (q, trace) if history else q


def mean_field_free_energy(model, q: torch.Tensor) -> torch.Tensor:
    """The variational free energy ``F(Q)`` of a product distribution, per image.

    .. math::

        F(Q) = \\sum_p \\sum_k Q_p(k) \\psi_u(k)
             + \\sum_e \\sum_p \\sum_{k, k'} Q_p(k)\\, \\psi^e_p(k, k')\\, Q_{p + o_e}(k')
             + \\sum_p \\sum_k Q_p(k) \\log Q_p(k)
             = \\mathrm{KL}(Q \\,\\|\\, p) - \\log Z \\;\\ge\\; -\\log Z

    exact for ``Q(y) = prod_p Q_p(y_p)`` (``0 log 0 = 0``); equality iff ``Q = p``, which
    needs ``p`` to factorise. Mean-field updates minimise it.

    Parameters
    ----------
    model : GridCRF
    q : Tensor ``[B, K, H, W]``
        Probabilities over ``K`` (e.g. the output of :func:`mean_field`).

    Returns
    -------
    Tensor ``[B]``
        Differentiable in ``q`` and the potentials. Cost O(B·E·N·K²).
    """
    _check_model(model, "mean_field_free_energy")
    _check_q("q", q, model)
    unary = (q * model.unary).flatten(1).sum(1)  # [B]
    # every edge sends one message to each end, so <Q, m> counts each edge twice
    pairwise = 0.5 * (q * grid_messages(model, q)).flatten(1).sum(1)  # [B]
    neg_entropy = torch.xlogy(q, q).flatten(1).sum(1)  # [B]
    return unary + pairwise + neg_entropy
