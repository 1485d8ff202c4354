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
