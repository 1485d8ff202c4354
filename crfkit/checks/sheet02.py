"""Check cells of exercise sheet 02: transposed convolution and FCN.

=========  ===========================================  ====================================
exercise   the student writes                           checked against
=========  ===========================================  ====================================
2.1        ``trconv_by_hand(stride)``: the result of    ``torch.nn.functional.
           a transposed convolution of a 2x2 image      conv_transpose2d``
           with a 2x2 kernel, typed in by hand
2.2        ``my_conv_transpose2d(x, weight, stride,     ``torch.nn.functional.
           padding)`` by zero insertion, padding and    conv_transpose2d`` on 9 configs
           a convolution with the flipped kernel        (float64), which it must not call
                                                        (nor crfkit.nn.functional's own)
=========  ===========================================  ====================================

A transposed convolution of stride ``s`` and padding ``p`` maps ``n`` pixels to
``(n - 1) s + k - 2p``. Seen as a scatter, input pixel ``x[a, b]`` adds ``x[a, b] w`` to
the ``k x k`` block of the output whose corner is ``(s a - p, s b - p)``; seen as a
convolution, it is ``conv2d`` (a correlation) of the input with ``s - 1`` zeros inserted
between neighbouring pixels and ``k - 1 - p`` zeros of padding, by the kernel flipped by
180 degrees with its two channel axes swapped (Dumoulin & Visin 2016, Sec. 4).

When an answer is wrong the checkers recompute the usual slips (kernel not flipped,
channel axes not swapped, ``s`` zeros instead of ``s - 1``, padding ``k - 1`` instead of
``k - 1 - p`` ...) and name the one the answer matches.

Every checker seeds its own random numbers inside ``torch.random.fork_rng``, so running
a check cell does not change the random state of the notebook.

References
----------
V. Dumoulin, F. Visin. A guide to convolution arithmetic for deep learning. 2016.
https://arxiv.org/abs/1603.07285
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from crfkit.checks._common import CheckFailed, call, exercise, expect_tensor, unchanged
from crfkit.nn import functional as ck_functional

ATOL = 1e-8


# ---------------------------------------------------------------------------
# 2.1: a transposed convolution by hand

#: the image and kernel of exercise 2.1 (the lecture's example is 3x3 with a 2x2 kernel)
BY_HAND_IMAGE = [[1.0, 2.0], [3.0, 4.0]]
BY_HAND_KERNEL = [[2.0, 1.0], [3.0, 1.0]]


def _as_matrix(number: str, got: Any, what: str) -> torch.Tensor:
    """A nested list or a tensor as a float64 ``[H, W]`` matrix (leading 1s dropped)."""
    if isinstance(got, torch.Tensor):
        matrix = got.detach().to(torch.float64)
    else:
        try:
            matrix = torch.as_tensor(got, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise CheckFailed(
                f"Exercise {number}: could not read {what} as a matrix ({err}). Return a list "
                "of rows of equal length, e.g. [[1, 2, 3], [4, 5, 6]], or a 2-D tensor."
            ) from None
    while matrix.dim() > 2 and matrix.shape[0] == 1:
        matrix = matrix[0]  # [1, 1, H, W] -> [H, W]
    if matrix.dim() != 2:
        raise CheckFailed(
            f"Exercise {number}: expected {what} as a matrix (a list of rows, or a 2-D "
            f"tensor), got something of shape {list(matrix.shape)}."
        )
    return matrix


def _fmt(matrix: torch.Tensor) -> str:
    return str([[int(v) if float(v).is_integer() else round(float(v), 4) for v in row]
                for row in matrix.tolist()])


def _contributions(i: int, j: int, stride: int, x: torch.Tensor, w: torch.Tensor) -> str:
    """The terms ``x[a, b] w[i - s a, j - s b]`` of output entry ``(i, j)`` (padding 0)."""
    k = w.shape[-1]
    names, values, total = [], [], 0.0
    for a in range(x.shape[0]):
        for b in range(x.shape[1]):
            u, v = i - stride * a, j - stride * b
            if 0 <= u < k and 0 <= v < k:
                names.append(f"x[{a},{b}]·w[{u},{v}]")
                values.append(f"{x[a, b]:g}·{w[u, v]:g}")
                total += float(x[a, b] * w[u, v])
    return f"{' + '.join(names)} = {' + '.join(values)} = {total:g}"


@exercise("2.1")
def check_trconv_by_hand(fn: Callable[[int], Any]) -> None:
    """Exercise 2.1: ``trconv_by_hand(s)`` for ``s = 1, 2`` against ``F.conv_transpose2d``."""
    n = "2.1"
    x = torch.tensor(BY_HAND_IMAGE, dtype=torch.float64)  # [n, n]
    w = torch.tensor(BY_HAND_KERNEL, dtype=torch.float64)  # [k, k]
    size_in, k = x.shape[0], w.shape[0]
    for stride in (1, 2):
        what = f"trconv_by_hand({stride})"
        got = _as_matrix(n, call(n, fn, stride), what)
        want = F.conv_transpose2d(x[None, None], w[None, None], stride=stride)[0, 0]  # [n', n']
        size = (size_in - 1) * stride + k
        if tuple(got.shape) != (size, size):
            smaller = " An ordinary convolution shrinks the image; a transposed one enlarges it." \
                if got.shape[0] < size_in else ""
            raise CheckFailed(
                f"Exercise {n}: {what} is {got.shape[0]} x {got.shape[1]}, expected "
                f"{size} x {size}. A transposed convolution maps n pixels to (n - 1)s + k - 2p = "
                f"({size_in} - 1)·{stride} + {k} - 0 = {size}.{smaller}"
            )
        if torch.allclose(got, want, atol=1e-6):
            continue
        flipped = F.conv_transpose2d(x[None, None], w.flip(0, 1)[None, None], stride=stride)[0, 0]
        if torch.allclose(got, flipped, atol=1e-6):
            raise CheckFailed(
                f"Exercise {n}: {what} is the transposed convolution with the kernel flipped "
                "by 180 degrees, as you get by sliding the kernel over the padded (and, at "
                "stride 2, zero-inserted) image WITHOUT flipping it, a correlation (what "
                "conv2d computes). Flip the kernel first, or scatter: pixel x[a, b] adds "
                "x[a, b]·w to the 2x2 block whose top-left corner is (s·a, s·b)."
            )
        wrong = ((got - want).abs() > 1e-6).nonzero().tolist()
        i, j = wrong[0]
        raise CheckFailed(
            f"Exercise {n}: {what} = {_fmt(got)} has {len(wrong)} wrong "
            f"entr{'y' if len(wrong) == 1 else 'ies'}; the first, at row {i}, column {j}, is "
            f"{got[i, j].item():g}, expected {want[i, j].item():g}. It collects every input "
            f"pixel whose scattered copy of the kernel covers it: "
            f"{_contributions(i, j, stride, x, w)}."
        )


# ---------------------------------------------------------------------------
# 2.2: transposed convolution from an ordinary one


class _Refused(Exception):
    """Raised when the answer calls the transposed convolution it is asked to write."""


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise _Refused("the built-in transposed convolution is switched off during this check")


class _RefuseMode(TorchFunctionMode):
    """Refuse torch's transposed convolutions however they were imported (aliases too)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d"):
            _refuse()
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _builtin_transposed_conv_refused() -> Iterator[None]:
    """Patch ``F.conv_transpose2d``, ``torch.conv_transpose2d`` and ``nn.ConvTranspose2d``
    to raise, and restore them afterwards, also when the body raises."""
    targets = [(F, "conv_transpose2d"), (torch, "conv_transpose2d"), (nn, "ConvTranspose2d"),
               (nn.modules, "ConvTranspose2d"), (nn.modules.conv, "ConvTranspose2d")]
    saved = [(module, name, getattr(module, name)) for module, name in targets]
    try:
        for module, name, _ in saved:
            setattr(module, name, _refuse)
        with _RefuseMode():
            yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def _call_without_builtin(number: str, fn: Any, *args: Any) -> Any:
    try:
        with _builtin_transposed_conv_refused():
            return call(number, fn, *args)
    except CheckFailed as err:
        cause = err.__cause__
        if isinstance(cause, _Refused):
            raise CheckFailed(
                f"Exercise {number}: your function calls torch's transposed convolution "
                "(F.conv_transpose2d, torch.conv_transpose2d or nn.ConvTranspose2d), the "
                "operation you are asked to write; it is switched off during the check. Build "
                "it from an ordinary convolution: insert s - 1 zeros between the pixels, pad "
                "by k - 1 - p, then F.conv2d with the flipped kernel."
            ) from None
        if isinstance(cause, RuntimeError) and any(
                words in str(cause) for words in ("scalar type", "dtype", "Tensor) and")):
            raise CheckFailed(
                f"{err} The check passes float64 tensors: create the zero-inserted tensor with "
                "the input's dtype, x.new_zeros(...) or torch.zeros(..., dtype=x.dtype)."
            ) from cause
        if isinstance(cause, RuntimeError) and "channels" in str(cause):
            raise CheckFailed(
                f"{err} A transposed convolution's weight is [C_in, C_out, k, k], while "
                "F.conv2d expects [C_out, C_in, k, k]: swap the first two axes, "
                "weight.transpose(0, 1)."
            ) from cause
        raise


def _via_conv2d(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int, *,
                zeros: int | None = None, pad: int | None = None, trailing: int = 0,
                flip: bool = True, swap: bool = True) -> torch.Tensor:
    """Transposed convolution by zero insertion + padding + ``conv2d``, with knobs that
    reproduce the usual slips (the defaults give the right answer).

    ``[B, C_in, H, W] -> [B, C_out, (H - 1) s + k - 2p, (W - 1) s + k - 2p]``.
    """
    b, c, h, w = x.shape
    k = weight.shape[-1]
    zeros = stride - 1 if zeros is None else zeros
    pad = k - 1 - padding if pad is None else pad
    step = zeros + 1
    z = x.new_zeros(b, c, (h - 1) * step + 1 + trailing, (w - 1) * step + 1 + trailing)
    z[:, :, : (h - 1) * step + 1 : step, : (w - 1) * step + 1 : step] = x  # [B, C_in, H', W']
    kernel = weight.flip(2, 3) if flip else weight  # [C_in, C_out, k, k]
    kernel = kernel.transpose(0, 1) if swap else kernel  # [C_out, C_in, k, k]
    return F.conv2d(z, kernel, padding=pad)


#: (hint, knobs of :func:`_via_conv2d` as a function of (s, p, k)), tried in this order
_TRCONV_MISTAKES: list[tuple[str, Callable[[int, int, int], dict]]] = [
    ("the kernel is not flipped. Sliding a kernel over the zero-inserted image computes a "
     "correlation; the transposed convolution needs the kernel rotated by 180 degrees, "
     "weight.flip(2, 3) (or flip(-1, -2)).",
     lambda s, p, k: dict(flip=False)),
    ("the channel axes are not swapped. A transposed convolution's weight is [C_in, C_out, k, k]; "
     "F.conv2d reads its weight as [C_out, C_in, k, k]: pass weight.flip(2, 3).transpose(0, 1).",
     lambda s, p, k: dict(swap=False)),
    ("the kernel is neither flipped nor are its channel axes swapped: use "
     "weight.flip(2, 3).transpose(0, 1).",
     lambda s, p, k: dict(flip=False, swap=False)),
    ("no zeros are inserted between the pixels: stride s needs s - 1 zeros between "
     "neighbours (the input is spread out to (n - 1)s + 1 pixels).",
     lambda s, p, k: dict(zeros=0)),
    ("you inserted s zeros between neighbouring pixels; stride s needs s - 1 of them "
     "(n pixels become (n - 1)s + 1).",
     lambda s, p, k: dict(zeros=s)),
    ("your zero-inserted image has s - 1 extra zeros after the last pixel (as when x is "
     "written into every s-th pixel of a tensor of n·s pixels); it must end on a pixel and "
     "be (n - 1)s + 1 pixels long.",
     lambda s, p, k: dict(trailing=s - 1)),
    ("you did not pad the zero-inserted image: pad it by k - 1 - p on every side.",
     lambda s, p, k: dict(pad=0)),
    ("you padded by k - 1 without subtracting p: a transposed convolution with padding p "
     "corresponds to padding k - 1 - p (its padding crops the output).",
     lambda s, p, k: dict(pad=k - 1)),
    ("you padded by p, as for an ordinary convolution; the transposed convolution with "
     "padding p corresponds to padding k - 1 - p.",
     lambda s, p, k: dict(pad=p)),
    ("you padded by k - 1 + p; the padding p of a transposed convolution is subtracted: "
     "k - 1 - p.",
     lambda s, p, k: dict(pad=k - 1 + p)),
]

#: (B, C_in, C_out, H, W, k, stride, padding); the first shows every slip at once
_TRCONV_CONFIGS = [
    (2, 2, 2, 3, 4, 3, 2, 1),
    (1, 3, 3, 3, 3, 4, 1, 1),
    (2, 3, 2, 4, 3, 2, 2, 0),
    (1, 2, 3, 3, 5, 4, 2, 1),
    (1, 1, 2, 3, 3, 3, 3, 0),
    (2, 3, 1, 2, 3, 4, 3, 1),
    (1, 2, 2, 5, 4, 3, 1, 0),
    (1, 4, 3, 3, 2, 2, 1, 0),
    (1, 1, 1, 4, 4, 3, 3, 1),
]


def _diagnose(number: str, got: Any, x: torch.Tensor, weight: torch.Tensor, stride: int,
              padding: int, want: torch.Tensor, config: str) -> None:
    """Raise the hint of the slip ``got`` matches, if any."""
    if not isinstance(got, torch.Tensor) or got.dtype != want.dtype:
        return
    k = weight.shape[-1]
    for hint, knobs in _TRCONV_MISTAKES:
        try:
            slip = _via_conv2d(x, weight, stride, padding, **knobs(stride, padding, k))
        except RuntimeError:  # e.g. unswapped channel axes with C_in != C_out
            continue
        if slip.shape == got.shape and not (slip.shape == want.shape and torch.allclose(slip, want)) \
                and torch.allclose(got, slip, atol=1e-6):
            raise CheckFailed(f"Exercise {number}: wrong result for {config}: {hint}")


@exercise(
    "2.2",
    refuses=(ck_functional.conv_transpose2d, ck_functional.conv_transpose2d_scatter,
             ck_functional.conv_transpose2d_zero_insertion, ck_functional.conv_transpose2d_matrix),
    refused="your function calls {called}, crfkit's own transposed convolution, the operation "
            "you are asked to write. Build it from an ordinary convolution: insert s - 1 zeros "
            "between the pixels, pad by k - 1 - p, then F.conv2d with the flipped kernel.",
)
def check_conv_transpose2d(fn: Callable[..., torch.Tensor]) -> None:
    """Exercise 2.2: ``my_conv_transpose2d`` against ``F.conv_transpose2d``, without calling it."""
    n = "2.2"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(22)
        cases = []
        for b, c_in, c_out, h, w, k, s, p in _TRCONV_CONFIGS:
            x = torch.randn(b, c_in, h, w, dtype=torch.float64)  # [B, C_in, H, W]
            weight = torch.randn(c_in, c_out, k, k, dtype=torch.float64)  # [C_in, C_out, k, k]
            cases.append((x, weight, s, p))
    for x, weight, s, p in cases:
        b, c_in, h, w = x.shape
        c_out, k = weight.shape[1], weight.shape[-1]
        config = (f"x of shape {list(x.shape)}, weight of shape {list(weight.shape)}, "
                  f"stride={s}, padding={p}")
        want = F.conv_transpose2d(x, weight, stride=s, padding=p)  # [B, C_out, H', W']
        keep_x, keep_w = x.clone(), weight.clone()
        got = _call_without_builtin(n, fn, x, weight, s, p)
        unchanged(n, keep_x, x, "x")
        unchanged(n, keep_w, weight, "weight")
        _diagnose(n, got, x, weight, s, p, want, config)
        if isinstance(got, torch.Tensor) and got.dim() == 4 and tuple(got.shape) != tuple(want.shape):
            raise CheckFailed(
                f"Exercise {n}: for {config} your output has shape {list(got.shape)}, expected "
                f"{list(want.shape)}: [B, C_out, (H - 1)s + k - 2p, (W - 1)s + k - 2p]. Insert "
                "s - 1 zeros between neighbouring pixels, pad by k - 1 - p, then convolve "
                "(stride 1, no further padding)."
            )
        got = expect_tensor(n, got, tuple(want.shape), f"the output for {config}")
        if got.dtype != want.dtype:
            raise CheckFailed(
                f"Exercise {n}: for {config} (float64) your output is {got.dtype}. Keep the "
                "input's dtype: create the zero-inserted tensor with x.new_zeros(...) or "
                "torch.zeros(..., dtype=x.dtype)."
            )
        if not torch.allclose(got, want, atol=ATOL, rtol=1e-6):
            worst = float((got - want).abs().max())
            raise CheckFailed(
                f"Exercise {n}: for {config} your output differs from F.conv_transpose2d by up "
                f"to {worst:.3g}. Expected F.conv2d(z, weight.flip(2, 3).transpose(0, 1)) with z "
                "the input with s - 1 zeros between neighbouring pixels and k - 1 - p zeros of "
                "padding around."
            )
    x, weight = cases[0][0], cases[0][1]
    got = _call_without_builtin(n, fn, x, weight)  # default stride=1, padding=0
    want = F.conv_transpose2d(x, weight)
    if not (isinstance(got, torch.Tensor) and got.shape == want.shape
            and torch.allclose(got, want, atol=ATOL)):
        raise CheckFailed(
            f"Exercise {n}: my_conv_transpose2d(x, weight) without stride and padding must "
            "give F.conv_transpose2d(x, weight): the defaults are stride=1, padding=0."
        )
