"""The shipped segmentation checkpoints load and reach their stated bars on the test split."""

from __future__ import annotations

import sys

import pytest
import torch

import crfkit.models as M
from crfkit.models.checkpoints import BARS, MARGINS, checkpoint_path
from crfkit.train import RECIPE, evaluate_segmenter, scenes_tensors


@pytest.fixture(scope="module")
def test_split():
    return scenes_tensors("test", 64)  # all 200 test scenes, 64x64


@pytest.fixture(scope="module")
def scores(test_split):
    out = {}
    for name in M.PRETRAINED:
        out[name] = evaluate_segmenter(M.pretrained(name), *test_split, num_classes=10)
    return out


def test_names_and_files():
    assert M.PRETRAINED == ("fcn32s", "fcn16s", "fcn8s", "segnet", "deeplab")
    assert set(BARS) == set(M.PRETRAINED)
    total = sum(checkpoint_path(name).stat().st_size for name in M.PRETRAINED)
    assert total < 5.5e6  # "a few MB in all"


@pytest.mark.parametrize("name", M.PRETRAINED)
def test_checkpoint_loads_in_eval_mode(name):
    model = M.pretrained(name)
    assert not model.training
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in model.parameters())
    info = M.pretrained_info(name)
    assert info["name"] == name and info["recipe"]["steps"] == RECIPE.steps
    assert info["recipe"]["n_train"] == RECIPE.n_train and info["metrics"]["n_test"] == 200


@pytest.mark.parametrize("name", M.PRETRAINED)
def test_reaches_its_bar_and_its_recorded_score(name, scores):
    min_miou, min_acc = BARS[name]
    assert scores[name].mean_iou >= min_miou
    assert scores[name].pixel_accuracy >= min_acc
    # The checkpoint's metrics were measured on the same rounded weights.
    recorded = M.pretrained_info(name)["metrics"]["test"]
    assert scores[name].mean_iou == pytest.approx(recorded["mean_iou"], abs=2e-3)
    assert scores[name].pixel_accuracy == pytest.approx(recorded["pixel_accuracy"], abs=2e-3)


@pytest.mark.parametrize("better, worse, margin", MARGINS)
def test_stated_margins(better, worse, margin, scores):
    assert scores[better].mean_iou - scores[worse].mean_iou >= margin


def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError, match=r"name: expected one of \['fcn32s', 'fcn16s', 'fcn8s', 'segnet', "
                                         r"'deeplab', 'deeplab_crf'\], got 'unet'"):
        M.pretrained("unet")


def test_missing_file_says_how_to_make_it(monkeypatch, tmp_path):
    module = sys.modules["crfkit.models.checkpoints"]
    monkeypatch.setattr(module, "weights_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match=r"python -m crfkit.train segmentation --models fcn8s"):
        M.pretrained("fcn8s")
