"""Every checker of sheet 01 accepts crfkit's answer and rejects the typical wrong ones, with a hint."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import crfkit as ck
from crfkit import checks
from crfkit.checks import sheet01  # noqa: F401 - exercises 1.1-1.6
from crfkit.models import Bottleneck, DenseBlock, ResidualBlock, SEBlock


# --- 1.1, 1.2: right answers and typical slips


def conv_output_size(size, kernel, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_params(in_channels, out_channels, kernel, bias=True, groups=1):
    return in_channels // groups * kernel * kernel * out_channels + (out_channels if bias else 0)


# --- 1.3: residual blocks with typical slips


class PlainBlock(ResidualBlock):  # no skip connection at all
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride, residual=False)


class ReluBeforeAdd(ResidualBlock):  # relu(F(x)) + x
    def forward(self, x):
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return torch.relu(out) + self.shortcut(x)


class IdentityShortcut(ResidualBlock):  # no projection when the shape changes
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.shortcut = nn.Identity()


class BiasedConvs(nn.Module):  # convolutions with a bias before batch norm
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.block = ResidualBlock(in_channels, out_channels, stride)
        self.block.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1)
        self.block.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)

    def forward(self, x):
        return self.block(x)


class ShortcutFirst(nn.Module):  # layers created in another order than asked
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        ref = ResidualBlock(in_channels, out_channels, stride)
        self.shortcut = ref.shortcut
        self.conv1, self.bn1, self.conv2, self.bn2 = ref.conv1, ref.bn1, ref.conv2, ref.bn2

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + self.shortcut(x))


class NoMiddleRelu(ResidualBlock):
    def forward(self, x):
        out = self.bn2(self.conv2(self.bn1(self.conv1(x))))
        return torch.relu(out + self.shortcut(x))


# --- 1.4: bottlenecks with typical slips


class NoExpansion(nn.Module):  # output width channels instead of 4 * width
    def __init__(self, in_channels, width, stride=1):
        super().__init__()
        self.block = ResidualBlock(in_channels, width, stride)

    def forward(self, x):
        return self.block(x)


class PlainBottleneck(Bottleneck):
    def __init__(self, in_channels, width, stride=1):
        super().__init__(in_channels, width, stride, residual=False)


class BottleneckReluBeforeAdd(Bottleneck):
    def forward(self, x):
        out = self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))
        return torch.relu(self.bn3(self.conv3(out))) + self.shortcut(x)


class StrideOnFirst1x1(Bottleneck):  # the paper's ResNet v1 placement, not the one asked for
    def __init__(self, in_channels, width, stride=1):
        super().__init__(in_channels, width, stride)
        self.conv1.stride = (stride, stride)
        self.conv2.stride = (1, 1)


# --- 1.5: SE blocks with typical slips


class NoSigmoid(SEBlock):
    def forward(self, x):
        z = x.mean(dim=(2, 3))
        return x * self.fc2(torch.relu(self.fc1(z)))[:, :, None, None]


class MaxSqueeze(SEBlock):
    def forward(self, x):
        z = x.amax(dim=(2, 3))
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))[:, :, None, None]


class HiddenIsReduction(SEBlock):  # Linear(C, r) instead of Linear(C, C // r)
    def __init__(self, channels, reduction=16):
        super().__init__(channels, channels // reduction)


class NoSqueeze(nn.Module):  # a gate per pixel: 1x1 convolutions without pooling
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))


# --- 1.6: dense blocks with typical slips


class LastLayerOnly(DenseBlock):
    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return features[-1]


class WithoutInput(DenseBlock):
    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features[1:], dim=1)


class ChainNotDense(nn.Module):  # each layer sees only the previous layer's output
    def __init__(self, num_layers, in_channels, growth_rate):
        super().__init__()
        self.layers = nn.ModuleList(
            ck.models.DenseLayer(in_channels if i == 0 else growth_rate, growth_rate)
            for i in range(num_layers)
        )

    def forward(self, x):
        out, features = x, [x]
        for layer in self.layers:
            out = layer(out)
            features.append(out)
        return torch.cat(features, dim=1)


class InputLast(DenseBlock):
    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features[1:] + [x], dim=1)


# exercise -> (right answer, [(wrong answer, words the hint must contain), ...])
CASES = {
    "1.1": (
        conv_output_size,
        [
            (lambda n, k, s=1, p=0, d=1: (n + 2 * p - d * (k - 1) - 1) // s, "`+ 1`"),
            (lambda n, k, s=1, p=0, d=1: (n + 2 * p - k) // s + 1, "dilation"),
            (lambda n, k, s=1, p=0, d=1: -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1, "rounded up"),
            (lambda n, k, s=1, p=0, d=1: (n + p - d * (k - 1) - 1) // s + 1, "both sides"),
            (lambda n, k, s=1, p=0, d=1: n + 2 * p - d * (k - 1), "stride"),
            (lambda n, k, s=1, p=0, d=1: (n + 2 * p - d * (k - 1) - 1) / s + 1, "`//`"),
            (lambda n, k, s=1, p=0, d=1: (n + 2 * p - d * k) // s + 1,
             "floor((n + 2p - d(k - 1) - 1) / s) + 1"),
            (lambda n, k, s, p, d: conv_output_size(n, k, s, p, d), "raised TypeError"),
        ],
    ),
    "1.2": (
        conv_params,
        [
            (lambda i, o, k, b=True, g=1: i // g * k * k * o, "forgot the bias"),
            (lambda i, o, k, b=True, g=1: i // g * k * k * o + o, "bias=False"),
            (lambda i, o, k, b=True, g=1: k * k * o + (o if b else 0), "input channels"),
            (lambda i, o, k, b=True, g=1: i * k * k * o + (o if b else 0), "groups"),
            (lambda i, o, k, b=True, g=1: i // g * k * o + (o if b else 0), "k²"),
            (lambda i, o, k, b=True, g=1: float(conv_params(i, o, k, b, g)), "int"),
        ],
    ),
    "1.3": (
        ResidualBlock,
        [
            (PlainBlock, "skip connection"),
            (ReluBeforeAdd, "ReLU after the addition"),
            (IdentityShortcut, "projection shortcut"),
            (BiasedConvs, "bias=False"),
            (ShortcutFirst, "in the order conv1, bn1, conv2, bn2, shortcut"),
            (NoMiddleRelu, "differ by up to"),
            (ResidualBlock(16, 16), "the class itself"),
            (conv_params, "subclass of nn.Module"),
        ],
    ),
    "1.4": (
        Bottleneck,
        [
            (NoExpansion, "expansion factor 4"),
            (PlainBottleneck, "skip connection"),
            (BottleneckReluBeforeAdd, "ReLU after the addition"),
            (StrideOnFirst1x1, "stride on the 3x3"),
        ],
    ),
    "1.5": (
        SEBlock,
        [
            (NoSigmoid, "sigmoid"),
            (MaxSqueeze, "average"),
            (HiddenIsReduction, "C // reduction"),
            (NoSqueeze, "ONE number"),
        ],
    ),
    "1.6": (
        DenseBlock,
        [
            (LastLayerOnly, "not only the last layer's"),
            (WithoutInput, "without the input"),
            (ChainNotDense, "ALL earlier"),
            (InputLast, "passes its input through"),
        ],
    ),
}


# right and wrong answers are run by tests/test_checks.py, which merges CASES


def test_forward_stub_keeps_its_not_done_error():
    class HalfDone(ResidualBlock):  # __init__ written, forward still a stub
        def forward(self, x):
            raise NotImplementedError(ck.course.not_done_message("1.3"))

    with pytest.raises(NotImplementedError, match="Exercise 1.3 is not done yet"):
        checks.check("1.3", HalfDone)


def test_alexnet_conv1_of_the_paper():
    assert conv_output_size(227, 11, stride=4) == 55
    assert conv_params(3, 96, 11) == 34_944
