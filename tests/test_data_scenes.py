"""crfkit.data.SyntheticScenes: determinism, balance, look-alikes that only context separates."""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from crfkit.data import CLASSES, LOOKALIKES, SyntheticScenes, tags
from crfkit.data.scenes import BOAT, CAR, PERSON, RIDER


# ----------------------------------------------------------------- helpers: two tiny classifiers


def balanced_accuracy(train_x, train_y, test_x, test_y, hidden=0, steps=300):
    """Fit logistic regression (``hidden=0``) or a one-hidden-layer MLP; balanced test accuracy.

    ``train_x`` ``[N, D]`` float, ``train_y`` ``[N]`` in {0, 1}. Seeded, full batch, Adam.
    """
    torch.manual_seed(0)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    p1 = train_y.float().mean()
    weight = torch.where(train_y == 1, 0.5 / p1, 0.5 / (1 - p1))  # [N], both classes count alike
    d = train_x.shape[1]
    if hidden:
        model = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    else:
        model = torch.nn.Linear(d, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        logits = model(train_x)[:, 0]  # [N]
        loss = (F.binary_cross_entropy_with_logits(logits, train_y.float(), reduction="none") * weight).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = (model(test_x)[:, 0] > 0).long()  # [M]
    return 0.5 * float((pred[test_y == 0] == 0).float().mean() + (pred[test_y == 1] == 1).float().mean())


def patch_and_context_features(images, labels, class_a, class_b, patch, boxes):
    """Features of the pixels of two classes whose patch lies inside the class, blur included.

    images ``[B, C, S, S]``, labels ``[B, S, S]``. Returns patch features ``[N, C*patch^2]``
    (the raw pixels of a ``patch`` x ``patch`` window), context features ``[N, C*len(boxes)]``
    (mean appearance of ``k`` x ``k`` boxes at offsets ``(dy, dx)``) and targets ``[N]``
    (0 for ``class_a``, 1 for ``class_b``). A pixel counts only if its patch, widened by the
    one-pixel boundary blur, lies wholly inside its class: the claim is "alike locally".
    """
    S = images.shape[-1]
    r = patch // 2
    xs_patch, xs_context, ys = [], [], []
    for image, label in zip(images, labels):
        padded = F.pad(image[None], (r, r, r, r), mode="replicate")  # [1, C, S+2r, S+2r]
        patches = F.unfold(padded, patch)[0].T.reshape(S, S, -1)  # [S, S, C*patch^2]
        means = {k: F.avg_pool2d(image[None], k, 1, k // 2, count_include_pad=False)[0] for _, _, k in boxes}
        for cls, target in ((class_a, 0), (class_b, 1)):
            mask = (label == cls).float()[None, None]  # [1, 1, S, S]
            inside = -F.max_pool2d(-mask, patch + 2, 1, r + 1)[0, 0] > 0.5  # [S, S]
            py, px = inside.nonzero(as_tuple=True)
            xs_patch.append(patches[py, px])
            xs_context.append(
                torch.cat(
                    [means[k][:, (py + dy).clamp(0, S - 1), (px + dx).clamp(0, S - 1)].T for dy, dx, k in boxes],
                    dim=1,
                )
            )
            ys.append(torch.full((len(py),), target))
    return torch.cat(xs_patch), torch.cat(xs_context), torch.cat(ys)


# ----------------------------------------------------------------- shapes, determinism


def test_item_shapes_dtypes_ranges():
    data = SyntheticScenes("train", size=48, length=3)
    image, labels = data[2]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert labels.shape == (48, 48) and labels.dtype == torch.int64
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert set(labels.unique().tolist()) <= set(range(len(CLASSES)))
    assert len(data) == 3 and data.num_classes == len(CLASSES) == 10
    assert CLASSES[0] == "background"


@pytest.mark.parametrize("size", [32, 97, 200])
def test_any_size(size):
    image, labels = SyntheticScenes("val", size=size, length=1)[0]
    assert image.shape == (3, size, size) and labels.shape == (size, size)


def test_same_seed_same_bytes_and_distinct_items():
    a = SyntheticScenes("train", size=64, seed=7)
    b = SyntheticScenes("train", size=64, seed=7)
    for i in (0, 5):
        assert torch.equal(a[i][0], b[i][0]) and torch.equal(a[i][1], b[i][1])
    assert not torch.equal(a[0][0], a[1][0])  # different index
    assert not torch.equal(a[0][0], SyntheticScenes("train", size=64, seed=8)[0][0])  # different seed


def test_splits_share_no_scene():
    images = {split: SyntheticScenes(split, size=32, length=20).batch(range(20))[0] for split in ("train", "val", "test")}
    for s1, s2 in (("train", "val"), ("train", "test"), ("val", "test")):
        same = (images[s1][:, None] == images[s2][None]).flatten(2).all(-1)  # [20, 20]
        assert not same.any(), f"{s1} and {s2} share a scene"


def test_sample_and_batch():
    data = SyntheticScenes("test", size=32, length=4)
    images, labels = data.batch([3, 1])
    assert images.shape == (2, 3, 32, 32) and labels.shape == (2, 32, 32)
    assert torch.equal(images[0], data[3][0]) and torch.equal(labels[1], data[1][1])
    image, label = data.sample(2)
    assert image.shape == (1, 3, 32, 32) and label.shape == (1, 32, 32)
    with pytest.raises(ValueError, match="indices: expected at least one index"):
        data.batch([])


# ----------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"size": 31}, ValueError, r"size: expected an int in 32\.\.512, got 31"),
        ({"size": 513}, ValueError, r"size: expected an int in 32\.\.512, got 513"),
        ({"size": 64.0}, TypeError, "size: expected an int .*got float"),
        ({"split": "training"}, ValueError, r"split: expected one of \['train', 'val', 'test'\], got 'training'"),
        ({"length": 0}, ValueError, "length: expected a positive int, got 0"),
        ({"seed": "0"}, TypeError, "seed: expected an int, got str"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SyntheticScenes(**kwargs)


def test_bad_index():
    data = SyntheticScenes("train", size=32, length=5)
    with pytest.raises(IndexError, match=r"index: expected an int in 0\.\.4 \(length 5\), got -1"):
        data[-1]
    with pytest.raises(IndexError, match=r"index: expected an int in 0\.\.4 \(length 5\), got 5"):
        data[5]
    with pytest.raises(TypeError, match="index: expected an int, got float"):
        data[1.0]
    assert len(list(data)) == 5  # iteration stops at IndexError


# ----------------------------------------------------------------- tags


def test_tags():
    labels = torch.tensor([[[0, 3], [255, 3]], [[9, 9], [9, 255]]])  # [2, 2, 2]
    expected = torch.zeros(2, 10)
    expected[0, [0, 3]] = 1
    expected[1, 9] = 1
    assert torch.equal(tags(labels, 10), expected)
    assert torch.equal(tags(labels[0], 10), expected[0])
    assert tags(labels, 10).dtype == torch.float32
    data = SyntheticScenes("train", size=32, length=1)
    _, scene = data[0]
    assert torch.equal(data.tags(scene).bool(), torch.bincount(scene.flatten(), minlength=10) > 0)


def test_tags_errors():
    with pytest.raises(ValueError, match=r"labels: expected values in 0\.\.9 or 255 \(ignore\), got 10"):
        tags(torch.tensor([[0, 10]]), 10)
    with pytest.raises(TypeError, match="labels: expected an integer tensor"):
        tags(torch.zeros(2, 2), 10)
    with pytest.raises(ValueError, match=r"labels: expected a tensor of shape \[H, W\] or \[B, H, W\], got shape \[4\]"):
        tags(torch.zeros(4, dtype=torch.long), 10)
    with pytest.raises(ValueError, match="num_classes: expected a positive int, got 0"):
        tags(torch.zeros(2, 2, dtype=torch.long), 0)


# ----------------------------------------------------------------- the data's promises


def test_class_balance():
    """Over 50 scenes, every class appears often enough and takes a sensible share of pixels.

    Documented in SyntheticScenes: sky ~29% of pixels; each ground class 16-18%; car and
    boat in every scene at ~1.4%; person ~79% of scenes, rider ~61%, horse ~69%.
    """
    _, labels = SyntheticScenes("train", size=64, length=50).batch(range(50))
    present = tags(labels, 10).mean(0)  # [K] share of scenes holding each class
    pixels = torch.bincount(labels.flatten(), minlength=10).float() / labels.numel()  # [K]
    bounds = {  # class: (min share of scenes, min pixel share, max pixel share)
        "background": (1.0, 0.10, 0.25),
        "sky": (1.0, 0.20, 0.40),
        "grass": (1.0, 0.10, 0.25),
        "road": (1.0, 0.10, 0.25),
        "water": (1.0, 0.10, 0.25),
        "car": (0.9, 0.005, 0.03),
        "boat": (0.9, 0.005, 0.03),
        "person": (0.6, 0.002, 0.02),
        "rider": (0.4, 0.002, 0.02),
        "horse": (0.5, 0.004, 0.03),
    }
    for k, name in enumerate(CLASSES):
        least_present, low, high = bounds[name]
        assert present[k] >= least_present, f"{name} in only {present[k]:.0%} of scenes"
        assert low <= pixels[k] <= high, f"{name} has {pixels[k]:.2%} of the pixels"


def test_lookalikes_are_declared():
    assert (CAR, BOAT) in LOOKALIKES and (PERSON, RIDER) in LOOKALIKES


def test_car_and_boat_differ_only_in_context():
    """A 3x3-patch classifier is at chance on car vs boat; mean colours of wide windows separate them.

    Measured: patch 0.55 (logistic) / 0.48 (MLP); context 0.99 / 0.99.
    """
    boxes = [(0, 0, 15), (0, 0, 25)]
    train = patch_and_context_features(*SyntheticScenes("train", size=64, length=60).batch(range(60)), CAR, BOAT, 3, boxes)
    test = patch_and_context_features(*SyntheticScenes("val", size=64, length=40).batch(range(40)), CAR, BOAT, 3, boxes)
    assert min((train[2] == 0).sum(), (train[2] == 1).sum(), (test[2] == 0).sum(), (test[2] == 1).sum()) > 100
    for hidden in (0, 32):
        accuracy = balanced_accuracy(train[0], train[2], test[0], test[2], hidden=hidden)
        assert accuracy < 0.62, f"car vs boat from 3x3 patches: {accuracy:.2f} (hidden={hidden})"
    accuracy = balanced_accuracy(train[1], train[2], test[1], test[2])
    assert accuracy > 0.9, f"car vs boat from the surrounding colour: {accuracy:.2f}"


def test_person_and_rider_differ_only_in_what_is_below():
    """Person vs rider: chance from 3x3 patches; a column of boxes below the pixel separates them.

    At 128 x 128 (a person is ~5 px wide at 64). Measured: patch 0.54 / 0.55; context MLP 0.98.
    """
    boxes = [(dy, 0, 5) for dy in range(4, 44, 4)]  # what lies 4..40 px below
    train = patch_and_context_features(*SyntheticScenes("train", size=128, length=60).batch(range(60)), PERSON, RIDER, 3, boxes)
    test = patch_and_context_features(*SyntheticScenes("val", size=128, length=40).batch(range(40)), PERSON, RIDER, 3, boxes)
    assert min((test[2] == 0).sum(), (test[2] == 1).sum()) > 100
    for hidden in (0, 32):
        accuracy = balanced_accuracy(train[0], train[2], test[0], test[2], hidden=hidden)
        assert accuracy < 0.62, f"person vs rider from 3x3 patches: {accuracy:.2f} (hidden={hidden})"
    accuracy = balanced_accuracy(train[1], train[2], test[1], test[2], hidden=32)
    assert accuracy > 0.9, f"person vs rider from what lies below: {accuracy:.2f}"


def test_other_classes_are_locally_distinct():
    """The control: the same 3x3-patch classifier tells road from water easily."""
    from crfkit.data.scenes import ROAD, WATER

    train = patch_and_context_features(*SyntheticScenes("train", size=64, length=10).batch(range(10)), ROAD, WATER, 3, [(0, 0, 3)])
    test = patch_and_context_features(*SyntheticScenes("val", size=64, length=10).batch(range(10)), ROAD, WATER, 3, [(0, 0, 3)])
    assert balanced_accuracy(train[0], train[2], test[0], test[2]) > 0.95


def test_things_sit_on_their_context():
    """Every car borders road only (besides other things), every boat water only; riders touch a horse."""
    _, labels = SyntheticScenes("train", size=64, length=30).batch(range(30))
    stuff = {0, 1, 2, 3, 4}
    for label in labels:
        for thing, host in ((CAR, 3), (BOAT, 4)):
            mask = (label == thing).float()[None, None]
            ring = (F.max_pool2d(mask, 3, 1, 1)[0, 0] > 0) & (label != thing)
            assert set(label[ring].unique().tolist()) & stuff <= {host}
        rider = (label == RIDER).float()[None, None]
        if rider.any():
            ring = (F.max_pool2d(rider, 3, 1, 1)[0, 0] > 0) & (label != RIDER)
            assert (label[ring] == 9).any(), "a rider without a horse"
