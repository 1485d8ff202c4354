"""Check cells of exercise sheet 03: atrous convolution and DeepLab.

=========  ===========================================  ====================================
exercise   the student writes                           checked against
=========  ===========================================  ====================================
3.1        ``receptive_field(layers) -> int`` for a     :func:`crfkit.nn.arithmetic.
           list of ``(kernel, stride, dilation)``       receptive_field` (which it must not
                                                        call) on 12 stacks (plain, strided,
                                                        dilated, DeepLab-like)
3.2        ``class MyASPP(nn.Module)``                  :class:`crfkit.models.ASPP`
=========  ===========================================  ====================================

The receptive field ``r`` of one output pixel of a stack of layers, in input pixels, and
the distance ``j`` ("jump") between neighbouring pixels of a layer's output, measured in
input pixels, follow

.. math::

    r \\leftarrow r + d\\,(k - 1)\\, j, \\qquad j \\leftarrow j\\, s,

layer by layer from ``r = j = 1`` at the input (Araujo et al. 2019): a layer's kernel
spans ``d (k - 1) + 1`` pixels of *its input*, whose neighbours are ``j`` input pixels
apart, and its own stride only spreads out the layers after it. The expected values come
from :func:`crfkit.nn.arithmetic.receptive_field`, the one place crfkit computes receptive
fields; ``tests/test_checks_03.py`` checks them against the extent of a gradient measured
in torch. The usual slips (no dilation, no jump, the stride applied first, ``r`` from 0)
are recomputed to name the one an answer matches.

The ASPP checker compares parameter counts (naming the piece a difference points to),
the dilations and paddings of the 3x3 convolutions, output shapes for square and
non-square inputs, then copies crfkit's parameters and buffers into the student's module
in registration order and compares the outputs in eval mode (float64).

Every checker seeds its own random numbers inside ``torch.random.fork_rng``, so running
a check cell does not change the random state of the notebook.

References
----------
A. Araujo, W. Norris, J. Sim. Computing receptive fields of convolutional neural networks.
Distill 2019. https://distill.pub/2019/computing-receptive-fields/
L.-C. Chen, G. Papandreou, F. Schroff, H. Adam. Rethinking atrous convolution for semantic
image segmentation (DeepLab v3). arXiv 2017. https://arxiv.org/abs/1706.05587
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from crfkit.checks._common import (
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
from crfkit.models import ASPP
from crfkit.nn import arithmetic

Layers = Sequence[tuple[int, int, int]]


# ---------------------------------------------------------------------------
# 3.1: receptive field of a stack of layers


def expected_receptive_field(layers: Layers) -> int:
    """The oracle, :func:`crfkit.nn.arithmetic.receptive_field` of the stack of convolutions
    ``(kernel, stride, dilation)``: ``r += d (k - 1) j; j *= s`` from ``r = j = 1``."""
    return arithmetic.receptive_field([arithmetic.conv(k, s, dilation=d) for k, s, d in layers])


def _rf_no_dilation(layers: Layers) -> int:
    return expected_receptive_field([(k, s, 1) for k, s, d in layers])


def _rf_no_jump(layers: Layers) -> int:
    return expected_receptive_field([(k, 1, d) for k, s, d in layers])


def _rf_stride_first(layers: Layers) -> int:
    # r += d (k - 1) j s, then j *= s: the same as a dilation of d s
    return expected_receptive_field([(k, s, d * s) for k, s, d in layers])


def _rf_extent(layers: Layers) -> int:
    r, j = 0, 1
    for k, s, d in layers:
        r += (d * (k - 1) + 1) * j
        j *= s
    return r


_RF_MISTAKES: list[tuple[Callable[[Layers], int], str]] = [
    (lambda layers: expected_receptive_field(layers) - 1,
     "Yours are all one too small: r starts at 1 (the output pixel of an empty stack sees "
     "one input pixel), not at 0."),
    (_rf_no_dilation,
     "You ignored the dilation: a kernel of size k with dilation d spans d(k - 1) + 1 "
     "pixels, so the layer adds d(k - 1)·j."),
    (_rf_no_jump,
     "You ignored the strides of the earlier layers: after a stride-s layer neighbouring "
     "pixels are s times further apart in the input, so keep the jump j (j *= s) and add "
     "d(k - 1)·j."),
    (_rf_stride_first,
     "You applied a layer's own stride before its kernel. The stride of a layer spreads out "
     "only the layers AFTER it: first r += d(k - 1)·j, then j *= s."),
    (_rf_extent,
     "You added each layer's whole extent d(k - 1) + 1 (times j); the pixel in the middle is "
     "already counted, so a layer adds d(k - 1)·j, starting from r = 1."),
]

#: (kernel, stride, dilation) stacks: plain, strided, dilated, DeepLab-like
_RF_STACKS: list[list[tuple[int, int, int]]] = [
    [(3, 1, 1)],
    [(3, 1, 1)] * 3,  # VGG: three 3x3 see 7x7
    [(3, 1, 2)],
    [(3, 1, 1), (3, 1, 2), (3, 1, 4)],  # Yu & Koltun's context module: doubling rates
    [(2, 2, 1)] * 3,
    [(3, 2, 1), (3, 2, 1), (3, 1, 1)],
    [(7, 2, 1), (3, 2, 1), (3, 1, 1), (3, 1, 1)],  # a ResNet stem, then two 3x3
    [(5, 3, 1), (3, 1, 3)],
    [(1, 1, 1)],
    # DeepLab-like: stem and two strided stages (output stride 8), then dilated 3x3s
    [(7, 2, 1), (3, 2, 1), (3, 1, 1), (3, 2, 1), (3, 1, 2), (3, 1, 2), (3, 1, 4), (3, 1, 4)],
    # output stride 16, then an ASPP branch of rate 6
    [(7, 2, 1), (3, 2, 1), (3, 2, 1), (3, 2, 1), (3, 1, 6)],
    [(3, 1, 2)] * 3,  # equal rates: the gridding stack of the "Try it"
]


_INT_HINTS = dict(float_hint="Count with integers (no `/`), or return int(r).",
                  array_hint="Convert it with int(...).")


@exercise(
    "3.1",
    refuses=(arithmetic.receptive_field, arithmetic.input_region, arithmetic.describe),
    refused="your function calls {called}, crfkit's own answer to this exercise. Go through "
            "the layers yourself with r = j = 1: r += d(k - 1)·j, then j *= s.",
)
def check_receptive_field(fn: Callable[[Layers], int]) -> None:
    """Exercise 3.1: ``r += d (k - 1) j; j *= s`` from ``r = j = 1``, on several stacks."""
    n = "3.1"
    got = []
    for stack in _RF_STACKS:
        layers = list(stack)
        got.append(expect_int(n, call(n, fn, layers), "the receptive field", **_INT_HINTS))
        if layers != stack:
            raise CheckFailed(f"Exercise {n}: your function changed its input list `layers`.")
    want = [expected_receptive_field(stack) for stack in _RF_STACKS]
    wrong = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    if not wrong:
        return
    for mistake, hint in _RF_MISTAKES:
        if all(mistake(stack) == g for stack, g in zip(_RF_STACKS, got)):
            raise CheckFailed(f"Exercise {n}: wrong receptive fields. {hint}")
    i = wrong[0]
    raise CheckFailed(
        f"Exercise {n}: receptive_field({_RF_STACKS[i]}) returned {got[i]}, expected {want[i]} "
        f"({len(wrong)} of {len(_RF_STACKS)} stacks wrong). Go through the layers in order with "
        "r = j = 1: r += d(k - 1)·j, then j *= s."
    )


# ---------------------------------------------------------------------------
# 3.2: atrous spatial pyramid pooling

_ASPP_ORDER = ("the 1x1 branch, the 3x3 branches in the order of `rates`, the image-pooling "
               "branch, the projection (each conv, then its batch norm)")

#: (in_channels, out_channels, rates)
_ASPP_CONFIGS = [(5, 4, (2, 3)), (3, 2, (1, 6, 12, 18))]


def _aspp_hints(mine: nn.Module, c_in: int, c_out: int, num_rates: int) -> dict[int, str]:
    """What a difference in parameter count most likely means (keys: mine - crfkit's)."""
    convs = num_rates + 3  # 1x1, R 3x3, pooling 1x1, projection
    pools = [m for m in mine.modules() if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AvgPool2d))]
    one_by_one = "probably the 1x1 branch" if pools else "probably the image-pooling branch"
    return {
        -(c_in * c_out + 2 * c_out + c_out * c_out): (
            "One branch made of a 1x1 convolution C_in -> C_out and its batch norm is missing: "
            "the 1x1 branch or the image-pooling branch (global average pooling, 1x1 "
            f"convolution, BN, ReLU) — {one_by_one}. ASPP has len(rates) + 2 branches."),
        -(9 * c_in * c_out + 2 * c_out + c_out * c_out): (
            "One 3x3 branch is missing: there is one dilated 3x3 convolution per rate."),
        -8 * num_rates * c_in * c_out: (
            "Your atrous branches have 1x1 kernels; they are 3x3 convolutions dilated by each rate."),
        convs * c_out: (
            "Your convolutions have biases; each is followed by batch norm (which has its own "
            "shift), so create them with bias=False."),
        -2 * convs * c_out: (
            "Batch norm is missing: every convolution is followed by BatchNorm2d(C_out) and ReLU."),
        -convs * c_out: (
            "You replaced the batch norms by convolution biases: every convolution has "
            "bias=False and is followed by BatchNorm2d(C_out) and ReLU."),
        -2 * c_out: (
            "One batch norm is missing (the image-pooling branch needs one too): every "
            "convolution is followed by BatchNorm2d(C_out) and ReLU."),
        -((num_rates + 2) * c_out * c_out + 2 * c_out): (
            "The projection is missing: a 1x1 convolution from (len(rates) + 2)·C_out to "
            "C_out channels, then batch norm and ReLU."),
        -c_out * c_out: (
            "Your projection sees one branch too few: it takes the concatenation of all "
            "len(rates) + 2 branch outputs, (len(rates) + 2)·C_out channels."),
    }


def _check_dilations(number: str, mine: nn.Module, rates: tuple[int, ...], config: str) -> None:
    convs = [m for m in mine.modules() if isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (3, 3)]
    dilations = sorted(tuple(m.dilation) for m in convs)
    expected = sorted((r, r) for r in rates)
    if dilations != expected:
        raise CheckFailed(
            f"Exercise {number}: the 3x3 convolutions of {config} have dilations "
            f"{[d[0] if d[0] == d[1] else d for d in dilations]}, expected the rates "
            f"{sorted(rates)}: nn.Conv2d(C_in, C_out, 3, padding=r, dilation=r, bias=False), "
            "one per rate."
        )
    for m in convs:
        if tuple(m.padding) != tuple(m.dilation):
            raise CheckFailed(
                f"Exercise {number}: in {config} the 3x3 convolution with dilation "
                f"{m.dilation[0]} has padding {m.padding}. A 3x3 kernel dilated by r spans "
                "2r + 1 pixels: padding=r keeps H and W."
            )


@exercise("3.2")
def check_aspp(cls: type) -> None:
    """Exercise 3.2: atrous spatial pyramid pooling against :class:`crfkit.models.ASPP`."""
    n = "3.2"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(32)
        for c_in, c_out, rates in _ASPP_CONFIGS:
            config = f"MyASPP({c_in}, {c_out}, rates={rates})"
            mine = build(n, cls, c_in, c_out, rates)
            ref = ASPP(c_in, c_out, rates).double()
            got, want = num_params(mine), num_params(ref)
            if got != want:
                hint = _aspp_hints(mine, c_in, c_out, len(rates)).get(got - want, "")
                raise CheckFailed(
                    f"Exercise {n}: {config} has {got:,} parameters, expected {want:,} "
                    f"(difference {got - want:+,}). {hint}".rstrip()
                )
            _check_dilations(n, mine, rates, config)
            mine.eval()
            for size in ((2, c_in, 9, 9), (1, c_in, 6, 11), (2, c_in, 3, 4)):
                x = torch.randn(*size, dtype=torch.float64)  # [B, C_in, H, W]
                with torch.no_grad():
                    out = call(n, mine, x.clone())
                if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[1] != c_out:
                    hint = (" You return the concatenation of the branches: project it with the "
                            "1x1 convolution to C_out channels."
                            if out.shape[1] == (len(rates) + 2) * c_out else "")
                    raise CheckFailed(
                        f"Exercise {n}: {config} on an input of shape {list(size)} outputs "
                        f"{out.shape[1]} channels, expected out_channels = {c_out}.{hint}"
                    )
                forward(n, mine, x, (size[0], c_out, size[2], size[3]),
                         f"the output of {config} on an input of shape {list(size)}")
            copy_state(n, randomise(ref).eval(), mine, _ASPP_ORDER)
            x = torch.randn(2, c_in, 7, 10, dtype=torch.float64)  # [B, C_in, H, W]
            with torch.no_grad():
                want_out = ref(x)
            out = forward(n, mine, x, tuple(want_out.shape), f"the output of {config}")
            check_outputs(
                n, out, want_out, config,
                "Expected project(cat[b_1x1, b_rate1, ..., b_rateR, b_pool]) along the channels, "
                "in that order, each branch conv-BN-ReLU, b_pool the global average of x through "
                "its 1x1 conv-BN-ReLU, copied to every pixel (F.interpolate of the 1x1 map, or "
                "expand), and the projection conv-BN-ReLU too.",
            )
