"""PASCAL VOC 2012 semantic segmentation, read from the standard folder layout.

crfkit never downloads VOC (about 2 GB); point :class:`VOCSegmentation` at a copy you have::

    VOC2012/
        JPEGImages/2007_000032.jpg ...
        SegmentationClass/2007_000032.png ...       palette PNGs: pixel value = class index
        ImageSets/Segmentation/train.txt, val.txt, trainval.txt   one image id per line

The masks are palette ("P" mode) PNGs whose *indices* are the labels (0..20, 255 on
object outlines and "difficult" regions = ignore); they are read without palette
conversion. Grey-level ("L" mode) index masks, such as those of the SBD-augmented set,
are read the same way.

References
----------
.. [1] M. Everingham, L. Van Gool, C. K. I. Williams, J. Winn, A. Zisserman, "The PASCAL
   Visual Object Classes (VOC) Challenge", IJCV 88(2), 2010.
   http://host.robots.ox.ac.uk/pascal/VOC/voc2012/
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from crfkit.data._common import check_index

#: The 21 VOC classes; the label of a pixel is its index here, ``255`` = ignore.
VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
IGNORE_INDEX = 255


def _find_root(root: Path) -> Path:
    """The ``VOC2012`` folder: ``root`` itself, ``root/VOC2012`` or ``root/VOCdevkit/VOC2012``."""
    if not root.is_dir():
        raise FileNotFoundError(f"root: expected the VOC2012 (or VOCdevkit) folder, got {str(root)!r}, which does not exist")
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "ImageSets" / "Segmentation").is_dir():
            return candidate
    raise FileNotFoundError(
        f"root: expected a VOC2012 folder holding ImageSets/Segmentation/ (or a VOCdevkit folder "
        f"holding VOC2012/), got {str(root)!r}, which has neither"
    )


class VOCSegmentation(Dataset):
    """The PASCAL VOC 2012 segmentation set (Everingham et al. 2010) from a local copy.

    Parameters
    ----------
    root : str or os.PathLike
        The ``VOC2012`` folder, or a ``VOCdevkit`` folder (or its parent) that holds it.
    split : str, default "train"
        Name of a file ``ImageSets/Segmentation/{split}.txt`` (``train``, ``val``,
        ``trainval``, or one of your own).
    transform : callable, optional
        ``transform(image, labels) -> (image, labels)``, applied to every item; joint, so
        that crops and flips move image and labels together.

    Attributes
    ----------
    root : pathlib.Path
        The resolved ``VOC2012`` folder.
    ids : list of str
        Image ids of the split, in file order.
    classes : tuple of str
        :data:`VOC_CLASSES`; ``num_classes = 21``.

    Notes
    -----
    ``dataset[i]`` returns ``(image, labels)`` (before ``transform``):

    - image : float32 tensor of shape ``[3, H, W]``, values in 0..1;
    - labels : int64 tensor of shape ``[H, W]``, values in ``0..20`` and ``255`` (ignore).

    Raises
    ------
    FileNotFoundError
        At construction, if ``root`` or the split file is missing (the message lists the
        split files that exist); at ``dataset[i]``, if the image or mask file is missing.
    ValueError
        At ``dataset[i]``, if a mask's size differs from its image's, or it holds values
        other than 0..20 and 255, or is not an index ("P" or "L" mode) PNG.

    References
    ----------
    Everingham et al. (2010), "The PASCAL Visual Object Classes (VOC) Challenge", IJCV.
    """

    classes = VOC_CLASSES
    num_classes = len(VOC_CLASSES)
    ignore_index = IGNORE_INDEX

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> None:
        if not isinstance(root, (str, os.PathLike)):
            raise TypeError(f"root: expected a path (str or os.PathLike), got {type(root).__name__}")
        if not isinstance(split, str):
            raise TypeError(f"split: expected a str such as 'train' or 'val', got {type(split).__name__}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform: expected a callable or None, got {type(transform).__name__}")
        self.root = _find_root(Path(root).expanduser())
        self.split = split
        self.transform = transform
        sets = self.root / "ImageSets" / "Segmentation"
        split_file = sets / f"{split}.txt"
        if not split_file.is_file():
            present = sorted(p.stem for p in sets.glob("*.txt"))
            raise FileNotFoundError(
                f"split: expected a split file {str(split_file)!r}, which does not exist; "
                f"split files present: {', '.join(present) if present else 'none'}"
            )
        self.ids = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"VOCSegmentation(root={str(self.root)!r}, split={self.split!r}, {len(self)} images)"

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Image ``[3, H, W]`` float32 in 0..1 and labels ``[H, W]`` int64 of item ``index``."""
        from PIL import Image

        index = check_index(index, len(self.ids))
        name = self.ids[index]
        image_path = self.root / "JPEGImages" / f"{name}.jpg"
        mask_path = self.root / "SegmentationClass" / f"{name}.png"
        for kind, path in (("image", image_path), ("mask", mask_path)):
            if not path.is_file():
                raise FileNotFoundError(f"{kind} of {name!r} (item {index} of {self.split!r}): expected {str(path)!r}, which does not exist")
        with Image.open(image_path) as picture:
            image = np.asarray(picture.convert("RGB"))  # [H, W, 3] uint8
        with Image.open(mask_path) as mask:
            if mask.mode not in ("P", "L"):
                raise ValueError(
                    f"mask {str(mask_path)!r}: expected a palette ('P') or grey ('L') PNG of class "
                    f"indices, got mode {mask.mode!r}"
                )
            labels = np.asarray(mask)  # [H, W] uint8, the palette indices themselves
        if labels.shape != image.shape[:2]:
            raise ValueError(
                f"mask {str(mask_path)!r}: expected the image's size {image.shape[0]}x{image.shape[1]} "
                f"(H x W), got {labels.shape[0]}x{labels.shape[1]}"
            )
        values = np.unique(labels)
        bad = values[(values >= self.num_classes) & (values != IGNORE_INDEX)]
        if bad.size:
            raise ValueError(
                f"mask {str(mask_path)!r}: expected values 0..{self.num_classes - 1} and {IGNORE_INDEX}, "
                f"got {bad.tolist()}"
            )
        image_t = torch.from_numpy(image.copy()).permute(2, 0, 1).float() / 255.0  # [3, H, W]
        labels_t = torch.from_numpy(labels.astype(np.int64))  # [H, W]
        if self.transform is not None:
            image_t, labels_t = self.transform(image_t, labels_t)
        return image_t, labels_t
