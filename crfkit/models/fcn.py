"""Fully convolutional networks (Long, Shelhamer & Darrell 2015): FCN-32s, FCN-16s, FCN-8s.

A classification network becomes a dense predictor when its fully connected layers are
read as convolutions ("convolutionalization", Sec. 3.1): the network then maps an image of
any size to a coarse map of class scores, one score vector per ``32 x 32`` block. FCN
upsamples that map back to the input and, in its 16s and 8s variants, adds finer scores
predicted from earlier pooling layers ("skip" layers, Sec. 4.2, Fig. 3)::

    image [B, C, H, W]   (H, W multiples of 32; see "Any input size" below)
    stage 1..5: conv3x3-BN-ReLU x n, maxpool 2/2  -> pool3 [B, C3, H/8,  W/8]
                                                    pool4 [B, C4, H/16, W/16]
                                                    pool5 [B, C5, H/32, W/32]
    fc6 = conv3x3-BN-ReLU, fc7 = conv1x1-BN-ReLU    -> [B, F, H/32, W/32]
    score_fr = conv1x1                              -> s32 [B, K, H/32, W/32]

    FCN-32s: up_32(s32)                                                  -> [B, K, H, W]
    FCN-16s: s16 = up_2(s32) + score_pool4(pool4);  up_16(s16)           -> [B, K, H, W]
    FCN-8s:  s8  = up_2'(s16) + score_pool3(pool3); up_8(s8)             -> [B, K, H, W]

``up_f`` is a transposed convolution with kernel ``2f``, stride ``f``, padding ``f / 2``,
initialised to bilinear interpolation (:func:`crfkit.nn.functional.bilinear_upsampling_weight`):
away from the border it computes exactly ``F.interpolate(scale_factor=f, mode="bilinear",
align_corners=False)``. As in the paper, the x2 layers inside the net are learnt (Sec. 4.2:
"initialized to bilinear interpolation, but allowed to be learned") and the final one is
fixed to bilinear interpolation (its weight has ``requires_grad=False``; it is a depthwise
layer, ``groups=K``, because bilinear interpolation does not mix classes). The skip score
layers ``score_pool4`` and ``score_pool3`` start at zero (Sec. 4.2: "zero-initialized so
that the net starts with unmodified predictions"), so a fresh FCN-16s outputs
``up_16(up_2(s32))``: only its coarse path.

Any input size
--------------
The paper pads the first convolution by 100 pixels and crops the upsampled scores back
(Sec. 4.1, "Crop" layers). Here the image is padded with zeros on the bottom and right to
the next multiple of 32; every stride then divides every size exactly, ``up_f`` with
padding ``f / 2`` lands exactly on the finer grid, and the final scores are cropped to
``H x W``. The same pixel therefore gets the same score whatever the padding, up to the
zeros the padded margin contributes through the receptive field.

Differences from the paper, for a small fast network trained from scratch: a VGG-like
backbone with far fewer channels and **batch norm** after every convolution (not in the
paper), ``fc6`` a 3x3 (not 7x7) convolution since the pool5 map of a 64x64 image is 2x2,
no dropout by default, and every variant trained end to end from scratch ("all at once";
Shelhamer et al. 2017, Sec. 4.2, found it as good as the staged 32s -> 16s -> 8s recipe).

Small configurations (C=3, K=10; backbone widths 16, 32, 64, 64, 96 with 1, 2, 2, 2, 2
convolutions, ``fc6``/``fc7`` 128 channels; "fixed" = the final bilinear layer, counted in
the total; MACs per 64x64 image from :func:`crfkit.summary.summary`):

==================  ==========  ======  =====  ======================
model               parameters  fixed   MACs   finest scores (64x64)
==================  ==========  ======  =====  ======================
``fcn32s_small()``  452,314     40,960  37.7M  ``[B, 10, 2, 2]``
``fcn16s_small()``  423,844     10,240  37.7M  ``[B, 10, 4, 4]``
``fcn8s_small()``   418,414     2,560   37.8M  ``[B, 10, 8, 8]``
==================  ==========  ======  =====  ======================

References
----------
J. Long, E. Shelhamer, T. Darrell. Fully convolutional networks for semantic segmentation.
CVPR 2015. https://arxiv.org/abs/1411.4038
E. Shelhamer, J. Long, T. Darrell. Fully convolutional networks for semantic segmentation.
TPAMI 39(4), 2017. https://arxiv.org/abs/1605.06211
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from crfkit._validate import check_choice, check_positive_int, check_probability
from crfkit.models._common import init_weights
from crfkit.models.backbone import SMALL_DEPTHS, SMALL_WIDTHS, check_widths_depths, vgg_stage
from crfkit.nn.functional import bilinear_kernel, bilinear_upsampling_weight

__all__ = ["FCN", "fcn8s_small", "fcn16s_small", "fcn32s_small"]

_VARIANTS = ("32s", "16s", "8s")


def _upsampling(num_classes: int, factor: int, *, learnable: bool) -> nn.ConvTranspose2d:
    """Transposed convolution ``x factor`` (kernel 2f, stride f, padding f/2), bilinear at init.

    Learnable: full ``K -> K`` weight ``[K, K, 2f, 2f]`` (diagonal at init), as in FCN.
    Fixed: depthwise (``groups=K``) weight ``[K, 1, 2f, 2f]`` with ``requires_grad=False``.
    """
    k = 2 * factor
    if learnable:
        layer = nn.ConvTranspose2d(num_classes, num_classes, k, stride=factor, padding=factor // 2,
                                   bias=False)
        with torch.no_grad():
            layer.weight.copy_(bilinear_upsampling_weight(num_classes, factor))
    else:
        layer = nn.ConvTranspose2d(num_classes, num_classes, k, stride=factor, padding=factor // 2,
                                   groups=num_classes, bias=False)
        with torch.no_grad():
            layer.weight.copy_(bilinear_kernel(k).expand(num_classes, 1, k, k))
        layer.weight.requires_grad_(False)
    return layer


class FCN(nn.Module):
    """A fully convolutional network, variant FCN-32s, FCN-16s or FCN-8s (Long et al. 2015).

    See the module docstring for the architecture, the upsampling layers and how inputs
    of any size are handled.

    Parameters
    ----------
    num_classes : int
        ``K``.
    in_channels : int
        ``C`` of the image.
    variant : {"32s", "16s", "8s"}
        Output stride of the finest scores that are fused: 32 (no skip), 16 (pool4 skip),
        8 (pool4 and pool3 skips).
    widths, depths : sequence of 5 ints
        Channels and number of 3x3 convolutions of the five backbone stages.
    fc_channels : int
        ``F``, channels of ``fc6`` and ``fc7``.
    dropout : float
        Dropout after ``fc6`` and ``fc7`` (0.5 in the paper; 0 by default here).

    Attributes
    ----------
    variant : str
        ``"32s"``, ``"16s"`` or ``"8s"``.
    stages : nn.ModuleList
        The five backbone stages (each followed by a 2x2/2 max pool in :meth:`forward`).
    score_fr, score_pool4, score_pool3 : nn.Conv2d
        1x1 score layers (the skip layers exist only in the variants that use them).
    upscore2, upscore_pool4 : nn.ConvTranspose2d
        Learnable x2 upsamplings (16s, 8s).
    upscore : nn.ConvTranspose2d
        The final fixed bilinear upsampling (x32, x16 or x8).

    Shapes
    ------
    ``[B, C, H, W] -> [B, K, H, W]`` for any ``H, W >= 1``.

    References
    ----------
    J. Long, E. Shelhamer, T. Darrell. Fully convolutional networks for semantic
    segmentation. CVPR 2015.
    """

    stride = 32

    def __init__(self, num_classes: int = 10, in_channels: int = 3, variant: str = "8s", *,
                 widths: Sequence[int] = SMALL_WIDTHS, depths: Sequence[int] = SMALL_DEPTHS,
                 fc_channels: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        check_choice("variant", variant, _VARIANTS)
        widths, depths = check_widths_depths(widths, depths)
        check_positive_int("fc_channels", fc_channels)
        check_probability("dropout", dropout)
        self.variant = variant
        self.num_classes = num_classes
        channels = (in_channels,) + widths
        self.stages = nn.ModuleList(
            vgg_stage(channels[i], channels[i + 1], depths[i]) for i in range(5)
        )
        self.pool = nn.MaxPool2d(2, stride=2)
        self.fc = nn.Sequential(
            nn.Conv2d(widths[4], fc_channels, 3, padding=1, bias=False),  # fc6
            nn.BatchNorm2d(fc_channels),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout),
            nn.Conv2d(fc_channels, fc_channels, 1, bias=False),  # fc7
            nn.BatchNorm2d(fc_channels),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout),
        )
        self.score_fr = nn.Conv2d(fc_channels, num_classes, 1)
        init_weights(self)
        if variant in ("16s", "8s"):
            self.score_pool4 = nn.Conv2d(widths[3], num_classes, 1)
            self.upscore2 = _upsampling(num_classes, 2, learnable=True)
        if variant == "8s":
            self.score_pool3 = nn.Conv2d(widths[2], num_classes, 1)
            self.upscore_pool4 = _upsampling(num_classes, 2, learnable=True)
        for name in ("score_pool4", "score_pool3"):
            if hasattr(self, name):  # zero-initialised skips (Long et al. 2015, Sec. 4.2)
                nn.init.zeros_(getattr(self, name).weight)
                nn.init.zeros_(getattr(self, name).bias)
        self.upscore = _upsampling(num_classes, int(variant[:-1]), learnable=False)

    def coarse_scores(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The score maps before the final upsampling, for a padded input.

        Parameters
        ----------
        x : Tensor of shape ``[B, C, H, W]``
            ``H`` and ``W`` multiples of 32.

        Returns
        -------
        dict of str to Tensor
            ``"score32"`` ``[B, K, H/32, W/32]`` always; ``"score16"`` ``[B, K, H/16, W/16]``
            (16s, 8s) and ``"score8"`` ``[B, K, H/8, W/8]`` (8s): the fused maps.
        """
        pools = []
        for stage in self.stages:
            x = self.pool(stage(x))  # [B, C_s, H / 2^s, W / 2^s]
            pools.append(x)
        out = {"score32": self.score_fr(self.fc(pools[4]))}  # [B, K, H/32, W/32]
        if self.variant in ("16s", "8s"):
            out["score16"] = self.upscore2(out["score32"]) + self.score_pool4(pools[3])  # [B, K, H/16, W/16]
        if self.variant == "8s":
            fused = self.upscore_pool4(out["score16"]) + self.score_pool3(pools[2])
            out["score8"] = fused  # [B, K, H/8, W/8]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % self.stride, -w % self.stride
        x = F.pad(x, (0, pad_w, 0, pad_h))  # [B, C, H', W'], multiples of 32
        scores = self.coarse_scores(x)[f"score{self.variant[:-1]}"]  # [B, K, H'/f, W'/f]
        return self.upscore(scores)[:, :, :h, :w]  # [B, K, H', W'] -> [B, K, H, W]


def fcn32s_small(num_classes: int = 10, in_channels: int = 3) -> FCN:
    """FCN-32s on the small backbone: coarse scores of pool5 upsampled x32.

    ``[B, C, H, W] -> [B, K, H, W]``; 452,314 parameters (C=3, K=10), 40,960 of them the
    fixed bilinear x32 layer. A 64x64 image gets a 2x2 score map: blobby output.
    """
    return FCN(num_classes, in_channels, "32s")


def fcn16s_small(num_classes: int = 10, in_channels: int = 3) -> FCN:
    """FCN-16s on the small backbone: + a pool4 skip, fixed bilinear x16 at the end.

    ``[B, C, H, W] -> [B, K, H, W]``; 423,844 parameters (C=3, K=10), 10,240 fixed.
    """
    return FCN(num_classes, in_channels, "16s")


def fcn8s_small(num_classes: int = 10, in_channels: int = 3) -> FCN:
    """FCN-8s on the small backbone: + pool4 and pool3 skips, fixed bilinear x8 at the end.

    ``[B, C, H, W] -> [B, K, H, W]``; 418,414 parameters (C=3, K=10), 2,560 fixed.
    """
    return FCN(num_classes, in_channels, "8s")
