"""CNN + CRF-as-RNN models, their objective and their training recipe (lecture 06)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import crfkit as ck
from crfkit.losses import cross_entropy, marginal_nll
from crfkit.models import CNNCRF, deeplab_crf_small
from crfkit.models.checkpoints import load_checkpoint
from crfkit.nn import GridMeanFieldCRF, MeanFieldCRF
from crfkit.train.__main__ import main
from crfkit.train.crf_as_rnn import evaluate_rows, fit_jointly, format_rows

F64 = torch.float64


def _scenes(n=4, k=3, size=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, k, (n, size // 4, size // 4), generator=gen)
    labels = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)  # [n, size, size]
    colours = torch.rand(k, 3, generator=gen)
    images = (colours[labels].permute(0, 3, 1, 2) + 0.05 * torch.randn(n, 3, size, size, generator=gen)).clamp(0, 1)
    return images.contiguous(), labels


def _tiny_cnn(k=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, k, 3, padding=1))


def _kernels():
    return (ck.GaussianKernel(sxy=2.0, weight=2.0), ck.BilateralKernel(sxy=4.0, srgb=40.0, weight=3.0))


# --------------------------------------------------------------------------- marginal_nll


def test_marginal_nll_is_the_mean_negative_log_probability_and_cross_entropy_of_log_q():
    gen = torch.Generator().manual_seed(0)
    q = torch.softmax(torch.randn(2, 4, 3, 5, generator=gen, dtype=F64), 1).requires_grad_()
    labels = torch.randint(0, 4, (2, 3, 5), generator=gen)
    labels[1, 0] = 255
    terms = [-math.log(q[b, labels[b, i, j], i, j].item()) for b in range(2) for i in range(3) for j in range(5)
             if labels[b, i, j] != 255]
    loss = marginal_nll(q, labels)
    assert loss.item() == pytest.approx(sum(terms) / len(terms), rel=1e-12)
    assert torch.allclose(loss, cross_entropy(torch.log(q), labels), rtol=1e-12, atol=0)
    loss.backward()
    assert torch.count_nonzero(q.grad[1, :, 0]) == 0  # ignored pixels


def test_marginal_nll_of_an_underflowed_marginal_is_large_but_finite():
    q = torch.tensor([[[[1.0]], [[0.0]]]])  # [1, 2, 1, 1]: the true label has probability 0
    loss = marginal_nll(q, torch.tensor([[[1]]]))
    assert torch.isfinite(loss) and loss.item() > 80


def test_marginal_nll_rejects_bad_input():
    with pytest.raises(ValueError, match=r"labels: expected shape \[2, 4\] \(q' shape without its label axis K\)"):
        marginal_nll(torch.rand(2, 3, 4), torch.zeros(2, 5, dtype=torch.int64))
    with pytest.raises(TypeError, match="q: expected a floating-point tensor"):
        marginal_nll(torch.zeros(2, 3, 4, dtype=torch.int64), torch.zeros(2, 4, dtype=torch.int64))


# --------------------------------------------------------------------------- CNNCRF


def test_cnncrf_is_the_layer_on_the_cnns_unary_with_the_image_in_0_255():
    images, _ = _scenes()
    cnn = _tiny_cnn()
    layer = MeanFieldCRF(3, _kernels(), iterations=3)
    model = CNNCRF(cnn, layer)
    with torch.no_grad():
        want = ck.inference.mean_field(ck.DenseCRF(-torch.log_softmax(cnn(images), 1), 255 * images, _kernels()), 3)
        got = model(images)
    assert got.shape == (4, 3, 12, 12)
    assert torch.allclose(got, want, atol=1e-5)
    with pytest.raises(TypeError, match="crf: expected a crfkit.nn.MeanFieldCRF or GridMeanFieldCRF, got Linear"):
        CNNCRF(cnn, nn.Linear(2, 2))


def test_deeplab_crf_small_counts_and_starts_from_potts():
    model = deeplab_crf_small()
    assert sum(p.numel() for p in model.cnn.parameters()) == 482_650
    assert sum(p.numel() for p in model.crf.parameters()) == 2 + 2 * 10 * 10
    assert torch.equal(model.crf.compat[1], 1 - torch.eye(10))
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10, 32, 32)


# --------------------------------------------------------------------------- fit_jointly


def test_fit_jointly_equals_a_plain_loop_with_two_learning_rates():
    images, labels = _scenes()
    steps, batch, seed = 4, 2, 3

    def build():
        return CNNCRF(_tiny_cnn(), MeanFieldCRF(3, _kernels(), iterations=2))

    model = build()
    fit_jointly(model, images, labels, steps=steps, batch_size=batch, lr_cnn=1e-3, lr_crf=5e-2, seed=seed,
                flip=True, progress=False)
    plain = build()
    opt = torch.optim.AdamW([{"params": plain.cnn.parameters(), "lr": 1e-3},
                             {"params": plain.crf.parameters(), "lr": 5e-2}], weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        index = torch.randint(0, len(images), (batch,), generator=gen)
        x, y = images[index], labels[index]
        mirror = torch.rand(batch, generator=gen) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        y = torch.where(mirror[:, None, None], y.flip(-1), y)
        loss = -torch.log(plain(x).gather(1, y[:, None])).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for a, b in zip(model.parameters(), plain.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.equal(model.crf.compat.detach(), 1 - torch.eye(3).expand(2, 3, 3))  # the CRF learned
    assert not model.training


def test_joint_training_improves_the_crfs_output_on_its_training_data():
    images, labels = _scenes(n=6, seed=1)
    for crf in (MeanFieldCRF(3, _kernels(), iterations=2), GridMeanFieldCRF(3, iterations=2)):
        model = CNNCRF(_tiny_cnn(), crf)
        with torch.no_grad():
            before = marginal_nll(model(images), labels).item()
        history = fit_jointly(model, images, labels, steps=40, batch_size=3, lr_cnn=1e-2, lr_crf=5e-2,
                              record_every=10, progress=False)
        with torch.no_grad():
            after = marginal_nll(model(images), labels).item()
        assert after < 0.7 * before, type(crf).__name__
        assert history.step == [10, 20, 30, 40]


def test_evaluate_rows_agrees_with_the_metrics():
    images, labels = _scenes(n=5)
    cnn = _tiny_cnn().eval()
    rows = evaluate_rows({"cnn": cnn}, images, labels, 3, band=1)
    with torch.no_grad():
        pred = cnn(images).argmax(1)
    scores = ck.metrics.segmentation_scores(ck.metrics.confusion_matrix(pred, labels, 3))
    band = ck.metrics.boundary_band(labels, 1)
    assert rows[0]["name"] == "cnn"
    assert rows[0]["mean_iou"] == pytest.approx(scores.mean_iou)
    assert rows[0]["band_accuracy"] == pytest.approx(((pred == labels) & band).sum().item() / band.sum().item())
    assert "cnn" in format_rows(rows, 1) and "band-1 acc" in format_rows(rows, 1)


# --------------------------------------------------------------------------- the command line and the checkpoint


def test_cli_crf_as_rnn_smoke_run_writes_a_loadable_joint_model(tmp_path, capsys):
    code = main(["crf-as-rnn", "--steps", "1", "--n-train", "4", "--n-val", "2", "--n-eval", "3",
                 "--out", str(tmp_path), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    for name in ("CNN", "CNN fine-tuned", "CNN + dense CRF", "CRF-as-RNN (dense)", "CRF-as-RNN (grid)"):
        assert name in out
    model, meta = load_checkpoint(tmp_path / "deeplab_crf.pt")
    assert isinstance(model, CNNCRF) and meta["name"] == "deeplab_crf" and meta["recipe"]["steps"] == 1
    assert len(meta["metrics"]["rows"]) == 5 and meta["metrics"]["n_test"] == 3
    with torch.no_grad():
        q = model(torch.rand(1, 3, 64, 64))
    assert q.shape == (1, 10, 64, 64) and torch.allclose(q.sum(1), torch.ones(1, 64, 64), atol=1e-5)


def test_shipped_joint_model_reproduces_its_recorded_test_score():
    model = ck.models.pretrained("deeplab_crf")
    info = ck.models.pretrained_info("deeplab_crf")
    images, labels = ck.train.scenes_tensors("test", 64)
    row = evaluate_rows({"joint": model}, images, labels, 10, band=info["recipe"]["band"])[0]
    recorded = next(r for r in info["metrics"]["rows"] if r["name"] == "CRF-as-RNN (dense)")
    assert row["mean_iou"] == pytest.approx(recorded["mean_iou"], abs=2e-3)
    assert row["band_accuracy"] == pytest.approx(recorded["band_accuracy"], abs=2e-3)
    cnn_alone = next(r for r in info["metrics"]["rows"] if r["name"] == "CNN")
    assert row["mean_iou"] > cnn_alone["mean_iou"]
