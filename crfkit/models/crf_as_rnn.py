"""A segmentation network with a CRF-as-RNN layer on top (Zheng et al. 2015), trained as one.

``CNNCRF(cnn, crf)`` maps images ``[B, 3, H, W]`` in 0..1 to mean-field marginals
``Q [B, K, H, W]``::

    scores = cnn(images)                       # [B, K, H, W]
    unary  = -log_softmax(scores)              # energies: lower = more likely (crfkit's convention)
    Q      = crf(unary, 255 * images)          # MeanFieldCRF (dense) or GridMeanFieldCRF

The image goes to the CRF in 0..255, the units of the literature's ``srgb`` (13 and the like).
``Q.argmax(1)`` is the labelling, so :func:`crfkit.train.predict` and
:func:`crfkit.train.evaluate_segmenter` score a ``CNNCRF`` as they score a CNN.

:func:`deeplab_crf_small` builds the one shipped in ``crfkit/weights/deeplab_crf.pt``:
the small DeepLab of lecture 03 under a dense :class:`~crfkit.nn.MeanFieldCRF` with a
Gaussian and a bilateral kernel, trained jointly by ``python -m crfkit.train crf-as-rnn``.

References
----------
S. Zheng et al., "Conditional Random Fields as Recurrent Neural Networks", ICCV 2015.
L.-C. Chen et al., "DeepLab", TPAMI 2018.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from crfkit._validate import check_real
from crfkit.dense import BilateralKernel, GaussianKernel
from crfkit.models.deeplab import deeplab_small
from crfkit.nn import GridMeanFieldCRF, MeanFieldCRF

__all__ = ["CNNCRF", "deeplab_crf_small"]


class CNNCRF(nn.Module):
    """``images [B, 3, H, W] (0..1) -> Q [B, K, H, W]``: a CNN's unary refined by a CRF layer.

    Parameters
    ----------
    cnn : nn.Module
        ``[B, 3, H, W] -> [B, K, H, W]`` scores (logits).
    crf : MeanFieldCRF or GridMeanFieldCRF
        Called as ``crf(unary, image_scale * images)``.
    image_scale : float
        Factor from the images' units to the CRF's colour units (255: 0..1 images, ``srgb``
        in 0..255).
    """

    def __init__(self, cnn: nn.Module, crf: nn.Module, image_scale: float = 255.0) -> None:
        super().__init__()
        if not isinstance(crf, (MeanFieldCRF, GridMeanFieldCRF)):
            raise TypeError(f"crf: expected a crfkit.nn.MeanFieldCRF or GridMeanFieldCRF, got {type(crf).__name__}")
        self.cnn, self.crf = cnn, crf
        self.image_scale = check_real("image_scale", image_scale, minimum=0.0, open_minimum=True)

    def unary(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, K, H, W]`` unary energies ``-log softmax(cnn(images))``."""
        return -torch.log_softmax(self.cnn(images), dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``Q [B, K, H, W]``, the CRF's mean-field marginals."""
        return self.crf(self.unary(images), self.image_scale * images)


def deeplab_crf_small(num_classes: int = 10, gaussian: Sequence[float] = (3.0, 3.0),
                      bilateral: Sequence[float] = (20.0, 13.0, 10.0), iterations: int = 5,
                      test_iterations: int | None = None, filter: str = "permutohedral") -> CNNCRF:
    """The small DeepLab (:func:`~crfkit.models.deeplab_small`) under a dense CRF-as-RNN layer.

    Parameters
    ----------
    num_classes : int
    gaussian : (sxy, weight)
        The smoothness kernel at initialisation (pydensecrf's 3, 3).
    bilateral : (sxy, srgb, weight)
        The appearance kernel at initialisation, ``srgb`` in 0..255 (default: lecture 05's
        choice on the validation scenes, 20 / 13 / 10).
    iterations, test_iterations, filter
        As :class:`~crfkit.nn.MeanFieldCRF`.

    Returns
    -------
    CNNCRF
        482,650 parameters in the CNN plus ``2 + 2 K^2`` in the CRF (K = 10: 202); the
        compatibilities start as Potts.
    """
    g_sxy, g_w = gaussian
    b_sxy, b_srgb, b_w = bilateral
    kernels = (GaussianKernel(sxy=g_sxy, weight=g_w), BilateralKernel(sxy=b_sxy, srgb=b_srgb, weight=b_w))
    crf = MeanFieldCRF(num_classes, kernels, iterations=iterations, filter=filter, test_iterations=test_iterations)
    return CNNCRF(deeplab_small(num_classes), crf)
