"""Residual networks (He et al. 2016): ResNet-18/34/50/101/152 and small CIFAR-style ResNets.

A stage of residual blocks learns ``y = relu(F(x) + x)`` instead of ``y = F(x)``; the
shortcut lets very deep networks train (Sec. 3.1). ImageNet layout (Table 1)::

    [B, 3, 224, 224]
    conv 7x7/2, 64, BN, ReLU -> [B, 64, 112, 112]   maxpool 3/2 -> [B, 64, 56, 56]
    stage 1: n1 blocks, width 64   -> [B,  64 e, 56, 56]
    stage 2: n2 blocks, width 128  -> [B, 128 e, 28, 28]   (first block stride 2)
    stage 3: n3 blocks, width 256  -> [B, 256 e, 14, 14]
    stage 4: n4 blocks, width 512  -> [B, 512 e, 7, 7]
    global avgpool -> [B, 512 e] -> fc -> [B, K]

``e`` is the block's expansion (1 for :class:`ResidualBlock`, 4 for :class:`Bottleneck`).

=========  ==============  ===========  ===========  ==========
name       block           blocks       parameters   GMACs/224²
=========  ==============  ===========  ===========  ==========
resnet18   ResidualBlock   2, 2, 2, 2   11,689,512   1.8
resnet34   ResidualBlock   3, 4, 6, 3   21,797,672   3.7
resnet50   Bottleneck      3, 4, 6, 3   25,557,032   4.1
resnet101  Bottleneck      3, 4, 23, 3  44,549,160   7.8
resnet152  Bottleneck      3, 8, 36, 3  60,192,808   11.5
=========  ==============  ===========  ===========  ==========

Shortcuts change shape with a 1x1 convolution + BN (option B of Sec. 3.3). Every
constructor takes ``residual=False`` for the "plain" counterpart without shortcuts
(Sec. 4.1) and ``se=True`` for squeeze-and-excitation blocks (:mod:`crfkit.models.senet`).

:func:`resnet_small` is the CIFAR-10 family of Sec. 4.2: a 3x3 stem and three stages of
``n`` basic blocks with ``width, 2 width, 4 width`` channels, depth ``6n + 2`` (ResNet-20,
32, 44, 56, 110), parameter-free "pad" shortcuts (option A), so that the plain and the
residual network have exactly the same parameters: the degradation experiment of Fig. 6.

References
----------
He, K., Zhang, X., Ren, S., Sun, J. (2016). Deep residual learning for image recognition. CVPR.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from crfkit._validate import check_choice, check_int, check_positive_int
from crfkit.models._common import init_weights
from crfkit.models.blocks import Bottleneck, ResidualBlock

__all__ = ["ResNet", "imagenet_resnet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "resnet_small"]

#: blocks per stage for each ImageNet depth (He et al. 2016, Table 1)
RESNET_CONFIGS: dict[int, tuple[type[nn.Module], tuple[int, ...]]] = {
    18: (ResidualBlock, (2, 2, 2, 2)),
    34: (ResidualBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """A residual network: stem, stages of blocks (stride 2 from the second on), pool, fc.

    Parameters
    ----------
    block : ResidualBlock or Bottleneck (the class)
    layers : sequence of int
        Blocks per stage.
    widths : sequence of int
        Block width per stage (stage output ``width * block.expansion``).
    num_classes : int
        ``K``.
    in_channels : int
        ``C`` of the input image.
    stem : {"imagenet", "cifar"}
        ``"imagenet"``: 7x7/2 conv to ``widths[0]`` + BN + ReLU + 3x3/2 max pool
        (``H -> H / 4``); ``"cifar"``: 3x3 conv + BN + ReLU, full resolution.
    residual : bool
        ``False`` builds the plain network: the same layers without any shortcut.
    se : bool
        Squeeze-and-excitation in every block (Hu et al. 2018).
    reduction : int
        SE reduction ratio.
    shortcut : {"projection", "pad"}
        See :class:`~crfkit.models.blocks.ResidualBlock`.
    zero_init_residual : bool
        Zero the last BN weight of every block, so that each block starts as ``relu(x)``
        (Goyal et al. 2017); only meaningful with ``residual=True``.

    Shapes
    ------
    ``[B, C, H, W] -> [B, K]``.

    References
    ----------
    He, K., Zhang, X., Ren, S., Sun, J. (2016). Deep residual learning for image recognition.
    CVPR.
    """

    def __init__(self, block: type[nn.Module], layers: Sequence[int], widths: Sequence[int],
                 num_classes: int = 1000, in_channels: int = 3, *, stem: str = "imagenet",
                 residual: bool = True, se: bool = False, reduction: int = 16,
                 shortcut: str = "projection", zero_init_residual: bool = False) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        check_choice("stem", stem, ("imagenet", "cifar"))
        check_choice("block", block, (ResidualBlock, Bottleneck))
        if len(layers) != len(widths) or len(layers) == 0:
            raise ValueError(
                f"layers, widths: expected equal non-zero lengths, got {len(layers)} and "
                f"{len(widths)}"
            )
        for n in layers:
            check_positive_int("layers", n)
        for w in widths:
            check_positive_int("widths", w)
        channels = widths[0]
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, channels, 7, stride=2, padding=3, bias=False),  # H / 2
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),  # [B, widths[0], H / 4, W / 4]
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),  # [B, w0, H, W]
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            )
        options = {"residual": residual, "se": se, "reduction": reduction,
                   "shortcut": shortcut}
        stages = []
        for i, (n, width) in enumerate(zip(layers, widths)):
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(channels, width, stride, **options))
                channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)  # [B, widths[-1] e, H / 2^(s+1), W / 2^(s+1)]
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # [B, widths[-1] e, 1, 1]
        self.fc = nn.Linear(channels, num_classes)
        self.out_channels = channels
        init_weights(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (ResidualBlock, Bottleneck)):
                    nn.init.zeros_(m.last_bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # [B, C_last, H', W']
        x = torch.flatten(self.avgpool(x), 1)  # [B, C_last]
        return self.fc(x)  # [B, K]


def imagenet_resnet(depth: int, num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """The ImageNet ResNet of ``depth`` 18, 34, 50, 101 or 152 (He et al. 2016, Table 1).

    ``[B, in_channels, 224, 224] -> [B, num_classes]``; ``kwargs`` go to :class:`ResNet` (SE-Net
    passes ``se=True``).
    """
    check_choice("depth", depth, tuple(RESNET_CONFIGS))
    block, layers = RESNET_CONFIGS[depth]
    return ResNet(block, layers, (64, 128, 256, 512), num_classes, in_channels, **kwargs)


def resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-18: basic blocks 2-2-2-2, 11,689,512 parameters, 1.8 GMACs per 224² image.

    ``[B, 3, 224, 224] -> [B, num_classes]``. ``kwargs`` go to :class:`ResNet`
    (``residual``, ``se``, ``reduction``, ``zero_init_residual``). He et al. (2016), Table 1.
    """
    return imagenet_resnet(18, num_classes, in_channels, **kwargs)


def resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-34: basic blocks 3-4-6-3, 21,797,672 parameters, 3.7 GMACs per 224² image.

    See :func:`resnet18`. He et al. (2016), Table 1.
    """
    return imagenet_resnet(34, num_classes, in_channels, **kwargs)


def resnet50(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-50: bottlenecks 3-4-6-3, 25,557,032 parameters, 4.1 GMACs per 224² image.

    See :func:`resnet18`. He et al. (2016), Table 1.
    """
    return imagenet_resnet(50, num_classes, in_channels, **kwargs)


def resnet101(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-101: bottlenecks 3-4-23-3, 44,549,160 parameters, 7.8 GMACs per 224² image.

    See :func:`resnet18`. He et al. (2016), Table 1.
    """
    return imagenet_resnet(101, num_classes, in_channels, **kwargs)


def resnet152(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    """ResNet-152: bottlenecks 3-8-36-3, 60,192,808 parameters, 11.5 GMACs per 224² image.

    See :func:`resnet18`. He et al. (2016), Table 1.
    """
    return imagenet_resnet(152, num_classes, in_channels, **kwargs)


def resnet_small(depth: int = 8, in_channels: int = 3, num_classes: int = 10, *,
                 residual: bool = True, se: bool = False, width: int = 16,
                 reduction: int = 4, shortcut: str = "pad") -> ResNet:
    """A CIFAR-style ResNet of depth ``6n + 2`` (He et al. 2016, Sec. 4.2), or its plain twin.

    ``[B, C, 32, 32] -> 3x3 conv, width -> n blocks (width, 32x32) -> n blocks
    (2 width, 16x16) -> n blocks (4 width, 8x8) -> avgpool -> fc -> [B, K]``.

    Parameters
    ----------
    depth : int
        ``6n + 2`` weighted layers: 8, 14, 20, 26, 32, 44, 56, 110, ...
    in_channels, num_classes : int
    residual : bool
        ``False`` removes every shortcut: the plain network of Fig. 6 (left). With the
        default ``shortcut="pad"`` both have exactly the same parameters.
    se : bool
        Squeeze-and-excitation in every block.
    width : int
        Channels of the first stage (16 in the paper).
    reduction : int
        SE reduction (4 here: with 16 channels, 16 would leave one hidden unit).
    shortcut : {"pad", "projection"}

    Returns
    -------
    ResNet
        Parameters for C=3, K=10, width 16: depth 8 75,290; 20 269,722; 56 853,018
        (the paper's "0.27M" for ResNet-20 and "0.85M" for ResNet-56). MACs per 32x32
        image: about 12M at depth 8, 41M at depth 20.

    Raises
    ------
    ValueError
        If ``depth`` is not ``6n + 2`` with ``n >= 1``.
    """
    if check_int("depth", depth) < 8 or (depth - 2) % 6:
        raise ValueError(
            f"depth: expected 6n + 2 for n >= 1 (8, 14, 20, 32, 44, 56, 110, ...), got {depth!r}"
        )
    check_positive_int("width", width)
    n = (depth - 2) // 6
    return ResNet(ResidualBlock, (n, n, n), (width, 2 * width, 4 * width), num_classes,
                  in_channels, stem="cifar", residual=residual, se=se, reduction=reduction,
                  shortcut=shortcut)
