"""The one fit loop (crfkit.train.fit) and the losses it minimises (crfkit.losses).

The oracle for the loop is the plain loop a textbook writes, spelled out here step by step:
the refactored recipes must give the very same weights, bit for bit.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import crfkit as ck
from crfkit.losses import cross_entropy
from crfkit.train import History, fit, fit_classifier, fit_segmenter, layer_weights


def _seg_data(n=4, k=3, size=12):
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, k, (n, size // 4, size // 4), generator=gen)
    labels = labels.repeat_interleave(4, 1).repeat_interleave(4, 2)  # [n, size, size]
    colours = torch.rand(k, 3, generator=gen)
    images = colours[labels].permute(0, 3, 1, 2) + 0.05 * torch.randn(n, 3, size, size, generator=gen)
    labels = labels.clone()
    labels[:, :2] = 255
    return images.contiguous(), labels


def _seg_net(k=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, k, 3, padding=1))


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()] +
                     [b.detach().flatten().float() for b in model.buffers()])


# --------------------------------------------------------------------------- the loop against a plain loop


def test_fit_segmenter_equals_a_plain_adamw_loop_bit_for_bit():
    images, labels = _seg_data()
    steps, batch_size, lr, seed = 9, 3, 0.02, 5
    model = _seg_net()
    fit_segmenter(model, images, labels, steps=steps, batch_size=batch_size, lr=lr, weight_decay=1e-3,
                  seed=seed, flip=True, lr_schedule="poly", progress=False)

    plain = _seg_net()
    optimizer = torch.optim.AdamW(plain.parameters(), lr=lr, weight_decay=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: (1 - t / steps) ** 0.9)
    gen = torch.Generator().manual_seed(seed)
    plain.train()
    for _ in range(steps):
        index = torch.randint(0, len(images), (batch_size,), generator=gen)
        x, y = images[index], labels[index]
        mirror = torch.rand(batch_size, generator=gen) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        y = torch.where(mirror[:, None, None], y.flip(-1), y)
        loss = nn.functional.cross_entropy(plain(x), y, ignore_index=255)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    assert torch.equal(_flat(model), _flat(plain))
    assert not model.training


def test_fit_classifier_equals_a_plain_sgd_loop_and_records_its_gradients():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(50, 1, 4, 4, generator=gen)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()

    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2))

    model = net()
    history = fit_classifier(model, x, y, steps=6, batch_size=8, lr=0.1, record_every=3,
                             generator=torch.Generator().manual_seed(2), progress=False)
    plain = net()
    optimizer = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9)
    gen = torch.Generator().manual_seed(2)
    norms, losses = [], []
    for step in range(1, 7):
        index = torch.randint(0, 50, (8,), generator=gen)
        loss = nn.functional.cross_entropy(plain(x[index]), y[index])
        optimizer.zero_grad()
        loss.backward()
        if step % 3 == 0:
            norms.append(plain[0].weight.grad.norm().item())
        optimizer.step()
        losses.append(loss.item())
    assert torch.equal(_flat(model), _flat(plain))
    assert history.grad_norms["0.weight"] == norms
    assert history.train_loss == pytest.approx([sum(losses[:3]) / 3, sum(losses[3:]) / 3], rel=1e-12)


# --------------------------------------------------------------------------- the generic loop


def test_fit_records_running_means_metrics_and_watched_gradients():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    target = torch.tensor([[1.0], [-1.0]])
    inputs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    seen, evaluated = [], []

    def objective(m, batch):
        loss = ((m(batch) - target) ** 2).mean()
        seen.append(loss.item())
        return loss

    def evaluate(m):
        evaluated.append(m.training)
        m.eval()  # fit must hand the model back in train mode
        return {"weight_sum": m.weight.sum().item()}

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, objective, lambda step: inputs, optimizer, steps=5, record_every=2,
                  evaluate=evaluate, watch={"w": model.weight}, progress=False)
    assert isinstance(history, History)
    assert history.step == [2, 4, 5]
    assert history.train_loss == pytest.approx([sum(seen[0:2]) / 2, sum(seen[2:4]) / 2, seen[4]])
    assert list(history.metrics) == ["weight_sum"] and len(history.metrics["weight_sum"]) == 3
    assert history.metrics["weight_sum"][-1] == pytest.approx(model.weight.sum().item())
    assert evaluated == [True, True, True] and model.training
    assert len(history.grad_norms["w"]) == 3 and all(g > 0 for g in history.grad_norms["w"])
    assert history.val_accuracy == [] and history.val_mean_iou == []


def test_fit_stops_on_a_non_finite_loss_before_it_touches_the_weights():
    torch.manual_seed(0)
    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 0.5)
    weights = {}

    def objective(m, step):
        weights[step] = m.weight.detach().clone()
        return m(torch.ones(1, 2)).sum() * (math.nan if step == 3 else 1.0)

    with pytest.raises(FloatingPointError, match=r"the loss became nan at step 3; lower lr \(now 0.5\)"):
        fit(model, objective, lambda step: step, optimizer, steps=5, scheduler=scheduler, progress=False)
    assert torch.equal(model.weight.detach(), weights[3])  # step 3 changed nothing
    assert not torch.equal(weights[3], weights[1])


class _DivergesAtCall3(nn.Module):
    """The wrapped network, except that its third forward pass returns NaN scores."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x) * (math.nan if self.calls == 3 else 1.0)


@pytest.mark.parametrize("train", ["classifier", "segmenter"])
def test_both_recipes_stop_on_a_nan_loss_with_the_same_message(train):
    images, labels = _seg_data()
    if train == "classifier":
        model = _DivergesAtCall3(nn.Sequential(nn.Flatten(), nn.Linear(3 * 144, 3)))
        run = lambda: fit_classifier(model, images, labels[:, -1, -1], steps=5, batch_size=2, lr=0.01,  # noqa: E731
                                     progress=False)
    else:
        model = _DivergesAtCall3(_seg_net())
        run = lambda: fit_segmenter(model, images, labels, steps=5, batch_size=2, lr=0.01,  # noqa: E731
                                    lr_schedule="poly", progress=False)
    with pytest.raises(FloatingPointError, match=r"the loss became nan at step 3; lower lr \(now 0.01\)"):
        run()
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(steps=0), ValueError, "steps: expected a positive int, got 0"),
    (dict(steps=True), TypeError, "steps: expected a positive int, got bool True"),
    (dict(record_every=2.0), TypeError, "record_every: expected a positive int, got float 2.0"),
])
def test_fit_rejects_bad_counts(kwargs, error, match):
    model = nn.Linear(1, 1)
    args = dict(steps=3) | kwargs
    with pytest.raises(error, match=match):
        fit(model, lambda m, b: m(b).sum(), lambda s: torch.ones(1, 1), torch.optim.SGD(model.parameters(), lr=0.1),
            progress=False, **args)


def test_layer_weights_and_the_train_package_surface():
    model = _seg_net()
    assert list(layer_weights(model)) == ["0.weight", "3.weight"]
    assert ck.train.fit is fit and ck.losses.cross_entropy is cross_entropy


# --------------------------------------------------------------------------- crfkit.losses.cross_entropy


def test_cross_entropy_equals_the_formula_with_ignored_pixels():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(2, 4, 3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 4, (2, 3, 5), generator=gen)
    labels[0, 1, :3] = 255
    loss = cross_entropy(scores, labels)
    terms = [-torch.log_softmax(scores[b, :, i, j], 0)[labels[b, i, j]]
             for b in range(2) for i in range(3) for j in range(5) if labels[b, i, j] != 255]
    brute = torch.stack(terms).sum() / len(terms)
    assert len(terms) == 27
    assert torch.allclose(loss, brute, rtol=1e-12, atol=0)
    (g,) = torch.autograd.grad(loss, scores)
    (g_brute,) = torch.autograd.grad(brute, scores)
    assert torch.allclose(g, g_brute, rtol=1e-12, atol=1e-15)
    assert torch.count_nonzero(g[0, :, 1, :3]) == 0  # ignored pixels get no gradient


def test_cross_entropy_for_classifiers_and_ignore_index_none():
    scores = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1)) + math.log(2)) / 3
    assert cross_entropy(scores, labels).item() == pytest.approx(expected)
    wide = torch.zeros(1, 300)
    assert cross_entropy(wide, torch.tensor([255]), ignore_index=None).item() == pytest.approx(math.log(300))
    assert math.isnan(cross_entropy(wide, torch.tensor([255])).item())  # every position ignored: 0/0


@pytest.mark.parametrize("scores, labels, error, match", [
    (torch.zeros(2, 3, 4, 4, dtype=torch.int64), torch.zeros(2, 4, 4, dtype=torch.int64), TypeError,
     "scores: expected a floating-point tensor"),
    (torch.zeros(3), torch.zeros(3, dtype=torch.int64), ValueError, r"scores: expected a tensor of shape \[B, K, \*S\]"),
    (torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4), TypeError, "labels: expected dtype torch.int64"),
    (torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 5, dtype=torch.int64), ValueError,
     r"labels: expected shape \[2, 4, 4\] \(scores' shape without its label axis K\), got \[2, 4, 5\]"),
    ([[0.0]], torch.zeros(1, dtype=torch.int64), TypeError, "scores: expected a torch.Tensor"),
])
def test_cross_entropy_rejects_bad_input(scores, labels, error, match):
    with pytest.raises(error, match=match):
        cross_entropy(scores, labels)
