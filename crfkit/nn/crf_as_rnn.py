"""CRF-as-RNN: mean field unrolled as layers, so a CRF trains together with the CNN under it.

Every mean-field iteration is a fixed sequence of differentiable steps (Zheng et al. 2015,
Sec. 4; Krähenbühl & Koltun 2011, algorithm 1)::

    Q^0 = softmax(-U)                                           U = unary energies [B, K, H, W]
    for t = 1 .. T:
        Q~^m = k~^m * Q^{t-1}          message passing: each kernel's normalised Gaussian filter
        M    = sum_m Q~^m (w_m mu_m)   weighting and compatibility transform (a 1x1 convolution)
        Q^t  = softmax(-U - M)         unary addition and normalisation

so ``T`` iterations are an RNN of ``T`` steps sharing their parameters, and backpropagation
through it trains the kernel weights ``w_m``, the compatibilities ``mu_m`` and (through ``U``)
the network that produced the unary. Memory grows linearly with ``T``: autograd keeps every
``Q^t`` and every filtered ``Q~^m`` (about ``(2 + M) B K N`` numbers per iteration).

* :class:`MeanFieldCRF`: the fully connected CRF of :class:`crfkit.DenseCRF` as a layer,
  ``layer(unary, image) -> Q``; at initialisation exactly
  ``crfkit.inference.mean_field(crfkit.DenseCRF(unary, image, kernels), iterations, filter=...)``.
* :class:`GridMeanFieldCRF`: its twin on a :class:`crfkit.GridCRF`, one learnable ``[K, K]``
  table per offset, for comparing a local CRF with the dense one.

References
----------
- S. Zheng, S. Jayasumana, B. Romera-Paredes, V. Vineet, Z. Su, D. Du, C. Huang, P. H. S. Torr,
  "Conditional Random Fields as Recurrent Neural Networks", ICCV 2015.
- P. Krähenbühl, V. Koltun, "Efficient Inference in Fully Connected CRFs with Gaussian Edge
  Potentials", NIPS 2011.
- M. T. T. Teichmann, R. Cipolla, "Convolutional CRFs for Semantic Segmentation", BMVC 2019.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn

from crfkit._validate import check_choice, check_instance, check_int, check_positive_int, check_real, check_tensor
from crfkit.crf import GridCRF, check_offsets
from crfkit.dense import KERNEL_TYPES, NORMALIZATIONS, BilateralKernel, DenseCRF, GaussianKernel
from crfkit.filters import FILTERS
from crfkit.inference.mean_field import mean_field

__all__ = ["MeanFieldCRF", "GridMeanFieldCRF"]


def _potts(k: int) -> torch.Tensor:
    return 1 - torch.eye(k)  # [K, K]: 0 on the diagonal, 1 elsewhere


class _Iterations:
    """Shared by both layers: ``iterations`` in training, ``test_iterations`` in eval mode."""

    iterations: int
    test_iterations: int | None
    training: bool

    def current_iterations(self) -> int:
        """The number of mean-field iterations :meth:`forward` runs now."""
        if not self.training and self.test_iterations is not None:
            return self.test_iterations
        return self.iterations


class MeanFieldCRF(_Iterations, nn.Module):
    """A fully connected CRF as a trainable layer (CRF-as-RNN, Zheng et al. 2015).

    ``layer(unary [B, K, H, W], image [B, C, H, W]) -> Q [B, K, H, W]``: the mean-field
    marginals of ``crfkit.DenseCRF(unary, image, layer.kernels())`` after
    :meth:`current_iterations` iterations (:func:`crfkit.inference.mean_field`).

    Parameters
    ----------
    num_labels : int
        ``K``.
    kernels : sequence of GaussianKernel / BilateralKernel, optional
        The kernels at initialisation (default: pydensecrf's
        ``GaussianKernel(sxy=3, weight=3), BilateralKernel(sxy=80, srgb=13, weight=10)``).
        Their weights must be positive; a kernel's ``compat`` (default Potts ``1 - I``)
        initialises its learnable compatibility.
    iterations : int
        Mean-field iterations in training mode (Zheng et al. train with 5).
    filter : ``"permutohedral"`` | ``"exact"`` | ``"conv"``
        As :func:`crfkit.inference.mean_field`; ``window`` and ``blur`` go with ``"conv"``.
    normalization : ``"symmetric"`` | ``"before"`` | ``"after"`` | ``"none"``
        As :class:`crfkit.DenseCRF`.
    test_iterations : int, optional
        Iterations in eval mode (default: ``iterations``); Zheng et al. test with 10.
    learn_widths : bool
        Also learn every ``sxy`` and ``srgb`` (needs ``filter="exact"`` or ``"conv"``: the
        permutohedral lattice is not differentiable in its features).
    device, dtype
        Of the parameters, as for ``torch.nn.Linear`` (create a float64 layer with
        ``dtype=torch.float64``: ``.double()`` afterwards keeps ``log w`` rounded to float32).

    Attributes (learnable)
    ----------------------
    log_weights : Parameter ``[M]``
        ``w_m = exp(log_weights[m])``, so every weight stays positive.
    compat : Parameter ``[M, K, K]``
        Each kernel's label compatibility ``mu_m`` (energies; only its symmetric part acts,
        the pair ``{i, j}`` being unordered).
    log_sxy, log_srgb : Parameter ``[M]`` (``learn_widths`` only)
        ``log`` of the widths (``log_srgb`` is unused, and kept at 0, for Gaussian kernels).

    Notes
    -----
    At initialisation the layer equals ``mean_field(DenseCRF(unary, image, kernels),
    iterations, filter=filter)`` to float rounding (tested to 1e-12 in float64): a Potts
    kernel's ``-w Q~(k)`` there and ``Q~ (w (1 - I))`` here differ by the same amount for every
    label of a pixel, which the softmax removes. Any batch size, any device (the layer's
    parameters must be on the device of ``unary``). Under ``torch.no_grad()`` with the
    permutohedral filter mean field takes its fused path (same values, about half the time).
    Cost per iteration: that of the filters plus O(B N K^2) for the compatibility transforms.
    """

    def __init__(self, num_labels: int, kernels=None, iterations: int = 5, filter: str = "permutohedral", *,
                 window: int = 11, blur: int = 1, normalization: str = "symmetric",
                 test_iterations: int | None = None, learn_widths: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__()
        k = check_positive_int("num_labels", num_labels)
        self.iterations = check_int("iterations", iterations, minimum=0)
        self.test_iterations = None if test_iterations is None else check_int("test_iterations", test_iterations,
                                                                             minimum=0)
        self.filter = check_choice("filter", filter, FILTERS)
        self.window = check_int("window", window, minimum=1, odd=True)
        self.blur = check_int("blur", blur, minimum=1)
        if self.blur > 1 and filter != "conv":
            raise ValueError(f"blur: expected 1 for filter={filter!r} (blur is ConvCRF's, filter='conv'), got {blur}")
        self.normalization = check_choice("normalization", normalization, NORMALIZATIONS)
        if learn_widths and filter == "permutohedral":
            raise ValueError("learn_widths: the permutohedral lattice is not differentiable in the kernel widths; "
                             "use filter='conv' or 'exact' to learn them")
        self.learn_widths = bool(learn_widths)
        if kernels is None:
            kernels = (GaussianKernel(), BilateralKernel())
        kernels = (kernels,) if isinstance(kernels, KERNEL_TYPES) else tuple(kernels)
        weights, compats = [], []
        for i, kern in enumerate(kernels):
            check_instance(f"kernels[{i}]", kern, KERNEL_TYPES)
            weights.append(check_real(f"kernels[{i}].weight", float(kern.weight), minimum=0.0, open_minimum=True))
            if kern.compat is not None and tuple(kern.compat.shape) != (k, k):
                raise ValueError(f"kernels[{i}].compat: expected shape [K, K] = {[k, k]} (num_labels), "
                                 f"got {list(kern.compat.shape)}")
            compats.append(_potts(k) if kern.compat is None else kern.compat.detach().cpu())
        # the kernels as given, with their numbers as floats; forward() swaps in the parameters
        self._templates = tuple(replace(kern, weight=1.0, compat=None) for kern in kernels)
        self.num_labels = k
        # created in their final dtype: log(w) rounded to float32 and cast up would not give w back
        like = dict(device=device, dtype=dtype if dtype is not None else torch.get_default_dtype())
        self.log_weights = nn.Parameter(torch.tensor([math.log(w) for w in weights], **like))  # [M]
        compat = torch.stack(compats) if compats else torch.zeros(0, k, k)
        self.compat = nn.Parameter(compat.to(**like))  # [M, K, K]
        if self.learn_widths:
            self.log_sxy = nn.Parameter(torch.tensor([math.log(float(kern.sxy)) for kern in kernels], **like))  # [M]
            self.log_srgb = nn.Parameter(torch.tensor(
                [math.log(float(kern.srgb)) if isinstance(kern, BilateralKernel) else 0.0 for kern in kernels],
                **like))  # [M]

    @property
    def weights(self) -> torch.Tensor:
        """``[M]`` the kernel weights ``w_m`` (positive)."""
        return self.log_weights.exp()

    def kernels(self, dtype: torch.dtype | None = None) -> tuple:
        """The current kernels, with tensor weights and compatibilities (differentiable) in ``dtype``."""
        dtype = self.log_weights.dtype if dtype is None else dtype
        weights = self.weights.to(dtype)  # [M]
        compat = self.compat.to(dtype)  # [M, K, K]
        out = []
        for m, kern in enumerate(self._templates):
            changes = dict(weight=weights[m], compat=compat[m])
            if self.learn_widths:
                changes["sxy"] = self.log_sxy[m].exp().to(dtype)
                if isinstance(kern, BilateralKernel):
                    changes["srgb"] = self.log_srgb[m].exp().to(dtype)
            out.append(replace(kern, **changes))
        return tuple(out)

    def crf(self, unary: torch.Tensor, image: torch.Tensor) -> DenseCRF:
        """The :class:`~crfkit.DenseCRF` this layer runs mean field on (checks the inputs)."""
        check_tensor("unary", unary, floating=True, dims="[B, K, H, W]")
        if unary.dim() == 4 and unary.shape[1] != self.num_labels:
            raise ValueError(f"unary: expected K = {self.num_labels} labels (num_labels) in [B, K, H, W], "
                             f"got shape {list(unary.shape)}")
        if self.log_weights.device != unary.device:
            raise ValueError(f"unary: expected device {self.log_weights.device} (that of the layer's parameters), "
                             f"got {unary.device}; move the layer with .to({str(unary.device)!r})")
        return DenseCRF(unary, image, self.kernels(unary.dtype), normalization=self.normalization)

    def forward(self, unary: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """``Q [B, K, H, W]``: mean-field marginals of :meth:`crf` ``(unary, image)``."""
        return mean_field(self.crf(unary, image), self.current_iterations(), filter=self.filter,
                          window=self.window, blur=self.blur)

    def extra_repr(self) -> str:
        kinds = ", ".join(type(k).__name__ for k in self._templates)
        return (f"num_labels={self.num_labels}, kernels=({kinds}), iterations={self.iterations}, "
                f"test_iterations={self.test_iterations}, filter={self.filter!r}")


class GridMeanFieldCRF(_Iterations, nn.Module):
    """A grid CRF as a trainable layer: :class:`MeanFieldCRF`'s local twin.

    ``layer(unary [B, K, H, W], image=None) -> Q [B, K, H, W]``: the mean-field marginals of
    ``crfkit.GridCRF(unary, layer.pairwise, offsets)`` (parallel updates), with one learnable
    ``[K, K]`` energy table per offset (``pairwise [E, K, K]``, Potts times ``weight`` at
    initialisation). ``image`` is accepted, and ignored, so the two layers are interchangeable.

    Parameters
    ----------
    num_labels : int
    offsets : sequence of (dy, dx)
        The edge classes (default 4-connected; ``((0, 1), (1, 0), (1, 1), (1, -1))`` for 8).
    iterations, test_iterations : int
        As :class:`MeanFieldCRF`.
    weight : float
        The Potts weight of every table at initialisation.
    device, dtype
        Of the parameters.

    Notes
    -----
    At initialisation equal to ``mean_field(GridCRF(unary, weight * (1 - I) per offset,
    offsets), iterations)`` exactly. Cost per iteration O(B E N K^2).
    """

    def __init__(self, num_labels: int, offsets=((0, 1), (1, 0)), iterations: int = 5, *,
                 weight: float = 1.0, test_iterations: int | None = None, device=None, dtype=None) -> None:
        super().__init__()
        k = check_positive_int("num_labels", num_labels)
        self.iterations = check_int("iterations", iterations, minimum=0)
        self.test_iterations = None if test_iterations is None else check_int("test_iterations", test_iterations,
                                                                             minimum=0)
        weight = check_real("weight", weight)
        self.offsets = check_offsets(offsets)
        self.num_labels = k
        table = weight * _potts(k).to(device=device, dtype=dtype or torch.get_default_dtype())  # [K, K]
        self.pairwise = nn.Parameter(table.expand(len(self.offsets), k, k).clone())  # [E, K, K]

    def crf(self, unary: torch.Tensor) -> GridCRF:
        """The :class:`~crfkit.GridCRF` this layer runs mean field on."""
        return GridCRF(unary, self.pairwise.to(unary.dtype), self.offsets)

    def forward(self, unary: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """``Q [B, K, H, W]``: mean-field marginals of :meth:`crf` ``(unary)``."""
        return mean_field(self.crf(unary), self.current_iterations())

    def extra_repr(self) -> str:
        return f"num_labels={self.num_labels}, offsets={self.offsets}, iterations={self.iterations}"
