"""Grid-structured conditional random fields: the model object that inference functions take.

A :class:`GridCRF` holds the potentials of a pairwise CRF on the pixel grid. Its
distribution over labellings ``y`` (one label in ``0..K-1`` per pixel) is

.. math::

    p(y \\mid x) = \\frac{\\exp(-E(y))}{Z}, \\qquad
    E(y) = \\sum_p \\psi_u(y_p) + \\sum_{e=1}^{E} \\sum_p \\psi^{e}_{p}(y_p, y_{p + o_e})

with one offset ``o_e = (dy, dx)`` per **edge class** ``e``: every pixel ``p`` whose
partner ``p + o_e`` lies on the grid is the *source* of one edge of class ``e``; an edge
whose partner falls off the grid does not exist. The table ``psi^e_p[k, k']`` is the
energy of label ``k`` at the source ``p`` and ``k'`` at the target ``p + o_e``, read at
the source pixel.

Pairwise tables are read by their number of dimensions (``shared/CONTRACT.md``):

* 2-D ``[K, K]``: one table for every edge (e.g. :func:`potts`);
* 3-D ``[E, K, K]``: one table per edge class / offset (Kirillov et al., 2016);
* 4-D to 6-D: broadcast from the right against ``[B, E, K, K, H, W]``, i.e. a table per
  edge, as a CNN predicts them (Lin et al., 2016).

This module only *describes* the model and evaluates its energy; algorithms on it are
functions in :mod:`crfkit.inference` (``exact``, ``forward_backward``, ``viterbi``,
``mean_field``).

References
----------
- D. Koller and N. Friedman, *Probabilistic Graphical Models*, MIT Press 2009, ch. 4.
- A. Kirillov, D. Schlesinger, S. Zheng, B. Savchynskyy, P. H. S. Torr, C. Rother,
  "Joint training of generic CNN-CRF models with stochastic optimization", ACCV 2016.
- G. Lin, C. Shen, A. van den Hengel, I. Reid, "Efficient piecewise training of deep
  structured models for semantic segmentation", CVPR 2016.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import torch

from crfkit._validate import check_batched, check_finite, check_tensor

__all__ = ["GridCRF", "potts", "FOUR_CONNECTED", "EIGHT_CONNECTED"]

#: The 4-connected grid: one right and one down edge per pixel (the default).
FOUR_CONNECTED = ((0, 1), (1, 0))
#: The 8-connected grid: right, down and both diagonals, each pixel pair once.
EIGHT_CONNECTED = ((0, 1), (1, 0), (1, 1), (1, -1))


def potts(num_labels: int, weight: float | torch.Tensor = 1.0, *, dtype=None, device=None) -> torch.Tensor:
    """The Potts compatibility table ``weight * (1 - I)``: a penalty for differing labels.

    Parameters
    ----------
    num_labels : int
        ``K``, the number of labels (at least 1).
    weight : float or 0-d Tensor
        Energy paid by every edge whose two labels differ. A tensor weight keeps its
        dtype and device and stays differentiable (learnable Potts weight).
    dtype, device : optional
        Of the table when ``weight`` is a float (default: torch's default float, CPU).

    Returns
    -------
    Tensor of shape ``[K, K]``
        ``table[k, k'] = weight`` if ``k != k'`` else ``0``.
    """
    k = operator.index(num_labels)
    if k < 1:
        raise ValueError(f"num_labels: expected an integer >= 1, got {num_labels}")
    if isinstance(weight, torch.Tensor):
        if weight.dim() != 0:
            raise ValueError(f"weight: expected a number or a 0-d tensor, got shape {list(weight.shape)}")
        check_finite("weight", weight)
        dtype = weight.dtype if dtype is None else dtype
        device = weight.device if device is None else device
    elif not torch.isfinite(torch.tensor(float(weight))):
        raise ValueError(f"weight: expected a finite number, got {weight}")
    differ = 1 - torch.eye(k, dtype=dtype, device=device)  # [K, K]
    return weight * differ


def _check_offsets(offsets) -> tuple[tuple[int, int], ...]:
    if isinstance(offsets, (str, bytes)) or not isinstance(offsets, Sequence):
        raise TypeError(f"offsets: expected a sequence of (dy, dx) integer pairs, got {type(offsets).__name__}")
    out = []
    for o in offsets:
        try:
            dy, dx = o
            pair = (operator.index(dy), operator.index(dx))
        except (TypeError, ValueError):
            raise TypeError(f"offsets: expected (dy, dx) pairs of integers, got {o!r}") from None
        if pair == (0, 0):
            raise ValueError("offsets: expected non-zero (dy, dx) offsets, got (0, 0) (a pixel is no neighbour of itself)")
        if pair in out:
            raise ValueError(f"offsets: expected distinct offsets, got {pair} twice")
        out.append(pair)
    if not out:
        raise ValueError("offsets: expected at least one (dy, dx) offset, got none")
    return tuple(out)


def edge_slices(height: int, width: int, offset: tuple[int, int]) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """The source and target pixel windows of the edges of one offset.

    For ``offset = (dy, dx)``, the edges are ``(i, j) -> (i + dy, j + dx)`` for every source
    ``(i, j)`` whose target lies on the ``H x W`` grid. Returns ``((rows, cols), (rows, cols))``
    for the sources and the targets, windows of equal size ``h' x w'`` with
    ``h' = max(H - |dy|, 0)``, ``w' = max(W - |dx|, 0)``, aligned so that ``source[a, b]`` and
    ``target[a, b]`` are the two ends of one edge.
    """
    dy, dx = offset
    h, w = max(height - abs(dy), 0), max(width - abs(dx), 0)
    r0, c0 = max(0, -dy), max(0, -dx)  # first source row / column
    src = (slice(r0, r0 + h), slice(c0, c0 + w))
    dst = (slice(r0 + dy, r0 + dy + h), slice(c0 + dx, c0 + dx + w))
    return src, dst


class GridCRF:
    """A pairwise CRF on the pixel grid, with energies ``E(y) = sum unary + sum pairwise``.

    Parameters
    ----------
    unary : Tensor of shape ``[B, K, H, W]``, float
        Unary energies ``psi_u`` (lower = more likely), e.g. ``-log`` of a network's softmax.
    pairwise : Tensor, float, same dtype and device as ``unary``
        Pairwise energies ``psi[k, k']`` (``k`` at the source ``p``, ``k'`` at ``p + offset``),
        read by their number of dimensions: ``[K, K]`` for every edge; ``[E, K, K]`` one per
        offset; 4-D to 6-D broadcast from the right against ``[B, E, K, K, H, W]`` (one per
        edge, read at its source pixel; entries at sources whose partner is off the grid are
        unused).
    offsets : sequence of ``(dy, dx)`` integer pairs
        One per edge class (``E = len(offsets)``); distinct, non-zero, may be negative.
        Default: the 4-connected grid ``((0, 1), (1, 0))``.

    Attributes
    ----------
    unary, pairwise : Tensor
        As given (not copied, never modified).
    offsets : tuple of ``(dy, dx)`` tuples
    num_labels : int
        ``K``.
    shape : torch.Size
        ``[B, K, H, W]``, the shape of ``unary`` (and of marginals).

    Raises
    ------
    TypeError, ValueError
        At construction, naming the argument, on: a unary that is not a 4-D floating tensor
        (an unbatched ``[K, H, W]`` is rejected), a pairwise whose dtype or device differs,
        whose label dimensions are not ``K``, whose ``E`` is not ``len(offsets)`` or that
        does not broadcast; NaN/inf anywhere; zero, duplicate or non-integer offsets.

    Examples
    --------
    >>> import torch, crfkit as ck
    >>> unary = torch.rand(1, 3, 4, 5)                     # [B, K, H, W]
    >>> crf = ck.GridCRF(unary, ck.potts(3, weight=0.5))  # 4-connected Potts model
    >>> crf.energy(torch.zeros(1, 4, 5, dtype=torch.long)).shape
    torch.Size([1])
    """

    def __init__(self, unary: torch.Tensor, pairwise: torch.Tensor, offsets=FOUR_CONNECTED):
        check_batched("unary", unary, "[B, K, H, W]", floating=True)
        check_finite("unary", unary)
        self.offsets = _check_offsets(offsets)
        b, k, h, w = unary.shape
        e = len(self.offsets)

        check_tensor("pairwise", pairwise, dims="[K, K], [E, K, K] or broadcastable to [B, E, K, K, H, W]")
        if not pairwise.is_floating_point():
            raise TypeError(f"pairwise: expected a floating-point tensor, got dtype {pairwise.dtype}")
        if pairwise.dtype != unary.dtype:
            raise TypeError(f"pairwise: expected dtype {unary.dtype} (that of unary), got {pairwise.dtype}")
        if pairwise.device != unary.device:
            raise ValueError(f"pairwise: expected device {unary.device} (that of unary), got {pairwise.device}")
        full = (b, e, k, k, h, w)
        if pairwise.dim() == 2:
            if tuple(pairwise.shape) != (k, k):
                raise ValueError(f"pairwise: expected a 2-D table of shape [K, K] = {[k, k]}, got {list(pairwise.shape)}")
        elif pairwise.dim() == 3:
            if tuple(pairwise.shape[1:]) != (k, k):
                raise ValueError(
                    f"pairwise: expected a 3-D table of shape [E, K, K] with K = {k}, got {list(pairwise.shape)}"
                )
            if pairwise.shape[0] != e:
                raise ValueError(
                    f"pairwise: expected E = len(offsets) = {e} tables in [E, K, K], got {pairwise.shape[0]} "
                    f"(shape {list(pairwise.shape)}, offsets {self.offsets})"
                )
        elif 4 <= pairwise.dim() <= 6:
            names = ("B", "E", "K", "K", "H", "W")[6 - pairwise.dim():]
            for name, want, got in zip(names, full[6 - pairwise.dim():], pairwise.shape):
                if got not in (1, want):
                    raise ValueError(
                        f"pairwise: expected a shape that broadcasts from the right against [B, E, K, K, H, W] = "
                        f"{list(full)}, got {list(pairwise.shape)} ({name} is {got}, expected 1 or {want})"
                    )
        else:
            raise ValueError(
                "pairwise: expected [K, K], [E, K, K] or a 4-D to 6-D tensor broadcastable to "
                f"[B, E, K, K, H, W] = {list(full)}, got shape {list(pairwise.shape)}"
            )
        check_finite("pairwise", pairwise)
        self.unary = unary
        self.pairwise = pairwise
        self.num_labels = k
        self.shape = unary.shape

    @classmethod
    def potts(cls, unary: torch.Tensor, weight: float | torch.Tensor = 1.0, offsets=FOUR_CONNECTED) -> "GridCRF":
        """A Potts model: every edge pays ``weight`` when its labels differ (see :func:`potts`)."""
        check_tensor("unary", unary, floating=True, dims="[B, K, H, W]")
        k = unary.shape[1] if unary.dim() == 4 else unary.shape[0]
        return cls(unary, potts(k, weight, dtype=unary.dtype, device=unary.device), offsets)

    def __repr__(self) -> str:
        return (
            f"GridCRF(shape={list(self.shape)}, pairwise={list(self.pairwise.shape)}, offsets={self.offsets}, "
            f"dtype={self.unary.dtype}, device={self.unary.device})"
        )

    # -- reading the tables ---------------------------------------------------------------

    @property
    def num_edge_classes(self) -> int:
        """``E = len(offsets)``."""
        return len(self.offsets)

    @property
    def spatially_constant(self) -> bool:
        """Whether every edge of a class has the same table for every image (2-D or 3-D pairwise)."""
        return self.pairwise.dim() <= 3

    def edge_table(self, e: int) -> torch.Tensor:
        """The tables of edge class ``e`` as a view of shape ``[B', K, K, H', W']``.

        ``B'``, ``H'``, ``W'`` are 1 where the pairwise is shared (a broadcastable view, no
        copy); ``table[b, k, k', i, j]`` is the energy of ``k`` at ``(i, j)`` and ``k'`` at
        ``(i, j) + offsets[e]``.
        """
        k, p = self.num_labels, self.pairwise
        if p.dim() == 2:
            t = p[None, :, :, None, None]  # [1, K, K, 1, 1]
        elif p.dim() == 3:
            t = p[e][None, :, :, None, None]  # [1, K, K, 1, 1]
        else:
            p6 = p.reshape((1,) * (6 - p.dim()) + tuple(p.shape))  # [B', E', K', K', H', W']
            t = p6[:, e if p6.shape[1] > 1 else 0]  # [B', K', K', H', W']
        return t.expand(t.shape[0], k, k, t.shape[3], t.shape[4])  # [B', K, K, H', W']

    def edge_tables(self) -> torch.Tensor:
        """Every edge's table, as a broadcast view of shape ``[B, E, K, K, H, W]`` (no copy).

        ``tables[b, e, k, k', i, j]`` is the energy of ``k`` at ``(i, j)`` and ``k'`` at
        ``(i, j) + offsets[e]``; entries whose partner is off the grid are unused.
        """
        b, k, h, w = self.shape
        e, p = self.num_edge_classes, self.pairwise
        if p.dim() == 2:
            view = p[None, None, :, :, None, None]  # [1, 1, K, K, 1, 1]
        elif p.dim() == 3:
            view = p[None, :, :, :, None, None]  # [1, E, K, K, 1, 1]
        else:
            view = p.reshape((1,) * (6 - p.dim()) + tuple(p.shape))  # [B', E', K', K', H', W']
        return view.expand(b, e, k, k, h, w)  # [B, E, K, K, H, W]

    def edge_slices(self, e: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """Source and target windows ``((rows, cols), (rows, cols))`` of edge class ``e``."""
        return edge_slices(self.shape[2], self.shape[3], self.offsets[e])

    def num_edges(self) -> int:
        """The number of edges of one image (edges off the grid do not count)."""
        h, w = self.shape[2:]
        return sum(max(h - abs(dy), 0) * max(w - abs(dx), 0) for dy, dx in self.offsets)

    # -- energy -----------------------------------------------------------------------------

    def energy(self, labels: torch.Tensor) -> torch.Tensor:
        """The energy ``E(y)`` of one labelling per image.

        .. math:: E(y) = \\sum_p \\psi_u(y_p) + \\sum_e \\sum_{p} \\psi^e_p(y_p, y_{p + o_e})

        Parameters
        ----------
        labels : Tensor of shape ``[B, H, W]``, int64
            A label in ``0..K-1`` for every pixel (the ignore value 255 is not allowed: an
            energy needs every pixel).

        Returns
        -------
        Tensor of shape ``[B]``
            Differentiable in ``unary`` and ``pairwise``. Cost O(B·(N + #edges)).
        """
        b, k, h, w = self.shape
        check_tensor("labels", labels, ndim=3, dtype=torch.int64, dims="[B, H, W]")
        if tuple(labels.shape) != (b, h, w):
            raise ValueError(f"labels: expected shape [B, H, W] = {[b, h, w]}, got {list(labels.shape)}")
        if labels.device != self.unary.device:
            raise ValueError(f"labels: expected device {self.unary.device} (that of unary), got {labels.device}")
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= k:
            hint = " (the ignore label 255 has no energy: give every pixel a label)" if hi == 255 else ""
            raise ValueError(f"labels: expected values in 0..{k - 1} (K = {k}), got range [{lo}, {hi}]{hint}")

        total = self.unary.gather(1, labels.unsqueeze(1)).flatten(1).sum(1)  # [B]
        for e in range(self.num_edge_classes):
            (sr, sc), (dr, dc) = self.edge_slices(e)
            y_src, y_dst = labels[:, sr, sc], labels[:, dr, dc]  # [B, h', w'] each
            if y_src.numel() == 0:
                continue
            table = self.edge_table(e)  # [B', K, K, H', W']
            bi = torch.arange(b, device=labels.device) if table.shape[0] > 1 else torch.zeros(b, dtype=torch.long, device=labels.device)
            rows = torch.arange(sr.start, sr.stop, device=labels.device) if table.shape[3] > 1 else torch.zeros(1, dtype=torch.long, device=labels.device)
            cols = torch.arange(sc.start, sc.stop, device=labels.device) if table.shape[4] > 1 else torch.zeros(1, dtype=torch.long, device=labels.device)
            picked = table[bi[:, None, None], y_src, y_dst, rows[None, :, None], cols[None, None, :]]  # [B, h', w']
            total = total + picked.flatten(1).sum(1)  # [B]
        return total
