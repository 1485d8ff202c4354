"""crfkit.data.SyntheticBodyParts: determinism, mirror symmetry, left/right alike locally."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crfkit.data import MIRROR, PARTS, SyntheticBodyParts, mirror


def balanced_accuracy(train_x, train_y, test_x, test_y, hidden=0, steps=300):
    """Logistic regression (``hidden=0``) or a one-hidden-layer MLP; balanced test accuracy."""
    torch.manual_seed(0)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    p1 = train_y.float().mean()
    weight = torch.where(train_y == 1, 0.5 / p1, 0.5 / (1 - p1))  # [N]
    d = train_x.shape[1]
    if hidden:
        model = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    else:
        model = torch.nn.Linear(d, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(train_x)[:, 0], train_y.float(), reduction="none")
        (loss * weight).mean().backward()
        opt.step()
    with torch.no_grad():
        pred = (model(test_x)[:, 0] > 0).long()
    return 0.5 * float((pred[test_y == 0] == 0).float().mean() + (pred[test_y == 1] == 1).float().mean())


def features(depths, labels, part_a, part_b, patch, boxes):
    """Patch features ``[N, patch^2]`` (raw depths), context ``[N, len(boxes)]`` (box means), targets ``[N]``.

    Only pixels whose ``patch`` x ``patch`` window lies wholly inside their part.
    """
    S = depths.shape[-1]
    r = patch // 2
    xs_patch, xs_context, ys = [], [], []
    for depth, label in zip(depths, labels):
        padded = F.pad(depth[None], (r, r, r, r), mode="replicate")  # [1, 1, S+2r, S+2r]
        patches = F.unfold(padded, patch)[0].T.reshape(S, S, -1)  # [S, S, patch^2]
        means = {k: F.avg_pool2d(depth[None], k, 1, k // 2, count_include_pad=False)[0, 0] for _, _, k in boxes}
        for part, target in ((part_a, 0), (part_b, 1)):
            mask = (label == part).float()[None, None]
            inside = -F.max_pool2d(-mask, patch, 1, r)[0, 0] > 0.5  # [S, S]
            py, px = inside.nonzero(as_tuple=True)
            xs_patch.append(patches[py, px])
            xs_context.append(
                torch.stack([means[k][(py + dy).clamp(0, S - 1), (px + dx).clamp(0, S - 1)] for dy, dx, k in boxes], 1)
            )
            ys.append(torch.full((len(py),), target))
    return torch.cat(xs_patch), torch.cat(xs_context), torch.cat(ys)


def test_item_shapes_dtypes_ranges():
    data = SyntheticBodyParts("train", size=48, length=2)
    depth, labels = data[1]
    assert depth.shape == (1, 48, 48) and depth.dtype == torch.float32
    assert labels.shape == (48, 48) and labels.dtype == torch.int64
    assert set(labels.unique().tolist()) <= set(range(11)) and {0, 1, 2} <= set(labels.unique().tolist())
    body, wall = depth[0][labels > 0], depth[0][labels == 0]
    assert 1.5 < float(body.min()) and float(body.max()) < 3.7  # figure 2..3.5 m, minus bulges, plus noise
    assert 3.5 < float(wall.min()) and float(wall.max()) < 5.5
    assert float(body.max()) < float(wall.min())
    assert len(PARTS) == 11 and PARTS[0] == "background" and data.num_classes == 11


def test_determinism_and_splits():
    a, b = SyntheticBodyParts("train", size=40, seed=3), SyntheticBodyParts("train", size=40, seed=3)
    assert torch.equal(a[4][0], b[4][0]) and torch.equal(a[4][1], b[4][1])
    assert not torch.equal(a[4][0], a[5][0])
    val = SyntheticBodyParts("val", size=40, seed=3)
    assert not torch.equal(a[0][0], val[0][0]) and not torch.equal(a[0][1], val[0][1])


def test_batch_and_sample():
    data = SyntheticBodyParts("test", size=32, length=3)
    depths, labels = data.batch(range(3))
    assert depths.shape == (3, 1, 32, 32) and labels.shape == (3, 32, 32)
    assert torch.equal(depths[2], data[2][0])
    depth, label = data.sample(0)
    assert depth.shape == (1, 1, 32, 32) and label.shape == (1, 32, 32)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"size": 16}, ValueError, r"size: expected an int in 32\.\.512, got 16"),
        ({"size": 1024}, ValueError, r"size: expected an int in 32\.\.512, got 1024"),
        ({"split": "dev"}, ValueError, "split: expected one of"),
        ({"length": -3}, ValueError, "length: expected a positive int, got -3"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        SyntheticBodyParts(**kwargs)


def test_bad_index():
    data = SyntheticBodyParts("train", size=32, length=2)
    with pytest.raises(IndexError, match=r"index: expected an int in 0\.\.1 \(length 2\), got -1"):
        data[-1]
    with pytest.raises(IndexError, match=r"got 2"):
        data[2]


def test_mirror_map():
    assert sorted(MIRROR) == list(range(11))
    assert all(MIRROR[MIRROR[k]] == k for k in range(11))  # an involution
    for k, name in enumerate(PARTS):
        swapped = name.replace("left", "@").replace("right", "left").replace("@", "right")
        assert PARTS[MIRROR[k]] == swapped
    depth = torch.rand(2, 1, 4, 5)
    labels = torch.tensor([3, 4, 0, 255, 9]).expand(2, 4, 5)
    flipped_depth, flipped = mirror(depth, labels)
    assert torch.equal(flipped_depth, depth.flip(-1))
    assert flipped[0, 0].tolist() == [10, 255, 0, 3, 4]


def test_left_parts_lie_on_the_image_right():
    """Facing the camera, the person's left is on the image right: the left upper arm lies right
    of the torso, the right one left of it; the left upper leg right of the right one."""
    _, labels = SyntheticBodyParts("train", size=64, length=40).batch(range(40))
    xs = torch.arange(64.0).expand(64, 64)  # [H, W] column index
    for label in labels:
        mean_x = {k: xs[label == k].mean() for k in (2, 3, 4, 7, 8) if (label == k).sum() > 3}
        if 3 in mean_x and 4 in mean_x:
            assert mean_x[3] > mean_x[2] > mean_x[4]
        if 7 in mean_x and 8 in mean_x:
            assert mean_x[7] > mean_x[8]


def test_mirrored_figures_have_the_same_statistics():
    """Flip + MIRROR maps the data set onto itself: per-part pixel counts, depths and positions agree."""
    depths, labels = SyntheticBodyParts("train", size=64, length=150).batch(range(150))
    flipped_depths, flipped = mirror(depths, labels)
    xs = torch.arange(64.0).expand(64, 64)
    for part in range(3, 11):
        here, there = labels == part, flipped == part
        count, count_flipped = here.sum().item(), there.sum().item()
        assert abs(count - count_flipped) / count < 0.1, f"{PARTS[part]}: {count} vs {count_flipped} pixels"
        d, d_flipped = depths[:, 0][here], flipped_depths[:, 0][there]
        assert abs(d.mean() - d_flipped.mean()) < 0.05 and abs(d.std() - d_flipped.std()) < 0.05
        offset = (xs.expand_as(labels)[here] - 32).mean()  # a left part's mean column, from the centre
        offset_flipped = (xs.expand_as(labels)[there] - 32).mean()
        assert offset * offset_flipped > 0  # on the same side
        assert abs(offset - offset_flipped) < 3, f"{PARTS[part]}: mean x offset {offset:.1f} vs {offset_flipped:.1f}"


@pytest.mark.parametrize(("left", "right"), [(3, 4), (7, 8)])
def test_left_and_right_alike_locally(left, right):
    """3x3 depth patches inside a part: chance for left vs right; boxes of depth to both sides separate.

    At 128 x 128. Measured: upper arms patch 0.54 / 0.52, context 1.00; upper legs patch
    0.57 / 0.57, context 0.99 (logistic / MLP).
    """
    boxes = [(2 * dy, 2 * dx, 7) for dy in (-4, 0, 4) for dx in (-12, -8, -4, 4, 8, 12)]
    train = features(*SyntheticBodyParts("train", size=128, length=40).batch(range(40)), left, right, 3, boxes)
    test = features(*SyntheticBodyParts("val", size=128, length=30).batch(range(30)), left, right, 3, boxes)
    assert min((test[2] == 0).sum(), (test[2] == 1).sum()) > 500
    for hidden in (0, 32):
        accuracy = balanced_accuracy(train[0], train[2], test[0], test[2], hidden=hidden)
        assert accuracy < 0.62, f"{PARTS[left]} vs {PARTS[right]} from 3x3 patches: {accuracy:.2f}"
    accuracy = balanced_accuracy(train[1], train[2], test[1], test[2])
    assert accuracy > 0.95, f"{PARTS[left]} vs {PARTS[right]} from depth to the sides: {accuracy:.2f}"
