"""DeepLab: an atrous backbone, atrous spatial pyramid pooling (ASPP), bilinear upsampling.

(work in progress: :class:`ASPP` is final; the DeepLab network is being written)

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

from crfkit.models._common import check_positive_int

__all__ = ["ASPP"]


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
