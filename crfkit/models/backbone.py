"""The small VGG-like backbone shared by the segmentation networks (FCN, SegNet, DeepLab).

Five stages of ``n`` x (3x3 convolution, batch norm, ReLU), each followed in the networks by a
2x2 max pooling (Simonyan & Zisserman 2015, with batch norm after every convolution as in
Ioffe & Szegedy 2015 and far fewer channels, so that it trains from scratch on 64x64 scenes in
minutes on a CPU). FCN uses all five stages (output stride 32), SegNet mirrors them in its
decoder, DeepLab drops the last poolings and dilates instead.

References
----------
K. Simonyan, A. Zisserman. Very deep convolutional networks for large-scale image recognition.
ICLR 2015. https://arxiv.org/abs/1409.1556
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from crfkit._validate import check_positive_int

__all__ = ["SMALL_DEPTHS", "SMALL_WIDTHS", "check_widths_depths", "vgg_stage"]

#: Channels of the five backbone stages of the small segmentation networks.
SMALL_WIDTHS = (16, 32, 64, 64, 96)
#: Convolutions per stage of the small segmentation networks.
SMALL_DEPTHS = (1, 2, 2, 2, 2)


def check_widths_depths(widths: Sequence[int], depths: Sequence[int], stages: int = 5) -> tuple:
    """The per-stage ``widths`` and ``depths`` of a backbone as tuples, each a sequence of ``stages`` positive ints."""
    for name, value in (("widths", widths), ("depths", depths)):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != stages:
            raise ValueError(f"{name}: expected a sequence of {stages} positive ints, got {value!r}")
        for v in value:
            check_positive_int(name, v)
    return tuple(widths), tuple(depths)


def vgg_stage(in_channels: int, out_channels: int, num_convs: int, dilation: int = 1) -> nn.Sequential:
    """``num_convs`` x (3x3 conv, padding = dilation, no bias; BN; ReLU): keeps ``H, W``.

    ``[B, C_in, H, W] -> [B, C_out, H, W]``; ``9 C_out (C_in + (n - 1) C_out) + 2 n C_out``
    parameters. Shared by FCN, SegNet and DeepLab.
    """
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3,
                      padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)
