"""From-scratch layers: transposed convolution, atrous convolution, unpooling.

(work in progress: the bilinear initialisation is final, the rest is being written)
"""

from __future__ import annotations

import torch


def bilinear_kernel(kernel_size: int, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``[k, k]`` bilinear-interpolation kernel FCN initialises its upsampling with.

    ``w[i, j] = (1 - |i - c| / f) (1 - |j - c| / f)`` with ``f = ceil(k / 2)`` and
    ``c = f - 1`` for odd ``k``, ``c = f - 0.5`` for even ``k`` (Long et al. 2015,
    ``upsample_filt``). A transposed convolution with this kernel, stride ``f`` and
    padding ``f // 2`` (``k = 2f``) upsamples by ``f`` exactly as bilinear interpolation
    with ``align_corners=False`` does, away from the border.
    """
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1:
        raise ValueError(f"kernel_size: expected a positive int, got {kernel_size!r}")
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=dtype)
    filt = 1 - (og - center).abs() / factor  # [k]
    return filt[:, None] * filt[None, :]  # [k, k]


def bilinear_upsampling_weight(channels: int, factor: int, *,
                               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Weight ``[C, C, 2f, 2f]`` of a transposed convolution that upsamples each of
    ``channels`` channels by ``factor`` bilinearly (no mixing of channels).

    Use with ``stride=factor, padding=factor // 2`` (plus ``output_padding`` when the
    target size needs it). FCN initialises its learnable upsampling layers this way.
    """
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels: expected a positive int, got {channels!r}")
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"factor: expected a positive int, got {factor!r}")
    k = 2 * factor
    weight = torch.zeros(channels, channels, k, k, dtype=dtype)  # [C_in, C_out, k, k]
    idx = torch.arange(channels)
    weight[idx, idx] = bilinear_kernel(k, dtype=dtype)
    return weight
