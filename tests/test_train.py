"""Training loop, loss-landscape slices and the digits loader."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from crfkit.data.digits import load_digits
from crfkit.landscape import filter_normalized_direction, loss_surface
from crfkit.train import accuracy, fit_classifier, layer_weights


def _toy(n=200, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=gen)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()  # separable by the mean pixel
    return x, y


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(64, 2))


def test_fit_classifier_learns_and_records():
    x, y = _toy()
    model = _net()
    before = accuracy(model, x, y)
    history = fit_classifier(model, x, y, steps=60, lr=0.1, val=(x, y), record_every=20,
                             generator=torch.Generator().manual_seed(0), progress=False)
    assert history.step == [20, 40, 60]
    assert len(history.train_loss) == len(history.val_accuracy) == 3
    assert history.train_loss[-1] < history.train_loss[0]
    assert accuracy(model, x, y) > max(before, 0.9)
    assert list(history.grad_norms) == ["0.weight", "4.weight"]
    assert all(len(v) == 3 and all(g > 0 for g in v) for v in history.grad_norms.values())


def test_fit_classifier_is_reproducible():
    x, y = _toy()
    runs = []
    for _ in range(2):
        model = _net()
        fit_classifier(model, x, y, steps=10, generator=torch.Generator().manual_seed(1), progress=False)
        runs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(images=torch.zeros(4, 4, 4)), ValueError, r"images: expected a 4-D tensor"),
    (dict(targets=torch.zeros(3, dtype=torch.int64)), ValueError, "targets: expected 200 entries"),
    (dict(targets=torch.zeros(200)), TypeError, "targets: expected dtype torch.int64"),
    (dict(steps=0), ValueError, "steps: expected a positive int, got 0"),
    (dict(images=torch.full((200, 1, 4, 4), float("nan"))), ValueError, "finite"),
])
def test_fit_classifier_rejects_bad_input(kwargs, error, match):
    x, y = _toy()
    args = dict(images=x, targets=y) | kwargs
    with pytest.raises(error, match=match):
        fit_classifier(_net(), args.pop("images"), args.pop("targets"), progress=False, **args)


def test_layer_weights_lists_conv_and_linear_only():
    assert list(layer_weights(_net())) == ["0.weight", "4.weight"]


def test_direction_is_filter_normalised():
    model = _net()
    direction = filter_normalized_direction(model, torch.Generator().manual_seed(0))
    for p, d in zip(model.parameters(), direction):
        assert d.shape == p.shape
        if p.dim() <= 1:
            assert torch.count_nonzero(d) == 0
        else:
            assert torch.allclose(d.flatten(1).norm(dim=1), p.detach().flatten(1).norm(dim=1), rtol=1e-5)


def test_loss_surface_centre_is_the_model_and_weights_are_restored():
    x, y = _toy()
    model = _net()
    model.eval()
    keep = [p.detach().clone() for p in model.parameters()]
    loss_fn = lambda m: nn.functional.cross_entropy(m(x), y)  # noqa: E731
    centre = loss_fn(model).item()
    coords, losses = loss_surface(model, loss_fn, span=0.5, steps=5, generator=torch.Generator().manual_seed(0))
    assert coords.tolist() == pytest.approx([-0.5, -0.25, 0.0, 0.25, 0.5])
    assert losses.shape == (5, 5)
    assert losses[2, 2].item() == pytest.approx(centre, rel=1e-5)
    assert all(torch.equal(a, b.detach()) for a, b in zip(keep, model.parameters()))
    # a moved point really moves: the loss at a corner differs from the centre
    assert not torch.isclose(losses[0, 0], losses[2, 2])


def test_loss_surface_matches_a_manual_evaluation():
    x, y = _toy()
    model = _net()
    model.eval()
    gen = torch.Generator().manual_seed(3)
    dirs = (filter_normalized_direction(model, gen), filter_normalized_direction(model, gen))
    loss_fn = lambda m: nn.functional.cross_entropy(m(x), y)  # noqa: E731
    coords, losses = loss_surface(model, loss_fn, span=1.0, steps=3, directions=dirs)
    with torch.no_grad():
        for p, d, e in zip(model.parameters(), *dirs):
            p.add_(1.0 * d - 1.0 * e)  # a = +1 (column 2), b = -1 (row 0)
        manual = loss_fn(model).item()
    assert losses[0, 2].item() == pytest.approx(manual, rel=1e-5)


@pytest.mark.parametrize("kwargs, match", [(dict(steps=4), "odd int"), (dict(span=0), "span")])
def test_loss_surface_rejects_bad_grid(kwargs, match):
    with pytest.raises(ValueError, match=match):
        loss_surface(_net(), lambda m: torch.tensor(0.0), **kwargs)


def test_digits_splits_are_disjoint_and_cover():
    parts = [load_digits(s, size=8) for s in ("train", "val", "test")]
    assert [len(p[1]) for p in parts] == [1078, 359, 360]
    flat = torch.cat([p[0].flatten(1) for p in parts])
    assert len(torch.unique(flat, dim=0)) >= 1700  # (a few digits are exact duplicates)
    assert all(p[0].min() >= 0 and p[0].max() <= 1 for p in parts)
    assert set(parts[0][1].tolist()) == set(range(10))


def test_digits_resize_and_determinism():
    a, ya = load_digits("val", size=16, seed=3)
    b, yb = load_digits("val", size=16, seed=3)
    c, _ = load_digits("val", size=16, seed=4)
    assert a.shape == (359, 1, 16, 16) and torch.equal(a, b) and torch.equal(ya, yb)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("kwargs, match", [
    (dict(split="dev"), "split: expected one of"),
    (dict(size=4), "size: expected an int in 8..128, got 4"),
    (dict(fractions=(0.5, 0.5, 0.5)), "fractions"),
])
def test_digits_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_digits(**kwargs)
