"""Energies <-> probabilities, and the unary energy of a labelling, against brute force."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import crfkit as ck

shapes = st.tuples(st.integers(1, 2), st.integers(2, 4), st.integers(1, 4), st.integers(1, 4))


@settings(max_examples=40, deadline=None)
@given(shape=shapes, seed=st.integers(0, 10_000), shift=st.floats(-50, 50))
def test_probs_from_unary_matches_definition_and_is_shift_invariant(shape, seed, shift):
    gen = torch.Generator().manual_seed(seed)
    unary = 5 * torch.randn(*shape, generator=gen, dtype=torch.float64)  # [B, K, H, W]
    probs = ck.probs_from_unary(unary)
    b, k, h, w = shape
    for bi, i, j in itertools.product(range(b), range(h), range(w)):
        e = unary[bi, :, i, j]
        want = torch.exp(-e) / torch.exp(-e).sum()
        assert torch.allclose(probs[bi, :, i, j], want)
    assert torch.allclose(probs.sum(1), torch.ones(b, h, w, dtype=torch.float64))
    assert torch.allclose(ck.probs_from_unary(unary + shift), probs)


def test_round_trip_and_large_energies():
    probs = torch.softmax(torch.randn(2, 5, 3, 3, generator=torch.Generator().manual_seed(0)), 1)
    assert torch.allclose(ck.probs_from_unary(ck.unary_from_probs(probs)), probs, atol=1e-6)
    big = torch.tensor([[[[1000.0]], [[1001.0]]]])  # exp(-1000) underflows naively
    assert torch.allclose(ck.probs_from_unary(big)[0, :, 0, 0], torch.tensor([0.7311, 0.2689]), atol=1e-4)


def test_unary_from_probs_clamps_zero_probability():
    probs = torch.tensor([[[[1.0]], [[0.0]]]])
    unary = ck.unary_from_probs(probs, eps=1e-4)
    assert unary[0, 1, 0, 0].item() == pytest.approx(-torch.log(torch.tensor(1e-4)).item())
    assert unary[0, 0, 0, 0].item() == 0.0


@pytest.mark.parametrize("bad, error, match", [
    (torch.rand(3, 4, 4), ValueError, r"probs: expected a 4-D tensor of shape \[B, K, H, W\], got shape \[3, 4, 4\]"),
    (torch.ones(1, 2, 2, 2, dtype=torch.int64), TypeError, "expected a floating-point tensor, got dtype torch.int64"),
    (torch.full((1, 2, 1, 1), 0.7), ValueError, "sum to 1 over dimension 1"),
    (torch.tensor([[[[1.5]], [[-0.5]]]]), ValueError, r"expected values in \[0, 1\]"),
    (torch.tensor([[[[float("nan")]], [[0.5]]]]), ValueError, "expected finite values, got 1 NaN and 0 inf"),
    ("probs", TypeError, "expected a torch.Tensor"),
])
def test_unary_from_probs_rejects_bad_input(bad, error, match):
    with pytest.raises(error, match=match):
        ck.unary_from_probs(bad)


def test_probs_from_unary_rejects_unbatched_and_inf():
    with pytest.raises(ValueError, match=r"unary: expected a 4-D tensor"):
        ck.probs_from_unary(torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="0 NaN and 1 inf"):
        ck.probs_from_unary(torch.tensor([[[[float("inf")]], [[0.0]]]]))


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 10_000))
def test_unary_energy_matches_loops(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    b, k, h, w = shape
    unary = torch.randn(b, k, h, w, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, k, (b, h, w), generator=gen)
    keep = labels.clone()
    got = ck.unary_energy(unary, labels)
    want = torch.tensor([
        sum(unary[bi, labels[bi, i, j], i, j].item() for i in range(h) for j in range(w))
        for bi in range(b)
    ], dtype=torch.float64)
    assert got.shape == (b,)
    assert torch.allclose(got, want)
    assert torch.equal(labels, keep)


def test_unary_energy_of_zero_potentials_and_gradient():
    unary = torch.zeros(2, 3, 4, 4, requires_grad=True)
    labels = torch.zeros(2, 4, 4, dtype=torch.int64)
    energy = ck.unary_energy(unary, labels)
    assert torch.equal(energy, torch.zeros(2))
    energy.sum().backward()
    assert torch.equal(unary.grad[:, 0], torch.ones(2, 4, 4)) and unary.grad[:, 1:].abs().sum() == 0


@pytest.mark.parametrize("labels, error, match", [
    (torch.zeros(1, 2, 2, dtype=torch.int64), ValueError, r"labels: expected shape \[B, H, W\] = \[2, 3, 3\]"),
    (torch.full((2, 3, 3), 4), ValueError, r"labels: expected values in 0..3 \(K = 4\), got range \[4, 4\]"),
    (torch.full((2, 3, 3), 255), ValueError, "got range"),
    (torch.zeros(2, 3, 3, dtype=torch.int32), TypeError, "labels: expected dtype torch.int64, got torch.int32"),
])
def test_unary_energy_rejects_bad_labels(labels, error, match):
    with pytest.raises(error, match=match):
        ck.unary_energy(torch.zeros(2, 4, 3, 3), labels)
