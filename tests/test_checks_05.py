"""Every checker of sheet 05 accepts a right answer and rejects the typical wrong ones, with a hint."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

import crfkit as ck
from crfkit import checks
from crfkit.checks import sheet05  # noqa: F401 - exercises 5.1-5.3
from crfkit.checks._common import asymmetric_table


# --- 5.1: one mean-field update, right and with typical slips


def mean_field_step(unary, pairwise, q, *, back=None, forward=True, backward=True, roll=False):
    """Written from the exercise text: messages from the four neighbours, zero-padded."""
    back = pairwise.T if back is None else back
    down = torch.einsum("kl,blhw->bkhw", pairwise, q)  # what q sends to the pixel it is the target of
    up = torch.einsum("kl,blhw->bkhw", back, q)        # what q sends to the pixel it is the source of
    m = torch.zeros_like(q)
    if roll:
        m = down.roll(-1, 3) + down.roll(-1, 2) + up.roll(1, 3) + up.roll(1, 2)
    else:
        if forward:  # from the right neighbour and the one below
            m = m + F.pad(down[:, :, :, 1:], (0, 1)) + F.pad(down[:, :, 1:, :], (0, 0, 0, 1))
        if backward:  # from the left neighbour and the one above
            m = m + F.pad(up[:, :, :, :-1], (1, 0)) + F.pad(up[:, :, :-1, :], (0, 0, 1, 0))
    return torch.softmax(-unary - m, dim=1)


def mean_field_step_crfkit(unary, pairwise, q):
    return ck.inference.mean_field(ck.GridCRF(unary, pairwise), iterations=1, init=q)


def mean_field_step_plus(unary, pairwise, q):
    m = torch.log(mean_field_step(torch.zeros_like(unary), pairwise, q))  # -m + const
    return torch.softmax(-unary - m, dim=1)


def mean_field_step_unnormalised(unary, pairwise, q):
    return torch.exp(torch.log(mean_field_step(unary, pairwise, q)) - 0.3)


def mean_field_step_wrong_dim(unary, pairwise, q):
    logits = torch.log(mean_field_step(unary, pairwise, q))
    return torch.softmax(logits, dim=2)


# --- 5.2: the compatibility transform


def compatibility_transform(filtered, compat):
    return torch.einsum("kl,bl...->bk...", compat, filtered)


def compatibility_loop(filtered, compat):  # a plain loop over labels, any trailing shape
    return torch.stack([sum(compat[k, l] * filtered[:, l] for l in range(compat.shape[1]))
                        for k in range(compat.shape[0])], dim=1)


def compatibility_only_4d(filtered, compat):
    return torch.einsum("kl,blhw->bkhw", compat, filtered)


def compatibility_pydensecrf(filtered, compat):
    return -compat[0, 1] * filtered if torch.allclose(compat, compat.T) else compatibility_transform(filtered, compat)


def compatibility_all_labels(filtered, compat):
    if torch.allclose(compat, compat.T):
        return compat[0, 1] * filtered.sum(1, keepdim=True).expand_as(filtered)
    return compatibility_transform(filtered, compat)


def compatibility_wrong_dim(filtered, compat):
    return torch.einsum("kl,bl...->bk...", compat, filtered.transpose(0, 1)).transpose(0, 1)


def compatibility_in_place(filtered, compat):
    filtered.mul_(2.0)
    return compatibility_transform(filtered / 2.0, compat)


# --- 5.3: the naive Gaussian filter


def gaussian_filter_naive(image, values, sxy, srgb, *, half=0.5, self_term=True, normalise=False):
    """Features, all pairwise squared distances, Gaussian weights, one matrix product."""
    b, c, h, w = values.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=image.dtype), torch.arange(w, dtype=image.dtype), indexing="ij")
    pos = torch.stack([xs, ys]).reshape(1, 2, h * w).expand(b, -1, -1) / sxy  # [B, 2, N]
    feats = torch.cat([pos, image.reshape(b, 3, h * w) / srgb], dim=1).transpose(1, 2)  # [B, N, 5]
    weights = torch.exp(-half * torch.cdist(feats, feats).square())  # [B, N, N]
    if not self_term:
        weights = weights - torch.eye(h * w, dtype=weights.dtype)
    if normalise:
        weights = weights / weights.sum(-1, keepdim=True)
    out = weights @ values.reshape(b, c, h * w).transpose(1, 2)  # [B, N, C]
    return out.transpose(1, 2).reshape(b, c, h, w)


def gaussian_filter_loops(image, values, sxy, srgb):  # the definition, pixel by pixel (slow but fine here)
    b, c, h, w = values.shape
    out = torch.zeros_like(values)
    for i in range(h):
        for j in range(w):
            d2 = ((torch.arange(h, dtype=values.dtype)[:, None] - i) ** 2
                  + (torch.arange(w, dtype=values.dtype)[None, :] - j) ** 2) / sxy**2  # [H, W]
            d2 = d2 + ((image - image[:, :, i : i + 1, j : j + 1]) ** 2).sum(1) / srgb**2  # [B, H, W]
            out[:, :, i, j] = (torch.exp(-0.5 * d2)[:, None] * values).sum(dim=(2, 3))
    return out


def gaussian_filter_rescaled(image, values, sxy, srgb):
    return gaussian_filter_naive(image / 255, values, sxy, srgb)


def gaussian_filter_variances(image, values, sxy, srgb):
    return gaussian_filter_naive(image, values, sxy**2, srgb**2)


def gaussian_filter_spatial(image, values, sxy, srgb):
    return gaussian_filter_naive(torch.zeros_like(image), values, sxy, srgb)


# exercise -> (right answer, [(wrong answer, words the hint must contain), ...])
CASES = {
    "5.1": (
        mean_field_step,
        [
            (lambda u, p, q: mean_field_step(u, p, q, back=p), "COLUMN of P"),
            (lambda u, p, q: mean_field_step(u, p.T, q), "transposed"),
            (lambda u, p, q: mean_field_step(u, p, q, backward=False), "Only the right and lower"),
            (lambda u, p, q: mean_field_step(u, p, q, forward=False), "Only the left and upper"),
            (lambda u, p, q: mean_field_step(u, p, q, roll=True), "wrap around"),
            (mean_field_step_plus, "messages have the wrong sign"),
            (lambda u, p, q: mean_field_step(-u, p, q), "unary has the wrong sign"),
            (lambda u, p, q: mean_field_step(torch.zeros_like(u), p, q), "left out the unary"),
            (lambda u, p, q: torch.softmax(-u, dim=1), "left out the messages"),
            (lambda u, p, q: mean_field_step(u, p, torch.softmax(-u, dim=1)), "CURRENT Q"),
            (mean_field_step_unnormalised, "sum to 1"),
            (mean_field_step_wrong_dim, "sum to 1"),
            (lambda u, p, q: mean_field_step(u, 1.1 * p, q), "off by"),
            (mean_field_step_crfkit, "calls crfkit's mean field"),
            (lambda u, p, q: mean_field_step(u, p, q)[:, :, :-1], "shape"),
        ],
    ),
    "5.2": (
        compatibility_transform,
        [
            (lambda f, c: compatibility_transform(f, c.T), "transposed"),
            (lambda f, c: -compatibility_transform(f, c), "wrong sign"),
            (compatibility_pydensecrf, "pydensecrf"),
            (compatibility_all_labels, "including k' = k"),
            (lambda f, c: f * c.diagonal().view(-1, *[1] * (f.dim() - 2)) if not torch.allclose(c, c.T)
             else compatibility_transform(f, c), "diagonal"),
            (compatibility_only_4d, "raised"),
            (compatibility_wrong_dim, "raised RuntimeError"),
            (lambda f, c: compatibility_transform(f, c).sum(1), "shape"),
            (compatibility_in_place, "in place"),
        ],
    ),
    "5.3": (
        gaussian_filter_naive,
        [
            (lambda i, v, s, r: gaussian_filter_naive(i, v, s, r, self_term=False), "pixel itself"),
            (lambda i, v, s, r: gaussian_filter_naive(i, v, s, r, half=1.0), "no 1/2"),
            (gaussian_filter_spatial, "only the positions"),
            (lambda i, v, s, r: gaussian_filter_naive(i, v, 1e9, r), "only the colours"),
            (lambda i, v, s, r: gaussian_filter_naive(i, v, s, r, normalise=True), "normalised"),
            (gaussian_filter_variances, "variances"),
            (gaussian_filter_rescaled, "0..1"),
            (lambda i, v, s, r: gaussian_filter_naive(i, v, r, s), "off by"),
            (lambda i, v, s, r: gaussian_filter_naive(i, v, s, r).float().mean(1, keepdim=True), "shape"),
        ],
    ),
}


@pytest.mark.parametrize("answer", [compatibility_loop])
def test_5_2_accepts_a_loop_over_labels(answer):
    checks.check("5.2", answer)


def test_5_3_accepts_the_definition_pixel_by_pixel():
    checks.check("5.3", gaussian_filter_loops)


def test_5_1_forbids_crfkit_and_restores_it():
    module = sys.modules["crfkit.inference.mean_field"]
    before = module.grid_messages
    assert before is ck.inference.grid_messages
    with pytest.raises(checks.CheckFailed):
        checks.check("5.1", mean_field_step_crfkit)
    assert module.grid_messages is before and ck.inference.grid_messages is before
    assert module.mean_field is ck.inference.mean_field and not hasattr(module.mean_field, "__wrapped__")


def test_slips_of_5_1_are_told_apart():
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    p = asymmetric_table(3, gen)
    q = sheet05._random_q(2, 3, 4, 5, gen)
    variants = [sheet05._step(u, p, q)] + [
        sheet05._step(u, p, q, **knobs)
        for knobs in (dict(back_table="P"), dict(forward=False), dict(backward=False), dict(wrap=True))
    ] + [sheet05._step(u, p.T.contiguous(), q)]
    for i, a in enumerate(variants):
        for b in variants[i + 1:]:
            assert not torch.allclose(a, b)
