"""Shared pieces of the synthetic data sets: argument checks, per-item seeds, smooth noise."""

from __future__ import annotations

import hashlib
import operator

import torch
import torch.nn.functional as F

#: The splits every synthetic data set knows.
SPLITS = ("train", "val", "test")

#: Smallest and largest image side the synthetic generators accept.
MIN_SIZE, MAX_SIZE = 32, 512


def check_split(split: object) -> str:
    """Return ``split`` if it is one of :data:`SPLITS`, else raise ``ValueError``."""
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    return split


def check_size(size: object) -> int:
    """Return ``size`` as an int in ``MIN_SIZE..MAX_SIZE``, else raise ``TypeError``/``ValueError``."""
    if isinstance(size, bool) or not isinstance(size, int):
        try:
            size = operator.index(size)  # numpy integers are fine
        except TypeError:
            raise TypeError(
                f"size: expected an int (image side in pixels), got {type(size).__name__}"
            ) from None
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size: expected an int in {MIN_SIZE}..{MAX_SIZE}, got {size}")
    return int(size)


def check_count(name: str, value: object) -> int:
    """Return ``value`` as a positive int, else raise ``TypeError``/``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name}: expected a positive int, got {type(value).__name__}") from None
    if value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value}")
    return int(value)


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int, else raise ``TypeError``."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        try:
            seed = operator.index(seed)
        except TypeError:
            raise TypeError(f"seed: expected an int, got {type(seed).__name__}") from None
    return int(seed)


def check_index(index: object, length: int) -> int:
    """Return ``index`` as an int in ``0..length-1``, else raise ``TypeError``/``IndexError``.

    Negative indices are refused (not counted from the end): a scene is named by
    its number, and ``-1`` is more likely a bug than a wish for the last one.
    ``IndexError`` subclasses ``LookupError``; it is what ``for x in dataset`` expects.
    """
    if isinstance(index, bool) or not isinstance(index, int):
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"index: expected an int, got {type(index).__name__}") from None
    if not 0 <= index < length:
        raise IndexError(f"index: expected an int in 0..{length - 1} (length {length}), got {index}")
    return int(index)


def item_seed(kind: str, seed: int, split: str, index: int) -> int:
    """A 63-bit seed that depends on (kind, seed, split, index) and nothing else.

    A cryptographic hash (not Python's salted ``hash``) so that the same arguments
    give the same item in every process, and different splits share no items.
    """
    key = f"crfkit.data/{kind}/{seed}/{split}/{index}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def uniform(g: torch.Generator, low: float, high: float, n: int | None = None):
    """One float (``n=None``) or a ``[n]`` tensor, uniform in ``[low, high)``."""
    u = torch.rand(1 if n is None else n, generator=g)
    u = low + (high - low) * u
    return float(u) if n is None else u


def smooth_noise(g: torch.Generator, n: int, grid: tuple[int, int], size: tuple[int, int]):
    """``n`` smooth random fields of shape ``[n, H, W]``, roughly unit variance.

    A ``[n, gh, gw]`` grid of standard normal values is upsampled bicubically to
    ``(H, W)``: the fields vary on a length scale of about ``H / gh`` by ``W / gw`` pixels.
    """
    gh, gw = max(2, grid[0]), max(2, grid[1])
    coarse = torch.randn(1, n, gh, gw, generator=g)  # [1, n, gh, gw]
    fine = F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)  # [1, n, H, W]
    return fine[0]  # [n, H, W]
