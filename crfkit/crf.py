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

Pairwise tables are read by their number of dimensions (the conventions of :mod:`crfkit`):

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
import torch.nn.functional as F

from crfkit._validate import check_batched, check_finite, check_label_range, check_tensor

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


def check_offsets(offsets) -> tuple[tuple[int, int], ...]:
    """Return ``offsets`` as a tuple of ``(dy, dx)`` int pairs: distinct, non-zero, at least one; else raise."""
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
        self.offsets = check_offsets(offsets)
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

    def source_tables(self, e: int) -> torch.Tensor:
        """The tables of edge class ``e`` at its source window, ``[B', K, K, h' or 1, w' or 1]``.

        :meth:`edge_table` cropped to the sources of :meth:`edge_slices` (broadcast, size-1
        axes left alone), so that entry ``[..., a, c]`` is the table of the edge whose ends are
        ``source[a, c]`` and ``target[a, c]``.
        """
        (rows, cols), _ = self.edge_slices(e)
        table = self.edge_table(e)  # [B', K, K, H', W']
        if table.shape[-2] > 1:
            table = table[..., rows, :]
        if table.shape[-1] > 1:
            table = table[..., cols]
        return table  # [B', K, K, h' or 1, w' or 1]

    def place(self, values: torch.Tensor, window: tuple[slice, slice]) -> torch.Tensor:
        """Zero-pad ``values [B, C, h', w']`` on a window ``(rows, cols)`` back to ``[B, C, H, W]``.

        The inverse of ``x[:, :, rows, cols]``: what an algorithm computed per edge end (a
        message, a belief) goes back to its pixels.
        """
        rows, cols = window
        h, w = self.shape[2:]
        return F.pad(values, (cols.start, w - cols.stop, rows.start, h - rows.stop))  # [B, C, H, W]

    def colour_classes(self) -> list[torch.Tensor]:
        """Boolean masks ``[1, 1, H, W]`` of pixel classes that share no edge (a proper colouring).

        Every pixel is in exactly one class, and no edge joins two pixels of one class, so the
        pixels of a class can be updated at once given the rest (checkerboard mean field, parallel
        Gibbs sampling). If every offset has odd ``|dy| + |dx|`` (4-connectivity), the two
        checkerboard classes ``(i + j) mod 2``; otherwise the ``(m+1)(n+1)`` classes
        ``(i mod (m+1), j mod (n+1))`` with ``m = max |dy|`` and ``n = max |dx|``: two pixels of
        one class differ by a multiple of ``m+1`` rows and of ``n+1`` columns, so by no offset.
        """
        _, _, h, w = self.shape
        dev = self.unary.device
        i = torch.arange(h, device=dev)[:, None]  # [H, 1]
        j = torch.arange(w, device=dev)[None, :]  # [1, W]
        if all((abs(dy) + abs(dx)) % 2 == 1 for dy, dx in self.offsets):
            colour, n_colours = (i + j) % 2, 2  # [H, W]
        else:
            m = max(abs(dy) for dy, _ in self.offsets) + 1
            n = max(abs(dx) for _, dx in self.offsets) + 1
            colour, n_colours = (i % m) * n + (j % n), m * n  # [H, W]
        return [(colour == c)[None, None] for c in range(n_colours)]

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
        self._check_labels("labels", labels, (b, h, w), "[B, H, W]")
        return self._energies(labels[:, None])[:, 0]  # [B]

    def energies(self, labellings: torch.Tensor) -> torch.Tensor:
        """The energies of many labellings under every image of the batch.

        Parameters
        ----------
        labellings : Tensor of shape ``[S, H, W]``, int64
            ``S`` labellings (values in ``0..K-1``), e.g. samples or an enumeration.

        Returns
        -------
        Tensor of shape ``[B, S]``
            ``E_b(y_s)``: labelling ``s`` under the potentials of image ``b``. Differentiable in
            ``unary`` and ``pairwise``. Cost O(B·S·(N + #edges)) time and memory.
        """
        _, _, h, w = self.shape
        if isinstance(labellings, torch.Tensor) and labellings.dim() == 3 and labellings.shape[1:] != (h, w):
            raise ValueError(f"labellings: expected shape [S, H, W] = [S, {h}, {w}], got {list(labellings.shape)}")
        self._check_labels("labellings", labellings, None, "[S, H, W]")
        return self._energies(labellings[None])  # [B, S]

    def _check_labels(self, name: str, labels, shape, dims: str) -> None:
        check_tensor(name, labels, ndim=3, dtype=torch.int64, dims=dims)
        if shape is not None and tuple(labels.shape) != shape:
            raise ValueError(f"{name}: expected shape {dims} = {list(shape)}, got {list(labels.shape)}")
        if labels.device != self.unary.device:
            raise ValueError(f"{name}: expected device {self.unary.device} (that of unary), got {labels.device}")
        if labels.numel():
            check_label_range(name, labels, self.num_labels)

    def _energies(self, y: torch.Tensor) -> torch.Tensor:
        """``E`` of labellings ``y [B or 1, S, H, W]`` under each image: ``[B, S]`` (checked input)."""
        b, _, h, w = self.shape
        dev = y.device

        def index(n: int, size: int, window: slice | None = None) -> torch.Tensor:
            # indices into an axis of a table that is either full (size n) or broadcast (size 1)
            if size == 1:
                return torch.zeros(1, dtype=torch.long, device=dev)
            return torch.arange(n, device=dev) if window is None else torch.arange(window.start, window.stop, device=dev)

        bi = index(b, self.unary.shape[0])[:, None, None, None]  # [B, 1, 1, 1]
        rows, cols = index(h, h)[None, None, :, None], index(w, w)[None, None, None, :]
        total = self.unary[bi, y, rows, cols].flatten(2).sum(-1)  # [B, S]
        for e in range(self.num_edge_classes):
            (sr, sc), (dr, dc) = self.edge_slices(e)
            y_src, y_dst = y[..., sr, sc], y[..., dr, dc]  # [B or 1, S, h', w'] each
            if y_src.numel() == 0:
                continue  # no edge of this class on the grid
            table = self.edge_table(e)  # [B', K, K, H', W']
            bt = index(b, table.shape[0])[:, None, None, None]  # [B' , 1, 1, 1]
            rt = index(h, table.shape[3], sr)[None, None, :, None]  # [1, 1, h' or 1, 1]
            ct = index(w, table.shape[4], sc)[None, None, None, :]  # [1, 1, 1, w' or 1]
            picked = table[bt, y_src, y_dst, rt, ct]  # [B, S, h', w']
            total = total + picked.flatten(2).sum(-1)  # [B, S]
        return total.expand(b, -1) if total.shape[0] != b else total
