"""Checks at crfkit's public edge: each names the argument, what it expected, what came."""

from __future__ import annotations

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
    """Raise ``ValueError`` if ``value`` holds NaN or inf."""
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        n_nan = int(torch.isnan(value).sum())
        n_inf = int(torch.isinf(value).sum())
        raise ValueError(f"{name}: expected finite values, got {n_nan} NaN and {n_inf} inf")


def _of(dims: str) -> str:
    return f" of shape {dims}" if dims else ""
