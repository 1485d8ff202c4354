"""crfkit.data.VOCSegmentation on a tiny VOC tree fabricated in tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from crfkit.data import VOC_CLASSES, VOCSegmentation


def voc_palette() -> list[int]:
    """The VOC colour map (bit-interleaved), 256 RGB triples flattened."""
    palette = []
    for k in range(256):
        r = g = b = 0
        c = k
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def write_item(voc, name, labels, image_size=None, mode="P"):
    """Write JPEGImages/{name}.jpg and SegmentationClass/{name}.png (palette PNG of ``labels``)."""
    h, w = image_size or labels.shape
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(voc / "JPEGImages" / f"{name}.jpg")
    mask = Image.fromarray(labels.astype(np.uint8), mode="L")
    if mode == "P":
        mask = mask.convert("P")
        mask.putpalette(voc_palette())
    elif mode == "RGB":
        mask = mask.convert("RGB")
    mask.save(voc / "SegmentationClass" / f"{name}.png")


@pytest.fixture
def voc(tmp_path):
    """VOCdevkit/VOC2012 with two train images and one val image."""
    root = tmp_path / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    labels = np.zeros((6, 8), dtype=np.uint8)
    labels[1:4, 2:6] = 15  # person
    labels[0, :] = 255  # ignore
    write_item(root, "2007_000001", labels)
    write_item(root, "2007_000002", np.full((5, 7), 20, dtype=np.uint8))
    write_item(root, "2007_000003", np.zeros((4, 4), dtype=np.uint8))
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000001\n2007_000002\n\n")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000003\n")
    return root


def test_classes():
    assert len(VOC_CLASSES) == 21 and VOC_CLASSES[0] == "background" and VOC_CLASSES[15] == "person"
    assert VOC_CLASSES[-1] == "tvmonitor"


def test_reads_palette_indices(voc):
    data = VOCSegmentation(voc, "train")
    assert len(data) == 2 and data.ids == ["2007_000001", "2007_000002"] and data.num_classes == 21
    image, labels = data[0]
    assert image.shape == (3, 6, 8) and image.dtype == torch.float32
    assert 0 <= float(image.min()) and float(image.max()) <= 1
    assert labels.shape == (6, 8) and labels.dtype == torch.int64
    expected = torch.zeros(6, 8, dtype=torch.int64)
    expected[1:4, 2:6] = 15
    expected[0] = 255
    assert torch.equal(labels, expected)  # the indices, not the palette colours
    assert torch.equal(data[1][1], torch.full((5, 7), 20))


@pytest.mark.parametrize("level", ["VOC2012", "VOCdevkit", "parent"])
def test_root_at_any_level(voc, level):
    root = {"VOC2012": voc, "VOCdevkit": voc.parent, "parent": voc.parent.parent}[level]
    data = VOCSegmentation(str(root), "val")
    assert data.root == voc and len(data) == 1


def test_transform_is_joint(voc):
    flip = lambda image, labels: (image.flip(-1), labels.flip(-1))  # noqa: E731
    plain, flipped = VOCSegmentation(voc)[0], VOCSegmentation(voc, transform=flip)[0]
    assert torch.equal(flipped[0], plain[0].flip(-1)) and torch.equal(flipped[1], plain[1].flip(-1))


def test_grey_index_masks_are_read_too(voc):
    write_item(voc, "2007_000003", np.full((4, 4), 7, dtype=np.uint8), mode="L")
    assert torch.equal(VOCSegmentation(voc, "val")[0][1], torch.full((4, 4), 7))


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="root: expected the VOC2012 .*nowhere.*does not exist"):
        VOCSegmentation(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="root: expected a VOC2012 folder holding ImageSets/Segmentation/"):
        VOCSegmentation(tmp_path)


def test_missing_split_lists_present(voc):
    with pytest.raises(FileNotFoundError, match=r"split: expected a split file .*trainval\.txt.*split files present: train, val"):
        VOCSegmentation(voc, "trainval")


def test_missing_image_and_mask(voc):
    data = VOCSegmentation(voc, "train")
    (voc / "SegmentationClass" / "2007_000002.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"mask of '2007_000002' \(item 1 of 'train'\): expected .*2007_000002\.png"):
        data[1]
    (voc / "JPEGImages" / "2007_000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"image of '2007_000001' .*2007_000001\.jpg'?, which does not exist"):
        data[0]


def test_mask_size_disagrees(voc):
    write_item(voc, "2007_000003", np.zeros((4, 5), dtype=np.uint8), image_size=(4, 4))
    with pytest.raises(ValueError, match=r"expected the image's size 4x4 \(H x W\), got 4x5"):
        VOCSegmentation(voc, "val")[0]


def test_bad_mask_values_and_mode(voc):
    write_item(voc, "2007_000003", np.full((4, 4), 30, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"expected values 0\.\.20 and 255, got \[30\]"):
        VOCSegmentation(voc, "val")[0]
    write_item(voc, "2007_000003", np.zeros((4, 4), dtype=np.uint8), mode="RGB")
    with pytest.raises(ValueError, match="expected a palette \\('P'\\) or grey \\('L'\\) PNG .*got mode 'RGB'"):
        VOCSegmentation(voc, "val")[0]


def test_bad_arguments(voc):
    with pytest.raises(TypeError, match="root: expected a path"):
        VOCSegmentation(3)
    with pytest.raises(TypeError, match="transform: expected a callable or None, got int"):
        VOCSegmentation(voc, transform=1)
    data = VOCSegmentation(voc, "train")
    with pytest.raises(IndexError, match=r"index: expected an int in 0\.\.1 \(length 2\), got 2"):
        data[2]
    with pytest.raises(IndexError, match="got -1"):
        data[-1]
