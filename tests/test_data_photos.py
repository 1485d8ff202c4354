"""crfkit.data.photo / photos: scikit-image's bundled colour photographs, offline."""

from __future__ import annotations

import pytest
import torch

from crfkit.data import PHOTOS, photo, photos


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "rocket", "motorcycle"])
def test_photo_float(name):
    image = photo(name)
    assert image.dim() == 3 and image.shape[0] == 3 and min(image.shape[1:]) >= 200
    assert image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0 and float(image.std()) > 0.05


def test_photo_uint8_and_known_size():
    image = photo("astronaut", dtype=torch.uint8)
    assert image.shape == (3, 512, 512) and image.dtype == torch.uint8
    assert torch.allclose(photo("astronaut"), image.float() / 255)


def test_max_side_shrinks_keeping_aspect():
    image = photo("coffee", max_side=120)  # 400 x 600
    assert image.shape == (3, 80, 120)
    assert photo("chelsea", max_side=1000).shape == (3, 300, 451)  # already small enough


def test_photos_loads_all_offline():
    images = photos(max_side=64)
    assert list(images) == list(PHOTOS)
    for image in images.values():
        assert image.shape[0] == 3 and max(image.shape[1:]) == 64


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"name: expected one of \['astronaut', 'chelsea', .*'retina'\], got 'lena'"):
        photo("lena")


def test_bad_options():
    with pytest.raises(TypeError, match="dtype: expected a floating dtype or torch.uint8, got torch.int64"):
        photo("astronaut", dtype=torch.int64)
    with pytest.raises(ValueError, match="max_side: expected a positive int, got 0"):
        photo("astronaut", max_side=0)
    with pytest.raises(TypeError, match="max_side: expected a positive int, got float 64.0"):
        photo("astronaut", max_side=64.0)
