"""Segmentation training: fit_segmenter, predict, evaluate_segmenter, the CLI and checkpoints."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from crfkit.metrics import confusion_matrix, segmentation_scores
from crfkit.models.checkpoints import load_checkpoint
from crfkit.train import evaluate_segmenter, fit_segmenter, predict
from crfkit.train.__main__ import main


def _tiny_net(k=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, k, 3, padding=1))


def _tiny_data(n=2, k=3, size=12):
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, k, (n, size // 4, size // 4), generator=gen)
    labels = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)  # [n, size, size] blocks
    colours = torch.rand(k, 3, generator=gen)
    images = colours[labels].permute(0, 3, 1, 2) + 0.05 * torch.randn(n, 3, size, size, generator=gen)
    return images.contiguous(), labels


def test_fit_segmenter_overfits_two_images():
    images, labels = _tiny_data()
    model = _tiny_net()
    history = fit_segmenter(model, images, labels, steps=60, batch_size=2, lr=0.02, seed=0,
                            record_every=20, progress=False, val=(images, labels))
    assert history.step == [20, 40, 60]
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert len(history.val_mean_iou) == 3 and history.val_mean_iou[-1] > 0.9
    assert not model.training  # returned in eval mode
    assert (predict(model, images) == labels).float().mean() > 0.95


def test_fit_segmenter_ignores_ignore_index_and_is_reproducible():
    images, labels = _tiny_data()
    labels = labels.clone()
    labels[:, :6] = 255
    runs = []
    for _ in range(2):
        model = _tiny_net()
        fit_segmenter(model, images, labels, steps=5, batch_size=2, seed=3, flip=True,
                      lr_schedule="poly", progress=False)
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])
    assert torch.isfinite(runs[0]).all()


def test_predict_and_evaluate_agree_with_metrics():
    images, labels = _tiny_data(n=5, k=4, size=16)
    model = _tiny_net(k=4).eval()
    pred = predict(model, images, batch_size=2)
    assert pred.shape == (5, 16, 16) and pred.dtype == torch.int64
    with torch.no_grad():
        assert torch.equal(pred, model(images).argmax(1))
    scores = evaluate_segmenter(model, images, labels, num_classes=4, batch_size=3)
    ref = segmentation_scores(confusion_matrix(pred, labels, 4))
    assert torch.equal(scores.confmat, ref.confmat)
    assert scores.mean_iou == pytest.approx(ref.mean_iou)
    assert scores.pixel_accuracy == pytest.approx(ref.pixel_accuracy)
    assert scores.iou.shape == (4,)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(images=torch.zeros(2, 12, 12)), ValueError, r"images: expected a 4-D tensor of shape \[N, C, H, W\]"),
    (dict(labels=torch.zeros(2, 12, 12)), TypeError, "labels: expected dtype torch.int64"),
    (dict(labels=torch.zeros(2, 12, 11, dtype=torch.int64)), ValueError,
     r"labels: expected shape \[2, 12, 12\] \(one \[H, W\] map per image\), got \[2, 12, 11\]"),
    (dict(steps=0), ValueError, "steps: expected a positive int, got 0"),
    (dict(lr_schedule="cosine"), ValueError, "lr_schedule: expected 'constant' or 'poly', got 'cosine'"),
    (dict(images=torch.full((2, 3, 12, 12), float("nan"))), ValueError, "images: expected finite values"),
])
def test_fit_segmenter_rejects_bad_input(kwargs, error, match):
    images, labels = _tiny_data()
    args = dict(images=images, labels=labels) | kwargs
    with pytest.raises(error, match=match):
        fit_segmenter(_tiny_net(), args.pop("images"), args.pop("labels"), progress=False, **args)


def test_cli_smoke_run_writes_loadable_checkpoints(tmp_path, capsys):
    code = main(["segmentation", "--models", "fcn8s", "deeplab", "--out", str(tmp_path), "--steps", "2",
                 "--n-train", "8", "--n-eval", "4", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "test mIoU" in out and "fcn8s" in out and "deeplab" in out
    for name in ("fcn8s", "deeplab"):
        model, meta = load_checkpoint(tmp_path / f"{name}.pt")
        assert meta["name"] == name and meta["recipe"]["steps"] == 2 and meta["recipe"]["n_train"] == 8
        assert meta["metrics"]["n_test"] == 4 and 0 <= meta["metrics"]["test"]["mean_iou"] <= 1
        assert not model.training
        assert all(p.dtype == torch.float32 for p in model.parameters())
        with torch.no_grad():
            assert model(torch.rand(1, 3, 64, 64)).shape == (1, 10, 64, 64)
    # FCN's fixed bilinear layer is rebuilt, not stored.
    state = torch.load(tmp_path / "fcn8s.pt", weights_only=True)["state_dict"]
    assert "upscore.weight" not in state
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())


def test_cli_help():
    result = subprocess.run([sys.executable, "-m", "crfkit.train", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "segmentation" in result.stdout


def test_cli_rejects_unknown_model(capsys):
    with pytest.raises(SystemExit):
        main(["segmentation", "--models", "unet"])
    assert "invalid choice: 'unet'" in capsys.readouterr().err
