"""The permutohedral lattice: fast high-dimensional Gaussian filtering in pure torch.

A dense CRF's mean-field update needs, for every pixel i and every label, the Gaussian sum

    out_i = sum_j exp(-|f_i - f_j|^2 / 2) v_j                                        (1)

over all pixels j, where ``f`` are the pixel's features already divided by the kernel's
standard deviations (``d = 2``: ``(x, y) / sxy``; ``d = 5``: ``(x / sxy, y / sxy, r / srgb,
g / srgb, b / srgb)``) and ``v`` are the ``C`` values being filtered (one per label). Done
exactly, (1) costs O(N^2 C): :func:`gaussian_filter_exact` is that oracle, for tests and small
point sets.

The permutohedral lattice (Adams, Baek & Davis 2010) approximates (1) in O(N d C):

1. **Lattice.** Each d-dimensional feature is scaled and *elevated* onto the hyperplane
   ``H_d = {x in R^(d+1) : sum x = 0}``. The lattice is the set of integer points of H_d whose
   coordinates are all congruent mod ``d + 1``; it tiles H_d into identical simplices. The
   simplex holding a point is found from its nearest *remainder-0* lattice point (round every
   coordinate to a multiple of ``d + 1``) and the *rank* (sorted order) of the d+1 residual
   coordinates; its ``d + 1`` vertices follow from the rank, and the point's barycentric
   coordinates in that simplex are differences of its sorted residuals.
2. **Splat.** Each point's value is spread onto the ``d + 1`` vertices of its simplex with its
   barycentric weights: lattice values ``L = P v`` with a sparse ``[M, N]`` matrix ``P``.
3. **Blur.** Along each of the ``d + 1`` lattice directions in turn, every vertex is replaced
   by ``[1/2, 1, 1/2]`` times (previous neighbour, itself, next neighbour) (the ``[1, 2, 1] / 4``
   kernel of the paper, scaled by 2 as in the C++ code): d+1 gathers of the two neighbours.
4. **Slice.** Each point reads back the barycentric interpolation of its simplex's vertices:
   ``out = alpha * P^T L`` with ``alpha = 1 / (1 + 2^-d)``.

The features are scaled as in the paper (p. 5-6) and in Krähenbühl's ``permutohedral.cpp``
(the code behind pydensecrf): coordinate ``k`` (0-based) is multiplied by
``sqrt(2/3) (d + 1) / sqrt((k + 1)(k + 2))`` before elevation, so that the blur has standard
deviation about 1 in feature units. With the blur weights and ``alpha`` above, :meth:`filter`
returns what pydensecrf's ``Permutohedral::compute`` returns for the same features (up to
float rounding and the tie-breaking of points exactly on a simplex boundary). That output is
a *scaled and slightly blurred* version of (1), not (1) itself: measured against
:func:`gaussian_filter_exact`, ``filter(1) / exact(1)`` lies between about 0.8 and 1.0 for
d = 2 and between about 0.15 and 0.8 for d = 5 (lowest for isolated points). This is
harmless because the dense CRF always normalises it (pydensecrf's normalisations are
invariant to the filter's scale; see ``filter(v) / filter(1)``). The sum **includes the point
itself** (with a weight that is not exactly 1: it is spread over the simplex and blurred).
Normalised, ``filter(v) / filter(1)`` matches ``exact(v) / exact(1)`` to a mean absolute
error of about 0.1-0.6 % of the value range on image features, with worst points at a few
per cent (d = 2) and up to about 20-30 % (d = 5, points with no close neighbour in feature
space); ``tests/test_permutohedral.py`` asserts these bounds.

Costs: building the lattice is O(N d^2) arithmetic plus a hash of the N (d + 1) vertex keys
(a vectorised open-addressing hash table) and one int32 sort that groups the splat matrix
by vertex; one :meth:`PermutohedralLattice.filter` call is
O(N d C) (two sparse products with N (d + 1) non-zeros and d + 1 blur passes over the M <=
N (d + 1) vertices). Build the lattice **once per image** and call ``filter`` as often as
needed: mean field filters a new values tensor every iteration with the same lattice.

Batches are one lattice: each batch element's vertices are distinct (the batch index is part
of the vertex key), so splat and slice are block-diagonal sparse matrices over all ``B N``
points and one call filters the whole batch.

References
----------
A. Adams, J. Baek, M. A. Davis. "Fast High-Dimensional Filtering Using the Permutohedral
Lattice." Computer Graphics Forum (Eurographics) 29(2), 2010.
P. Krähenbühl, V. Koltun. "Efficient Inference in Fully Connected CRFs with Gaussian Edge
Potentials." NIPS 2011 (the C++ code: https://github.com/lucasb-eyer/pydensecrf).
"""

from __future__ import annotations

import math
import warnings

import torch

from crfkit._validate import check_finite, check_tensor

__all__ = ["PermutohedralLattice", "ScaledFilter", "lattice", "permutohedral_filter", "gaussian_filter_exact"]


# --------------------------------------------------------------------------------------------
# the oracle
# --------------------------------------------------------------------------------------------


def gaussian_filter_exact(
    features: torch.Tensor, values: torch.Tensor, include_self: bool = True
) -> torch.Tensor:
    """The exact Gaussian filter (1): ``out_i = sum_j exp(-|f_i - f_j|^2 / 2) v_j``.

    O(N^2 (d + C)) time, computed in row chunks so that memory stays O(N · chunk): fine for a
    few thousand points. Differentiable with respect to ``features`` and ``values``.

    Parameters
    ----------
    features : tensor of shape ``[B, N, d]``, floating
        Features already divided by the kernel's standard deviations.
    values : tensor of shape ``[B, N, C]``, same dtype and device as ``features``
    include_self : bool, default True
        If False, the term ``j = i`` (weight exactly 1) is left out of the sum.

    Returns
    -------
    tensor of shape ``[B, N, C]``
    """
    _check_features(features)
    _check_values(values, features.shape[0], features.shape[1], features.dtype, features.device)
    b, n, _ = features.shape
    chunk = max(1, min(n, 4_000_000 // max(n, 1)))
    sq = (features * features).sum(-1)  # [B, N]
    outs = []
    for start in range(0, n, chunk):
        fi = features[:, start : start + chunk]  # [B, n_i, d]
        # |f_i - f_j|^2 = |f_i|^2 + |f_j|^2 - 2 f_i.f_j, clamped against rounding below 0
        dist2 = sq[:, start : start + chunk, None] + sq[:, None, :] - 2 * fi @ features.transpose(1, 2)
        weights = torch.exp(-0.5 * dist2.clamp_min(0))  # [B, n_i, N]
        if not include_self:
            rows = torch.arange(fi.shape[1], device=features.device)
            weights = weights.clone()
            weights[:, rows, rows + start] = 0
        outs.append(weights @ values)  # [B, n_i, C]
    return torch.cat(outs, dim=1)  # [B, N, C]


# --------------------------------------------------------------------------------------------
# the lattice
# --------------------------------------------------------------------------------------------

_EMPTY = -1
#: Simplex keys (packed remainder-0 point times (d + 1)^d plus the ranks) must stay below this;
#: wider lattices hash every point's vertices directly (same result, slower).
_SIMPLEX_KEY_LIMIT = 2**62
_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64 (Fibonacci hashing)


class PermutohedralLattice:
    """The permutohedral lattice of a batch of point sets, built once, filtered many times.

    Parameters
    ----------
    features : tensor of shape ``[B, N, d]``, floating, finite
        Features already divided by the kernel's standard deviations (pixel positions by
        ``sxy``, colours in 0..255 by ``srgb``). The lattice lives on their device and in
        their dtype.

    Attributes
    ----------
    batch_size, num_points, dim : int
        ``B``, ``N`` and ``d``.
    num_vertices : int
        ``M``, the number of lattice vertices touched, over the whole batch.
    splat_matrix : sparse CSR tensor of shape ``[M, B N]``
        Barycentric weights (``P`` in the module docstring).
    slice_matrix : sparse CSR tensor of shape ``[B N, M]``
        Its transpose, times ``alpha = 1 / (1 + 2^-d)``.
    neighbours : int64 tensor of shape ``[d + 1, 2, M]``
        For each lattice direction, the previous and next vertex of every vertex along it;
        ``M`` (one past the last vertex) where that neighbour is not in the lattice.

    Examples
    --------
    >>> lat = PermutohedralLattice(features)          # features [B, N, d]
    >>> out = lat.filter(values)                      # values [B, N, C] -> [B, N, C]
    >>> normalised = out / lat.filter(torch.ones_like(values[..., :1]))
    """

    def __init__(self, features: torch.Tensor) -> None:
        _check_features(features)
        self.batch_size, self.num_points, self.dim = features.shape
        self.dtype = features.dtype
        self.device = features.device
        self.alpha = 1.0 / (1.0 + 2.0 ** (-self.dim))
        ids, bary, self.neighbours = _build(features.detach())
        self.num_vertices = int(self.neighbours.shape[-1])
        self.splat_matrix, self.slice_matrix = _sparse_matrices(
            ids, bary, self.num_vertices, self.alpha
        )

    def __repr__(self) -> str:
        return (
            f"PermutohedralLattice(B={self.batch_size}, N={self.num_points}, d={self.dim}, "
            f"vertices={self.num_vertices}, dtype={self.dtype}, device={self.device})"
        )

    # the three steps, exposed for teaching -------------------------------------------------

    def splat(self, values: torch.Tensor) -> torch.Tensor:
        """Spread ``values [B, N, C]`` onto the lattice: ``[M, C]`` vertex values."""
        values = self._check(values)
        flat = values.reshape(-1, values.shape[-1])  # [B N, C]
        return _SparseProduct.apply(flat, self.splat_matrix, self.slice_matrix, 1.0 / self.alpha)

    def blur(self, lattice_values: torch.Tensor, reverse: bool = False) -> torch.Tensor:
        """Blur ``[M, C]`` vertex values along the d + 1 lattice directions (in reverse order
        if ``reverse``, which is the transpose of the forward blur)."""
        return _Blur.apply(lattice_values, self.neighbours, reverse)

    def slice(self, lattice_values: torch.Tensor) -> torch.Tensor:
        """Read ``[M, C]`` vertex values back at the points: ``[B, N, C]`` (times alpha)."""
        out = _SparseProduct.apply(lattice_values, self.slice_matrix, self.splat_matrix, self.alpha)
        return out.reshape(self.batch_size, self.num_points, -1)  # [B, N, C]

    def filter(self, values: torch.Tensor) -> torch.Tensor:
        """Approximate Gaussian filter (1) of ``values [B, N, C]``: slice(blur(splat(values))).

        Equals pydensecrf's ``Permutohedral::compute`` on the same features (the C++ scale and
        ``alpha``); the point itself is included. Differentiable with respect to ``values``
        (the backward pass is the same filter with the blur directions reversed), not with
        respect to the features. O(N d C).
        """
        values = self._check(values)
        return _Filter.apply(values, self, False)

    def _check(self, values: torch.Tensor) -> torch.Tensor:
        _check_values(values, self.batch_size, self.num_points, self.dtype, self.device)
        return values

    def scaled(self, pre: torch.Tensor | None = None, post: torch.Tensor | None = None) -> ScaledFilter:
        """The filter ``v -> post * filter(pre * v)`` with the per-point factors folded into the
        splat and slice matrices (built once, O(N d)); see :class:`ScaledFilter`.

        ``pre`` and ``post`` are ``[B, N, 1]`` (or ``[B, N]``) tensors of this lattice's dtype and
        device, or None for 1. Not differentiable (a fast path for inference).
        """
        return ScaledFilter(self, pre, post)


class ScaledFilter:
    """``v -> post * filter(pre * v)`` of a :class:`PermutohedralLattice`, without temporaries.

    The dense CRF's normalised filters have this form (``pre = post = n^-1/2`` for pydensecrf's
    symmetric normalisation, with ``n = filter(1)``). Folding ``pre`` into the splat matrix's
    columns and ``post`` into the slice matrix's rows saves two passes over the ``[N, C]``
    values per call, and :meth:`accumulate` adds the result into an output buffer inside the
    slice product itself (``torch.addmm`` with a sparse first factor), reusing preallocated
    lattice buffers for the blur. Same values as the plain filter up to float rounding; no
    autograd (use :meth:`PermutohedralLattice.filter` for gradients).
    """

    def __init__(self, lat: PermutohedralLattice, pre=None, post=None) -> None:
        self.lattice = lat
        d1 = lat.dim + 1
        splat, slc = lat.splat_matrix, lat.slice_matrix
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            if pre is not None:
                pre = _point_factor("pre", pre, lat)
                splat = torch.sparse_csr_tensor(
                    splat.crow_indices(), splat.col_indices(), splat.values() * pre.index_select(0, splat.col_indices()),
                    size=splat.shape, check_invariants=False,
                )
            if post is not None:
                post = _point_factor("post", post, lat)
                slc = torch.sparse_csr_tensor(
                    slc.crow_indices(), slc.col_indices(), slc.values() * post.repeat_interleave(d1),
                    size=slc.shape, check_invariants=False,
                )
        self.splat_matrix, self.slice_matrix = splat, slc
        self._buffers: dict[int, tuple[torch.Tensor, ...]] = {}

    def _lattice_values(self, values: torch.Tensor) -> torch.Tensor:
        """Splat and blur ``values [B N, C]`` (contiguous) into a reused ``[M, C]`` buffer."""
        m, c = self.lattice.num_vertices, values.shape[-1]
        if c not in self._buffers:
            self._buffers[c] = _blur_buffers(values, m, c)
        first = self._buffers[c][0]
        torch.addmm(first[:m], self.splat_matrix, values, beta=0, out=first[:m])  # splat, [M, C]
        self._buffers[c] = _blur_in_place(self._buffers[c], self.lattice.neighbours, reverse=False)
        return self._buffers[c][0][:m]

    def accumulate(
        self, values: torch.Tensor, out: torch.Tensor, alpha: float = 1.0, base: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``out = base + alpha * post * filter(pre * values)`` in place (``base`` defaults to
        ``out``, i.e. ``out +=``). ``values``, ``out``, ``base``: ``[B N, C]`` contiguous (the points of
        all batch elements stacked). Returns ``out``."""
        lattice_values = self._lattice_values(values)
        base = out if base is None else base
        return torch.addmm(base, self.slice_matrix, lattice_values, alpha=alpha, out=out)  # slice

    def into(self, values: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out = post * filter(pre * values)`` in place, ``[B N, C]`` contiguous; returns ``out``."""
        lattice_values = self._lattice_values(values)
        return torch.addmm(out, self.slice_matrix, lattice_values, beta=0, out=out)  # slice

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """``post * filter(pre * values)`` for ``values [B, N, C]``: a new ``[B, N, C]`` tensor."""
        self.lattice._check(values)
        b, n, c = values.shape
        flat = values.reshape(b * n, c).contiguous()
        out = torch.mm(self.slice_matrix, self._lattice_values(flat))  # [B N, C]
        return out.reshape(b, n, c)


def _point_factor(name: str, factor: torch.Tensor, lat: PermutohedralLattice) -> torch.Tensor:
    """``[B, N, 1]`` or ``[B, N]`` per-point factor -> flat ``[B N]``, checked."""
    check_tensor(name, factor, floating=True)
    if factor.numel() != lat.batch_size * lat.num_points or factor.shape[:2] != (lat.batch_size, lat.num_points):
        raise ValueError(
            f"{name}: expected shape [B, N, 1] or [B, N] with B = {lat.batch_size}, N = {lat.num_points}, "
            f"got {list(factor.shape)}"
        )
    if factor.dtype != lat.dtype or factor.device != lat.device:
        raise TypeError(f"{name}: expected dtype {lat.dtype} on {lat.device} (the lattice's), got {factor.dtype} on {factor.device}")
    check_finite(name, factor)
    return factor.detach().reshape(-1)


def lattice(features: torch.Tensor) -> PermutohedralLattice:
    """Build the :class:`PermutohedralLattice` of ``features [B, N, d]`` (O(N d^2))."""
    return PermutohedralLattice(features)


def permutohedral_filter(features: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """One-shot ``lattice(features).filter(values)``; build the lattice yourself to reuse it."""
    return PermutohedralLattice(features).filter(values)


# --------------------------------------------------------------------------------------------
# the filter's autograd: linear in the values, its transpose is the reversed-blur filter
# --------------------------------------------------------------------------------------------


class _Filter(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values, lat, reverse=False):
        ctx.lat, ctx.reverse = lat, reverse
        b, n, c = values.shape
        flat = values.reshape(b * n, c)  # [B N, C]
        lattice_values = torch.sparse.mm(lat.splat_matrix, flat)  # [M, C]
        lattice_values = _blur(lattice_values, lat.neighbours, reverse)  # [M, C]
        out = torch.sparse.mm(lat.slice_matrix, lattice_values)  # [B N, C]
        return out.reshape(b, n, c)  # [B, N, C]

    @staticmethod
    def backward(ctx, grad):
        # filter = alpha P^T B_d ... B_0 P, each B_j symmetric: transpose = same with reversed blur
        return _Filter.apply(grad.contiguous(), ctx.lat, not ctx.reverse), None, None


class _SparseProduct(torch.autograd.Function):
    """``matrix @ x`` for a CSR matrix whose transpose is ``scale * transpose``."""

    @staticmethod
    def forward(ctx, x, matrix, transpose, scale):
        ctx.transpose, ctx.matrix, ctx.scale = transpose, matrix, scale
        return torch.sparse.mm(matrix, x.contiguous())

    @staticmethod
    def backward(ctx, grad):
        grad_x = _SparseProduct.apply(grad, ctx.transpose, ctx.matrix, 1.0 / ctx.scale)
        return grad_x * ctx.scale, None, None, None


class _Blur(torch.autograd.Function):
    @staticmethod
    def forward(ctx, lattice_values, neighbours, reverse):
        ctx.neighbours, ctx.reverse = neighbours, reverse
        return _blur(lattice_values, neighbours, reverse)

    @staticmethod
    def backward(ctx, grad):
        return _Blur.apply(grad, ctx.neighbours, not ctx.reverse), None, None


def _blur(lattice_values: torch.Tensor, neighbours: torch.Tensor, reverse: bool) -> torch.Tensor:
    """``v <- v + (v[prev] + v[next]) / 2`` along each lattice direction; ``[M, C]``."""
    m, c = lattice_values.shape
    buffers = _blur_buffers(lattice_values, m, c)
    buffers[0][:m] = lattice_values
    return _blur_in_place(buffers, neighbours, reverse)[0][:m]


def _blur_buffers(like: torch.Tensor, m: int, c: int) -> tuple[torch.Tensor, ...]:
    """``(cur, nxt, prev, next)``: two ``[M + 1, C]`` ping-pong buffers whose row ``M`` (the
    missing neighbour) is 0, and two ``[M, C]`` scratch buffers."""
    return like.new_zeros(m + 1, c), like.new_zeros(m + 1, c), like.new_empty(m, c), like.new_empty(m, c)


def _blur_in_place(buffers, neighbours: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, ...]:
    """Blur the values in ``buffers[0][:M]``; returns the buffers reordered so that the result
    is again in the first one."""
    cur, nxt, prev_vals, next_vals = buffers
    m = prev_vals.shape[0]
    order = range(neighbours.shape[0] - 1, -1, -1) if reverse else range(neighbours.shape[0])
    for j in order:
        torch.index_select(cur, 0, neighbours[j, 0], out=prev_vals)  # [M, C]
        torch.index_select(cur, 0, neighbours[j, 1], out=next_vals)  # [M, C]
        prev_vals += next_vals
        torch.add(cur[:m], prev_vals, alpha=0.5, out=nxt[:m])
        cur, nxt = nxt, cur
    return cur, nxt, prev_vals, next_vals


# --------------------------------------------------------------------------------------------
# building the lattice
# --------------------------------------------------------------------------------------------


def _build(features: torch.Tensor):
    """Vertex ids ``[B N, d + 1]``, barycentric weights ``[B N, d + 1]``, neighbours
    ``[d + 1, 2, M]`` of the lattice of ``features [B, N, d]`` (Adams et al. 2010, sec. 3-4).

    Everything is laid out coordinate-major (``[d + 1, P]``, ``P = B N`` points) so that each
    step is a few contiguous vector operations over the points.
    """
    b, n, d = features.shape
    d1, p = d + 1, b * n
    dev = features.device
    work = features.to(torch.promote_types(features.dtype, torch.float32))
    # 1. scale and elevate onto H_d: x = E f, E [d + 1, d] folded with the scale factors
    x = _elevation_matrix(d, work.dtype, dev).T @ work.reshape(p, d).T  # [d + 1, P]
    # 2. nearest remainder-0 point: round each coordinate to a multiple of d + 1
    rounded = torch.round(x / d1)  # [d + 1, P]
    residual = torch.sub(x, rounded, alpha=d1)  # [d + 1, P]
    # 3. rank of each residual coordinate, 0 = largest (ties: lower index first, as the C++);
    #    small integers are kept in int32 (half the memory traffic of int64)
    rank = torch.stack([_count_larger(residual, i) for i in range(d1)]).to(torch.int32)  # [d + 1, P]
    # 4. the point was rounded off H_d by sum(rounded): shift the ranks, wrap around
    rank += rounded.sum(0).to(torch.int32)
    wrap = (rank < 0).to(torch.int32) - (rank > d).to(torch.int32)  # [d + 1, P]: +1 under, -1 over
    rank.add_(wrap, alpha=d1)
    rem0 = (rounded.to(torch.int32) + wrap).mul_(d1)  # [d + 1, P] integer remainder-0 vertex
    rank = rank.long()  # scatter indices
    # 5. barycentric weights from the sorted residuals y_0 >= ... >= y_d (p. 10)
    y = torch.zeros_like(x).scatter_(0, rank, (x - rem0).div_(d1))  # [d + 1, P]: y[rank_i] = v_i
    y_rev = y.flip(0)  # y_rev[k] = y[d - k]
    bary = torch.empty(p, d1, dtype=features.dtype, device=dev)  # [P, d + 1]: weight of the remainder-k vertex
    bary[:, 1:] = (y_rev[1:] - y_rev[:-1]).T
    bary[:, 0] = 1 + y_rev[0] - y_rev[d]
    # 6. vertex keys: remainder-k vertex = rem0 + k - (d + 1) [rank > d - k], first d coords,
    #    packed as base + k R - (d + 1) S_k with S_k the radices of the coords ranked > d - k.
    #    Points with the same rem0 and ranks lie in the same simplex and share all d + 1
    #    vertices; neighbouring pixels mostly do, so the simplices are hashed first (one key per
    #    point) and the vertex keys computed for one representative point per simplex.
    packer = _KeyPacker(rem0[:d], b, d)
    base = packer.pack(rem0[:d], n)  # [P]
    simplex_radix = d1**d  # the ranks of the first d coordinates, base d + 1
    if packer.batch_radix * b * simplex_radix < _SIMPLEX_KEY_LIMIT:
        code = rank[0].clone()
        for i in range(1, d):
            code.add_(rank[i], alpha=d1**i)
        simplices, simplex_slots = _HashTable.of(code.add_(base, alpha=simplex_radix))  # [P] keys
        sid = simplices.compact_ids(simplex_slots)  # [P] simplex of each point, 0..U-1
        rep = torch.empty(simplices.num_keys, dtype=torch.int64, device=dev)
        rep[sid] = torch.arange(p, device=dev)  # one point of each simplex
        keys = _vertex_keys(base[rep], rank.index_select(1, rep), packer)  # [U, d + 1]
    else:  # keys too wide to pack with the ranks: hash every point's vertices
        sid = None
        keys = _vertex_keys(base, rank, packer)  # [P, d + 1]
    # 7. unique vertices: hash the packed keys into dense ids 0..M-1
    table, slots = _HashTable.of(keys.reshape(-1))
    ids = table.compact_ids(slots).to(torch.int32).reshape(-1, d1)  # [U or P, d + 1]
    if sid is not None:
        ids = ids[sid]  # [P, d + 1]
    # 8. blur neighbours: along direction j the next vertex is key + 1 everywhere, -d at j
    vertex_keys = table.keys_by_id()  # [M] packed keys, in id order
    m = vertex_keys.numel()
    steps = torch.ones(d1, d, dtype=torch.int64, device=dev)
    steps[torch.arange(d), torch.arange(d)] = -d  # direction d: +1 on the d stored coords
    step_packed = (steps * packer.radix[None, :]).sum(1)  # [d + 1] packed offset of "next"
    found = table.lookup((vertex_keys[None, :] + step_packed[:, None]).reshape(-1))
    nxt = torch.where(found < 0, m, found).reshape(d1, m)  # [d + 1, M]
    prev = torch.full((d1, m + 1), m, dtype=torch.int64, device=dev)
    prev.scatter_(1, nxt, torch.arange(m, device=dev).expand(d1, m))  # prev[j, next(i)] = i
    neighbours = torch.stack([prev[:, :m], nxt], dim=1)  # [d + 1, 2, M]
    return ids, bary, neighbours


def _vertex_keys(base: torch.Tensor, rank: torch.Tensor, packer: _KeyPacker) -> torch.Tensor:
    """Packed keys ``[Q, d + 1]`` of the d + 1 vertices of points with packed remainder-0 keys
    ``base [Q]`` and ranks ``rank [d + 1, Q]`` (int64): ``base + k R - (d + 1) S_k``."""
    d1, q = rank.shape
    d = d1 - 1
    by_rank = torch.zeros(d1, q, dtype=torch.int64, device=rank.device)
    by_rank.scatter_(0, rank[:d], packer.radix[:, None].expand(d, q))  # radix at its rank
    s = torch.zeros(d1, q, dtype=torch.int64, device=rank.device)
    torch.cumsum(by_rank.flip(0)[:d], 0, out=s[1:])  # S_k = sum of by_rank[d-k+1 .. d]
    k = torch.arange(d1, device=rank.device)[:, None]
    return (k * int(packer.radix.sum()) + base).sub_(s, alpha=d1).T.contiguous()  # [Q, d + 1]


def _count_larger(residual: torch.Tensor, i: int) -> torch.Tensor:
    """``#{j < i: r_j >= r_i} + #{j > i: r_j > r_i}`` over ``residual [d + 1, P]``: the rank."""
    count = torch.zeros(residual.shape[1], dtype=torch.uint8, device=residual.device)
    for j in range(residual.shape[0]):
        if j < i:
            count += residual[j] >= residual[i]
        elif j > i:
            count += residual[j] > residual[i]
    return count


def _elevation_matrix(d: int, dtype: torch.dtype, device) -> torch.Tensor:
    """``[d, d + 1]`` matrix taking features to the elevated, scaled coordinates (as the C++:
    ``x_0 = sum_k s_k f_k``, ``x_j = sum_{k >= j} s_k f_k - j s_{j-1} f_{j-1}``)."""
    inv_std = math.sqrt(2.0 / 3.0) * (d + 1)
    scale = [inv_std / math.sqrt((k + 1) * (k + 2)) for k in range(d)]
    e = torch.zeros(d, d + 1, dtype=torch.float64)
    for k in range(d):
        e[k, 0] = scale[k]
        for j in range(1, d + 1):
            if k >= j:
                e[k, j] = scale[k]
        e[k, k + 1] = -(k + 1) * scale[k]
    return e.to(dtype=dtype, device=device)


class _KeyPacker:
    """Packs (batch, d integer coordinates) into one non-negative int64, mixed radix."""

    def __init__(self, rem0: torch.Tensor, batch_size: int, d: int) -> None:
        # vertices lie within d of their remainder-0 point, blur neighbours within d more
        margin = 2 * d + 2
        self.low = rem0.amin(1) - margin  # [d]
        extent = rem0.amax(1) + margin - self.low + 1  # [d]
        radix = [1]
        for e in extent.tolist()[:-1]:
            radix.append(radix[-1] * e)
        self.batch_radix = radix[-1] * int(extent[-1])
        if self.batch_radix * batch_size >= 2**62:
            raise ValueError(
                "features: expected a spread that fits the lattice's 64-bit vertex keys, got "
                f"lattice extents {extent.tolist()} (features too far apart in units of their "
                "standard deviation; use larger standard deviations or fewer points)"
            )
        self.radix = torch.tensor(radix, dtype=torch.int64, device=rem0.device)  # [d]

    def pack(self, coords: torch.Tensor, points_per_batch: int) -> torch.Tensor:
        """``coords [d, P]`` integers of ``P = B n`` points, batch-major -> ``[P]`` packed keys."""
        low, radix = self.low.tolist(), self.radix.tolist()
        out = torch.zeros(coords.shape[1], dtype=torch.int64, device=coords.device)
        for i in range(coords.shape[0]):  # one [P] pass per coordinate, no [d, P] int64 temporaries
            out.add_(coords[i].long().sub_(low[i]), alpha=radix[i])
        if self.batch_radix and coords.shape[1] > points_per_batch:
            out.view(-1, points_per_batch).add_(
                torch.arange(out.numel() // points_per_batch, device=out.device)[:, None] * self.batch_radix
            )
        return out


class _HashTable:
    """Vectorised open-addressing hash set of non-negative int64 keys (linear probing).

    Insertion runs in rounds: every pending key writes itself into its probe slot if that slot
    is empty (among keys contending for one slot an arbitrary one wins), then reads the slot
    back; keys that find themselves are done, the others probe the next slot. All copies of a
    key follow the same probe sequence, so they land in the same slot.
    """

    def __init__(self, size: int, device) -> None:
        bits = max(10, int(math.ceil(math.log2(max(size, 2)))))
        self.size = 1 << bits
        self.shift = 64 - bits
        self.mask = self.size - 1
        self.table = torch.full((self.size,), _EMPTY, dtype=torch.int64, device=device)
        self.device = device

    @classmethod
    def of(cls, keys: torch.Tensor) -> tuple[_HashTable, torch.Tensor]:
        """A table holding ``keys`` and their slots. Images have far fewer distinct vertices
        than keys, so the first table is small (cache-friendly) and grows only if it fills."""
        size = max(1024, keys.numel() // 8)
        while True:
            table = cls(size, keys.device)
            slots = table.insert(keys, max_rounds=64)
            if slots is not None:
                return table, slots
            size *= 8

    def _hash(self, keys: torch.Tensor) -> torch.Tensor:
        return ((keys * _GOLDEN) >> self.shift) & self.mask

    def insert(self, keys: torch.Tensor, max_rounds: int) -> torch.Tensor | None:
        """Slots of ``keys`` (inserting them), or None if the table is too full."""
        slot = self._hash(keys)
        self.table[slot] = keys  # first round: the table is empty, every slot is free
        pending = torch.nonzero(self.table[slot] != keys).squeeze(1)
        rounds = 0
        while pending.numel():
            rounds += 1
            if rounds > max_rounds or 2 * int((self.table != _EMPTY).sum()) > self.size:
                return None
            pk = keys[pending]
            ps = (slot[pending] + 1) & self.mask
            free = self.table[ps] == _EMPTY
            self.table[ps[free]] = pk[free]
            hit = self.table[ps] == pk
            slot[pending] = ps  # probed slot (final for the hits)
            pending = pending[~hit]
        return slot

    def compact_ids(self, slots: torch.Tensor) -> torch.Tensor:
        """Dense ids 0..M-1, in slot order, of the keys at ``slots``."""
        self.occupied_slots = torch.nonzero(self.table != _EMPTY).squeeze(1)  # [M]
        # only occupied slots are ever read back, so the rest may stay uninitialised
        self.slot_id = torch.empty(self.size, dtype=torch.int64, device=self.device)
        self.slot_id[self.occupied_slots] = torch.arange(
            self.occupied_slots.numel(), device=self.device
        )
        return self.slot_id[slots]

    @property
    def num_keys(self) -> int:
        """Distinct keys held (after :meth:`compact_ids`)."""
        return int(self.occupied_slots.numel())

    def keys_by_id(self) -> torch.Tensor:
        return self.table[self.occupied_slots]

    def lookup(self, keys: torch.Tensor) -> torch.Tensor:
        """Ids of ``keys`` (-1 where absent); no insertion."""
        result = torch.full_like(keys, -1)
        slot = self._hash(keys)
        pending = torch.arange(keys.numel(), device=self.device)
        while pending.numel():
            stored = self.table[slot]
            hit = stored == keys
            result[pending[hit]] = self.slot_id[slot[hit]]
            go_on = ~hit & (stored != _EMPTY)  # an empty slot ends the probe: absent
            pending, keys, slot = pending[go_on], keys[go_on], (slot[go_on] + 1) & self.mask
        return result


def _sparse_matrices(ids: torch.Tensor, bary: torch.Tensor, m: int, alpha: float):
    """Splat ``[M, P]`` and slice ``[P, M]`` CSR matrices from vertex ids/weights ``[P, d+1]``."""
    with warnings.catch_warnings():  # torch calls CSR "beta"; only products are used here
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        p, d1 = ids.shape
        dev = ids.device
        index = torch.int32 if p * d1 < 2**31 else torch.int64  # int32 products are faster
        flat_ids = ids.reshape(-1).to(index)
        crow = torch.arange(0, p * d1 + 1, d1, dtype=index, device=dev)
        slice_matrix = torch.sparse_csr_tensor(
            crow, flat_ids, (alpha * bary).reshape(-1), size=(p, m), check_invariants=False,
        )
        # the transpose: group the non-zeros by vertex (a stable int32 sort, once)
        order = torch.sort(flat_ids, stable=True).indices
        splat_crow = torch.zeros(m + 1, dtype=index, device=dev)
        torch.cumsum(torch.bincount(flat_ids, minlength=m), 0, out=splat_crow[1:])  # row ends
        splat_matrix = torch.sparse_csr_tensor(
            splat_crow, (order // d1).to(index), bary.reshape(-1)[order], size=(m, p),
            check_invariants=False,
        )
    return splat_matrix, slice_matrix


# --------------------------------------------------------------------------------------------
# validation at the public edge
# --------------------------------------------------------------------------------------------


def _check_features(features: object) -> None:
    check_tensor("features", features, ndim=3, floating=True, dims="[B, N, d]")
    b, n, d = features.shape
    if b < 1 or n < 1 or d < 1:
        raise ValueError(f"features: expected B, N, d >= 1 in shape [B, N, d], got {list(features.shape)}")
    check_finite("features", features)


def _check_values(values: object, b: int, n: int, dtype: torch.dtype, device) -> None:
    check_tensor("values", values, ndim=3, floating=True, dims="[B, N, C]")
    if values.shape[0] != b or values.shape[1] != n:
        raise ValueError(
            f"values: expected shape [B, N, C] with B = {b}, N = {n} (as the features), "
            f"got {list(values.shape)}"
        )
    if values.dtype != dtype:
        raise TypeError(f"values: expected dtype {dtype} (that of the features), got {values.dtype}")
    if values.device != device:
        raise ValueError(f"values: expected device {device} (that of the features), got {values.device}")
