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

from crfkit._validate import check_choice, check_instance, check_int, check_probability, check_simplex, check_tensor
from crfkit.crf import GridCRF
from crfkit.dense import DenseCRF
from crfkit.filters import DenseMessages, scaled_terms

__all__ = ["mean_field", "mean_field_free_energy", "grid_messages", "dense_mean_field"]

#: The model types mean_field accepts.
ACCEPTED = (GridCRF, DenseCRF)
SCHEDULES = ("parallel", "checkerboard")


def _check_q(name: str, q, model) -> torch.Tensor:
    """``q`` must be probabilities ``[B, K, H, W]`` over ``K`` of the model's shape, dtype, device."""
    check_tensor(name, q, ndim=4, floating=True, dims="[B, K, H, W]")
    if q.shape != model.shape:
        raise ValueError(f"{name}: expected shape [B, K, H, W] = {list(model.shape)}, got {list(q.shape)}")
    if q.dtype != model.unary.dtype or q.device != model.unary.device:
        raise TypeError(
            f"{name}: expected dtype {model.unary.dtype} on {model.unary.device} (those of unary), "
            f"got {q.dtype} on {q.device}"
        )
    return check_simplex(name, q, dim=1)


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
        table = model.source_tables(e)  # [B', K, K, h' or 1, w' or 1]
        q_src, q_dst = q[:, :, sr, sc], q[:, :, dr, dc]  # [B, K, h', w'] each
        if model.spatially_constant:
            t = table[:, :, :, 0, 0]  # [1, K, K]
            to_src = torch.einsum("kl,blhw->bkhw", t[0], q_dst)  # sum_k' T[k, k'] Q_q(k')
            to_dst = torch.einsum("lk,blhw->bkhw", t[0], q_src)  # sum_k' T[k', k] Q_p(k')
        else:
            to_src = (table * q_dst[:, None, :, :, :]).sum(2)  # [B, K, h', w']
            to_dst = (table * q_src[:, :, None, :, :]).sum(1)  # [B, K, h', w']
        m = m + model.place(to_src, (sr, sc)) + model.place(to_dst, (dr, dc))  # [B, K, H, W]
    return m


def mean_field(
    model,
    iterations: int = 10,
    history: bool = False,
    damping: float = 0.0,
    init: torch.Tensor | None = None,
    schedule: str = "parallel",
    filter: str = "permutohedral",
    window: int = 11,
    blur: int = 1,
):
    """Naive mean-field marginals of a :class:`~crfkit.GridCRF` or a :class:`~crfkit.DenseCRF`.

    For a :class:`~crfkit.DenseCRF` see :func:`dense_mean_field` (``filter``, ``window`` and
    ``blur`` apply to it only; ``schedule`` must be ``"parallel"``). For a :class:`~crfkit.GridCRF`:

    Each iteration (one algorithm box; Koller & Friedman 2009, alg. 11.7):

    1. message passing + compatibility transform:
       ``m_p(k) = sum_{q ~ p} sum_k' psi_pq(k, k') Q_q(k')`` (:func:`grid_messages`);
    2. local update: ``a_p(k) = -unary_p(k) - m_p(k)``;
    3. normalise: ``Q_p = softmax(a_p)``;
    4. damp: ``Q <- (1 - damping) Q_new + damping Q_old``.

    Parameters
    ----------
    model : GridCRF or DenseCRF
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
    check_instance("model", model, ACCEPTED, "mean_field")
    check_int("iterations", iterations, minimum=0)
    damping = check_probability("damping", damping)
    check_choice("schedule", schedule, SCHEDULES)
    if isinstance(model, DenseCRF):
        if schedule != "parallel":
            raise ValueError(f"schedule: expected 'parallel' for a DenseCRF (every pixel is a neighbour), got {schedule!r}")
        return dense_mean_field(model, iterations, history, damping, init, filter, window, blur)
    q = torch.softmax(-model.unary, dim=1) if init is None else _check_q("init", init, model)  # [B, K, H, W]
    masks = model.colour_classes() if schedule == "checkerboard" else [None]
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


def mean_field_free_energy(model, q, filter: str = "permutohedral", window: int = 11,
                           blur: int = 1) -> torch.Tensor:
    """The variational free energy ``F(Q)`` of a product distribution, per image.

    For a :class:`~crfkit.GridCRF`:

    .. math::

        F(Q) = \\sum_p \\sum_k Q_p(k) \\psi_u(k)
             + \\sum_e \\sum_p \\sum_{k, k'} Q_p(k)\\, \\psi^e_p(k, k')\\, Q_{p + o_e}(k')
             + \\sum_p \\sum_k Q_p(k) \\log Q_p(k)
             = \\mathrm{KL}(Q \\,\\|\\, p) - \\log Z \\;\\ge\\; -\\log Z

    exact for ``Q(y) = prod_p Q_p(y_p)`` (``0 log 0 = 0``); equality iff ``Q = p``, which
    needs ``p`` to factorise. Mean-field updates minimise it.

    For a :class:`~crfkit.DenseCRF` the pairwise term is the one mean field actually uses:

    .. math::

        F(Q) = \\sum_i Q_i \\cdot \\psi_u(i) + \\tfrac12 \\sum_i Q_i \\cdot m_i(Q)
             + \\sum_i Q_i \\cdot \\log Q_i,

    with ``m_i(Q)`` the message of :func:`dense_mean_field` (each kernel's normalised filter of
    ``Q`` times its compatibility; the pixel itself included, as pydensecrf; Potts as
    ``-w Q~_i(k)``). ``F`` is quadratic in ``Q`` and (for a symmetric normalisation) its
    stationary points are exactly the fixed points of the mean-field update, so it is the
    curve to watch while iterating. With ``normalization="none"``, ``filter="exact"`` and
    Potts kernels it equals ``KL(Q || p) - log Z`` for :meth:`DenseCRF.energy`'s model minus
    ``sum_m (w_m / 2) (sum_{i != j} k_m(i, j) + sum_i Q_i . Q_i)`` (a constant and the self
    terms; tested). Parallel updates are not guaranteed to decrease it (Krähenbühl & Koltun
    2013 prove convergence for concave compatibilities).

    Parameters
    ----------
    model : GridCRF or DenseCRF
    q : Tensor ``[B, K, H, W]``, or a list of them
        Probabilities over ``K`` (e.g. the output of :func:`mean_field`, or its history). For
        a list, everything that depends only on the image (lattices) is built once.
    filter, window, blur
        The dense filter (as :func:`dense_mean_field`); ignored for a grid.

    Returns
    -------
    Tensor ``[B]`` (``[T, B]`` for a list of ``T``)
        Differentiable in ``q`` and the potentials. Cost O(B·E·N·K²) on a grid, that of one
        filter pass per ``Q`` on a dense CRF.
    """
    check_instance("model", model, ACCEPTED, "mean_field_free_energy")
    many = isinstance(q, (list, tuple))
    qs = list(q) if many else [q]
    if many and not qs:
        raise ValueError("q: expected a tensor [B, K, H, W] or a non-empty list of them, got an empty list")
    for t, qt in enumerate(qs):
        _check_q(f"q[{t}]" if many else "q", qt, model)
    if isinstance(model, DenseCRF):
        messages = DenseMessages(model, filter, window, blur)
        values = [_free_energy(model, qt, messages(qt)) for qt in qs]
    else:
        values = [_free_energy(model, qt, grid_messages(model, qt)) for qt in qs]
    return torch.stack(values) if many else values[0]


def _free_energy(model, q: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``<Q, unary> + <Q, m> / 2 + <Q, log Q>`` per image, from messages ``m [B, K, H, W]``."""
    unary = (q * model.unary).flatten(1).sum(1)  # [B]
    # every edge sends one message to each end, so <Q, m> counts each edge twice
    pairwise = 0.5 * (q * m).flatten(1).sum(1)  # [B]
    neg_entropy = torch.xlogy(q, q).flatten(1).sum(1)  # [B]
    return unary + pairwise + neg_entropy


# --------------------------------------------------------------------------------------------
# dense CRFs: message passing is Gaussian filtering
# --------------------------------------------------------------------------------------------


def dense_mean_field(
    model: DenseCRF,
    iterations: int = 10,
    history: bool = False,
    damping: float = 0.0,
    init: torch.Tensor | None = None,
    filter: str = "permutohedral",
    window: int = 11,
    blur: int = 1,
):
    """Mean field in a fully connected CRF (Krähenbühl & Koltun 2011, algorithm 1).

    ``Q^0 = softmax(-unary)``, then each iteration, for every pixel ``i`` and label ``k``:

    1. message passing: ``Q~^m_i(k) = sum_j k~^m(f_i, f_j) Q_j(k)``, each kernel's normalised
       Gaussian filter of ``Q`` (:func:`crfkit.filters.dense_filters`; the sum includes ``j = i``);
    2. compatibility transform: ``m_i(k) = sum_m sum_k' w^m mu^m(k, k') Q~^m_i(k')``
       (Potts is applied as pydensecrf does, ``-w Q~_i(k)``: it differs from
       ``w sum_{k' != k} Q~_i(k')`` by a constant per pixel, which step 4 removes);
    3. local update: ``a_i(k) = -unary_i(k) - m_i(k)``;
    4. normalise: ``Q_i = softmax(a_i)``; then damp ``Q <- (1 - damping) Q + damping Q_old``.

    This is pydensecrf's ``DenseCRF::inference(iterations)`` (same initial ``Q``, same number
    of updates, same normalisations and self term), so with ``filter="permutohedral"`` and
    matched settings the two agree up to float rounding. ``filter="exact"`` computes the
    exact Gaussian sums instead: with a normalisation other than ``"none"`` (invariant to the
    lattice's overall scale) it differs from the permutohedral result only by the lattice's
    approximation error (``tests/test_dense.py`` states the bound); with ``"none"`` the two
    differ by the lattice's scale as well (0.15-1, see :mod:`crfkit.permutohedral`).
    ``filter="conv"`` truncates the kernels to a ``window x window`` square: exact for the
    spatial kernel when ``window >> sxy``, a different model for a bilateral ``sxy = 80``.

    When no gradient is needed (under ``torch.no_grad()``, or when nothing the model holds
    requires grad), ``filter="permutohedral"`` runs a fused loop: each kernel's normalisation
    and Potts weight are folded into its lattice's splat and slice matrices, the slice adds
    straight into the logits, and every ``[N, K]`` buffer is allocated once. It computes the
    same values (``tests/test_dense.py`` checks 1e-12 in float64) at about half the cost per
    iteration; ``benchmarks/dense_crf.py`` times it against pydensecrf.

    Parameters
    ----------
    model : DenseCRF
    iterations : int
        Number of updates (pydensecrf's ``inference(iterations)``).
    history : bool
        Also return the list of ``Q [B, K, H, W]`` after each iteration.
    damping : float in ``[0, 1)``
    init : Tensor ``[B, K, H, W]``, optional
        Starting ``Q``; default ``softmax(-unary)``.
    filter : ``"permutohedral"`` | ``"exact"`` | ``"conv"``
    window : odd int
        ConvCRF's window size (``filter="conv"`` only).
    blur : int
        ConvCRF's downsampling factor (``filter="conv"`` only): messages are computed between
        ``blur x blur`` block averages and upsampled bilinearly (see
        :func:`crfkit.filters.dense_filters`).

    Returns
    -------
    Tensor ``[B, K, H, W]``, or ``(Tensor, list of Tensor)`` if ``history``
        Differentiable in ``unary``, ``init`` and tensor kernel weights / compat. Cost per
        iteration: that of the filters (see :func:`crfkit.filters.dense_filters`) plus O(N K^2) for a
        compat matrix (O(N K) for Potts).
    """
    check_instance("model", model, DenseCRF, "dense_mean_field")
    check_int("iterations", iterations, minimum=0)
    damping = check_probability("damping", damping)
    b, k, h, w = model.shape
    n = h * w
    if init is not None:
        init = _check_q("init", init, model)
    if blur == 1 and _fused_applies(model, filter, init):  # (dense_filters refuses blur != 1 off "conv")
        return _fused_dense_mean_field(model, iterations, history, damping, init)
    messages = DenseMessages(model, filter, window, blur)  # lattices etc. built once, reused below
    neg_unary = -model.unary.reshape(b, k, n).transpose(1, 2).contiguous()  # [B, N, K], labels innermost
    if init is None:
        q = torch.softmax(neg_unary, dim=-1)  # [B, N, K]
    else:
        q = init.reshape(b, k, n).transpose(1, 2)  # [B, N, K]
    trace = []
    for _ in range(iterations):
        # 1.-3. message passing, compatibility transform, local update a = -unary - m
        a = neg_unary - messages.points(q)  # [B, N, K]
        # 4. normalise over labels (and damp)
        q_new = torch.softmax(a, dim=-1)  # [B, N, K]
        q = (1 - damping) * q_new + damping * q if damping else q_new
        if history:
            trace.append(messages.to_grid(q).contiguous())
    # contiguous: a labels-innermost view breaks the backward of some losses (nll_loss2d's
    # "grad_input must be contiguous"); the copy costs one pass over [B, K, H, W]
    out = messages.to_grid(q).contiguous()
    return (out, trace) if history else out


# --------------------------------------------------------------------------------------------
# the fused inference path: same arithmetic, no autograd, no temporaries
# --------------------------------------------------------------------------------------------


def _requires_grad(x) -> bool:
    return isinstance(x, torch.Tensor) and x.requires_grad


def _fused_applies(model: DenseCRF, filter: str, init) -> bool:
    """The fused loop runs for the permutohedral filter whenever no gradient is asked for."""
    if filter != "permutohedral":
        return False
    if not torch.is_grad_enabled():
        return True
    leaves = [model.unary, model.image, init] + [
        t for kern in model.kernels for t in (kern.weight, kern.compat, kern.sxy, getattr(kern, "srgb", None))]
    return not any(_requires_grad(t) for t in leaves)


def _softmax_into(a: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = softmax(a)`` over the last dimension, written into ``out`` (no new allocation)."""
    try:
        return torch._softmax(a, -1, False, out=out)  # the out= form of torch.softmax
    except (AttributeError, TypeError, RuntimeError):  # pragma: no cover - older/newer torch
        return out.copy_(torch.softmax(a, -1))


def _fused_dense_mean_field(model: DenseCRF, iterations: int, history: bool, damping: float, init):
    """:func:`dense_mean_field` with ``filter="permutohedral"`` and no autograd, as pydensecrf
    computes it: every ``[B N, K]`` buffer is allocated once; each kernel's normalisation and
    Potts weight are folded into its lattice's splat and slice matrices
    (:class:`~crfkit.permutohedral.ScaledFilter`), and its slice adds straight into the
    logits. Same values as the autograd path up to float rounding (tested)."""
    b, k, h, w = model.shape
    n = h * w
    with torch.no_grad():
        # always a new buffer (a labels-innermost unary would make a reshape a view of the user's tensor)
        neg_unary = torch.empty(b * n, k, dtype=model.unary.dtype, device=model.unary.device)  # [B N, K]
        neg_unary.view(b, n, k).copy_(model.unary.reshape(b, k, n).transpose(1, 2)).neg_()
        terms = scaled_terms(model)  # one lattice per kernel, normalisation and Potts weight folded in
        if init is None:
            q = torch.softmax(neg_unary, dim=-1)  # [B N, K]
        else:
            q = init.reshape(b, k, n).transpose(1, 2).reshape(b * n, k).contiguous()  # [B N, K]
        a = torch.empty_like(neg_unary)  # logits, [B N, K]
        filtered = torch.empty_like(neg_unary) if any(t.compat is not None for t in terms) else None
        q_new = torch.empty_like(neg_unary) if damping else q
        trace = []

        def to_grid(values):  # [B N, K] -> [B, K, H, W]
            return values.reshape(b, n, k).transpose(1, 2).reshape(b, k, h, w)

        for _ in range(iterations):
            base = neg_unary  # the first term writes -unary + its message into a
            for term in terms:
                if term.compat is None:  # Potts: a = base + w post raw(pre Q)
                    term.filter.accumulate(q, a, alpha=term.potts_weight, base=base)
                else:  # a = base - (post raw(pre Q)) @ (w mu)
                    term.filter.into(q, filtered)
                    torch.addmm(base, filtered, term.compat, alpha=-1, out=a)
                base = a
            if base is neg_unary:  # no kernels
                a.copy_(neg_unary)
            _softmax_into(a, q_new)
            if damping:
                q.mul_(damping).add_(q_new, alpha=1 - damping)
            if history:
                trace.append(to_grid(q).clone())
        out = to_grid(q)  # a view with the labels innermost (argmax over them is fast)
    return (out, trace) if history else out
