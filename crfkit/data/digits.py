"""Real handwritten digits for the classification lecture (scikit-learn's bundled copy).

The UCI "Optical Recognition of Handwritten Digits" test set (Alpaydin & Kaynak,
1998): 1,797 greyscale images of 8×8 pixels, ten classes, shipped inside
scikit-learn, so it loads offline. :func:`load_digits` rescales them to any size
and splits them reproducibly.
"""

from __future__ import annotations

import torch

from crfkit._validate import check_choice, check_int

SPLITS = ("train", "val", "test")


def load_digits(
    split: str = "train",
    size: int = 16,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of the handwritten digits, as tensors.

    Parameters
    ----------
    split : {"train", "val", "test"}
    size : int
        Side of the returned images, 8..128; the 8×8 originals are resized
        bilinearly (``size=8`` returns them unchanged).
    seed : int
        Seeds the shuffle that assigns images to splits; the splits of one seed are
        disjoint and cover the data set.
    fractions : (train, val, test)
        Shares of the 1,797 images, summing to 1.

    Returns
    -------
    images : Tensor of shape ``[N, 1, size, size]``, float32 in ``[0, 1]``
    targets : Tensor of shape ``[N]``, int64 in ``0..9``

    Raises
    ------
    TypeError
        If ``size`` is not an int.
    ValueError
        On an unknown split, a size outside 8..128, or fractions that are not three
        positive numbers summing to 1.
    ImportError
        If scikit-learn is missing (``make setup`` installs it).
    """
    check_choice("split", split, SPLITS)
    check_int("size", size, minimum=8, maximum=128)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions: expected three positive shares summing to 1, got {fractions!r}")
    try:
        from sklearn.datasets import load_digits as _sklearn_digits
    except ImportError as err:  # pragma: no cover - make setup installs it
        raise ImportError("load_digits needs scikit-learn (pip install scikit-learn)") from err

    data = _sklearn_digits()
    images = torch.as_tensor(data.images, dtype=torch.float32)[:, None] / 16.0  # [N, 1, 8, 8]
    targets = torch.as_tensor(data.target, dtype=torch.int64)  # [N]
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))
    n_train = round(fractions[0] * len(order))
    n_val = round(fractions[1] * len(order))
    bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(order))}
    lo, hi = bounds[split]
    index = order[lo:hi]
    images, targets = images[index], targets[index]
    if size != 8:
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        images = images.clamp(0, 1)  # [N, 1, size, size]
    return images.contiguous(), targets
