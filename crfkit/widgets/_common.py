"""Argument checks and helpers shared by the lecture widgets (private to :mod:`crfkit.widgets`).

A widget shows one image: it accepts ``[1, ...]`` (a batch of one, unwrapped here) or the
unbatched tensor, checks it once at its public edge and works on a detached CPU copy.
"""

from __future__ import annotations

import io

import torch

from crfkit._validate import check_finite, check_tensor


def one_unary(unary: object) -> torch.Tensor:
    """``unary`` (``[1, K, H, W]`` or ``[K, H, W]``, float, finite, ``K >= 2``) as a detached
    CPU tensor ``[K, H, W]``."""
    check_tensor("unary", unary, floating=True)
    if unary.dim() == 4 and unary.shape[0] == 1:
        unary = unary[0]  # [K, H, W]
    if unary.dim() != 3:
        raise ValueError(
            f"unary: expected one image, shape [1, K, H, W] or [K, H, W], got {list(unary.shape)}"
        )
    check_finite("unary", unary)
    if unary.shape[0] < 2:
        raise ValueError(f"unary: expected at least 2 labels (K >= 2), got K = {unary.shape[0]}")
    return unary.detach().cpu()


def one_photo(image: object, unary: torch.Tensor) -> torch.Tensor:
    """``[3, H, W]`` float32 CPU copy of ``image`` (``[1, 3, H, W]`` or ``[3, H, W]``, float or
    uint8, colours in 0..255: the dense CRF's ``srgb`` units), checked against ``unary [K, H, W]``.

    A 0..1 photo (largest value in ``(0, 1]``) is refused with the hint to multiply by 255.
    """
    check_tensor("image", image)
    if not (image.is_floating_point() or image.dtype == torch.uint8):
        raise TypeError(f"image: expected a floating-point or uint8 tensor, got dtype {image.dtype}")
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]  # [3, H, W]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(
            f"image: expected one RGB image, shape [1, 3, H, W] or [3, H, W], got {list(image.shape)}"
        )
    h, w = unary.shape[1:]
    if tuple(image.shape[1:]) != (h, w):
        raise ValueError(
            f"image: expected shape [3, {h}, {w}] (the height and width of unary), got {list(image.shape)}"
        )
    check_finite("image", image)
    image = image.detach().cpu().float()  # [3, H, W]
    lo, hi = float(image.min()), float(image.max())
    if lo < 0 or hi > 255:
        raise ValueError(f"image: expected colours in 0..255, got values in [{lo:.4g}, {hi:.4g}]")
    if 0 < hi <= 1:
        raise ValueError(
            f"image: expected colours in 0..255 (the units of the bilateral kernel's srgb), got values "
            f"in [{lo:.4g}, {hi:.4g}]; multiply a 0..1 photo by 255"
        )
    return image


def one_q(q: object, unary: torch.Tensor) -> torch.Tensor:
    """Beliefs ``q`` (``[1, K, H, W]`` or ``[K, H, W]``, the shape of ``unary [K, H, W]``) as a
    detached CPU tensor ``[K, H, W]``."""
    check_tensor("q", q, floating=True)
    if q.dim() == 4 and q.shape[0] == 1:
        q = q[0]  # [K, H, W]
    if tuple(q.shape) != tuple(unary.shape):
        raise ValueError(f"q: expected shape {list(unary.shape)} (that of unary, [K, H, W]), got {list(q.shape)}")
    return q.detach().cpu()


def png(fig) -> bytes:
    """PNG bytes of ``fig`` at its own size and resolution (no tight bounding box: one draw, not two)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi="figure")
    return buffer.getvalue()
