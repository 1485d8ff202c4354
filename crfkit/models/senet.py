"""Squeeze-and-excitation ResNets (Hu et al. 2018).

An :class:`~crfkit.models.blocks.SEBlock` rescales the channels of every residual branch
before the addition (Fig. 3 of the paper): ``y = relu(x + F(x) * s(F(x)))`` with a gate
``s`` in (0, 1) per channel computed from globally pooled features. With reduction 16,
SE-ResNet-50 has 28,088,024 parameters (the paper: "28.1M", against 25.6M for ResNet-50,
Table 1 and Sec. 6.1) and adds under 1% of MACs (3.87 vs 3.86 GFLOPs in the paper's
counting).

References
----------
Hu, J., Shen, L., Sun, G. (2018). Squeeze-and-excitation networks. CVPR.
"""

from __future__ import annotations

from crfkit.models.resnet import ResNet, imagenet_resnet, resnet_small

__all__ = ["se_resnet18", "se_resnet34", "se_resnet50", "se_resnet101", "se_resnet152",
           "se_resnet_small"]


def se_resnet18(num_classes: int = 1000, in_channels: int = 3, reduction: int = 16,
                **kwargs) -> ResNet:
    """SE-ResNet-18: ResNet-18 with an SE block in every basic block (11,778,592 parameters).

    ``[B, 3, 224, 224] -> [B, num_classes]``. Hu et al. (2018).
    """
    return imagenet_resnet(18, num_classes, in_channels, se=True, reduction=reduction, **kwargs)


def se_resnet34(num_classes: int = 1000, in_channels: int = 3, reduction: int = 16,
                **kwargs) -> ResNet:
    """SE-ResNet-34 (21,958,868 parameters). See :func:`se_resnet18`."""
    return imagenet_resnet(34, num_classes, in_channels, se=True, reduction=reduction, **kwargs)


def se_resnet50(num_classes: int = 1000, in_channels: int = 3, reduction: int = 16,
                **kwargs) -> ResNet:
    """SE-ResNet-50: 28,088,024 parameters (Hu et al. 2018: 28.1M), ~4.1 GMACs per 224² image.

    ``[B, 3, 224, 224] -> [B, num_classes]``. ``kwargs`` go to :class:`ResNet`.
    """
    return imagenet_resnet(50, num_classes, in_channels, se=True, reduction=reduction, **kwargs)


def se_resnet101(num_classes: int = 1000, in_channels: int = 3, reduction: int = 16,
                 **kwargs) -> ResNet:
    """SE-ResNet-101 (49,326,872 parameters; Hu et al. 2018: 49.3M). See :func:`se_resnet50`."""
    return imagenet_resnet(101, num_classes, in_channels, se=True, reduction=reduction, **kwargs)


def se_resnet152(num_classes: int = 1000, in_channels: int = 3, reduction: int = 16,
                 **kwargs) -> ResNet:
    """SE-ResNet-152 (66,821,848 parameters; Hu et al. 2018: 66.8M). See :func:`se_resnet50`."""
    return imagenet_resnet(152, num_classes, in_channels, se=True, reduction=reduction, **kwargs)


def se_resnet_small(depth: int = 8, in_channels: int = 3, num_classes: int = 10, *,
                    width: int = 16, reduction: int = 4) -> ResNet:
    """:func:`~crfkit.models.resnet.resnet_small` with SE blocks (reduction 4 by default).

    Depth ``6n + 2``; 78,118 parameters at depth 8 for C=3, K=10 (75,290 without SE).
    """
    return resnet_small(depth, in_channels, num_classes, se=True, width=width,
                        reduction=reduction)
