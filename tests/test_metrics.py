"""Tests for crfkit.metrics: hand-computed cases, a brute-force oracle, invariances, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import crfkit as ck
from crfkit.metrics import SegmentationScores, confusion_matrix, segmentation_scores

IGNORE = 255


# --------------------------------------------------------------------------- oracles


def brute_confmat(pred: np.ndarray, target: np.ndarray, k: int, ignore: int | None = IGNORE):
    """Confusion matrix by a Python loop over pixels (rows = truth)."""
    m = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(target.ravel().tolist(), pred.ravel().tolist()):
        if ignore is not None and t == ignore:
            continue
        m[t, p] += 1
    return m


def brute_scores(m: np.ndarray):
    """FCN (Long et al. 2015, Sec. 5) scores with Python loops, NaN rules of crfkit.metrics."""
    k = m.shape[0]
    t = [sum(m[i, j] for j in range(k)) for i in range(k)]
    p = [sum(m[j, i] for j in range(k)) for i in range(k)]
    iou, acc = [], []
    for i in range(k):
        union = t[i] + p[i] - m[i, i]
        iou.append(m[i, i] / union if union > 0 else math.nan)
        acc.append(m[i, i] / t[i] if t[i] > 0 else math.nan)
    total = sum(t)
    defined_iou = [x for x in iou if not math.isnan(x)]
    defined_acc = [x for x in acc if not math.isnan(x)]
    return {
        "pixel_accuracy": sum(m[i, i] for i in range(k)) / total if total else math.nan,
        "mean_accuracy": sum(defined_acc) / len(defined_acc) if defined_acc else math.nan,
        "mean_iou": sum(defined_iou) / len(defined_iou) if defined_iou else math.nan,
        "frequency_weighted_iou": (
            sum(t[i] * iou[i] for i in range(k) if t[i] > 0) / total if total else math.nan
        ),
        "iou": iou,
        "class_accuracy": acc,
    }


def assert_close_nan(a, b):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=1e-12, atol=0, equal_nan=True)


# --------------------------------------------------------------------------- hand-computed


def test_confusion_matrix_hand_computed():
    # truth (rows) vs prediction (columns); 255 = ignore
    target = torch.tensor([[[0, 0, 1, 1],
                            [2, 2, 2, 255]]])
    pred = torch.tensor([[[0, 1, 1, 1],
                          [2, 0, 2, 9]]])  # the 9 sits on an ignored pixel: not looked at
    m = confusion_matrix(pred, target, num_classes=3)
    expected = torch.tensor([[1, 1, 0],
                             [0, 2, 0],
                             [1, 0, 2]])
    assert m.dtype == torch.int64
    assert m.shape == (3, 3)
    assert torch.equal(m, expected)


def test_scores_hand_computed():
    m = torch.tensor([[1, 1, 0],
                      [0, 2, 0],
                      [1, 0, 2]])
    s = segmentation_scores(m)
    # pixel acc = (1+2+2)/7
    assert s.pixel_accuracy == pytest.approx(5 / 7)
    # class acc = 1/2, 2/2, 2/3
    assert s.class_accuracy.tolist() == pytest.approx([0.5, 1.0, 2 / 3])
    assert s.mean_accuracy == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)
    # IoU_i = n_ii / (t_i + p_i - n_ii): t = (2,2,3), p = (2,3,2)
    # IoU = 1/(2+2-1)=1/3, 2/(2+3-2)=2/3, 2/(3+2-2)=2/3
    assert s.iou.tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert s.iou.dtype == torch.float64
    assert s.mean_iou == pytest.approx((1 / 3 + 2 / 3 + 2 / 3) / 3)
    # f.w. IoU = (2*1/3 + 2*2/3 + 3*2/3) / 7 = (2/3 + 4/3 + 2) / 7 = 4/7
    assert s.frequency_weighted_iou == pytest.approx(4 / 7)
    assert isinstance(s.pixel_accuracy, float) and isinstance(s.mean_iou, float)


def test_absent_classes_follow_the_contract():
    # class 0: present, perfect. class 1: predicted once but never true.
    # class 2: neither true nor predicted. class 3: true twice, predicted as 0 once.
    m = torch.tensor([[3, 1, 0, 0],
                      [0, 0, 0, 0],
                      [0, 0, 0, 0],
                      [1, 0, 0, 1]])
    s = segmentation_scores(m)
    iou = s.iou.tolist()
    # IoU0 = 3/(4+4-3)=3/5; IoU1 = 0/(0+1-0)=0; IoU2 = NaN; IoU3 = 1/(2+1-1)=1/2
    assert iou[0] == pytest.approx(3 / 5)
    assert iou[1] == 0.0
    assert math.isnan(iou[2])
    assert iou[3] == pytest.approx(1 / 2)
    acc = s.class_accuracy.tolist()
    assert acc[0] == pytest.approx(3 / 4)
    assert math.isnan(acc[1]) and math.isnan(acc[2])
    assert acc[3] == pytest.approx(1 / 2)
    # means leave the NaNs out: IoU over {0,1,3}, accuracy over {0,3}
    assert s.mean_iou == pytest.approx((3 / 5 + 0 + 1 / 2) / 3)
    assert s.mean_accuracy == pytest.approx((3 / 4 + 1 / 2) / 2)
    assert s.pixel_accuracy == pytest.approx(4 / 6)
    # f.w.: (4 * 3/5 + 2 * 1/2) / 6
    assert s.frequency_weighted_iou == pytest.approx((4 * 3 / 5 + 2 * 1 / 2) / 6)


def test_perfect_prediction_and_empty_matrix():
    s = segmentation_scores(torch.diag(torch.tensor([5, 0, 2])))
    assert s.pixel_accuracy == 1.0 and s.mean_iou == 1.0 and s.mean_accuracy == 1.0
    assert math.isnan(s.iou[1].item())
    empty = segmentation_scores(torch.zeros(3, 3, dtype=torch.int64))
    assert math.isnan(empty.pixel_accuracy) and math.isnan(empty.mean_iou)
    assert math.isnan(empty.mean_accuracy) and math.isnan(empty.frequency_weighted_iou)


def test_all_pixels_ignored_gives_zero_matrix():
    target = torch.full((2, 3, 3), IGNORE)
    pred = torch.randint(0, 100, (2, 3, 3))
    assert torch.equal(confusion_matrix(pred, target, 4), torch.zeros(4, 4, dtype=torch.int64))


def test_ignore_index_none_and_custom():
    target = torch.tensor([0, 1, 1, 2])
    pred = torch.tensor([0, 1, 0, 2])
    m = confusion_matrix(pred, target, 3, ignore_index=None)
    assert m.sum() == 4
    m = confusion_matrix(pred, target, 3, ignore_index=2)  # class 2 pixels dropped
    assert torch.equal(m, torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 0]]))
    m = confusion_matrix(pred, torch.tensor([0, 1, 1, -1]), 3, ignore_index=-1)
    assert m.sum() == 3


# --------------------------------------------------------------------------- brute force


@st.composite
def labelled_batch(draw):
    k = draw(st.integers(1, 6))
    shape = draw(st.sampled_from([(5,), (3, 4), (2, 3, 4), (1, 1, 1), (2, 2, 5, 3)]))
    seed = draw(st.integers(0, 2**31 - 1))
    p_ignore = draw(st.sampled_from([0.0, 0.2, 0.9, 1.0]))
    rng = np.random.default_rng(seed)
    # use only some classes so that absent classes occur often
    used = rng.choice(k, size=rng.integers(1, k + 1), replace=False)
    target = rng.choice(used, size=shape)
    pred = rng.integers(0, k, size=shape) if rng.random() < 0.5 else rng.choice(used, size=shape)
    ignore = rng.random(shape) < p_ignore
    target = np.where(ignore, IGNORE, target)
    pred = np.where(ignore & (rng.random(shape) < 0.5), 77, pred)  # junk under ignore
    return k, pred.astype(np.int64), target.astype(np.int64)


@settings(max_examples=150, deadline=None)
@given(labelled_batch())
def test_confusion_matrix_and_scores_match_brute_force(case):
    k, pred, target = case
    m = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), k)
    expected = brute_confmat(pred, target, k)
    assert np.array_equal(m.numpy(), expected)
    assert int(m.sum()) == int((target != IGNORE).sum())

    s = segmentation_scores(m)
    ref = brute_scores(expected)
    for name in ("pixel_accuracy", "mean_accuracy", "mean_iou", "frequency_weighted_iou"):
        assert_close_nan(getattr(s, name), ref[name])
    assert_close_nan(s.iou.numpy(), ref["iou"])
    assert_close_nan(s.class_accuracy.numpy(), ref["class_accuracy"])


@settings(max_examples=60, deadline=None)
@given(labelled_batch(), st.integers(0, 2**31 - 1))
def test_invariances(case, seed):
    k, pred, target = case
    pred_t, target_t = torch.from_numpy(pred), torch.from_numpy(target)
    m = confusion_matrix(pred_t, target_t, k)

    # permuting pixels (the same permutation for pred and target) changes nothing
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(pred.size))
    m_perm = confusion_matrix(pred_t.reshape(-1)[perm], target_t.reshape(-1)[perm], k)
    assert torch.equal(m, m_perm)

    # matrices add: splitting the pixels in two and summing gives the whole
    flat_p, flat_t = pred_t.reshape(-1), target_t.reshape(-1)
    cut = pred.size // 2
    m_sum = confusion_matrix(flat_p[:cut], flat_t[:cut], k) + confusion_matrix(
        flat_p[cut:], flat_t[cut:], k
    )
    assert torch.equal(m, m_sum)

    # per-image matrices sum to the batch matrix, and per-image scores match one by one
    if pred.ndim >= 2:
        per = confusion_matrix(pred_t, target_t, k, per_image=True)
        assert per.shape == (pred.shape[0], k, k)
        assert torch.equal(per.sum(0), m)
        batched = segmentation_scores(per)
        for b in range(pred.shape[0]):
            single = segmentation_scores(per[b])
            assert_close_nan(batched.mean_iou[b].item(), single.mean_iou)
            assert_close_nan(batched.pixel_accuracy[b].item(), single.pixel_accuracy)
            assert_close_nan(batched.mean_accuracy[b].item(), single.mean_accuracy)
            assert_close_nan(batched.iou[b].numpy(), single.iou.numpy())

    # relabelling classes by a permutation permutes the scores
    sigma = np.random.default_rng(seed + 1).permutation(k)
    relabel = lambda a: np.where((a >= 0) & (a < k), sigma[np.clip(a, 0, k - 1)], a)  # noqa: E731
    m_rel = confusion_matrix(torch.from_numpy(relabel(pred)), torch.from_numpy(relabel(target)), k)
    s, s_rel = segmentation_scores(m), segmentation_scores(m_rel)
    assert_close_nan(s_rel.iou.numpy()[sigma], s.iou.numpy())
    assert_close_nan(s_rel.mean_iou, s.mean_iou)


def test_larger_random_batch_against_numpy():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 21, (4, 64, 80), generator=g)
    target[torch.rand(target.shape, generator=g) < 0.1] = IGNORE
    pred = torch.randint(0, 21, (4, 64, 80), generator=g)
    m = confusion_matrix(pred, target, 21)
    valid = (target != IGNORE).numpy()
    t, p = target.numpy()[valid], pred.numpy()[valid]
    ref = np.zeros((21, 21), dtype=np.int64)
    np.add.at(ref, (t, p), 1)
    assert np.array_equal(m.numpy(), ref)


# --------------------------------------------------------------------------- devices, dtypes


def test_dtypes_numpy_and_no_mutation():
    target = torch.tensor([[0, 1, 255], [2, 2, 1]], dtype=torch.int64)
    pred = torch.tensor([[0, 2, 255], [2, 1, 1]], dtype=torch.int64)
    t0, p0 = target.clone(), pred.clone()
    m = confusion_matrix(pred, target, 3)
    assert torch.equal(target, t0) and torch.equal(pred, p0)
    assert torch.equal(confusion_matrix(pred.to(torch.uint8), target.to(torch.uint8), 3), m)
    assert torch.equal(confusion_matrix(pred.int(), target.int(), 3), m)
    assert torch.equal(confusion_matrix(pred.numpy(), target.numpy(), 3), m)
    cm0 = m.clone()
    segmentation_scores(m)
    assert torch.equal(m, cm0)
    # float and numpy confmats are accepted
    assert segmentation_scores(m.double()).mean_iou == segmentation_scores(m).mean_iou
    assert segmentation_scores(m.numpy()).mean_iou == segmentation_scores(m).mean_iou


def _devices():
    devs = ["cpu"]
    if torch.cuda.is_available():
        devs.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devs.append("mps")
    return devs


@pytest.mark.parametrize("dev", _devices())
def test_output_on_input_device(dev):
    g = torch.Generator().manual_seed(1)
    target = torch.randint(0, 5, (2, 7, 9), generator=g)
    target[0, 0] = IGNORE
    pred = torch.randint(0, 5, (2, 7, 9), generator=g)
    ref = confusion_matrix(pred, target, 5)
    m = confusion_matrix(pred.to(dev), target.to(dev), 5)
    assert m.device.type == torch.device(dev).type
    assert torch.equal(m.cpu(), ref)
    per = confusion_matrix(pred.to(dev), target.to(dev), 5, per_image=True)
    assert per.device.type == torch.device(dev).type
    s = segmentation_scores(m)
    assert s.iou.device.type == torch.device(dev).type
    assert s.mean_iou == pytest.approx(segmentation_scores(ref).mean_iou)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_errors_and_mixed_devices():
    t = torch.tensor([0, 1]).cuda()
    with pytest.raises(ValueError, match="pred"):
        confusion_matrix(torch.tensor([0, 5]).cuda(), t, 2)
    with pytest.raises(ValueError, match="same device"):
        confusion_matrix(torch.tensor([0, 1]), t, 2)


# --------------------------------------------------------------------------- errors


def test_errors_name_the_argument():
    t = torch.tensor([[0, 1], [1, 255]])
    p = torch.tensor([[0, 1], [1, 0]])
    with pytest.raises(ValueError, match=r"pred: expected values in 0..1 \(K = 2\) where target is not ignored, got range \[0, 2\] \(1 pixel"):
        confusion_matrix(torch.tensor([[0, 1], [2, 0]]), t, 2)
    with pytest.raises(ValueError, match=r"pred: expected values in 0..1 \(K = 2\).*got range \[-1, 1\]"):
        confusion_matrix(torch.tensor([[0, -1], [1, 0]]), t, 2)
    with pytest.raises(ValueError, match=r"target: expected values in 0..1 \(K = 2\) or 255 \(ignore\), got range \[0, 3\]"):
        confusion_matrix(p, torch.tensor([[0, 3], [1, 255]]), 2)
    with pytest.raises(ValueError, match=r"target: .*got range \[-2, 1\] \(1 pixel\(s\) out of range\)"):
        confusion_matrix(p, torch.tensor([[0, -2], [1, 255]]), 2)
    with pytest.raises(ValueError, match=r"pred \[2, 2\] and target \[4\]"):
        confusion_matrix(p, torch.tensor([0, 1, 1, 0]), 2)
    with pytest.raises(TypeError, match=r"pred: expected an integer tensor.*float32.*argmax"):
        confusion_matrix(p.float(), t, 2)
    with pytest.raises(TypeError, match=r"target: expected an integer.*float64"):
        confusion_matrix(p, t.double(), 2)
    with pytest.raises(TypeError, match=r"target: expected an integer.*bool"):
        confusion_matrix(p, t > 0, 2)
    with pytest.raises(TypeError, match=r"pred: expected integer class labels.*NumPy.*float"):
        confusion_matrix(np.zeros((2, 2)), t, 2)
    with pytest.raises(TypeError, match=r"pred: expected a torch.Tensor.*list"):
        confusion_matrix([[0, 1], [1, 0]], t, 2)
    with pytest.raises(TypeError, match=r"num_classes: expected a positive int, got float"):
        confusion_matrix(p, t, 2.0)
    with pytest.raises(ValueError, match=r"num_classes: expected a positive int, got 0"):
        confusion_matrix(p, t, 0)
    with pytest.raises(TypeError, match=r"ignore_index"):
        confusion_matrix(p, t, 2, ignore_index="255")
    with pytest.raises(ValueError, match=r"per_image"):
        confusion_matrix(torch.tensor(0), torch.tensor(0), 2, per_image=True)


def test_scores_errors():
    with pytest.raises(ValueError, match=r"confmat: expected a square.*got shape \[2, 3\]"):
        segmentation_scores(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"confmat: expected a square.*got shape \[4\]"):
        segmentation_scores(torch.zeros(4))
    with pytest.raises(ValueError, match=r"confmat: expected finite counts, got 1 NaN"):
        segmentation_scores(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"confmat: expected non-negative counts"):
        segmentation_scores(torch.tensor([[1, -1], [0, 1]]))
    with pytest.raises(TypeError, match=r"confmat: expected a torch.Tensor.*list"):
        segmentation_scores([[1, 0], [0, 1]])
    with pytest.raises(TypeError, match=r"confmat: expected an integer or float"):
        segmentation_scores(torch.eye(2, dtype=torch.bool))


def test_result_is_frozen_and_table_prints():
    s = segmentation_scores(torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]]))
    assert isinstance(s, SegmentationScores)
    with pytest.raises(AttributeError):
        s.mean_iou = 1.0  # type: ignore[misc]
    text = s.table(["background", "cat", "dog"])
    assert "background" in text and "dog" in text and "mean" in text
    assert "75.0" in text  # IoU of background = 3/4
    with pytest.raises(ValueError, match="class_names: expected 3 names, got 2"):
        s.table(["a", "b"])


# --------------------------------------------------------------------------- boundary band


def _band_brute_force(labels, width, ignore_index=255):
    b, h, w = labels.shape
    out = torch.zeros(b, h, w, dtype=torch.bool)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                if labels[n, i, j] == ignore_index:
                    continue
                window = labels[n, max(0, i - width): i + width + 1, max(0, j - width): j + width + 1]
                out[n, i, j] = len(set(window[window != ignore_index].tolist())) > 1
    return out


@pytest.mark.parametrize("seed", range(6))
def test_boundary_band_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (2, 7, 9), generator=g)
    labels = torch.nn.functional.interpolate(labels[:, None].float(), size=(7, 9), mode="nearest")[:, 0].long()
    labels[torch.rand(labels.shape, generator=g) < 0.1] = 255
    for width in (1, 2, 3):
        keep = labels.clone()
        assert torch.equal(ck.metrics.boundary_band(labels, width), _band_brute_force(labels, width))
        assert torch.equal(labels, keep)


def test_boundary_band_constant_image_and_errors():
    flat = torch.full((1, 5, 5), 4)
    assert not ck.metrics.boundary_band(flat, 2).any()
    assert not ck.metrics.boundary_band(torch.full((1, 3, 3), 255), 1).any()
    with pytest.raises(ValueError, match=r"width: expected a positive int, got 0"):
        ck.metrics.boundary_band(flat, 0)
    with pytest.raises(ValueError, match=r"labels: expected a \[B, H, W\] tensor, got shape \[5, 5\]"):
        ck.metrics.boundary_band(flat[0], 1)
    with pytest.raises(TypeError, match="labels: expected an integer tensor"):
        ck.metrics.boundary_band(flat.float(), 1)
