"""GoogLeNet / Inception v1 (Szegedy et al. 2015), as in torchvision.

A stem, nine Inception modules (Table 1 of the paper) in three stages separated by max
pools, global average pooling and one linear layer::

    [B, 3, 224, 224]
    conv 7x7/2, 64 -> [B, 64, 112, 112]   maxpool 3/2 -> [B, 64, 56, 56]
    conv 1x1, 64; conv 3x3, 192 -> [B, 192, 56, 56]   maxpool 3/2 -> [B, 192, 28, 28]
    inception 3a, 3b -> [B, 480, 28, 28]   maxpool 3/2 -> [B, 480, 14, 14]
    inception 4a..4e -> [B, 832, 14, 14]   maxpool 2/2 -> [B, 832, 7, 7]
    inception 5a, 5b -> [B, 1024, 7, 7]    avgpool -> [B, 1024], dropout 0.2, fc -> [B, K]

6,624,904 parameters without the auxiliary heads (13,004,888 with them), about
1.5 GMACs per 224x224 image.

How it differs from the paper
-----------------------------
Like torchvision's ``googlenet``: every convolution is followed by batch norm (from
Inception v2; the paper has none and uses local response normalisation in the stem),
and the "5x5" branch of each Inception module uses a 3x3 kernel (``kernel_5x5=3``, a
quirk kept for torchvision's pretrained weights). ``kernel_5x5=5`` gives the paper's
5x5 convolutions (7,005,832 parameters). The auxiliary classifiers (after 4a and 4d,
Sec. 5) are optional: ``aux_logits=True`` adds them, and in training mode the network
then returns ``GoogLeNetOutputs(logits, aux1, aux2)``; the paper weights their losses
by 0.3.

References
----------
Szegedy, C., Liu, W., Jia, Y., Sermanet, P., Reed, S., Anguelov, D., Erhan, D.,
Vanhoucke, V., Rabinovich, A. (2015). Going deeper with convolutions. CVPR.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from crfkit._validate import check_positive_int, check_probability
from crfkit.models._common import init_weights
from crfkit.models.blocks import ConvBNReLU, InceptionBlock

__all__ = ["GoogLeNet", "GoogLeNetOutputs", "GoogLeNetSmall", "InceptionAux", "googlenet",
           "googlenet_small"]


class GoogLeNetOutputs(NamedTuple):
    """What :class:`GoogLeNet` returns in training mode with ``aux_logits=True``.

    Three ``[B, K]`` logit tensors: the main head, the auxiliary head after inception 4a
    (``aux1``) and after inception 4d (``aux2``).
    """

    logits: torch.Tensor
    aux1: torch.Tensor
    aux2: torch.Tensor


class InceptionAux(nn.Module):
    """Auxiliary classifier of GoogLeNet (Szegedy et al. 2015, Sec. 5).

    ``avgpool -> 4x4``, 1x1 conv to 128 (+BN, ReLU), fc 2048 -> 1024, ReLU, dropout 0.7,
    fc 1024 -> K. (The paper pools 5x5/3 from 14x14, which gives the same 4x4.)

    Shapes
    ------
    ``[B, C_in, H, W] -> [B, K]``.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.7) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)  # [B, C_in, 4, 4]
        self.conv = ConvBNReLU(in_channels, 128, 1, eps=1e-3)  # [B, 128, 4, 4]
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)  # [B, 2048]
        return self.fc2(self.dropout(self.relu(self.fc1(x))))  # [B, K]


class GoogLeNet(nn.Module):
    """GoogLeNet (Inception v1), torchvision's layout; see the module docstring.

    Parameters
    ----------
    num_classes : int
        ``K``.
    in_channels : int
        ``C`` of the input image.
    aux_logits : bool
        Add the two auxiliary classifiers (used in training mode only).
    kernel_5x5 : int
        Kernel of the "5x5" branch: 3 as torchvision, 5 as the paper.
    dropout : float
        Before the final linear layer (0.2 in torchvision, 0.4 in the paper).
    aux_dropout : float
        In the auxiliary heads (0.7).

    Shapes
    ------
    ``[B, C, H, W] -> [B, K]`` (or :class:`GoogLeNetOutputs` when training with aux heads).
    ``H, W >= 32``; 224 is the reference size.

    References
    ----------
    Szegedy, C. et al. (2015). Going deeper with convolutions. CVPR.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, *,
                 aux_logits: bool = False, kernel_5x5: int = 3, dropout: float = 0.2,
                 aux_dropout: float = 0.7) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        check_probability("dropout", dropout)
        check_probability("aux_dropout", aux_dropout)
        k = {"kernel_5x5": kernel_5x5}
        self.stem = nn.Sequential(
            ConvBNReLU(in_channels, 64, 7, stride=2, padding=3, eps=1e-3),  # [B, 64, 112, 112]
            nn.MaxPool2d(3, stride=2, ceil_mode=True),  # [B, 64, 56, 56]
            ConvBNReLU(64, 64, 1, eps=1e-3),
            ConvBNReLU(64, 192, 3, padding=1, eps=1e-3),  # [B, 192, 56, 56]
            nn.MaxPool2d(3, stride=2, ceil_mode=True),  # [B, 192, 28, 28]
        )
        # Columns of Table 1: in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj
        self.inception3a = InceptionBlock(192, 64, 96, 128, 16, 32, 32, **k)  # 256
        self.inception3b = InceptionBlock(256, 128, 128, 192, 32, 96, 64, **k)  # 480
        self.pool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)  # [B, 480, 14, 14]
        self.inception4a = InceptionBlock(480, 192, 96, 208, 16, 48, 64, **k)  # 512
        self.inception4b = InceptionBlock(512, 160, 112, 224, 24, 64, 64, **k)  # 512
        self.inception4c = InceptionBlock(512, 128, 128, 256, 24, 64, 64, **k)  # 512
        self.inception4d = InceptionBlock(512, 112, 144, 288, 32, 64, 64, **k)  # 528
        self.inception4e = InceptionBlock(528, 256, 160, 320, 32, 128, 128, **k)  # 832
        self.pool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)  # [B, 832, 7, 7]
        self.inception5a = InceptionBlock(832, 256, 160, 320, 32, 128, 128, **k)  # 832
        self.inception5b = InceptionBlock(832, 384, 192, 384, 48, 128, 128, **k)  # 1024
        self.aux1 = InceptionAux(512, num_classes, aux_dropout) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes, aux_dropout) if aux_logits else None
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # [B, 1024, 1, 1]
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        x = self.stem(x)  # [B, 192, 28, 28]
        x = self.pool3(self.inception3b(self.inception3a(x)))  # [B, 480, 14, 14]
        x = self.inception4a(x)  # [B, 512, 14, 14]
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))  # [B, 528, 14, 14]
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.pool4(self.inception4e(x))  # [B, 832, 7, 7]
        x = self.inception5b(self.inception5a(x))  # [B, 1024, 7, 7]
        x = torch.flatten(self.avgpool(x), 1)  # [B, 1024]
        logits = self.fc(self.dropout(x))  # [B, K]
        if aux1 is not None and aux2 is not None:
            return GoogLeNetOutputs(logits, aux1, aux2)
        return logits


def googlenet(num_classes: int = 1000, in_channels: int = 3, aux_logits: bool = False,
              kernel_5x5: int = 3, dropout: float = 0.2) -> GoogLeNet:
    """Full-size GoogLeNet: 6,624,904 parameters (aux_logits=False, torchvision's count).

    ``[B, 3, 224, 224] -> [B, num_classes]``, about 1.5 GMACs per image. See
    :class:`GoogLeNet` and the module docstring (Szegedy et al. 2015).
    """
    return GoogLeNet(num_classes, in_channels, aux_logits=aux_logits, kernel_5x5=kernel_5x5,
                     dropout=dropout)


class GoogLeNetSmall(nn.Module):
    """GoogLeNet's layout for 32x32 images: a strided 3x3 stem, four Inception modules, a pool.

    ::

        [B, C, 32, 32] -> ConvBNReLU 3x3/2, 32 -> [B, 32, 16, 16]
        inception a, b -> [B, 96, 16, 16] -> maxpool 3/2 -> [B, 96, 8, 8]
        inception c, d -> [B, 160, 8, 8] -> avgpool, dropout, fc -> [B, K]

    Parameters
    ----------
    in_channels, num_classes : int
    kernel_5x5 : int
        As in :class:`~crfkit.models.blocks.InceptionBlock`.
    dropout : float
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, *, kernel_5x5: int = 3,
                 dropout: float = 0.2) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        check_probability("dropout", dropout)
        k = {"kernel_5x5": kernel_5x5}
        self.stem = ConvBNReLU(in_channels, 32, 3, stride=2, padding=1, eps=1e-3)  # 16x16
        self.inception_a = InceptionBlock(32, 16, 16, 24, 4, 8, 8, **k)  # 56
        self.inception_b = InceptionBlock(56, 24, 24, 40, 8, 16, 16, **k)  # 96
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)  # [B, 96, 8, 8]
        self.inception_c = InceptionBlock(96, 32, 32, 48, 8, 16, 16, **k)  # 112
        self.inception_d = InceptionBlock(112, 48, 32, 64, 8, 24, 24, **k)  # 160
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # [B, 160, 1, 1]
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(160, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)  # [B, 32, H/2, W/2]
        x = self.pool(self.inception_b(self.inception_a(x)))  # [B, 96, H/4, W/4]
        x = self.inception_d(self.inception_c(x))  # [B, 160, H/4, W/4]
        x = torch.flatten(self.avgpool(x), 1)  # [B, 160]
        return self.fc(self.dropout(x))  # [B, K]


def googlenet_small(in_channels: int = 3, num_classes: int = 10, kernel_5x5: int = 3,
                    dropout: float = 0.2) -> GoogLeNetSmall:
    """A four-module GoogLeNet for 32x32 / 64x64 inputs; see :class:`GoogLeNetSmall`.

    Defaults (C=3, K=10): 78,754 parameters and 8.7M MACs per 32x32 image
    (Szegedy et al. 2015 blocks, narrower and fewer).
    """
    return GoogLeNetSmall(in_channels, num_classes, kernel_5x5=kernel_5x5, dropout=dropout)
