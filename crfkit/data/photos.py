"""Real colour photographs that ship with scikit-image, so that they load offline.

The dense-CRF lectures need real photographs (bilateral kernels care about real edges);
these come with the scikit-image wheel, no download needed. Checked with scikit-image
0.26: ``skimage.data.lily``, ``eagle``, ``kidney`` and ``skin`` need the network and are
left out.

Sizes (H x W): astronaut 512x512, chelsea 300x451, coffee 400x600, rocket 427x640,
motorcycle 500x741, immunohistochemistry 512x512, hubble_deep_field 872x1000,
retina 1411x1411.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from crfkit._validate import check_choice, check_positive_int

#: Names :func:`photo` accepts, in the order :func:`photos` returns them.
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "motorcycle",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
)


def _load(name: str) -> np.ndarray:
    """``[H, W, 3]`` uint8 array of photo ``name`` from ``skimage.data``."""
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]  # the left view of the stereo pair
    return getattr(skimage.data, name)()


def photo(name: str, dtype: torch.dtype = torch.float32, max_side: int | None = None) -> torch.Tensor:
    """One colour photograph from scikit-image's bundled data, as a ``[3, H, W]`` tensor.

    Parameters
    ----------
    name : str
        One of :data:`PHOTOS`.
    dtype : torch.dtype, default torch.float32
        A floating dtype gives values in 0..1; ``torch.uint8`` gives 0..255 as stored.
    max_side : int, optional
        If given, shrink (area-averaging, aspect ratio kept) so that the longer side is at
        most ``max_side`` pixels; photos already small enough are returned as they are.

    Returns
    -------
    tensor of shape ``[3, H, W]``
        Add the batch axis with ``photo(name)[None]`` for crfkit's ``[B, 3, H, W]``.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists :data:`PHOTOS`) or ``max_side < 1``.
    TypeError
        If ``dtype`` is neither floating nor ``torch.uint8``.

    Examples
    --------
    >>> image = photo("astronaut", max_side=128)   # [3, 128, 128] float32 in 0..1
    """
    check_choice("name", name, PHOTOS)
    if not (dtype == torch.uint8 or dtype.is_floating_point):
        raise TypeError(f"dtype: expected a floating dtype or torch.uint8, got {dtype}")
    if max_side is not None:
        check_positive_int("max_side", max_side)
    array = _load(name)[..., :3]  # [H, W, 3] uint8
    image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)  # [3, H, W] uint8
    if max_side is not None and max(image.shape[1:]) > max_side:
        scale = max_side / max(image.shape[1:])
        size = [max(1, round(s * scale)) for s in image.shape[1:]]
        image = F.interpolate(image[None].float(), size=size, mode="area")[0]  # [3, h, w]
        image = image.round().clamp(0, 255).to(torch.uint8)
    if dtype == torch.uint8:
        return image.contiguous()
    return (image.to(dtype) / 255.0).contiguous()


def photos(dtype: torch.dtype = torch.float32, max_side: int | None = None) -> dict[str, torch.Tensor]:
    """All of :data:`PHOTOS` as ``{name: [3, H, W] tensor}``; arguments as in :func:`photo`."""
    return {name: photo(name, dtype=dtype, max_side=max_side) for name in PHOTOS}
