"""AlexNet (Krizhevsky, Sutskever & Hinton 2012), torchvision's single-stream variant.

Five convolutions and three fully connected layers::

    [B, 3, 224, 224]
    conv 11x11/4, 64   -> [B, 64, 55, 55]   maxpool 3/2 -> [B, 64, 27, 27]
    conv 5x5, 192      -> [B, 192, 27, 27]  maxpool 3/2 -> [B, 192, 13, 13]
    conv 3x3, 384      -> [B, 384, 13, 13]
    conv 3x3, 256      -> [B, 256, 13, 13]
    conv 3x3, 256      -> [B, 256, 13, 13]  maxpool 3/2 -> [B, 256, 6, 6]
    adaptive avgpool   -> [B, 256, 6, 6] -> flatten [B, 9216]
    dropout, fc 4096, dropout, fc 4096, fc num_classes -> [B, num_classes]

61,100,840 parameters for 1000 classes, about 0.71 GMACs per 224x224 image.

How it differs from the 2012 paper
----------------------------------
The original splits every layer over two GPUs: conv1 has 96 filters 11x11x3 (48 per GPU,
on a 227x227 input -> 55x55x96), conv2 256, conv3 384, conv4 384, conv5 256; conv2, conv4
and conv5 only see the feature maps of their own GPU (groups of 2), and local response
normalisation follows conv1 and conv2 (about 61M parameters too, but distributed
differently). torchvision follows Krizhevsky's single-GPU "one weird trick" variant
(arXiv:1404.5997): 64-192-384-256-256 filters, no grouping, no LRN, plus an adaptive
average pool so that any input of at least 63x63 works.

References
----------
Krizhevsky, A., Sutskever, I., Hinton, G. E. (2012). ImageNet classification with deep
convolutional neural networks. NeurIPS.
Krizhevsky, A. (2014). One weird trick for parallelizing convolutional neural networks.
arXiv:1404.5997.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from crfkit._validate import check_positive_int, check_probability
from crfkit.models._common import init_weights

__all__ = ["AlexNet", "alexnet", "alexnet_small"]


class AlexNet(nn.Module):
    """AlexNet: five convolutions (``features``), three linear layers (``classifier``).

    Parameters
    ----------
    num_classes : int
        ``K``, the number of output logits.
    in_channels : int
        ``C`` of the input image (3 for RGB, 1 for greyscale).
    widths : sequence of 5 ints
        Filters of conv1..conv5 (64, 192, 384, 256, 256 in torchvision).
    stem_kernel, stem_stride, stem_padding : int
        conv1's kernel, stride and padding (11, 4, 2); conv2 is 5x5, conv3-5 are 3x3.
    hidden : int
        Width of the two hidden fully connected layers (4096).
    pool_size : int
        Output side of the adaptive average pool before the classifier (6).
    dropout : float
        Dropout probability before fc1 and fc2 (0.5).

    Shapes
    ------
    ``[B, C, H, W] -> [B, K]`` logits.

    References
    ----------
    Krizhevsky, A., Sutskever, I., Hinton, G. E. (2012). ImageNet classification with deep
    convolutional neural networks. NeurIPS.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, *,
                 widths: Sequence[int] = (64, 192, 384, 256, 256), stem_kernel: int = 11,
                 stem_stride: int = 4, stem_padding: int = 2, hidden: int = 4096,
                 pool_size: int = 6, dropout: float = 0.5) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        if len(widths) != 5:
            raise ValueError(f"widths: expected 5 conv widths, got {len(widths)}")
        for w in widths:
            check_positive_int("widths", w)
        check_positive_int("hidden", hidden)
        check_positive_int("pool_size", pool_size)
        check_probability("dropout", dropout)
        c1, c2, c3, c4, c5 = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, stem_kernel, stem_stride, stem_padding),  # [B, c1, 55, 55]
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),  # [B, c1, 27, 27]
            nn.Conv2d(c1, c2, 5, padding=2),  # [B, c2, 27, 27]
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),  # [B, c2, 13, 13]
            nn.Conv2d(c2, c3, 3, padding=1),  # [B, c3, 13, 13]
            nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1),  # [B, c4, 13, 13]
            nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1),  # [B, c5, 13, 13]
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),  # [B, c5, 6, 6]
        )
        self.avgpool = nn.AdaptiveAvgPool2d(pool_size)  # [B, c5, 6, 6]
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(c5 * pool_size * pool_size, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))  # [B, c5, pool_size, pool_size]
        x = torch.flatten(x, 1)  # [B, c5 * pool_size^2]
        return self.classifier(x)  # [B, K]


def alexnet(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> AlexNet:
    """Full-size AlexNet (torchvision variant), 61,100,840 parameters for 1000 classes.

    Input ``[B, 3, 224, 224]`` (any side >= 63 works) -> logits ``[B, num_classes]``;
    about 0.71 GMACs per 224x224 image. See the module docstring for the differences
    from the two-GPU network of Krizhevsky et al. (2012).
    """
    return AlexNet(num_classes, in_channels, dropout=dropout)


def alexnet_small(in_channels: int = 3, num_classes: int = 10, dropout: float = 0.5) -> AlexNet:
    """AlexNet's layout for 32x32 or 64x64 images: 5x5/1 stem, widths 32-64-96-64-64, fc 256.

    ``[B, C, 32, 32] -> conv 5x5 -> [B, 32, 32, 32] -> pool -> 15 -> conv -> pool -> 7
    -> 3 convs -> pool -> [B, 64, 3, 3] -> adaptive avgpool [B, 64, 2, 2] -> fc 256, 256, K``.
    335,530 parameters for C=3, K=10 and 21M MACs per 32x32 image.
    """
    return AlexNet(num_classes, in_channels, widths=(32, 64, 96, 64, 64), stem_kernel=5,
                   stem_stride=1, stem_padding=2, hidden=256, pool_size=2, dropout=dropout)
