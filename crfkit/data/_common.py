"""Shared pieces of the synthetic data sets: argument checks, per-item seeds, smooth noise."""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from crfkit._validate import check_choice, check_int, check_positive_int

#: The splits every synthetic data set knows.
SPLITS = ("train", "val", "test")

#: Smallest and largest image side the synthetic generators accept.
MIN_SIZE, MAX_SIZE = 32, 512


def check_split(split: object) -> str:
    """Return ``split`` if it is one of :data:`SPLITS`, else raise ``ValueError``."""
    return check_choice("split", split, SPLITS)


def check_size(size: object) -> int:
    """Return ``size`` as an int in ``MIN_SIZE..MAX_SIZE``, else raise ``TypeError``/``ValueError``."""
    return check_int("size", size, minimum=MIN_SIZE, maximum=MAX_SIZE)


def check_index(index: object, length: int) -> int:
    """Return ``index`` as an int in ``0..length-1``, else raise ``TypeError``/``IndexError``.

    Negative indices are refused (not counted from the end): a scene is named by
    its number, and ``-1`` is more likely a bug than a wish for the last one.
    ``IndexError`` subclasses ``LookupError``; it is what ``for x in dataset`` expects.
    """
    index = check_int("index", index)
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


#: Items per split when ``length`` is not given.
DEFAULT_LENGTHS = {"train": 1000, "val": 200, "test": 200}


class GeneratedDataset(Dataset):
    """A data set whose item ``i`` is drawn on the fly from a generator seeded by
    ``(kind, seed, split, i)``: reproducible, splits disjoint, nothing stored.

    Subclasses set ``kind`` and ``render(generator, size) -> (image, labels)``.
    """

    kind = ""

    def __init__(self, split: str = "train", size: int = 64, length: int | None = None, seed: int = 0) -> None:
        self.split = check_split(split)
        self.size = check_size(size)
        self.length = DEFAULT_LENGTHS[self.split] if length is None else check_positive_int("length", length)
        self.seed = check_int("seed", seed)

    @staticmethod
    def render(g: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise TypeError("GeneratedDataset is abstract: subclasses define render()")

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(split={self.split!r}, size={self.size}, "
            f"length={self.length}, seed={self.seed})"
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``index``: image ``[C, H, W]`` float32, labels ``[H, W]`` int64."""
        index = check_index(index, self.length)
        g = torch.Generator().manual_seed(item_seed(self.kind, self.seed, self.split, index))
        return self.render(g, self.size)

    def sample(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``index`` as a batch of one: image ``[1, C, H, W]``, labels ``[1, H, W]``."""
        image, labels = self[index]
        return image[None], labels[None]

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` stacked: images ``[B, C, H, W]`` float32, labels ``[B, H, W]`` int64."""
        indices = list(indices)
        if not indices:
            raise ValueError("indices: expected at least one index, got an empty sequence")
        images, labels = zip(*(self[i] for i in indices))
        return torch.stack(images), torch.stack(labels)
