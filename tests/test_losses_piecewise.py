"""crfkit.losses.piecewise_nll (Lin et al.'s piecewise objective) against a brute-force sum over
every factor of tiny grids, and against the exact likelihood it bounds."""

from __future__ import annotations

import itertools

import pytest
import torch

import crfkit as ck
from crfkit.losses import piecewise_nll

F64 = torch.float64


def _brute(unary, pairwise_of, offsets, labels, ignore=255):
    """Sum over pixels and edges in Python loops; ``pairwise_of(b, e, i, j)`` is the [K, K] table
    of the edge (i, j) -> (i, j) + offsets[e] of image b."""
    b_, k, h, w = unary.shape
    out = []
    for b in range(b_):
        total = unary.new_zeros(())
        for i, j in itertools.product(range(h), range(w)):
            if labels[b, i, j] != ignore:
                total = total - torch.log_softmax(-unary[b, :, i, j], 0)[labels[b, i, j]]
        for e, (dy, dx) in enumerate(offsets):
            for i, j in itertools.product(range(h), range(w)):
                a, c = i + dy, j + dx
                if not (0 <= a < h and 0 <= c < w) or labels[b, i, j] == ignore or labels[b, a, c] == ignore:
                    continue
                table = pairwise_of(b, e, i, j)
                total = total - torch.log_softmax(-table.flatten(), 0)[labels[b, i, j] * k + labels[b, a, c]]
        out.append(total)
    return torch.stack(out)


OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1), (-2, 1))  # incl. diagonal, negative and long offsets


@pytest.mark.parametrize("kind", ["shared", "per_class", "per_edge"])
def test_piecewise_nll_equals_the_brute_force_sum_value_and_gradients(kind):
    gen = torch.Generator().manual_seed(0)
    b, k, h, w = 2, 3, 3, 4
    unary = torch.randn(b, k, h, w, generator=gen, dtype=F64, requires_grad=True)
    e = len(OFFSETS)
    shape = {"shared": (k, k), "per_class": (e, k, k), "per_edge": (b, e, k, k, h, w)}[kind]
    pairwise = torch.randn(*shape, generator=gen, dtype=F64).mul(2).requires_grad_()
    labels = torch.randint(0, k, (b, h, w), generator=gen)
    labels[0, 1, 2] = 255
    labels[1, 0, :2] = 255

    def table(bb, ee, i, j):
        if kind == "shared":
            return pairwise
        if kind == "per_class":
            return pairwise[ee]
        return pairwise[bb, ee, :, :, i, j]

    got = piecewise_nll(ck.GridCRF(unary, pairwise, OFFSETS), labels)
    want = _brute(unary, table, OFFSETS, labels)
    assert got.shape == (2,)
    assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)
    g = torch.autograd.grad(got.sum(), (unary, pairwise))
    g_want = torch.autograd.grad(want.sum(), (unary, pairwise))
    for a, c in zip(g, g_want):
        assert torch.allclose(a, c, rtol=1e-12, atol=1e-12)
    assert g[0][0, :, 1, 2].abs().max() == 0  # an ignored pixel's unary gets no gradient


def test_piecewise_nll_bounds_the_exact_negative_log_likelihood_and_is_tight_on_one_factor():
    gen = torch.Generator().manual_seed(1)
    unary = torch.randn(2, 2, 2, 3, generator=gen, dtype=F64)
    pairwise = torch.randn(2, 2, 2, generator=gen, dtype=F64)
    crf = ck.GridCRF(unary, pairwise)
    labels = torch.randint(0, 2, (2, 2, 3), generator=gen)
    exact_nll = crf.energy(labels) + ck.inference.exact(crf).log_z  # -log p(y)
    assert (piecewise_nll(crf, labels) >= exact_nll - 1e-12).all()
    assert (piecewise_nll(crf, labels) > exact_nll + 1e-3).all()  # strictly, with couplings
    # no pairwise coupling (a single column and a horizontal offset has no edge): it is the exact NLL
    lone = ck.GridCRF(unary[..., :1], pairwise[:1], offsets=((0, 1),))
    exact_lone = lone.energy(labels[..., :1]) + ck.inference.exact(lone).log_z
    assert torch.allclose(piecewise_nll(lone, labels[..., :1]), exact_lone, atol=1e-12)


def test_piecewise_nll_with_nothing_ignored_and_ignore_index_none():
    gen = torch.Generator().manual_seed(2)
    unary = torch.randn(1, 3, 2, 2, generator=gen, dtype=F64)
    pairwise = torch.randn(3, 3, generator=gen, dtype=F64)
    labels = torch.randint(0, 3, (1, 2, 2), generator=gen)
    crf = ck.GridCRF(unary, pairwise)
    assert torch.allclose(piecewise_nll(crf, labels, ignore_index=None), piecewise_nll(crf, labels))
    all_ignored = torch.full((1, 2, 2), 255)
    assert piecewise_nll(crf, all_ignored).item() == 0.0


@pytest.mark.parametrize("labels, error, match", [
    (torch.zeros(1, 2, 3, dtype=torch.int64), ValueError, r"labels: expected shape \[B, H, W\] = \[1, 2, 2\]"),
    (torch.zeros(1, 2, 2), TypeError, "labels: expected dtype torch.int64"),
    (torch.full((1, 2, 2), 3), ValueError, r"labels: expected values in 0..2 \(K = 3\) or 255 \(ignore\)"),
])
def test_piecewise_nll_rejects_bad_labels(labels, error, match):
    crf = ck.GridCRF(torch.zeros(1, 3, 2, 2), torch.zeros(3, 3))
    with pytest.raises(error, match=match):
        piecewise_nll(crf, labels)


def test_piecewise_nll_rejects_a_dense_crf():
    dense = ck.DenseCRF(torch.zeros(1, 2, 2, 2), 255 * torch.rand(1, 3, 2, 2))
    with pytest.raises(TypeError, match="crf"):
        piecewise_nll(dense, torch.zeros(1, 2, 2, dtype=torch.int64))
