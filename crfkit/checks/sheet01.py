"""Check cells of exercise sheet 01: classification architectures, from AlexNet to SE-Net.

=========  ===========================================  ====================================
exercise   the student writes                           checked against
=========  ===========================================  ====================================
1.1        ``conv_output_size(size, kernel, stride,     the output shapes of
           padding, dilation) -> int``                  ``torch.nn.functional.conv2d``
                                                        (``crfkit.nn.arithmetic``'s
                                                        sizes it must not call)
1.2        ``conv_params(in_channels, out_channels,     ``nn.Conv2d(...)`` weight + bias
           kernel, bias, groups) -> int``               sizes
1.3        ``class MyResidualBlock(nn.Module)``         :class:`crfkit.models.ResidualBlock`
1.4        ``class MyBottleneck(nn.Module)``            :class:`crfkit.models.Bottleneck`
1.5        ``class MySEBlock(nn.Module)``               :class:`crfkit.models.SEBlock`
1.6        ``class MyDenseBlock(nn.Module)``            :class:`crfkit.models.DenseBlock`
=========  ===========================================  ====================================

The block checkers compare parameter counts and output shapes, test a property of the
block (the skip connection of a residual block gives ``relu(x)`` when every convolution
is zero; an SE gate is one number in (0, 1) per channel; a dense block passes its input
through), then copy crfkit's parameters and buffers into the student's block in
registration order and compare the outputs in eval mode (float64, ``atol = 1e-5``).

Every checker seeds its own random numbers inside ``torch.random.fork_rng``, so running
a check cell does not change the random state of the notebook.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from crfkit.checks._common import (
    BLOCK_ATOL,
    CheckFailed,
    build,
    call,
    check_outputs,
    copy_state,
    exercise,
    expect_int,
    forward,
    num_params,
    randomise,
)
from crfkit.models import Bottleneck, DenseBlock, ResidualBlock, SEBlock
from crfkit.nn import arithmetic

ATOL = BLOCK_ATOL


# ---------------------------------------------------------------------------
# helpers

_FLOAT_HINT = "Use integer division `//` (or math.floor) and return an int."


def _zero_convs(block: nn.Module) -> None:
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.zero_()
                if m.bias is not None:
                    m.bias.zero_()


def _check_count(number: str, mine: nn.Module, ref: nn.Module, config: str, hints: dict[int, str]) -> None:
    got, want = num_params(mine), num_params(ref)
    if got != want:
        hint = hints.get(got - want, "")
        raise CheckFailed(
            f"Exercise {number}: {config} has {got:,} parameters, expected {want:,} "
            f"(difference {got - want:+,}). {hint}".rstrip()
        )


def _check_skip(number: str, block: nn.Module, channels: int, config: str) -> None:
    """With every convolution zero, F(x) = 0 in eval mode and the block must give relu(x)."""
    block.eval()
    _zero_convs(block)
    x = torch.randn(2, channels, 5, 5, dtype=torch.float64)  # [B, C, H, W], half negative
    got = forward(number, block, x, (2, channels, 5, 5), f"the output of {config}")
    if torch.allclose(got, torch.relu(x), atol=ATOL):
        return
    if torch.allclose(got, torch.zeros_like(got), atol=ATOL):
        raise CheckFailed(
            f"Exercise {number}: with every convolution weight set to 0, {config} outputs 0; "
            "a residual block must then give relu(x). Did you add the input back (the skip "
            "connection, out = out + shortcut(x))?"
        )
    if torch.allclose(got, x, atol=ATOL):
        raise CheckFailed(
            f"Exercise {number}: with every convolution weight set to 0, {config} outputs x, "
            "expected relu(x). Apply the last ReLU after the addition: relu(F(x) + x), "
            "not relu(F(x)) + x."
        )
    raise CheckFailed(
        f"Exercise {number}: with every convolution weight set to 0 (and fresh batch norms), "
        f"the residual branch is 0 and {config} must output relu(x); yours differs by up to "
        f"{float((got - torch.relu(x)).abs().max()):.3g}. The identity shortcut adds x "
        "unchanged, then the ReLU follows the addition."
    )


# ---------------------------------------------------------------------------
# 1.1 and 1.2: sizes and parameters of a convolution


def _conv_configs() -> list[tuple[int, int, int, int, int]]:
    """``(size, kernel, stride, padding, dilation)`` for which the kernel fits."""
    configs = [(227, 11, 4, 0, 1), (224, 7, 2, 3, 1), (32, 3, 1, 1, 1), (32, 3, 2, 1, 1)]
    for size in (5, 8, 13):
        for kernel in (1, 2, 3, 5):
            for stride in (1, 2, 3):
                for padding in (0, 1, 2):
                    for dilation in (1, 2):
                        if size + 2 * padding >= dilation * (kernel - 1) + 1:
                            configs.append((size, kernel, stride, padding, dilation))
    return configs


@functools.lru_cache(maxsize=None)
def _conv2d_sizes(configs: tuple[tuple[int, int, int, int, int], ...]) -> list[int]:
    """Output heights that ``F.conv2d`` gives for ``(size, kernel, stride, padding, dilation)``.

    Run on the meta device: shapes only, no arithmetic.
    """
    sizes = []
    for size, kernel, stride, padding, dilation in configs:
        x = torch.empty(1, 1, size, 1, device="meta")  # [B, C, H, W]: only H varies
        w = torch.empty(1, 1, kernel, 1, device="meta")  # [C_out, C_in, k, 1]
        out = F.conv2d(x, w, stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1))
        sizes.append(out.shape[2])
    return sizes


_SIZE_MISTAKES: list[tuple[Callable[..., int], str]] = [
    (lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s,
     "You forgot the `+ 1`: a kernel that fits exactly once still gives one output."),
    (lambda n, k, s, p, d: (n + 2 * p - k) // s + 1,
     "You ignored the dilation: a dilated kernel spans d(k - 1) + 1 pixels."),
    (lambda n, k, s, p, d: -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1,
     "You rounded up; a convolution rounds down (floor): a last window that does not fit "
     "is dropped. Use `//`."),
    (lambda n, k, s, p, d: (n + p - d * (k - 1) - 1) // s + 1,
     "You added the padding once; it is added on both sides: 2p."),
    (lambda n, k, s, p, d: n + 2 * p - d * (k - 1) - 1 + 1,
     "You ignored the stride: divide by s."),
]


@exercise(
    "1.1",
    refuses=(arithmetic.conv_output_size, arithmetic.pool_output_size, arithmetic.Layer.output_size),
    refused="your function calls {called}, crfkit's own answer to this exercise. Write the "
            "formula yourself: floor((n + 2p - d(k - 1) - 1) / s) + 1.",
)
def check_conv_output_size(fn: Callable[..., int]) -> None:
    """Exercise 1.1: ``floor((n + 2p - d(k - 1) - 1) / s) + 1``, against ``F.conv2d``."""
    n = "1.1"
    default = expect_int(n, call(n, fn, 7, 3), "the output size", float_hint=_FLOAT_HINT)  # s=1, p=0, d=1
    configs = _conv_configs()
    got = [expect_int(n, call(n, fn, *c), "the output size", float_hint=_FLOAT_HINT) for c in configs]
    want = _conv2d_sizes(tuple(configs))
    wrong = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    if not wrong:
        if default != 5:
            raise CheckFailed(
                f"Exercise {n}: conv_output_size(7, 3) returned {default}, expected 5. The "
                "defaults are stride=1, padding=0, dilation=1."
            )
        return
    for mistake, hint in _SIZE_MISTAKES:
        if all(mistake(*c) == g for c, g in zip(configs, got)):
            raise CheckFailed(f"Exercise {n}: wrong output sizes. {hint}")
    size, kernel, stride, padding, dilation = configs[wrong[0]]
    raise CheckFailed(
        f"Exercise {n}: conv_output_size(size={size}, kernel={kernel}, stride={stride}, "
        f"padding={padding}, dilation={dilation}) returned {got[wrong[0]]}, but conv2d gives "
        f"{want[wrong[0]]} ({len(wrong)} of {len(configs)} cases wrong). The output size is "
        "floor((n + 2p - d(k - 1) - 1) / s) + 1."
    )


_PARAM_CONFIGS = [
    (3, 96, 11, True, 1), (3, 96, 11, False, 1), (16, 32, 3, True, 1), (16, 32, 3, False, 4),
    (16, 32, 3, True, 4), (8, 8, 3, True, 8), (6, 12, 5, True, 3), (1, 1, 1, True, 1),
    (64, 128, 1, False, 2),
]

_PARAM_MISTAKES: list[tuple[Callable[..., int], str]] = [
    (lambda i, o, k, b, g: i // g * k * k * o,
     "You forgot the bias: with bias=True each output channel has one more parameter."),
    (lambda i, o, k, b, g: i // g * k * k * o + o,
     "You counted the bias even for bias=False."),
    (lambda i, o, k, b, g: k * k * o + (o if b else 0),
     "You forgot the input channels: each filter is C_in / groups x k x k."),
    (lambda i, o, k, b, g: i * k * k * o + (o if b else 0),
     "You ignored `groups`: each filter sees only C_in / groups input channels."),
    (lambda i, o, k, b, g: i // g * k * o + (o if b else 0),
     "A k x k kernel has k² weights per input channel, not k."),
]


@exercise("1.2")
def check_conv_params(fn: Callable[..., int]) -> None:
    """Exercise 1.2: ``(C_in / g) k^2 C_out + C_out``, against ``nn.Conv2d`` parameter sizes."""
    n = "1.2"
    default = expect_int(n, call(n, fn, 3, 8, 3), "the parameter count", float_hint=_FLOAT_HINT)  # bias, groups=1
    got = [expect_int(n, call(n, fn, *c), "the parameter count", float_hint=_FLOAT_HINT) for c in _PARAM_CONFIGS]
    want = []
    for i, o, k, b, g in _PARAM_CONFIGS:
        conv = nn.Conv2d(i, o, k, bias=b, groups=g, device="meta")
        want.append(sum(p.numel() for p in conv.parameters()))
    wrong = [j for j, (g, w) in enumerate(zip(got, want)) if g != w]
    if not wrong:
        if default != 224:
            raise CheckFailed(
                f"Exercise {n}: conv_params(3, 8, 3) returned {default}, expected 224. The "
                "defaults are bias=True, groups=1."
            )
        return
    for mistake, hint in _PARAM_MISTAKES:
        if all(mistake(*c) == g for c, g in zip(_PARAM_CONFIGS, got)):
            raise CheckFailed(f"Exercise {n}: wrong parameter counts. {hint}")
    i, o, k, b, g = _PARAM_CONFIGS[wrong[0]]
    raise CheckFailed(
        f"Exercise {n}: conv_params(in_channels={i}, out_channels={o}, kernel={k}, bias={b}, "
        f"groups={g}) returned {got[wrong[0]]}, but nn.Conv2d has {want[wrong[0]]}. "
        "The count is (C_in / g) k² C_out weights plus C_out biases if bias=True."
    )


# ---------------------------------------------------------------------------
# 1.3 and 1.4: residual blocks

_RESIDUAL_ORDER = "conv1, bn1, conv2, bn2, shortcut (1x1 conv, then BN)"
_BOTTLENECK_ORDER = "conv1, bn1, conv2, bn2, conv3, bn3, shortcut (1x1 conv, then BN)"


def _residual_hints(ref: nn.Module, in_channels: int, out_channels: int, stride: int) -> dict[int, str]:
    conv_out = sum(m.out_channels for m in ref.modules() if isinstance(m, nn.Conv2d))
    hints = {conv_out: "Convolutions followed by batch norm need no bias: bias=False."}
    projection = in_channels * out_channels + 2 * out_channels
    if stride != 1 or in_channels != out_channels:
        hints[-projection] = (
            "When the shape changes, the skip connection needs a projection shortcut: a 1x1 "
            "convolution with the block's stride (bias=False), then batch norm."
        )
    else:
        hints[projection] = (
            "When the shape does not change, the shortcut is the identity (nn.Identity()), "
            "without parameters."
        )
    return hints


def _compare_copied(n: str, blocks: list, order: str, hint: str) -> None:
    """Copy each reference block's state into the student's block (registration
    order) and compare their outputs on the same input, in eval mode."""
    for config, mine, ref, x in blocks:
        copy_state(n, ref, mine, order)
        with torch.no_grad():
            want = ref(x)
        got = forward(n, mine.eval(), x, tuple(want.shape), f"the output of {config}")
        check_outputs(n, got, want, config, hint)


@exercise("1.3")
def check_residual_block(cls: type) -> None:
    """Exercise 1.3: the basic residual block against :class:`crfkit.models.ResidualBlock`."""
    n = "1.3"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(13)
        configs = [(16, 16, 1), (16, 32, 2)]
        blocks = []
        for c_in, c_out, stride in configs:
            config = f"MyResidualBlock({c_in}, {c_out}, stride={stride})"
            mine = build(n, cls, c_in, c_out, stride)
            ref = ResidualBlock(c_in, c_out, stride, shortcut="projection").double()
            size = 8 // stride
            x = torch.randn(2, c_in, 8, 8, dtype=torch.float64)  # [B, C_in, H, W]
            _check_count(n, mine, ref, config, _residual_hints(ref, c_in, c_out, stride))
            forward(n, mine.eval(), x, (2, c_out, size, size), f"the output of {config}")
            if stride == 1:
                _check_skip(n, build(n, cls, c_in, c_out, stride), c_in, config)
            blocks.append((config, mine, randomise(ref).eval(), x))
        _compare_copied(
            n, blocks, _RESIDUAL_ORDER,
            "Expected relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)): ReLU after bn1, "
            "the stride on conv1, padding 1 in both 3x3 convolutions, and the last ReLU "
            "after the addition.",
        )


@exercise("1.4")
def check_bottleneck(cls: type) -> None:
    """Exercise 1.4: the bottleneck block against :class:`crfkit.models.Bottleneck`."""
    n = "1.4"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(14)
        configs = [(16, 4, 1), (8, 4, 2)]
        blocks = []
        for c_in, width, stride in configs:
            config = f"MyBottleneck({c_in}, width={width}, stride={stride})"
            mine = build(n, cls, c_in, width, stride)
            ref = Bottleneck(c_in, width, stride, shortcut="projection").double()
            c_out, size = 4 * width, 8 // stride
            x = torch.randn(2, c_in, 8, 8, dtype=torch.float64)  # [B, C_in, H, W]
            with torch.no_grad():
                got = call(n, mine.eval(), x)
            if isinstance(got, torch.Tensor) and got.dim() == 4 and got.shape[1] != c_out:
                raise CheckFailed(
                    f"Exercise {n}: {config} outputs {got.shape[1]} channels, expected "
                    f"4 * width = {c_out}. The last 1x1 convolution expands the width by the "
                    "expansion factor 4 (and the shortcut must match it)."
                )
            forward(n, mine, x, (2, c_out, size, size), f"the output of {config}")
            _check_count(n, mine, ref, config, _residual_hints(ref, c_in, c_out, stride))
            if stride == 1 and c_in == c_out:
                _check_skip(n, build(n, cls, c_in, width, stride), c_in, config)
            blocks.append((config, mine, randomise(ref).eval(), x))
        _compare_copied(
            n, blocks, _BOTTLENECK_ORDER,
            "Expected relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x)): "
            "the stride on the 3x3 convolution conv2 (padding 1), ReLU after bn1 and bn2, "
            "and the last ReLU after the addition.",
        )


# ---------------------------------------------------------------------------
# 1.5: squeeze and excitation


@exercise("1.5")
def check_se_block(cls: type) -> None:
    """Exercise 1.5: the SE block against :class:`crfkit.models.SEBlock`."""
    n = "1.5"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(15)
        for channels, reduction in ((32, 8), (32, 16)):
            config = f"MySEBlock({channels}, reduction={reduction})"
            mine = build(n, cls, channels, reduction)
            ref = SEBlock(channels, reduction).double()
            hidden = channels // reduction
            got, want = num_params(mine), num_params(ref)
            if got != want:
                raise CheckFailed(
                    f"Exercise {n}: {config} has {got:,} parameters, expected {want:,}: "
                    f"Linear(C, C // reduction) = Linear({channels}, {hidden}), then "
                    f"Linear({hidden}, {channels}), both with bias. Check the hidden size "
                    "C // reduction."
                )
            with torch.no_grad():
                ref.fc1.weight.mul_(2.0)
                ref.fc2.weight.mul_(4.0)  # pre-sigmoid values well outside (0, 1)
            x = torch.rand(2, channels, 5, 4, dtype=torch.float64) ** 3 + 0.1  # [B, C, H, W] > 0
            forward(n, mine.eval(), x, (2, channels, 5, 4), f"the output of {config}")
            copy_state(n, ref, mine, "fc1 (Linear C -> C/r), fc2 (Linear C/r -> C)")
            out = forward(n, mine, x, (2, channels, 5, 4), f"the output of {config}")
            ratio = (out / x).flatten(2)  # [B, C, H W]: the gate of each channel
            if not torch.allclose(ratio, ratio[:, :, :1].expand_as(ratio), atol=1e-8):
                raise CheckFailed(
                    f"Exercise {n}: output / input of {config} varies over the pixels of a "
                    "channel; an SE block scales each channel by ONE number. Squeeze first: "
                    "average over H and W (global average pooling) to [B, C], compute the gate "
                    "from that, then multiply x by gate[:, :, None, None]."
                )
            gate = ratio[:, :, 0]  # [B, C]
            if not bool(((gate > 0) & (gate < 1)).all()):
                raise CheckFailed(
                    f"Exercise {n}: the channel scales of {config} lie in "
                    f"[{float(gate.min()):.3g}, {float(gate.max()):.3g}], but a gate must lie "
                    "in (0, 1). Did you forget the sigmoid after the second Linear layer?"
                )
            with torch.no_grad():
                want_out = ref(x)
                z_max = x.amax(dim=(2, 3))  # [B, C]
                gate_max = torch.sigmoid(ref.fc2(torch.relu(ref.fc1(z_max))))  # [B, C]
            if not torch.allclose(out, want_out, atol=ATOL) and torch.allclose(
                out, x * gate_max[:, :, None, None], atol=ATOL
            ):
                raise CheckFailed(
                    f"Exercise {n}: your squeeze takes the maximum over H and W; SE-Net "
                    "squeezes with the average (global average pooling, x.mean(dim=(2, 3)) or "
                    "nn.AdaptiveAvgPool2d(1))."
                )
            check_outputs(
                n, out, want_out, config,
                "Expected x * sigmoid(fc2(relu(fc1(mean_{h,w} x))))[:, :, None, None].",
            )


# ---------------------------------------------------------------------------
# 1.6: dense block


@exercise("1.6")
def check_dense_block(cls: type) -> None:
    """Exercise 1.6: the DenseNet-BC block against :class:`crfkit.models.DenseBlock`."""
    n = "1.6"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(16)
        for layers, c_in, growth in ((3, 4, 2), (2, 6, 4)):
            config = f"MyDenseBlock(num_layers={layers}, in_channels={c_in}, growth_rate={growth})"
            c_out = c_in + layers * growth
            mine = build(n, cls, layers, c_in, growth)
            ref = DenseBlock(layers, c_in, growth).double()
            x = torch.randn(2, c_in, 6, 6, dtype=torch.float64)  # [B, C_0, H, W]
            with torch.no_grad():
                got = call(n, mine.eval(), x)
            if isinstance(got, torch.Tensor) and got.dim() == 4 and got.shape[1] != c_out:
                if got.shape[1] == growth:
                    what = "only the last layer's growth_rate channels"
                elif got.shape[1] == layers * growth:
                    what = "the new features without the input"
                else:
                    what = f"{got.shape[1]} channels"
                raise CheckFailed(
                    f"Exercise {n}: {config} outputs {what}, expected in_channels + num_layers "
                    f"* growth_rate = {c_out} channels. Return the concatenation of the input "
                    "and every layer's output, not only the last layer's: "
                    "torch.cat([x, x_1, ..., x_L], dim=1)."
                )
            forward(n, mine, x, (2, c_out, 6, 6), f"the output of {config}")
            got_n, want_n = num_params(mine), num_params(ref)
            if got_n != want_n:
                raise CheckFailed(
                    f"Exercise {n}: {config} has {got_n:,} parameters, expected {want_n:,}. "
                    "Layer l (from 0) receives the concatenation of the input and ALL earlier "
                    f"layers' outputs, in_channels + l * growth_rate channels, and is BN-ReLU-"
                    "conv1x1(4 growth_rate)-BN-ReLU-conv3x3(growth_rate), convolutions with "
                    "bias=False."
                )
            copy_state(n, randomise(ref).eval(), mine,
                        "layer 1 (bn1, conv1, bn2, conv2), layer 2 (...), ... (an nn.ModuleList)")
            out = forward(n, mine.eval(), x, (2, c_out, 6, 6), f"the output of {config}")
            if not torch.equal(out[:, :c_in], x):
                raise CheckFailed(
                    f"Exercise {n}: the first in_channels = {c_in} output channels of {config} "
                    "are not the input: a dense block passes its input through unchanged, "
                    "first in the concatenation."
                )
            with torch.no_grad():
                want = ref(x)
            check_outputs(
                n, out, want, config,
                "Expected x_l = conv3x3(relu(bn(conv1x1(relu(bn(cat[x_0, ..., x_{l-1}])))))) "
                "(pre-activation: BN and ReLU BEFORE each convolution), padding 1 in the 3x3, "
                "and the output cat[x_0, x_1, ..., x_L] in that order.",
            )
