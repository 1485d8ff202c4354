"""Checks at crfkit's public edge: each names the argument, what it expected, what came."""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable

import torch


def check_tensor(
    name: str,
    value: object,
    *,
    ndim: int | None = None,
    floating: bool | None = None,
    dtype: torch.dtype | None = None,
    dims: str = "",
) -> torch.Tensor:
    """Raise ``TypeError``/``ValueError`` unless ``value`` is a tensor of the right kind."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor{_of(dims)}, got {type(value).__name__}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(
            f"{name}: expected a {ndim}-D tensor{_of(dims)}, got shape {list(value.shape)}"
        )
    if floating is True and not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {value.dtype}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {value.dtype}")
    return value


def check_finite(name: str, value: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``value`` holds NaN or inf.

    One reduction decides the common case: a NaN or an inf anywhere makes the sum NaN or inf,
    so a finite sum proves every element finite; only a non-finite sum (which finite but huge
    values can also give) is looked at element by element.
    """
    if not value.is_floating_point() or value.numel() == 0:
        return
    if bool(torch.isfinite(value.detach().sum())):
        return
    if not bool(torch.isfinite(value).all()):
        n_nan = int(torch.isnan(value).sum())
        n_inf = int(torch.isinf(value).sum())
        raise ValueError(f"{name}: expected finite values, got {n_nan} NaN and {n_inf} inf")


def check_batched(name: str, value: object, dims: str, *, floating: bool | None = None) -> torch.Tensor:
    """A non-empty 4-D batched tensor ``dims`` (e.g. ``"[B, K, H, W]"``); an unbatched 3-D
    one gets the hint to add the batch dimension."""
    check_tensor(name, value, floating=floating, dims=dims)
    if value.dim() == 3:
        raise ValueError(
            f"{name}: expected a batched 4-D tensor of shape {dims}, got the unbatched shape "
            f"{list(value.shape)}; add a batch dimension with {name}[None]"
        )
    check_tensor(name, value, ndim=4, dims=dims)
    if value.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty {dims} tensor, got shape {list(value.shape)}")
    return value


def _of(dims: str) -> str:
    return f" of shape {dims}" if dims else ""


# --------------------------------------------------------------------------------------------
# numbers and choices: a wrong *kind* of value is a TypeError, a wrong *value* a ValueError
# --------------------------------------------------------------------------------------------


def check_int(name: str, value: object, *, minimum: int | None = None, maximum: int | None = None,
              odd: bool = False) -> int:
    """Return ``value`` as an ``int`` (NumPy integers accepted), else raise.

    ``TypeError`` for anything that is not an integer (``True``, ``1.5``, ``"3"``);
    ``ValueError`` for an integer below ``minimum``, above ``maximum`` or (``odd``) even.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected {_bounds(minimum, maximum, odd)}, got {type(value).__name__} {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum) or (odd and value % 2 == 0):
        raise ValueError(f"{name}: expected {_bounds(minimum, maximum, odd)}, got {value}")
    return value


def check_positive_int(name: str, value: object) -> int:
    """:func:`check_int` with ``minimum=1``."""
    return check_int(name, value, minimum=1)


def check_real(name: str, value: object, *, minimum: float | None = None, maximum: float | None = None,
               open_minimum: bool = False, open_maximum: bool = False) -> float:
    """Return ``value`` as a finite ``float`` in the given interval, else raise.

    ``TypeError`` for a non-number (a bool, a string, a tensor); ``ValueError`` for NaN, inf or a
    number outside ``[minimum, maximum]`` (an end is excluded with ``open_minimum`` / ``open_maximum``).
    """
    interval = _interval(minimum, maximum, open_minimum, open_maximum)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a finite number{interval}, got {type(value).__name__} {value!r}")
    x = float(value)
    below = minimum is not None and (x <= minimum if open_minimum else x < minimum)
    above = maximum is not None and (x >= maximum if open_maximum else x > maximum)
    if not math.isfinite(x) or below or above:
        raise ValueError(f"{name}: expected a finite number{interval}, got {value!r}")
    return x


def check_probability(name: str, value: object, *, below_one: bool = True) -> float:
    """A number in ``[0, 1)`` (``[0, 1]`` with ``below_one=False``), e.g. a damping or a dropout rate."""
    return check_real(name, value, minimum=0.0, maximum=1.0, open_maximum=below_one)


def check_choice(name: str, value: object, choices: tuple) -> object:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    if isinstance(value, Hashable) and value in choices:
        return value
    raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")


def check_instance(name: str, value: object, types: type | tuple[type, ...], fn: str | None = None) -> object:
    """Return ``value`` if it is an instance of ``types``, else raise ``TypeError``.

    ``fn`` names the function that refused it: ``"crf: exact expects a crfkit.GridCRF, got dict"``.
    """
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, types):
        return value
    names = " or ".join(f"{t.__module__.split('.')[0]}.{t.__name__}" for t in types)
    who = f"{fn} expects" if fn else "expected"
    raise TypeError(f"{name}: {who} a {names}, got {type(value).__name__}")


def check_label_range(name: str, labels: torch.Tensor, num_labels: int, ignore_index: int | None = None,
                      valid: torch.Tensor | None = None, where: str = "") -> None:
    """Raise ``ValueError`` unless every label is in ``0..num_labels-1``.

    Pixels equal to ``ignore_index``, or outside the boolean mask ``valid`` (say, where the
    target is ignored, ``where`` says so in the message), are not looked at.
    """
    if valid is None:
        valid = labels != ignore_index if ignore_index is not None else torch.ones_like(labels, dtype=torch.bool)
    bad = valid & ((labels < 0) | (labels >= num_labels))
    if not bool(bad.any()):
        return
    values = labels[valid]
    lo, hi = int(values.min()), int(values.max())
    ign = f" or {ignore_index} (ignore)" if ignore_index is not None else ""
    loc = f" {where}" if where else ""
    hint = " (the ignore label 255 has no energy: give every pixel a label)" if ignore_index is None and hi == 255 else ""
    raise ValueError(
        f"{name}: expected values in 0..{num_labels - 1} (K = {num_labels}){ign}{loc}, got range [{lo}, {hi}] "
        f"({int(bad.sum())} pixel(s) out of range){hint}"
    )


def check_simplex(name: str, q: torch.Tensor, dim: int = 1, atol: float = 1e-4) -> torch.Tensor:
    """Raise ``ValueError`` unless ``q`` holds finite probabilities that sum to 1 over ``dim``."""
    check_finite(name, q)
    values = q.detach()
    if values.numel() and float(values.min()) < 0:
        raise ValueError(f"{name}: expected probabilities >= 0, got a minimum of {float(values.min()):.3g}")
    worst = float((values.sum(dim) - 1).abs().max()) if values.numel() else 0.0
    if worst > atol:
        raise ValueError(f"{name}: expected probabilities that sum to 1 over dimension {dim}, off by {worst:.3g}")
    return q


def _bounds(minimum, maximum, odd) -> str:
    """``"an int"``, ``"a positive int"`` (>= 1), ``"a non-negative int"`` (>= 0), ``"an int in 8..128"``."""
    kind = "an odd int" if odd else "an int"
    if minimum in (0, 1) and maximum is None:
        sign = "positive" if minimum == 1 else "non-negative"
        return f"a {sign} odd int" if odd else f"a {sign} int"
    if minimum is not None and maximum is not None:
        return f"{kind} in {minimum}..{maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind


def _interval(minimum, maximum, open_minimum, open_maximum) -> str:
    if minimum is None and maximum is None:
        return ""
    if maximum is None:
        return f" {'>' if open_minimum else '>='} {minimum:g}"
    if minimum is None:
        return f" {'<' if open_maximum else '<='} {maximum:g}"
    return f" in {'(' if open_minimum else '['}{minimum:g}, {maximum:g}{')' if open_maximum else ']'}"
