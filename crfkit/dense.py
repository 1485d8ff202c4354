"""Fully connected (dense) CRFs with Gaussian edge potentials (Krähenbühl & Koltun 2011).

Every pair of pixels is connected. The energy of a labelling ``y`` is

.. math::

    E(y) = \\sum_i \\psi_u(y_i)
         + \\sum_{i < j} \\sum_m w^{(m)}\\, k^{(m)}(f^{(m)}_i, f^{(m)}_j)\\, \\mu^{(m)}(y_i, y_j),
    \\qquad k(f_i, f_j) = \\exp(-\\tfrac12 |f_i - f_j|^2)

with one term per kernel ``m``: a :class:`GaussianKernel` (the smoothness kernel, features
``(x / sxy, y / sxy)``) and a :class:`BilateralKernel` (the appearance kernel, features
``(x / sxy, y / sxy, r / srgb, g / srgb, b / srgb)``), ``x`` the column and ``y`` the row of
the pixel, colours in the units of ``srgb`` (0..255 by default). ``mu`` is the label
compatibility: Potts ``[y_i != y_j]`` by default, or any ``[K, K]`` energy table (used
symmetrised, ``(mu + mu^T) / 2``, as pydensecrf does: the pair ``{i, j}`` is unordered).

This module only *describes* the model (and evaluates :meth:`DenseCRF.energy` on small
images); mean-field inference is :func:`crfkit.inference.mean_field` with
``filter="permutohedral" | "exact" | "conv"``. Like pydensecrf, mean field filters with
*normalised* kernels (``normalization="symmetric"`` by default) whose sum includes the pixel
itself; see :func:`crfkit.inference.mean_field`.

References
----------
- P. Krähenbühl, V. Koltun, "Efficient Inference in Fully Connected CRFs with Gaussian Edge
  Potentials", NIPS 2011 (code: https://github.com/lucasb-eyer/pydensecrf).
- M. T. T. Teichmann, R. Cipolla, "Convolutional CRFs for Semantic Segmentation", BMVC 2019.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from crfkit._validate import check_batched, check_choice, check_finite, check_instance, check_label_range, check_real, check_tensor

__all__ = ["DenseCRF", "GaussianKernel", "BilateralKernel", "NORMALIZATIONS"]

#: Kernel normalisations, as pydensecrf's ``NO_NORMALIZATION``, ``NORMALIZE_BEFORE``,
#: ``NORMALIZE_AFTER`` and ``NORMALIZE_SYMMETRIC`` (the default there and here).
NORMALIZATIONS = ("symmetric", "before", "after", "none")

#: Largest number of pixels for which :meth:`DenseCRF.energy` builds the O(N^2) kernel matrix.
MAX_ENERGY_PIXELS = 16384


def _check_positive(name: str, value):
    """A positive width: a number, or a positive 0-d floating tensor (which may be learnable)."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or not value.is_floating_point():
            raise ValueError(
                f"{name}: expected a positive number or a 0-d floating tensor, got a tensor of shape "
                f"{list(value.shape)} and dtype {value.dtype}"
            )
        check_finite(name, value)
        if not bool(value.detach() > 0):
            raise ValueError(f"{name}: expected a positive value, got {value.item()}")
        return value
    return check_real(name, value, minimum=0.0, open_minimum=True)


def _check_weight(value):
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or not value.is_floating_point():
            raise ValueError(
                f"weight: expected a number or a 0-d floating tensor, got a tensor of shape "
                f"{list(value.shape)} and dtype {value.dtype}"
            )
        check_finite("weight", value)
        return value
    return check_real("weight", value)


def _check_compat(value):
    if value is None:
        return None
    check_tensor("compat", value, ndim=2, floating=True, dims="[K, K]")
    if value.shape[0] != value.shape[1]:
        raise ValueError(f"compat: expected a square [K, K] table, got shape {list(value.shape)}")
    check_finite("compat", value)
    return value


@dataclass(frozen=True, eq=False)
class GaussianKernel:
    """The smoothness kernel ``w exp(-|p_i - p_j|^2 / (2 sxy^2)) mu(y_i, y_j)``.

    Parameters
    ----------
    sxy : float or 0-d tensor, default 3
        Standard deviation in pixels (pydensecrf's ``addPairwiseGaussian(sxy=3)``). A tensor
        stays differentiable with ``filter="exact"`` or ``"conv"``.
    weight : float or 0-d tensor, default 3
        ``w`` (pydensecrf's ``compat=3``). A tensor stays differentiable.
    compat : tensor ``[K, K]`` or None
        Label compatibility ``mu`` (energies); None is Potts ``1 - I``. May be learnable.
    """

    sxy: float = 3.0
    weight: float = 3.0
    compat: torch.Tensor | None = None

    def __post_init__(self):
        object.__setattr__(self, "sxy", _check_positive("sxy", self.sxy))
        object.__setattr__(self, "weight", _check_weight(self.weight))
        object.__setattr__(self, "compat", _check_compat(self.compat))

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, N, 2]`` features ``(x / sxy, y / sxy)`` of the pixels of ``image [B, C, H, W]``
        (row-major pixel order, ``x`` the column), in ``image``'s dtype and device."""
        return _positions(image) / self.sxy  # [B, N, 2]


@dataclass(frozen=True, eq=False)
class BilateralKernel:
    """The appearance kernel ``w exp(-|p_i - p_j|^2 / (2 sxy^2) - |I_i - I_j|^2 / (2 srgb^2)) mu``.

    Parameters
    ----------
    sxy : float or 0-d tensor, default 80
        Spatial standard deviation in pixels.
    srgb : float or 0-d tensor, default 13
        Colour standard deviation, in the units of the image (0..255 by default). Tensor
        widths stay differentiable with ``filter="exact"`` or ``"conv"``.
    weight : float or 0-d tensor, default 10
        ``w`` (pydensecrf's ``addPairwiseBilateral(compat=10)``).
    compat : tensor ``[K, K]`` or None
        Label compatibility ``mu``; None is Potts ``1 - I``.
    """

    sxy: float = 80.0
    srgb: float = 13.0
    weight: float = 10.0
    compat: torch.Tensor | None = None

    def __post_init__(self):
        object.__setattr__(self, "sxy", _check_positive("sxy", self.sxy))
        object.__setattr__(self, "srgb", _check_positive("srgb", self.srgb))
        object.__setattr__(self, "weight", _check_weight(self.weight))
        object.__setattr__(self, "compat", _check_compat(self.compat))

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """``[B, N, 2 + C]`` features ``(x / sxy, y / sxy, c_1 / srgb, ..., c_C / srgb)``."""
        b, c = image.shape[:2]
        colours = image.reshape(b, c, -1).transpose(1, 2)  # [B, N, C]
        return torch.cat([_positions(image) / self.sxy, colours / self.srgb], dim=-1)  # [B, N, 2 + C]


KERNEL_TYPES = (GaussianKernel, BilateralKernel)


def _positions(image: torch.Tensor) -> torch.Tensor:
    """``[B, N, 2]`` pixel coordinates ``(x, y)`` = (column, row), row-major order."""
    b, _, h, w = image.shape
    y, x = torch.meshgrid(
        torch.arange(h, dtype=image.dtype, device=image.device),
        torch.arange(w, dtype=image.dtype, device=image.device),
        indexing="ij",
    )  # [H, W] each
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=-1).expand(b, h * w, 2)  # [B, N, 2]


def _warn_if_unit_range(image: torch.Tensor, kernels) -> None:
    """Warn when a bilateral kernel meets an image whose colours all lie in ``0..1``.

    ``srgb`` is in the units of the image, and the literature's ``srgb = 13`` assumes 0..255:
    on a 0..1 image every colour difference is below ``1/13`` of a standard deviation, so the
    bilateral kernel silently becomes a second Gaussian (spatial-only) kernel.
    """
    bilateral = [kern for kern in kernels if isinstance(kern, BilateralKernel)]
    if not bilateral or image.dtype == torch.uint8:
        return
    lo, hi = float(image.min()), float(image.max())
    if lo >= 0.0 and hi <= 1.0 and any(float(kern.srgb) > 2 * hi for kern in bilateral):
        srgb = min(float(kern.srgb) for kern in bilateral)
        warnings.warn(
            f"image: every value lies in [{lo:.3g}, {hi:.3g}], but srgb = {srgb:g} is in the units of the image "
            "(0..255 in the literature), so the bilateral kernel hardly sees colour and acts as a spatial "
            "one. Pass image * 255, or scale srgb to the image's range (srgb / 255).",
            UserWarning,
            stacklevel=3,
        )


class DenseCRF:
    """A fully connected CRF on the pixels of an image (Krähenbühl & Koltun 2011).

    Parameters
    ----------
    unary : Tensor ``[B, K, H, W]``, float
        Unary energies (lower = more likely), e.g. ``-log`` of a network's softmax.
    image : Tensor ``[B, C, H, W]``
        The image whose colours the bilateral kernels compare, in the units of ``srgb``
        (0..255 for the usual ``srgb = 13``); floating or uint8, same device as ``unary``;
        converted to ``unary``'s dtype.
    kernels : sequence of :class:`GaussianKernel` / :class:`BilateralKernel`
        Default: ``(GaussianKernel(sxy=3, weight=3), BilateralKernel(sxy=80, srgb=13,
        weight=10))``, pydensecrf's documented defaults. May be empty.
    normalization : ``"symmetric"`` | ``"before"`` | ``"after"`` | ``"none"``
        How mean field normalises each kernel, as pydensecrf (see
        :func:`crfkit.inference.mean_field`).

    Attributes
    ----------
    unary, image, kernels, normalization
        ``image`` converted to ``unary``'s dtype; ``kernels`` a tuple.
    shape : torch.Size
        ``[B, K, H, W]``.
    num_labels : int
        ``K``.

    Raises
    ------
    TypeError, ValueError
        At construction, naming the argument: unary not a batched 4-D floating tensor,
        image not ``[B, C, H, W]`` with unary's ``B``, ``H``, ``W``, a device mismatch, NaN/inf,
        a kernel that is not a kernel, a compat that is not ``[K, K]`` or not on unary's
        device, an unknown normalisation.

    Examples
    --------
    >>> import torch, crfkit as ck
    >>> unary = torch.rand(1, 3, 16, 16); image = 255 * torch.rand(1, 3, 16, 16)
    >>> crf = ck.DenseCRF(unary, image)
    >>> ck.inference.mean_field(crf, iterations=5).shape
    torch.Size([1, 3, 16, 16])
    """

    def __init__(self, unary: torch.Tensor, image: torch.Tensor, kernels=None, normalization: str = "symmetric"):
        check_batched("unary", unary, "[B, K, H, W]", floating=True)
        check_finite("unary", unary)
        b, k, h, w = unary.shape

        check_batched("image", image, "[B, C, H, W]")
        if not (image.is_floating_point() or image.dtype == torch.uint8):
            raise TypeError(f"image: expected a floating-point or uint8 tensor, got dtype {image.dtype}")
        if image.device != unary.device:
            raise ValueError(f"image: expected device {unary.device} (that of unary), got {image.device}")
        if image.shape[0] != b or tuple(image.shape[2:]) != (h, w) or image.shape[1] < 1:
            raise ValueError(
                f"image: expected shape [B, C, H, W] = [{b}, C, {h}, {w}] (B, H, W of unary), "
                f"got {list(image.shape)}"
            )
        check_finite("image", image)

        if kernels is None:
            kernels = (GaussianKernel(), BilateralKernel())
        if isinstance(kernels, KERNEL_TYPES):
            kernels = (kernels,)
        kernels = tuple(kernels)
        for i, kern in enumerate(kernels):
            check_instance(f"kernels[{i}]", kern, KERNEL_TYPES)
            if kern.compat is not None:
                if tuple(kern.compat.shape) != (k, k):
                    raise ValueError(
                        f"kernels[{i}].compat: expected shape [K, K] = {[k, k]} (K of unary), "
                        f"got {list(kern.compat.shape)}"
                    )
                if kern.compat.device != unary.device:
                    raise ValueError(
                        f"kernels[{i}].compat: expected device {unary.device} (that of unary), "
                        f"got {kern.compat.device}"
                    )
        check_choice("normalization", normalization, NORMALIZATIONS)
        _warn_if_unit_range(image, kernels)

        self.unary = unary
        self.image = image.to(unary.dtype)
        self.kernels = kernels
        self.normalization = normalization
        self.shape = unary.shape
        self.num_labels = k

    def __repr__(self) -> str:
        return (
            f"DenseCRF(shape={list(self.shape)}, kernels={self.kernels!r}, "
            f"normalization={self.normalization!r})"
        )

    def features(self, index: int) -> torch.Tensor:
        """``[B, N, d]`` features of kernel ``index`` (``N = H W``, row-major)."""
        return self.kernels[index].features(self.image)

    def compat_matrix(self, index: int) -> torch.Tensor:
        """``[K, K]`` energy table ``w mu`` of kernel ``index``, symmetrised ``(T + T^T) / 2``
        (Potts: ``w (1 - I)``). Differentiable in a tensor ``weight``/``compat``."""
        kern = self.kernels[index]
        k = self.num_labels
        if kern.compat is None:
            table = 1 - torch.eye(k, dtype=self.unary.dtype, device=self.unary.device)  # [K, K]
        else:
            table = 0.5 * (kern.compat + kern.compat.T)  # [K, K]
        return kern.weight * table

    def energy(self, labels: torch.Tensor) -> torch.Tensor:
        """``E(y) = sum_i unary_i(y_i) + sum_{i<j} sum_m w k_m(f_i, f_j) mu_m(y_i, y_j)``, per image.

        The paper's energy with the exact, unnormalised Gaussian kernels over distinct pairs
        (the pixel itself left out). Mean field with ``normalization="none"`` and
        ``filter="exact"`` is the mean field of this energy except for the self term
        ``w mu(k, k')`` that pydensecrf's kernel sum adds (zero for Potts).

        Parameters
        ----------
        labels : int64 Tensor ``[B, H, W]``
            Values in ``0..K-1`` (no ignore label here).

        Returns
        -------
        Tensor ``[B]``
            Differentiable in unary and tensor weights/compat. Cost O(N^2) time, O(N^2) memory:
            refuses more than :data:`MAX_ENERGY_PIXELS` pixels.
        """
        b, k, h, w = self.shape
        check_tensor("labels", labels, ndim=3, dtype=torch.int64, dims="[B, H, W]")
        if tuple(labels.shape) != (b, h, w):
            raise ValueError(f"labels: expected shape [B, H, W] = {[b, h, w]}, got {list(labels.shape)}")
        if labels.device != self.unary.device:
            raise ValueError(f"labels: expected device {self.unary.device} (that of unary), got {labels.device}")
        check_label_range("labels", labels, k)
        n = h * w
        if n > MAX_ENERGY_PIXELS:
            raise ValueError(
                f"labels: energy builds an N x N kernel matrix, expected at most {MAX_ENERGY_PIXELS} "
                f"pixels, got {n} ({h} x {w})"
            )
        flat = labels.reshape(b, n)  # [B, N]
        unary = self.unary.reshape(b, k, n).gather(1, flat[:, None]).squeeze(1).sum(1)  # [B]
        onehot = torch.nn.functional.one_hot(flat, k).to(self.unary.dtype)  # [B, N, K]
        total = unary
        for m in range(len(self.kernels)):
            feats = self.features(m)  # [B, N, d]
            gram = torch.exp(-0.5 * torch.cdist(feats, feats).square())  # [B, N, N]
            gram = gram - torch.eye(n, dtype=gram.dtype, device=gram.device)  # distinct pairs only
            table = self.compat_matrix(m)  # [K, K]
            pair = onehot @ table @ onehot.transpose(1, 2)  # [B, N, N]: mu(y_i, y_j)
            total = total + 0.5 * (gram * pair).flatten(1).sum(1)  # each unordered pair once
        return total
