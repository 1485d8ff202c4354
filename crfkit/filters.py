"""Message passing in a fully connected CRF: Gaussian filtering of the marginals.

In mean field on a :class:`~crfkit.DenseCRF` (Krähenbühl & Koltun 2011, algorithm 1) the
message to pixel ``i`` is, for each kernel ``m`` and label ``k``,

.. math::

    \\tilde Q^{(m)}_i(k) = \\sum_j \\tilde k^{(m)}(f_i, f_j)\\, Q_j(k)
    \\qquad \\text{(message passing: a Gaussian filter of } Q\\text{)}

    m_i(k) = \\sum_m \\sum_{k'} w^{(m)} \\mu^{(m)}(k, k')\\, \\tilde Q^{(m)}_i(k')
    \\qquad \\text{(compatibility transform)}

with ``k~`` the kernel normalised as pydensecrf does (:class:`NormalisedFilter`; the sum
includes ``j = i``). This module builds those filters, once per image, and applies them:

==================  =================  ===================================================
``filter=``         cost per call      what it computes
==================  =================  ===================================================
``"permutohedral"`` O(N d K)           splat, blur, slice on the permutohedral lattice
                                       (Adams et al. 2010), what pydensecrf computes
``"exact"``         O(N^2 K)           the exact sum (small images, tests)
``"conv"``          O(N window^2 K)    the sum truncated to a ``window x window`` square
                                       (ConvCRF, Teichmann & Cipolla 2019); the spatial
                                       kernel as a separable convolution, O(N window K);
                                       ``blur`` runs it on a coarser grid (/ blur^2)
==================  =================  ===================================================

:class:`DenseMessages` is the whole message ``m(Q)`` (both steps), the piece mean field,
its free energy and any layer that unrolls mean field (CRF-as-RNN) share;
:func:`scaled_terms` gives the same arithmetic as sparse matrices with the normalisation and
the Potts weight folded in, for the fused no-autograd loop of
:func:`crfkit.inference.dense_mean_field`.

References
----------
- P. Krähenbühl, V. Koltun, "Efficient Inference in Fully Connected CRFs with Gaussian Edge
  Potentials", NIPS 2011.
- A. Adams, J. Baek, M. A. Davis, "Fast High-Dimensional Filtering Using the Permutohedral
  Lattice", Eurographics 2010.
- M. T. T. Teichmann, R. Cipolla, "Convolutional CRFs for Semantic Segmentation", BMVC 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from crfkit._validate import check_choice, check_instance, check_int
from crfkit.dense import DenseCRF, GaussianKernel
from crfkit.permutohedral import PermutohedralLattice, ScaledFilter, gaussian_filter_exact

__all__ = ["FILTERS", "DenseMessages", "NormalisedFilter", "ScaledTerm", "WindowSum", "dense_filters", "scaled_terms"]

#: The filters of dense mean field.
FILTERS = ("permutohedral", "exact", "conv")
#: Largest ``B N^2`` for which ``filter="exact"`` stores the kernel matrices (else it recomputes
#: them in chunks with :func:`crfkit.permutohedral.gaussian_filter_exact` at every call).
EXACT_MATRIX_LIMIT = 2**25


class NormalisedFilter:
    """A kernel's filter with pydensecrf's normalisation: ``values [B, N, C] -> [B, N, C]``.

    With ``raw`` the (linear) Gaussian sum including the pixel itself and ``n = raw(1)``
    computed once: ``"symmetric"`` ``n^-1/2 raw(n^-1/2 v)``; ``"before"`` ``raw(v / n)``;
    ``"after"`` ``raw(v) / n``; ``"none"`` ``raw(v)`` (pydensecrf adds ``1e-20`` to ``n``).
    """

    def __init__(self, raw, normalization: str, like: torch.Tensor) -> None:
        self.raw, self.normalization = raw, normalization
        self.pre = self.post = None  # [B, N, 1] factors applied before / after raw, or None
        if normalization != "none":
            ones = like.new_ones(like.shape[0], like.shape[1], 1)  # [B, N, 1]
            total = raw(ones) + 1e-20  # [B, N, 1]
            norm = total.rsqrt() if normalization == "symmetric" else total.reciprocal()
            self.pre = norm if normalization in ("symmetric", "before") else None
            self.post = norm if normalization in ("symmetric", "after") else None

    def unscaled(self, values: torch.Tensor) -> torch.Tensor:
        """The filter without its ``post`` factor (mean field folds it into the weight)."""
        return self.raw(values if self.pre is None else values * self.pre)  # [B, N, C]

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        out = self.unscaled(values)  # [B, N, C]
        return out if self.post is None else out * self.post


def _exact_sum(features: torch.Tensor):
    """O(N^2) Gaussian sum ``sum_j exp(-|f_i - f_j|^2 / 2) v_j`` (the pixel itself included)."""
    b, n, _ = features.shape
    if b * n * n <= EXACT_MATRIX_LIMIT:
        gram = torch.exp(-0.5 * torch.cdist(features, features).square())  # [B, N, N]
        return lambda values: gram @ values  # [B, N, C]
    return lambda values: gaussian_filter_exact(features, values)  # [B, N, C], recomputed per call


def _conv_sum(model: DenseCRF, index: int, window: int, blur: int = 1):
    """ConvCRF's truncated filter: the Gaussian sum over the ``window x window`` square around
    each pixel (off-grid pixels absent), the pixel itself included.

    With ``blur > 1`` (Teichmann & Cipolla 2019, Sec. 4.1) the sum runs on a grid ``blur``
    times coarser: ``Q`` and the kernel's features are averaged over ``blur x blur`` blocks
    (a last partial block averages the pixels it has), the truncated sum is taken between
    block averages, and the result is upsampled bilinearly to the pixels. The window then
    spans ``window * blur`` pixels at the cost (and memory) of ``window`` blocks.
    """
    b, _, h, w = model.shape
    r = window // 2
    kern = model.kernels[index]
    dev, dt = model.unary.device, model.unary.dtype

    def to_grid(values):  # [B, N, C] -> [B, C, H, W]
        return values.transpose(1, 2).reshape(b, -1, h, w)

    def to_points(grid):  # [B, C, H, W] -> [B, N, C]
        return grid.reshape(b, grid.shape[1], h * w).transpose(1, 2)

    if isinstance(kern, GaussianKernel) and blur == 1:
        # the spatial kernel is separable: exp(-(dx^2 + dy^2) / 2 sxy^2) = g(dx) g(dy)
        t = torch.arange(-r, r + 1, dtype=dt, device=dev)
        taps = torch.exp(-0.5 * (t / kern.sxy) ** 2)  # [window]

        def raw(values):
            grid = to_grid(values)  # [B, C, H, W]
            c = grid.shape[1]
            # one depthwise (groups = C) convolution per axis; a [B C, 1, H, W] single-channel
            # batch would make the CPU backend pad every image to 16 channels (16x the memory)
            grid = F.conv2d(grid, taps.view(1, 1, 1, -1).expand(c, 1, 1, window), padding=(0, r), groups=c)  # along x
            grid = F.conv2d(grid, taps.view(1, 1, -1, 1).expand(c, 1, window, 1), padding=(r, 0), groups=c)  # along y
            return to_points(grid)

        return raw

    def down(grid):  # [B, C, H, W] -> [B, C, h', w'], block means (h' = ceil(H / blur))
        if blur == 1:
            return grid
        return F.avg_pool2d(grid, blur, ceil_mode=True, count_include_pad=False)

    def up(grid):  # [B, C, h', w'] -> [B, C, H, W], bilinear between block centres
        if blur == 1:
            return grid
        hb, wb = grid.shape[2:]
        fine = F.interpolate(grid, size=(hb * blur, wb * blur), mode="bilinear", align_corners=False)
        return fine[:, :, :h, :w]

    feats = down(to_grid(model.features(index)))  # [B, d, h', w']
    hb, wb = feats.shape[2:]
    padded = F.pad(feats, (r, r, r, r))  # [B, d, h' + 2r, w' + 2r]
    inside = F.pad(torch.ones(1, 1, hb, wb, dtype=dt, device=dev), (r, r, r, r))  # [1, 1, h' + 2r, w' + 2r]
    offsets = [(dy, dx) for dy in range(window) for dx in range(window)]
    weights = torch.empty(b, len(offsets), hb, wb, dtype=dt, device=dev)  # [B, window^2, h', w']
    for o, (dy, dx) in enumerate(offsets):
        diff = feats - padded[:, :, dy : dy + hb, dx : dx + wb]  # [B, d, h', w']
        weights[:, o] = torch.exp(-0.5 * diff.square().sum(1)) * inside[0, 0, dy : dy + hb, dx : dx + wb]

    def raw(values):
        return to_points(up(WindowSum.apply(down(to_grid(values)), weights, window)))  # [B, N, C]

    return raw


class WindowSum(torch.autograd.Function):
    """``out[b, c, i, j] = sum_o weights[b, o, i, j] grid[b, c, (i, j) + o]`` over the
    ``window x window`` offsets ``o`` (row-major, ``(-r, -r)`` first; off-grid terms absent).

    ``grid [B, C, H, W]``, ``weights [B, window^2, H, W]`` -> ``[B, C, H, W]``. The backward
    pass is written out: the gradient of ``grid`` shifts each weighted ``grad_out`` back into
    one padded buffer (autograd's own would allocate and zero a padded buffer per offset,
    3-4x the forward's cost), and the gradient of ``weights`` (learnable kernel widths) is
    ``sum_c grad_out * shifted grid``. Cost O(B C H W window^2) each way; first order only.
    """

    @staticmethod
    def forward(ctx, grid: torch.Tensor, weights: torch.Tensor, window: int) -> torch.Tensor:
        b, c, h, w = grid.shape
        r = window // 2
        padded = F.pad(grid, (r, r, r, r))  # [B, C, H + 2r, W + 2r]
        out = grid.new_zeros(b, c, h, w)  # [B, C, H, W]
        for o in range(window * window):
            dy, dx = divmod(o, window)
            out += weights[:, o : o + 1] * padded[:, :, dy : dy + h, dx : dx + w]
        # grid is needed only for the gradient of the weights (learnable widths); not keeping it
        # otherwise saves one [B, C, H, W] map per call (per mean-field iteration)
        ctx.save_for_backward(grid if ctx.needs_input_grad[1] else None, weights)
        ctx.window, ctx.shape = window, grid.shape
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grid, weights = ctx.saved_tensors
        window = ctx.window
        b, c, h, w = ctx.shape
        r = window // 2
        grad_grid = grad_weights = None
        if ctx.needs_input_grad[0]:
            padded = grad_out.new_zeros(b, c, h + 2 * r, w + 2 * r)  # [B, C, H + 2r, W + 2r]
            for o in range(window * window):
                dy, dx = divmod(o, window)
                padded[:, :, dy : dy + h, dx : dx + w] += weights[:, o : o + 1] * grad_out
            grad_grid = padded[:, :, r : r + h, r : r + w]  # [B, C, H, W]
        if ctx.needs_input_grad[1]:
            source = F.pad(grid, (r, r, r, r))  # [B, C, H + 2r, W + 2r]
            grad_weights = torch.stack([
                (grad_out * source[:, :, dy : dy + h, dx : dx + w]).sum(1)
                for dy, dx in (divmod(o, window) for o in range(window * window))
            ], dim=1)  # [B, window^2, H, W]
        return grad_grid, grad_weights, None


def _widths_require_grad(model: DenseCRF, index: int) -> bool:
    kern = model.kernels[index]
    return any(isinstance(v, torch.Tensor) and v.requires_grad for v in (kern.sxy, getattr(kern, "srgb", None)))


def dense_filters(model: DenseCRF, filter: str = "permutohedral", window: int = 11, blur: int = 1) -> list:
    """The normalised message-passing filters of a :class:`~crfkit.DenseCRF`, one per kernel.

    Each is a callable ``Q [B, N, K] -> [B, N, K]`` (``N = H W``, row-major pixels) that
    returns the kernel's normalised Gaussian sum ``sum_j k~(i, j) Q_j`` (the pixel itself
    included, as pydensecrf). Everything that depends only on the image (the permutohedral
    lattice, the exact kernel matrix, ConvCRF's window weights, the normalisation ``n``) is
    built here, once; calling a filter costs:

    * ``"permutohedral"``: O(N d K) (Adams et al. 2010; :class:`~crfkit.permutohedral.
      PermutohedralLattice`), what pydensecrf computes;
    * ``"exact"``: O(N^2 K), the exact sum (small images, tests);
    * ``"conv"``: O(N window^2 K / blur^2), the sum truncated to the ``window x window``
      square around each pixel (ConvCRF, Teichmann & Cipolla 2019), on a grid ``blur`` times
      coarser when ``blur > 1`` (see :func:`_conv_sum`); at ``blur = 1`` the spatial kernel
      is a separable convolution, O(N window K). Its window weights take
      ``B window^2 N / blur^2`` numbers per bilateral kernel: memory grows with the
      *square* of the window and falls with the square of ``blur``.

    Kernel widths given as tensors that require grad are differentiated through by the
    ``"exact"`` and ``"conv"`` filters; the permutohedral lattice (built by rounding and
    hashing the features) is not differentiable in them, and refuses them.
    """
    check_instance("model", model, DenseCRF, "dense_filters")
    check_choice("filter", filter, FILTERS)
    check_int("window", window, minimum=1, odd=True)
    check_int("blur", blur, minimum=1)
    if blur > 1 and filter != "conv":
        raise ValueError(f"blur: expected 1 for filter={filter!r} (blur is ConvCRF's, filter='conv'), got {blur}")
    b, k, h, w = model.shape
    like = model.unary.new_empty(b, h * w, 1)
    out = []
    for m in range(len(model.kernels)):
        if filter == "permutohedral":
            if _widths_require_grad(model, m):
                raise ValueError(
                    f"kernels[{m}]: the permutohedral lattice is not differentiable in the kernel widths "
                    "(sxy, srgb tensors that require grad); use filter='conv' or 'exact' to learn them"
                )
            raw = PermutohedralLattice(model.features(m)).filter
        elif filter == "exact":
            raw = _exact_sum(model.features(m))
        else:
            raw = _conv_sum(model, m, window, blur)
        out.append(NormalisedFilter(raw, model.normalization, like))
    return out


class DenseMessages:
    """The mean-field messages ``m(Q)`` of a :class:`~crfkit.DenseCRF`, everything that depends
    only on the image (lattices, kernel matrices, normalisations) built once."""

    def __init__(self, model: DenseCRF, filter: str, window: int, blur: int = 1) -> None:
        self.shape = model.shape
        self.filters = dense_filters(model, filter, window, blur)
        self.tables = [None if kern.compat is None else model.compat_matrix(m) for m, kern in enumerate(model.kernels)]
        dt, dev = model.unary.dtype, model.unary.device
        weights = [torch.as_tensor(kern.weight, dtype=dt, device=dev) for kern in model.kernels]
        # Potts: m = -w post raw(pre Q); the post-normalisation [B, N, 1] is folded into the weight
        self.scales = [w if filt.post is None else w * filt.post for w, filt in zip(weights, self.filters)]

    def points(self, q: torch.Tensor) -> torch.Tensor:
        """``m`` for ``q [B, N, K]`` (pixels row-major, labels innermost) -> ``[B, N, K]``."""
        m = torch.zeros_like(q)
        for filt, table, scale in zip(self.filters, self.tables, self.scales):
            # 1. message passing: filter Q with the normalised kernel (the pixel itself included)
            filtered = filt.unscaled(q)  # [B, N, K], the kernel's post-normalisation still to apply
            # 2. compatibility transform: Potts as pydensecrf, m = -w [k = k'] filtered;
            #    else m = filtered (w mu) (symmetrised)
            if table is None:
                m = torch.addcmul(m, filtered, scale, value=-1)
            else:
                m = m + (filtered if filt.post is None else filtered * filt.post) @ table
        return m

    def to_grid(self, values: torch.Tensor) -> torch.Tensor:
        """``[B, N, K] -> [B, K, H, W]`` (a view with the labels innermost in memory)."""
        b, k, h, w = self.shape
        return values.transpose(1, 2).reshape(b, k, h, w)

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        """``m`` for ``q [B, K, H, W]`` -> ``[B, K, H, W]``."""
        b, k, h, w = self.shape
        return self.to_grid(self.points(q.reshape(b, k, h * w).transpose(1, 2)))


@dataclass(frozen=True)
class ScaledTerm:
    """One kernel of a :class:`~crfkit.DenseCRF` as the fused loop applies it.

    ``filter`` is the kernel's lattice filter with its normalisation folded into the splat and
    slice matrices; a Potts kernel adds ``potts_weight * filter(Q)`` to the logits
    (``compat`` None), any other subtracts ``filter(Q) @ compat`` (``potts_weight`` None).
    """

    filter: ScaledFilter
    potts_weight: float | None
    compat: torch.Tensor | None


def scaled_terms(model: DenseCRF) -> list[ScaledTerm]:
    """The permutohedral message of :class:`DenseMessages` as one :class:`ScaledTerm` per kernel.

    Same arithmetic (tested to 1e-12 in float64), no autograd: each kernel's pydensecrf
    normalisation factors ``pre``/``post`` (those of :class:`NormalisedFilter`) and its Potts
    weight are folded into the lattice's CSR splat and slice matrices
    (:meth:`~crfkit.permutohedral.PermutohedralLattice.scaled`).
    """
    check_instance("model", model, DenseCRF, "scaled_terms")
    b, _, h, w = model.shape
    like = model.unary.new_empty(b, h * w, 1)
    terms = []
    with torch.no_grad():
        for m, kern in enumerate(model.kernels):
            lat = PermutohedralLattice(model.features(m))
            norm = NormalisedFilter(lat.filter, model.normalization, like)  # its pre/post factors
            scaled = lat.scaled(norm.pre, norm.post)
            if kern.compat is None:  # Potts as pydensecrf: a += w post raw(pre Q)
                terms.append(ScaledTerm(scaled, float(kern.weight), None))
            else:  # a -= (post raw(pre Q)) @ (w mu)
                terms.append(ScaledTerm(scaled, None, model.compat_matrix(m)))
    return terms
