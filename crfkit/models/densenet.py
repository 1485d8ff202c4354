"""Densely connected networks, DenseNet-BC (Huang et al. 2017): 121, 169, 201 and a small one.

Inside a dense block every layer receives the feature maps of all earlier layers,
``x_l = H_l([x_0, ..., x_{l-1}])`` (Eq. 2), and adds ``k`` (the growth rate) new ones.
Transitions between blocks halve the channels (compression 0.5) and the resolution.
ImageNet layout (Table 1), growth rate 32, bottleneck ``bn_size = 4``::

    [B, 3, 224, 224]
    conv 7x7/2, 64, BN, ReLU, maxpool 3/2 -> [B, 64, 56, 56]
    dense block 1 (L1 layers) -> transition -> [B, C1 / 2, 28, 28]
    dense block 2 (L2 layers) -> transition -> [B, C2 / 2, 14, 14]
    dense block 3 (L3 layers) -> transition -> [B, C3 / 2, 7, 7]
    dense block 4 (L4 layers) -> BN, ReLU, global avgpool -> [B, C4] -> fc -> [B, K]

===========  ===============  ===========  ==========
name         blocks           parameters   GMACs/224²
===========  ===============  ===========  ==========
densenet121  6, 12, 24, 16    7,978,856    2.8
densenet169  6, 12, 32, 32    14,149,480   3.4
densenet201  6, 12, 48, 32    20,013,928   4.3
===========  ===============  ===========  ==========

References
----------
Huang, G., Liu, Z., van der Maaten, L., Weinberger, K. Q. (2017). Densely connected
convolutional networks. CVPR.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from crfkit._validate import check_choice, check_positive_int, check_probability
from crfkit.models._common import init_weights
from crfkit.models.blocks import DenseBlock, Transition

__all__ = ["DenseNet", "densenet121", "densenet169", "densenet201", "densenet_small"]


class DenseNet(nn.Module):
    """DenseNet-BC: stem, dense blocks joined by compressing transitions, BN-ReLU-pool-fc.

    Parameters
    ----------
    growth_rate : int
        ``k``, channels added by each layer (32 on ImageNet).
    block_config : sequence of int
        Layers per dense block.
    num_init_features : int
        Channels after the stem (``2 k`` in the paper).
    bn_size : int
        Bottleneck factor of each :class:`~crfkit.models.blocks.DenseLayer` (4).
    compression : float
        ``theta`` in (0, 1]: a transition maps ``C`` to ``floor(theta C)`` channels (0.5).
    drop_rate : float
        Dropout in each dense layer.
    num_classes, in_channels : int
    stem : {"imagenet", "cifar", "small"}
        ``"imagenet"``: 7x7/2 conv + BN + ReLU + 3x3/2 max pool (``H -> H / 4``);
        ``"cifar"``: one 3x3 conv at full resolution; ``"small"``: 3x3 conv + BN + ReLU +
        3x3/2 max pool (``H -> H / 2``).

    Shapes
    ------
    ``[B, C, H, W] -> [B, K]``.

    References
    ----------
    Huang, G., Liu, Z., van der Maaten, L., Weinberger, K. Q. (2017). Densely connected
    convolutional networks. CVPR.
    """

    def __init__(self, growth_rate: int = 32, block_config: Sequence[int] = (6, 12, 24, 16),
                 num_init_features: int = 64, bn_size: int = 4, compression: float = 0.5,
                 drop_rate: float = 0.0, num_classes: int = 1000, in_channels: int = 3, *,
                 stem: str = "imagenet") -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        check_positive_int("growth_rate", growth_rate)
        check_positive_int("num_init_features", num_init_features)
        check_probability("drop_rate", drop_rate)
        check_choice("stem", stem, ("imagenet", "cifar", "small"))
        if isinstance(compression, bool) or not 0.0 < float(compression) <= 1.0:
            raise ValueError(f"compression: expected a float in (0, 1], got {compression!r}")
        if len(block_config) == 0:
            raise ValueError("block_config: expected at least one dense block, got none")
        c0 = num_init_features
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c0, 7, stride=2, padding=3, bias=False),  # H / 2
                nn.BatchNorm2d(c0),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),  # [B, c0, H / 4, W / 4]
            )
        elif stem == "small":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c0, 3, padding=1, bias=False),  # [B, c0, H, W]
                nn.BatchNorm2d(c0),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),  # [B, c0, H / 2, W / 2]
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, c0, 3, padding=1, bias=False),  # [B, c0, H, W]
            )
        layers: list[nn.Module] = []
        channels = c0
        for i, num_layers in enumerate(block_config):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size, drop_rate)
            layers.append(block)
            channels = block.out_channels  # channels + num_layers * k
            if i != len(block_config) - 1:
                reduced = int(channels * compression)
                layers.append(Transition(channels, reduced))  # [B, reduced, H / 2, W / 2]
                channels = reduced
        layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # [B, channels, 1, 1]
        self.fc = nn.Linear(channels, num_classes)
        self.out_channels = channels
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.stem(x))  # [B, C_last, H', W']
        x = torch.flatten(self.avgpool(x), 1)  # [B, C_last]
        return self.fc(x)  # [B, K]


def densenet121(num_classes: int = 1000, in_channels: int = 3, drop_rate: float = 0.0
                ) -> DenseNet:
    """DenseNet-121 (k = 32, blocks 6-12-24-16): 7,978,856 parameters, 2.8 GMACs per 224².

    ``[B, 3, 224, 224] -> [B, num_classes]``. Huang et al. (2017), Table 1.
    """
    return DenseNet(32, (6, 12, 24, 16), 64, 4, 0.5, drop_rate, num_classes, in_channels)


def densenet169(num_classes: int = 1000, in_channels: int = 3, drop_rate: float = 0.0
                ) -> DenseNet:
    """DenseNet-169 (k = 32, blocks 6-12-32-32): 14,149,480 parameters, 3.4 GMACs per 224².

    ``[B, 3, 224, 224] -> [B, num_classes]``. Huang et al. (2017), Table 1.
    """
    return DenseNet(32, (6, 12, 32, 32), 64, 4, 0.5, drop_rate, num_classes, in_channels)


def densenet201(num_classes: int = 1000, in_channels: int = 3, drop_rate: float = 0.0
                ) -> DenseNet:
    """DenseNet-201 (k = 32, blocks 6-12-48-32): 20,013,928 parameters, 4.3 GMACs per 224².

    ``[B, 3, 224, 224] -> [B, num_classes]``. Huang et al. (2017), Table 1.
    """
    return DenseNet(32, (6, 12, 48, 32), 64, 4, 0.5, drop_rate, num_classes, in_channels)


def densenet_small(in_channels: int = 3, num_classes: int = 10, *, growth_rate: int = 8,
                   block_config: Sequence[int] = (4, 4, 4), bn_size: int = 4,
                   compression: float = 0.5, drop_rate: float = 0.0) -> DenseNet:
    """A three-block DenseNet-BC for 32x32 / 64x64 images.

    ``[B, C, 32, 32] -> 3x3 conv to 2k, maxpool -> [B, 2k, 16, 16] -> dense block ->
    transition -> 8x8 -> dense block -> transition -> 4x4 -> dense block -> pool -> fc``.
    Same :class:`~crfkit.models.blocks.DenseLayer`/``DenseBlock``/``Transition`` as the
    full networks. Defaults (k = 8, 4-4-4 layers, C=3, K=10): 46,682 parameters,
    5.2M MACs per 32x32 image.
    """
    return DenseNet(growth_rate, block_config, 2 * growth_rate, bn_size, compression,
                    drop_rate, num_classes, in_channels, stem="small")
