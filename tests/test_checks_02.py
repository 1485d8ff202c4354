"""Every checker of sheet 02 accepts a right answer and rejects the typical wrong ones, with a hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.functional import conv_transpose2d as aliased_conv_transpose2d

import crfkit as ck
from crfkit import checks
from crfkit.checks import sheet02  # noqa: F401 - exercises 2.1-2.2


# --- 2.1: the by-hand example, right and with typical slips

STRIDE_1 = [[2, 5, 2], [9, 18, 6], [9, 15, 4]]
STRIDE_2 = [[2, 1, 4, 2], [3, 1, 6, 2], [6, 3, 8, 4], [9, 3, 12, 4]]


def trconv_by_hand(stride):
    return STRIDE_1 if stride == 1 else STRIDE_2


def by_hand_flipped_kernel(stride):  # the kernel slid over the padded image without flipping
    x = torch.tensor(sheet02.BY_HAND_IMAGE)[None, None]
    w = torch.tensor(sheet02.BY_HAND_KERNEL).flip(0, 1)[None, None]
    return F.conv_transpose2d(x, w, stride=stride)[0, 0].tolist()


def by_hand_one_slip(stride):
    answer = [row[:] for row in trconv_by_hand(stride)]
    answer[1][1] -= 1
    return answer


def by_hand_valid_conv(stride):  # an ordinary convolution: the image shrinks
    x = torch.tensor(sheet02.BY_HAND_IMAGE)[None, None]
    w = torch.tensor(sheet02.BY_HAND_KERNEL)[None, None]
    return F.conv2d(x, w, stride=stride)[0, 0]


def test_by_hand_answer_is_torchs():
    x = torch.tensor(sheet02.BY_HAND_IMAGE)[None, None]
    w = torch.tensor(sheet02.BY_HAND_KERNEL)[None, None]
    for stride, want in ((1, STRIDE_1), (2, STRIDE_2)):
        assert F.conv_transpose2d(x, w, stride=stride)[0, 0].tolist() == want


def test_by_hand_accepts_tensors_of_shape_1_1_h_w():
    checks.check("2.1", lambda s: torch.tensor(trconv_by_hand(s))[None, None])


def test_wrong_entry_names_the_contributing_pixels():
    with pytest.raises(checks.CheckFailed) as info:
        checks.check("2.1", by_hand_one_slip)
    message = str(info.value)
    for term in ("x[0,0]·w[1,1]", "x[0,1]·w[1,0]", "x[1,0]·w[0,1]", "x[1,1]·w[0,0]"):
        assert term in message, message


# --- 2.2: a right answer (zero insertion + padding + conv2d) and its typical slips


def trconv(x, weight, stride=1, padding=0, *, zeros=None, pad=None, trailing=0,
           flip=True, swap=True):
    """Zero insertion, padding, conv2d; the keywords reproduce the usual slips."""
    zeros = stride - 1 if zeros is None else zeros
    k = weight.shape[-1]
    pad = k - 1 - padding if pad is None else pad
    b, c, h, w = x.shape
    z = x.new_zeros(b, c, h + (h - 1) * zeros + trailing, w + (w - 1) * zeros + trailing)
    for i in range(h):
        for j in range(w):
            z[:, :, i * (zeros + 1), j * (zeros + 1)] = x[:, :, i, j]
    if flip:
        weight = torch.flip(weight, dims=(2, 3))
    if swap:
        weight = weight.permute(1, 0, 2, 3)
    return F.conv2d(F.pad(z, (pad, pad, pad, pad)), weight)


def my_conv_transpose2d(x, weight, stride=1, padding=0):
    return trconv(x, weight, stride, padding)


def slip(**knobs):
    return lambda x, weight, stride=1, padding=0: trconv(x, weight, stride, padding, **knobs)


def pad_k_minus_1(x, weight, stride=1, padding=0):
    return trconv(x, weight, stride, padding, pad=weight.shape[-1] - 1)


def pad_p(x, weight, stride=1, padding=0):
    return trconv(x, weight, stride, padding, pad=padding)


def s_zeros(x, weight, stride=1, padding=0):
    return trconv(x, weight, stride, padding, zeros=stride)


def trailing_zeros(x, weight, stride=1, padding=0):
    return trconv(x, weight, stride, padding, trailing=stride - 1)


def calls_torch(x, weight, stride=1, padding=0):
    return F.conv_transpose2d(x, weight, stride=stride, padding=padding)


def calls_torch_namespace(x, weight, stride=1, padding=0):
    return torch.conv_transpose2d(x, weight, stride=stride, padding=padding)


def calls_alias(x, weight, stride=1, padding=0):
    return aliased_conv_transpose2d(x, weight, stride=stride, padding=padding)


def uses_module(x, weight, stride=1, padding=0):
    layer = nn.ConvTranspose2d(weight.shape[0], weight.shape[1], weight.shape[-1], stride,
                               padding, bias=False).double()
    layer.weight.data = weight
    return layer(x)


def in_place(x, weight, stride=1, padding=0):
    out = trconv(x, weight, stride, padding)
    x.zero_()
    return out


def float32_zeros(x, weight, stride=1, padding=0):  # torch.zeros without dtype=x.dtype
    b, c, h, w = x.shape
    z = torch.zeros(b, c, (h - 1) * stride + 1, (w - 1) * stride + 1)
    z[:, :, ::stride, ::stride] = x
    k = weight.shape[-1]
    return F.conv2d(z, weight.flip(2, 3).transpose(0, 1), padding=k - 1 - padding)


def wrong_defaults(x, weight, stride=2, padding=0):
    return trconv(x, weight, stride, padding)


def test_refused_builtins_are_restored_after_a_failed_check():
    originals = (F.conv_transpose2d, torch.conv_transpose2d, nn.ConvTranspose2d,
                 nn.modules.conv.ConvTranspose2d)
    for answer in (calls_torch, uses_module, lambda *a: 1 / 0):
        with pytest.raises(checks.CheckFailed):
            checks.check("2.2", answer)
        assert (F.conv_transpose2d, torch.conv_transpose2d, nn.ConvTranspose2d,
                nn.modules.conv.ConvTranspose2d) == originals
    x, w = torch.ones(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    assert F.conv_transpose2d(x, w).shape == (1, 1, 3, 3)  # and they work again
    assert nn.ConvTranspose2d(1, 1, 2)(x).shape == (1, 1, 3, 3)


def test_unswapped_channels_with_different_counts_get_the_swap_hint():
    def unswapped_when_counts_differ(x, weight, stride=1, padding=0):  # right while C_in = C_out
        swap = weight.shape[0] == weight.shape[1]
        return trconv(x, weight, stride, padding) if swap else trconv(x, weight, stride, padding, swap=False)

    with pytest.raises(checks.CheckFailed) as info:
        checks.check("2.2", unswapped_when_counts_differ)
    message = str(info.value)
    assert "raised RuntimeError" in message and "weight.transpose(0, 1)" in message, message


def test_helper_slips_are_wrong_on_the_first_config():
    """Each slip shows on the first config (C_in = C_out, k = 3, s = 2, p = 1)."""
    b, c_in, c_out, h, w, k, s, p = sheet02._TRCONV_CONFIGS[0]
    x = torch.randn(b, c_in, h, w, dtype=torch.float64)
    weight = torch.randn(c_in, c_out, k, k, dtype=torch.float64)
    want = F.conv_transpose2d(x, weight, stride=s, padding=p)
    assert torch.allclose(sheet02._via_conv2d(x, weight, s, p), want)
    for _, knobs in sheet02._TRCONV_MISTAKES:
        got = sheet02._via_conv2d(x, weight, s, p, **knobs(s, p, k))
        if knobs(s, p, k) != {"pad": p}:  # pad = p is right when k - 1 - p = p
            assert got.shape != want.shape or not torch.allclose(got, want)


# exercise -> (right answer, [(wrong answer, words the hint must contain), ...])
CASES = {
    "2.1": (
        trconv_by_hand,
        [
            (lambda s: STRIDE_1, "(n - 1)s + k - 2p"),
            (by_hand_valid_conv, "ordinary convolution shrinks"),
            (by_hand_flipped_kernel, "flipped"),
            (by_hand_one_slip, "row 1, column 1"),
            (lambda s: [[1, 2, 3], [4, 5]], "rows of equal length"),
            (lambda s: [1, 2, 3], "matrix"),
            ("not a function", "expected a function"),
        ],
    ),
    "2.2": (
        my_conv_transpose2d,
        [
            (calls_torch, "switched off"),
            (calls_torch_namespace, "switched off"),
            (calls_alias, "switched off"),
            (uses_module, "switched off"),
            (slip(flip=False), "not flipped"),
            (slip(swap=False), "not swapped"),
            (slip(flip=False, swap=False), "neither flipped"),
            (slip(zeros=0), "no zeros are inserted"),
            (s_zeros, "s zeros"),
            (trailing_zeros, "after the last pixel"),
            (slip(pad=0), "did not pad"),
            (pad_k_minus_1, "without subtracting p"),
            (pad_p, "padded by p"),
            (in_place, "in place"),
            (wrong_defaults, "defaults"),
            (lambda x, weight, stride=1, padding=0: 2 * trconv(x, weight, stride, padding),
             "differs from F.conv_transpose2d"),
            (lambda x, weight, stride=1, padding=0: trconv(x, weight, stride, padding).float(),
             "x.new_zeros"),
            (float32_zeros, "x.new_zeros"),
        ],
    ),
}


# right and wrong answers are run by tests/test_checks.py, which merges CASES


