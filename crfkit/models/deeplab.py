"""DeepLab: an atrous backbone, atrous spatial pyramid pooling (ASPP), bilinear upsampling.

Pooling makes a classification network's features coarse; FCN fuses finer skip scores to
recover detail. DeepLab keeps the features dense instead: it removes the stride of the
last pooling layer(s) and dilates every later convolution by the factor lost, the "hole
algorithm" (Chen et al. 2018, Sec. 3.1). An atrous (dilated) convolution with rate ``r``
samples its input ``r`` pixels apart (Chen et al. 2018, Eq. 1)::

    y[i] = sum_k x[i + r k] w[k]

so that the same weights see the same context as before on a grid ``r`` times finer, at
no extra parameters. The network::

    image [B, C, H, W]
    stages 1-3: conv3x3-BN-ReLU x n, maxpool 2/2   -> [B, 64, H/8, W/8]
    stage 4:    conv3x3-BN-ReLU x 2
                output stride 16: maxpool 2/2      -> [B, 64, H/16, W/16]
                output stride 8:  no pool          -> [B, 64, H/8,  W/8]
    stage 5:    conv3x3-BN-ReLU x 2, dilation 2 at output stride 8 (it follows the
                removed pool), 1 at 16             -> [B, 96, H/os, W/os]    (backbone)
    ASPP: 1x1, three 3x3 with rates r1 < r2 < r3, image pooling; 1x1 fusion
                                                   -> [B, 64, H/os, W/os]
    classifier conv1x1                             -> [B, K, H/os, W/os]    (low_res_scores)
    bilinear upsampling (align_corners=False)      -> [B, K, H, W]

Pools round up (``ceil_mode``), so ``H/os`` means ``ceil(H / os)`` and any input size works.

The backbone is that of the small FCNs (:mod:`crfkit.models.backbone`) without pool5: DeepLab
has no stride-32 layer, so output stride 16 needs no dilation and output stride 8 removes
pool4 and dilates stage 5 by 2. (In the VGG-16 DeepLab of Chen et al. 2018 both pool4 and
pool5 go, conv5 is dilated by 2 and fc6 by 4, or 12 in DeepLab-LargeFOV; the ASPP head
plays fc6's part, Sec. 3.3.)

ASPP rates
----------
The paper's rates are meant for large feature maps: DeepLab v3 uses (6, 12, 18) on the
33x33 map of a 513x513 crop at output stride 16, so its three 3x3 branches span
``2r + 1`` = 13, 25 and 37 pixels, 0.4, 0.75 and 1.1 times the map's side. A 64x64 image
at output stride 8 gives an **8x8** map, where (6, 12, 18) would put all but the centre tap
of most windows in the zero padding (the degenerate case of DeepLab v3, Fig. 4). The
default rates are therefore scaled to the small map: **(1, 2, 4) at output stride 8**
(spans 3, 5, 9 = 0.38, 0.63, 1.1 of 8 pixels) and **(1, 2, 3) at output stride 16** (the
smallest distinct rates; on a 4x4 map the largest branches already see mostly padding
and the image-pooling branch supplies the global context). On the validation split the
choice hardly matters ((2, 4, 6), (1, 2, 4) and (1, 2, 3) at output stride 8 all reach a
mean IoU of 0.635-0.640 with the shipped recipe at 1500 steps); the output stride does
(0.43 at 16).

Small configuration (C=3, K=10): ``deeplab_small()``: 482,650 parameters at either output
stride (the rates do not change the count), 56.0M multiply-accumulates per 64x64 image at
output stride 8, 40.1M at 16.

References
----------
L.-C. Chen, G. Papandreou, I. Kokkinos, K. Murphy, A. L. Yuille. DeepLab: Semantic image
segmentation with deep convolutional nets, atrous convolution, and fully connected CRFs.
TPAMI 2018. https://arxiv.org/abs/1606.00915
L.-C. Chen, G. Papandreou, F. Schroff, H. Adam. Rethinking atrous convolution for semantic
image segmentation (DeepLab v3). arXiv 2017. https://arxiv.org/abs/1706.05587
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from crfkit._validate import check_choice, check_positive_int
from crfkit.models._common import init_weights
from crfkit.models.backbone import SMALL_DEPTHS, SMALL_WIDTHS, check_widths_depths, vgg_stage

__all__ = ["ASPP", "DEFAULT_RATES", "DeepLab", "deeplab_small"]


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel_size - 1) // 2  # keeps H, W
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling, the head of DeepLab v3 (Chen et al. 2017, Sec. 3.3).

    Parallel branches look at the same feature map with different fields of view, and
    their outputs are concatenated and fused by a 1x1 convolution:

    1. a 1x1 convolution;
    2. one 3x3 convolution per rate ``r`` in ``rates``, dilated by ``r`` (padding ``r``);
    3. image pooling: global average pooling, a 1x1 convolution, then the result is
       spread back over ``H x W`` (bilinear upsampling of a 1x1 map = copying);
    4. the ``len(rates) + 2`` branch outputs are concatenated and projected by a 1x1
       convolution to ``out_channels``.

    Every convolution has no bias and is followed by batch norm and ReLU.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C_in`` of the feature map and ``C_out`` of every branch and of the output.
    rates : sequence of int, default (6, 12, 18)
        Dilation rates of the 3x3 branches: DeepLab v3's choice at output stride 16.

    Shapes
    ------
    ``[B, C_in, H, W] -> [B, C_out, H, W]``.

    Parameters count ``C_in C_out (2 + 9 R) + C_out^2 (R + 2) + 2 C_out (R + 3)`` with
    ``R = len(rates)`` (convolution weights, then batch-norm weights and biases).
    """

    def __init__(self, in_channels: int, out_channels: int, rates: Sequence[int] = (6, 12, 18)) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        if isinstance(rates, (str, bytes)) or not isinstance(rates, Sequence) or len(rates) == 0:
            raise TypeError(f"rates: expected a non-empty sequence of positive ints, got {rates!r}")
        for r in rates:
            check_positive_int("rates", r)
        self.rates = tuple(rates)
        branches = [_conv_bn_relu(in_channels, out_channels, 1)]
        branches += [_conv_bn_relu(in_channels, out_channels, 3, dilation=r) for r in self.rates]
        self.branches = nn.ModuleList(branches)
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), _conv_bn_relu(in_channels, out_channels, 1))
        self.project = _conv_bn_relu((len(self.rates) + 2) * out_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        outs = [branch(x) for branch in self.branches]  # each [B, C_out, H, W]
        pooled = self.image_pool(x)  # [B, C_out, 1, 1]
        outs.append(F.interpolate(pooled, size=(h, w), mode="bilinear", align_corners=False))
        return self.project(torch.cat(outs, dim=1))  # [B, (R + 2) C_out, H, W] -> [B, C_out, H, W]


#: Default ASPP rates per output stride, in pixels of the backbone's output map (see DeepLab).
DEFAULT_RATES = {8: (1, 2, 4), 16: (1, 2, 3)}


class DeepLab(nn.Module):
    """DeepLab: atrous backbone, ASPP head, 1x1 classifier, bilinear upsampling.

    See the module docstring for the backbone at each output stride and the choice of
    ASPP rates.

    Parameters
    ----------
    num_classes : int
        ``K``.
    in_channels : int
        ``C`` of the image.
    output_stride : {8, 16}
        Ratio of the input size to the size of the backbone's output map.
    rates : sequence of int, optional
        ASPP rates, in pixels of the backbone's output map. Default
        :data:`DEFAULT_RATES` ``[output_stride]``: (1, 2, 4) at 8, (1, 2, 3) at 16
        (see the module docstring).
    widths, depths : sequence of 5 ints
        Channels and 3x3 convolutions of the five backbone stages.
    aspp_channels : int
        ``C_out`` of every ASPP branch and of its output.

    Attributes
    ----------
    output_stride : int
    rates : tuple of int
        The ASPP rates.
    dilations : tuple of int
        Dilation of the convolutions of each backbone stage: ``(1, 1, 1, 1, 2)`` at output
        stride 8, ``(1, 1, 1, 1, 1)`` at 16.
    backbone : nn.Sequential
        ``[B, C, H, W] -> [B, C_5, ceil(H / os), ceil(W / os)]``.
    aspp : ASPP
    classifier : nn.Conv2d
        1x1, ``aspp_channels -> K``.

    Shapes
    ------
    ``[B, C, H, W] -> [B, K, H, W]`` for any ``H, W >= 1``.

    References
    ----------
    L.-C. Chen et al. DeepLab. TPAMI 2018 (atrous convolution, Sec. 3.1; ASPP, Sec. 3.3).
    L.-C. Chen et al. Rethinking atrous convolution (DeepLab v3). arXiv 2017.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, output_stride: int = 8,
                 rates: Sequence[int] | None = None, *, widths: Sequence[int] = SMALL_WIDTHS,
                 depths: Sequence[int] = SMALL_DEPTHS, aspp_channels: int = 64) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        check_choice("output_stride", output_stride, (8, 16))
        widths, depths = check_widths_depths(widths, depths)
        check_positive_int("aspp_channels", aspp_channels)
        self.num_classes = num_classes
        self.output_stride = output_stride
        # The hole algorithm: each stride-2 pool removed doubles the dilation of what follows.
        self.dilations = (1, 1, 1, 1, 2) if output_stride == 8 else (1, 1, 1, 1, 1)
        strides = (2, 2, 2, 1) if output_stride == 8 else (2, 2, 2, 2)  # pools after stages 1-4
        channels = (in_channels,) + widths
        layers: list[nn.Module] = []
        for s in range(5):
            layers.append(vgg_stage(channels[s], channels[s + 1], depths[s], self.dilations[s]))
            if s < 4 and strides[s] == 2:
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))  # H -> ceil(H / 2)
        self.backbone = nn.Sequential(*layers)
        self.aspp = ASPP(widths[4], aspp_channels, DEFAULT_RATES[output_stride] if rates is None else rates)
        self.rates = self.aspp.rates
        self.classifier = nn.Conv2d(aspp_channels, num_classes, 1)
        init_weights(self)

    def low_res_scores(self, x: torch.Tensor) -> torch.Tensor:
        """The raw class scores before upsampling: ``[B, C, H, W] -> [B, K, h, w]``.

        ``h = ceil(H / output_stride)``, ``w = ceil(W / output_stride)`` (8x8 for a 64x64
        image at output stride 8).
        """
        features = self.backbone(x)  # [B, C_5, h, w]
        return self.classifier(self.aspp(features))  # [B, C_aspp, h, w] -> [B, K, h, w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.low_res_scores(x)  # [B, K, h, w]
        return F.interpolate(scores, size=x.shape[-2:], mode="bilinear", align_corners=False)  # [B, K, H, W]


def deeplab_small(num_classes: int = 10, in_channels: int = 3, output_stride: int = 8,
                  rates: Sequence[int] | None = None) -> DeepLab:
    """DeepLab on the small backbone (widths 16, 32, 64, 64, 96) with a 64-channel ASPP.

    ``[B, C, H, W] -> [B, K, H, W]``; 482,650 parameters (C=3, K=10, three rates, either
    output stride). Default rates (1, 2, 4) at output stride 8, (1, 2, 3) at 16.
    """
    return DeepLab(num_classes, in_channels, output_stride, rates)
