"""VGG networks (Simonyan & Zisserman 2015), configurations A, B, D, E with optional BN.

Stacks of 3x3 convolutions (padding 1) separated by 2x2 max pools, then three fully
connected layers. Two stacked 3x3 layers see a 5x5 window and three see 7x7, with
``27 C^2`` instead of ``49 C^2`` weights for ``C`` channels, and three non-linearities
instead of one (Sec. 2.3)::

    [B, 3, 224, 224] -> 5 stages of 3x3 convs (64, 128, 256, 512, 512 channels), each
    followed by maxpool 2/2 -> [B, 512, 7, 7] -> adaptive avgpool 7x7 -> flatten [B, 25088]
    -> fc 4096, dropout, fc 4096, dropout, fc num_classes -> [B, num_classes]

========  ====  ===============  ==============  ===========
name      cfg   conv layers      parameters      GMACs/224²
========  ====  ===============  ==============  ===========
vgg11     A     1-1-2-2-2 = 8    132,863,336     7.6
vgg13     B     2-2-2-2-2 = 10   133,047,848     11.3
vgg16     D     2-2-3-3-3 = 13   138,357,544     15.5
vgg19     E     2-2-4-4-4 = 16   143,667,240     19.6
========  ====  ===============  ==============  ===========

``*_bn`` variants put a batch norm after every convolution (Ioffe & Szegedy 2015; not in
the paper): ``+ 2 * (sum of conv widths)`` parameters.

References
----------
Simonyan, K., Zisserman, A. (2015). Very deep convolutional networks for large-scale image
recognition. ICLR.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from crfkit._validate import check_choice, check_positive_int, check_probability
from crfkit.models._common import init_weights

__all__ = [
    "VGG",
    "VGG_CONFIGS",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "vgg_small",
]

#: Conv widths per depth (Simonyan & Zisserman 2015, Table 1); "M" is a 2x2 max pool.
VGG_CONFIGS: dict[int, list] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """A VGG network from a layer list.

    Parameters
    ----------
    config : sequence of int or "M"
        Conv widths in order, ``"M"`` for a 2x2/2 max pool (see ``VGG_CONFIGS``).
    num_classes : int
        ``K``.
    in_channels : int
        ``C`` of the input image.
    batch_norm : bool
        Batch norm after every convolution.
    hidden : int
        Width of the two hidden fully connected layers (4096).
    pool_size : int
        Output side of the adaptive average pool before the classifier (7).
    dropout : float
        Dropout after fc1 and fc2 (0.5).

    Shapes
    ------
    ``[B, C, H, W] -> [B, K]``; ``H, W >= 32`` for the five pools of the full configs.

    Cost: each 3x3 conv costs ``9 C_in C_out`` weights and as many MACs per output pixel.

    References
    ----------
    Simonyan, K., Zisserman, A. (2015). Very deep convolutional networks for large-scale
    image recognition. ICLR.
    """

    def __init__(self, config: Sequence[int | str], num_classes: int = 1000,
                 in_channels: int = 3, *, batch_norm: bool = False, hidden: int = 4096,
                 pool_size: int = 7, dropout: float = 0.5) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        check_positive_int("hidden", hidden)
        check_positive_int("pool_size", pool_size)
        check_probability("dropout", dropout)
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2, stride=2))  # H, W -> H // 2, W // 2
                continue
            width = check_positive_int("config", item)
            layers.append(nn.Conv2d(channels, width, 3, padding=1))  # [B, width, H, W]
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
            channels = width
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)  # [B, 512, 7, 7]
        self.classifier = nn.Sequential(
            nn.Linear(channels * pool_size * pool_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))  # [B, C_last, pool_size, pool_size]
        x = torch.flatten(x, 1)  # [B, C_last * pool_size^2]
        return self.classifier(x)  # [B, K]


def _vgg(depth: int, batch_norm: bool, num_classes: int, in_channels: int,
         dropout: float) -> VGG:
    return VGG(VGG_CONFIGS[depth], num_classes, in_channels, batch_norm=batch_norm,
               dropout=dropout)


def vgg11(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-11 (config A): 8 convs + 3 fc, 132,863,336 parameters, 7.6 GMACs per 224x224 image.

    ``[B, 3, 224, 224] -> [B, num_classes]``. Simonyan & Zisserman (2015), Table 1.
    """
    return _vgg(11, False, num_classes, in_channels, dropout)


def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-11 with batch norm: 132,868,840 parameters. See :func:`vgg11`."""
    return _vgg(11, True, num_classes, in_channels, dropout)


def vgg13(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-13 (config B): 10 convs + 3 fc, 133,047,848 parameters, 11.3 GMACs per 224² image.

    ``[B, 3, 224, 224] -> [B, num_classes]``. Simonyan & Zisserman (2015), Table 1.
    """
    return _vgg(13, False, num_classes, in_channels, dropout)


def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-13 with batch norm: 133,053,736 parameters. See :func:`vgg13`."""
    return _vgg(13, True, num_classes, in_channels, dropout)


def vgg16(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16 (config D): 13 convs + 3 fc, 138,357,544 parameters, 15.5 GMACs per 224² image.

    ``[B, 3, 224, 224] -> [B, num_classes]``. Simonyan & Zisserman (2015), Table 1.
    """
    return _vgg(16, False, num_classes, in_channels, dropout)


def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16 with batch norm: 138,365,992 parameters. See :func:`vgg16`."""
    return _vgg(16, True, num_classes, in_channels, dropout)


def vgg19(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19 (config E): 16 convs + 3 fc, 143,667,240 parameters, 19.6 GMACs per 224² image.

    ``[B, 3, 224, 224] -> [B, num_classes]``. Simonyan & Zisserman (2015), Table 1.
    """
    return _vgg(19, False, num_classes, in_channels, dropout)


def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19 with batch norm: 143,678,248 parameters. See :func:`vgg19`."""
    return _vgg(19, True, num_classes, in_channels, dropout)


def vgg_small(depth: int = 11, in_channels: int = 3, num_classes: int = 10, *,
              batch_norm: bool = True, width: int = 16, hidden: int = 256,
              dropout: float = 0.5) -> VGG:
    """A VGG of the given depth with all widths scaled by ``width / 64``, for 32x32 images.

    Same layer list as the full network (``VGG_CONFIGS[depth]``), channels
    ``width, 2 width, 4 width, 8 width, 8 width``; the five pools take 32x32 to 1x1
    (64x64 to 2x2, then averaged), classifier ``8 width -> hidden -> hidden -> K``.
    Defaults (depth 11, width 16, C=3, K=10): 679,882 parameters, 10M MACs per 32x32 image.

    Parameters
    ----------
    depth : {11, 13, 16, 19}
    in_channels, num_classes : int
    batch_norm : bool
        On by default: without it deep VGGs hardly train from scratch at these sizes.
    width : int
        Channels of the first stage (64 in the full network).
    hidden : int
        Width of the two hidden fully connected layers.
    dropout : float

    Returns
    -------
    VGG
        ``[B, in_channels, H, W] -> [B, num_classes]``.
    """
    check_choice("depth", depth, tuple(VGG_CONFIGS))
    check_positive_int("width", width)
    config = [c if c == "M" else c * width // 64 for c in VGG_CONFIGS[depth]]
    return VGG(config, num_classes, in_channels, batch_norm=batch_norm, hidden=hidden,
               pool_size=1, dropout=dropout)
