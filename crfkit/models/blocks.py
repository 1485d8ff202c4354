"""The building blocks of the classification networks of lecture 01.

Each block is one figure of its paper:

- :class:`ConvBNReLU`: ``relu(bn(conv(x)))`` (Ioffe & Szegedy 2015);
- :class:`ResidualBlock`: ``relu(x + F(x))``, F = two 3x3 convs (He et al. 2016, Fig. 2);
- :class:`Bottleneck`: ``relu(x + F(x))``, F = 1x1, 3x3, 1x1 convs (He et al. 2016, Fig. 5);
- :class:`SEBlock`: ``x * sigmoid(W2 relu(W1 avgpool(x)))`` (Hu et al. 2018, Fig. 1);
- :class:`DenseLayer`: ``conv3x3(relu(bn(conv1x1(relu(bn(x))))))`` (Huang et al. 2017);
- :class:`DenseBlock`: ``x_l = H_l([x_0, ..., x_{l-1}])`` (Huang et al. 2017, Eq. 2);
- :class:`Transition`: ``avgpool(conv1x1(relu(bn(x))))`` (Huang et al. 2017);
- :class:`InceptionBlock`: concat of 1x1, 3x3, "5x5" and pool branches (Szegedy et al.
  2015, Fig. 2b).

Shapes use ``B`` batch, ``C`` channels, ``H``/``W`` height/width. A 3x3 convolution with
padding 1 keeps ``H, W`` at stride 1 and gives ``ceil(H / 2), ceil(W / 2)`` at stride 2.

The residual blocks take ``residual=False`` to drop the skip connection: the same layers
without the addition form the "plain" network of He et al. (2016, Sec. 4.1), used in the
degradation experiment. ``se=True`` inserts an :class:`SEBlock` on the residual branch
before the addition (Hu et al. 2018, Fig. 3).

References
----------
He, K., Zhang, X., Ren, S., Sun, J. (2016). Deep residual learning for image recognition. CVPR.
Hu, J., Shen, L., Sun, G. (2018). Squeeze-and-excitation networks. CVPR.
Huang, G., Liu, Z., van der Maaten, L., Weinberger, K. Q. (2017). Densely connected
convolutional networks. CVPR.
Szegedy, C. et al. (2015). Going deeper with convolutions. CVPR.
Ioffe, S., Szegedy, C. (2015). Batch normalization. ICML.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from crfkit._validate import check_choice, check_positive_int, check_probability

__all__ = [
    "Bottleneck",
    "ConvBNReLU",
    "DenseBlock",
    "DenseLayer",
    "InceptionBlock",
    "PadShortcut",
    "ResidualBlock",
    "SEBlock",
    "Transition",
]


class ConvBNReLU(nn.Sequential):
    """Convolution without bias, batch norm, ReLU: the basic layer of GoogLeNet (torchvision).

    Parameters
    ----------
    in_channels, out_channels : int
        ``C_in`` and ``C_out``.
    kernel_size, stride, padding : int
        Of the convolution.
    eps : float
        Batch-norm epsilon (torchvision's GoogLeNet uses 1e-3).

    Shapes
    ------
    ``[B, C_in, H, W] -> [B, C_out, H', W']`` with ``H' = (H + 2p - k) // s + 1``.

    Cost: ``H' W' C_out C_in k^2`` multiply-accumulates per image; ``C_out (C_in k^2 + 2)``
    parameters.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, eps: float = 1e-5) -> None:
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False),
            nn.BatchNorm2d(out_channels, eps=eps),
            nn.ReLU(inplace=True),
        )


class SEBlock(nn.Module):
    """Squeeze-and-excitation: rescale each channel by a learned gate in (0, 1).

    ``s = sigmoid(W2 relu(W1 z))`` with ``z[c] = mean_{h, w} x[:, c, h, w]`` (squeeze),
    ``W1: C -> C/r``, ``W2: C/r -> C`` (excitation), output ``x * s[:, :, None, None]``
    (Hu et al. 2018, Eq. 2-4, Fig. 1).

    Parameters
    ----------
    channels : int
        ``C``.
    reduction : int
        ``r``; must divide ``C``. The paper uses 16.

    Shapes
    ------
    ``[B, C, H, W] -> [B, C, H, W]``.

    Cost: ``2 C^2 / r + C / r + C`` parameters; ``2 C^2 / r`` MACs per image plus the
    ``C H W`` averages and products (negligible next to the convolutions).

    References
    ----------
    Hu, J., Shen, L., Sun, G. (2018). Squeeze-and-excitation networks. CVPR.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        check_positive_int("channels", channels)
        check_positive_int("reduction", reduction)
        if channels % reduction != 0:
            raise ValueError(
                f"reduction: expected a divisor of channels={channels}, got {reduction}"
            )
        hidden = channels // reduction
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(channels, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, channels)
        self.sigmoid = nn.Sigmoid()

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The per-channel gate ``s``: ``[B, C, H, W] -> [B, C]``, values in (0, 1)."""
        z = self.pool(x).flatten(1)  # squeeze: [B, C]
        return self.sigmoid(self.fc2(self.relu(self.fc1(z))))  # excitation: [B, C]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)[:, :, None, None]  # [B, C, H, W]


class PadShortcut(nn.Module):
    """Parameter-free shortcut: subsample by ``stride`` and zero-pad the new channels.

    Option A of He et al. (2016, Sec. 3.3), used for their CIFAR-10 networks so that the
    residual and the plain network have exactly the same parameters.

    Shapes
    ------
    ``[B, C_in, H, W] -> [B, C_out, ceil(H / s), ceil(W / s)]``, ``C_out >= C_in``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"out_channels: the 'pad' shortcut needs out_channels >= in_channels="
                f"{in_channels}, got {out_channels}"
            )
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # [B, C_in, H', W']
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # [B, C_out, H', W']


def _make_shortcut(kind: str, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Identity if shapes agree, else a 1x1 projection + BN (option B) or a PadShortcut."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    if kind == "pad":
        return PadShortcut(in_channels, out_channels, stride)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),  # [B, C_out, H', W']
        nn.BatchNorm2d(out_channels),
    )


class ResidualBlock(nn.Module):
    """The basic residual block of ResNet-18/34: ``relu(F(x) + shortcut(x))``.

    ``F = bn(conv3x3(relu(bn(conv3x3_stride(x)))))`` (He et al. 2016, Fig. 2 and Fig. 5 left).

    Parameters
    ----------
    in_channels, out_channels : int
        ``C_in`` and ``C_out``.
    stride : int
        Stride of the first 3x3 convolution (2 at the start of a stage).
    residual : bool
        ``False`` removes the shortcut and the addition: the "plain" block.
    se : bool
        Insert an :class:`SEBlock` on ``F`` before the addition (SE-ResNet, Hu et al. 2018).
    reduction : int
        SE reduction ratio (must divide ``C_out``).
    shortcut : {"projection", "pad"}
        How the shortcut matches a change of shape: a 1x1 convolution + BN (option B,
        ImageNet ResNets) or subsample + zero channels (option A, CIFAR ResNets).

    Shapes
    ------
    ``[B, C_in, H, W] -> [B, C_out, ceil(H / stride), ceil(W / stride)]``.

    Cost: ``9 C_out (C_in + C_out)`` conv weights (+ ``C_in C_out`` for a projection),
    the same number of MACs per output pixel.

    References
    ----------
    He, K., Zhang, X., Ren, S., Sun, J. (2016). Deep residual learning for image recognition. CVPR.
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *,
                 residual: bool = True, se: bool = False, reduction: int = 16,
                 shortcut: str = "projection") -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        check_positive_int("stride", stride)
        check_choice("shortcut", shortcut, ("projection", "pad"))
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.se = SEBlock(out_channels, reduction) if se else None
        self.residual = residual
        self.shortcut = (_make_shortcut(shortcut, in_channels, out_channels, stride)
                         if residual else None)
        self.relu2 = nn.ReLU(inplace=True)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The batch norm that ends ``F``; zeroing its weight makes the block ``relu(x)``."""
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))  # [B, C_out, H', W']
        out = self.bn2(self.conv2(out))  # [B, C_out, H', W']
        if self.se is not None:
            out = self.se(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # the skip connection
        return self.relu2(out)


class Bottleneck(nn.Module):
    """The bottleneck residual block of ResNet-50/101/152: 1x1 reduce, 3x3, 1x1 expand.

    ``F = bn(conv1x1(relu(bn(conv3x3_stride(relu(bn(conv1x1(x))))))))``, output
    ``relu(F(x) + shortcut(x))`` with ``4 * width`` channels (He et al. 2016, Fig. 5 right).
    The stride sits on the 3x3 convolution ("ResNet v1.5", as in torchvision); the paper
    puts it on the first 1x1. Both have the same parameters.

    Parameters
    ----------
    in_channels : int
        ``C_in``.
    width : int
        Channels of the 1x1-reduced and 3x3 layers; the block outputs ``C_out = 4 * width``.
    stride : int
        Stride of the 3x3 convolution.
    residual, se, reduction, shortcut
        As in :class:`ResidualBlock`.

    Shapes
    ------
    ``[B, C_in, H, W] -> [B, 4 width, ceil(H / stride), ceil(W / stride)]``.

    Cost: ``width (C_in + 9 width + 4 width)`` conv weights (+ ``4 C_in width`` for a
    projection). For ``C_in = 4 width`` that is ``17 width^2``, against ``18 (4 width)^2``
    for two 3x3 convolutions at the full width: the point of the bottleneck.

    References
    ----------
    He, K., Zhang, X., Ren, S., Sun, J. (2016). Deep residual learning for image recognition. CVPR.
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1, *,
                 residual: bool = True, se: bool = False, reduction: int = 16,
                 shortcut: str = "projection") -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("width", width)
        check_positive_int("stride", stride)
        check_choice("shortcut", shortcut, ("projection", "pad"))
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.se = SEBlock(out_channels, reduction) if se else None
        self.residual = residual
        self.shortcut = (_make_shortcut(shortcut, in_channels, out_channels, stride)
                         if residual else None)
        self.relu3 = nn.ReLU(inplace=True)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The batch norm that ends ``F``; zeroing its weight makes the block ``relu(x)``."""
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))  # [B, width, H, W]
        out = self.relu2(self.bn2(self.conv2(out)))  # [B, width, H', W']
        out = self.bn3(self.conv3(out))  # [B, 4 width, H', W']
        if self.se is not None:
            out = self.se(out)
        if self.shortcut is not None:
            out = out + self.shortcut(x)  # the skip connection
        return self.relu3(out)


class DenseLayer(nn.Module):
    """One layer ``H_l`` of a DenseNet-BC block: BN-ReLU-conv1x1-BN-ReLU-conv3x3.

    The 1x1 "bottleneck" maps the ``C_in`` concatenated features to ``bn_size * k``
    channels, the 3x3 produces ``k`` new feature maps (Huang et al. 2017, Sec. 3,
    "Bottleneck layers"). Returns only the new features; :class:`DenseBlock` concatenates.

    Parameters
    ----------
    in_channels : int
        ``C_in`` (all earlier feature maps of the block).
    growth_rate : int
        ``k``, new channels per layer.
    bn_size : int
        Bottleneck width factor (4 in the paper).
    drop_rate : float
        Dropout after the 3x3 convolution (0 for ImageNet).

    Shapes
    ------
    ``[B, C_in, H, W] -> [B, k, H, W]``.

    Cost: ``bn_size k C_in + 9 bn_size k^2`` conv weights and MACs per pixel.

    References
    ----------
    Huang, G., Liu, Z., van der Maaten, L., Weinberger, K. Q. (2017). Densely connected
    convolutional networks. CVPR.
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        check_positive_int("in_channels", in_channels)
        check_positive_int("growth_rate", growth_rate)
        check_positive_int("bn_size", bn_size)
        check_probability("drop_rate", drop_rate)
        inner = bn_size * growth_rate
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, inner, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(inner)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(inner, growth_rate, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu1(self.norm1(x)))  # [B, bn_size k, H, W]
        out = self.conv2(self.relu2(self.norm2(out)))  # [B, k, H, W]
        if self.dropout is not None:
            out = self.dropout(out)
        return out


class DenseBlock(nn.Module):
    """A dense block: layer ``l`` sees the concatenation of the input and all earlier outputs.

    ``x_l = H_l([x_0, x_1, ..., x_{l-1}])`` (Huang et al. 2017, Eq. 2); the block returns
    ``[x_0, x_1, ..., x_L]`` concatenated along channels.

    Parameters
    ----------
    num_layers : int
        ``L``.
    in_channels : int
        ``C_0`` of the block input ``x_0``.
    growth_rate, bn_size, drop_rate
        As in :class:`DenseLayer`.

    Shapes
    ------
    ``[B, C_0, H, W] -> [B, C_0 + L k, H, W]`` (``out_channels``).

    Cost: ``sum_l (bn_size k (C_0 + l k) + 9 bn_size k^2)`` conv weights, MACs per pixel
    the same.

    References
    ----------
    Huang, G., Liu, Z., van der Maaten, L., Weinberger, K. Q. (2017). Densely connected
    convolutional networks. CVPR.
    """

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        check_positive_int("num_layers", num_layers)
        check_positive_int("in_channels", in_channels)
        check_positive_int("growth_rate", growth_rate)
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, drop_rate)
            for i in range(num_layers)
        )
        self.out_channels = in_channels + num_layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.layers:
            new = layer(torch.cat(features, dim=1))  # [B, k, H, W]
            features.append(new)
        return torch.cat(features, dim=1)  # [B, C_0 + L k, H, W]


class Transition(nn.Sequential):
    """Transition between dense blocks: BN-ReLU-conv1x1 (compression), 2x2 average pool.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C_in`` and ``C_out = floor(theta C_in)`` with compression ``theta`` (0.5 in
        DenseNet-BC; Huang et al. 2017, Sec. 3, "Compression").

    Shapes
    ------
    ``[B, C_in, H, W] -> [B, C_out, H // 2, W // 2]``.

    Cost: ``C_in C_out`` weights (+ ``2 C_in`` BN); ``C_in C_out`` MACs per input pixel.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        check_positive_int("in_channels", in_channels)
        check_positive_int("out_channels", out_channels)
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2, stride=2)


class InceptionBlock(nn.Module):
    """The Inception module with dimension reductions (Szegedy et al. 2015, Fig. 2b).

    Four parallel branches, concatenated along channels:

    1. 1x1 convolution, ``ch1x1`` channels;
    2. 1x1 reduction to ``ch3x3red``, then 3x3 to ``ch3x3``;
    3. 1x1 reduction to ``ch5x5red``, then a ``kernel_5x5`` x ``kernel_5x5`` convolution to
       ``ch5x5``;
    4. 3x3 max pool (stride 1), then 1x1 projection to ``pool_proj``.

    Every convolution is a :class:`ConvBNReLU` (batch norm was added after the paper, in
    Inception v2 / torchvision). ``kernel_5x5=3`` reproduces torchvision's GoogLeNet, whose
    "5x5" branch uses a 3x3 kernel (a known quirk kept for its pretrained weights);
    ``kernel_5x5=5`` is the paper's.

    Parameters
    ----------
    in_channels : int
        ``C_in``.
    ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj : int
        Channel counts, the column names of Szegedy et al. (2015), Table 1.
    kernel_5x5 : int
        Kernel of the third branch (odd, padding ``kernel_5x5 // 2``).

    Shapes
    ------
    ``[B, C_in, H, W] -> [B, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W]`` (``out_channels``).

    Cost: ``C_in (ch1x1 + ch3x3red + ch5x5red + pool_proj) + 9 ch3x3red ch3x3
    + kernel_5x5^2 ch5x5red ch5x5`` conv weights and MACs per pixel.

    References
    ----------
    Szegedy, C. et al. (2015). Going deeper with convolutions. CVPR.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int, *, kernel_5x5: int = 3, eps: float = 1e-3) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("ch1x1", ch1x1),
                            ("ch3x3red", ch3x3red), ("ch3x3", ch3x3), ("ch5x5red", ch5x5red),
                            ("ch5x5", ch5x5), ("pool_proj", pool_proj),
                            ("kernel_5x5", kernel_5x5)):
            check_positive_int(name, value)
        if kernel_5x5 % 2 == 0:
            raise ValueError(f"kernel_5x5: expected an odd kernel size, got {kernel_5x5}")
        self.branch1 = ConvBNReLU(in_channels, ch1x1, 1, eps=eps)
        self.branch2 = nn.Sequential(
            ConvBNReLU(in_channels, ch3x3red, 1, eps=eps),
            ConvBNReLU(ch3x3red, ch3x3, 3, padding=1, eps=eps),
        )
        self.branch3 = nn.Sequential(
            ConvBNReLU(in_channels, ch5x5red, 1, eps=eps),
            ConvBNReLU(ch5x5red, ch5x5, kernel_5x5, padding=kernel_5x5 // 2, eps=eps),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            ConvBNReLU(in_channels, pool_proj, 1, eps=eps),
        )
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # [B, out_channels, H, W]
