"""crfkit.inference.exact / forward_backward / viterbi against an itertools.product brute force.

The oracle enumerates labellings with ``itertools.product`` and scores them with the pixel
loop ``brute_energy`` of test_crf.py (not with ``GridCRF.energy``), then normalises in float64.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_crf import DT, brute_energy, make_pairwise, random_model  # tests/ is on sys.path under pytest

import crfkit as ck
from crfkit.inference import exact, forward_backward, viterbi


pytestmark = pytest.mark.usefixtures("one_thread")


def brute_force(crf):
    """(marginals [B, K, H, W], log_z [B], energies [B, S], labellings [S, H, W]) by enumeration."""
    b, k, h, w = crf.shape
    ys = torch.tensor(list(itertools.product(range(k), repeat=h * w))).reshape(-1, h, w)  # [S, H, W]
    energies = torch.stack(
        [brute_energy(crf.unary.detach(), crf.pairwise.detach(), crf.offsets, y.expand(b, h, w)) for y in ys], 1
    )  # [B, S]
    log_z = torch.logsumexp(-energies, 1)
    prob = torch.exp(-energies - log_z[:, None])  # [B, S]
    onehot = torch.nn.functional.one_hot(ys, k).permute(0, 3, 1, 2).to(DT)  # [S, K, H, W]
    marginals = torch.einsum("bs,skhw->bkhw", prob, onehot)
    return marginals, log_z, energies, ys


@settings(max_examples=40, deadline=None)
@given(crf=random_model(max_pixels=6))
def test_exact_matches_brute_force(crf):
    res = exact(crf)
    marginals, log_z, energies, ys = brute_force(crf)
    torch.testing.assert_close(res.marginals, marginals)
    torch.testing.assert_close(res.log_z, log_z)
    torch.testing.assert_close(res.marginals.sum(1), torch.ones_like(log_z)[:, None, None].expand(-1, *crf.shape[2:]))
    # the MAP energy is the minimum, and the MAP is the first minimiser in itertools.product order
    torch.testing.assert_close(res.map_energy, energies.min(1).values)
    assert torch.equal(res.map, ys[energies.argmin(1)])
    torch.testing.assert_close(crf.energy(res.map), res.map_energy)
    assert res.map.dtype == torch.int64 and res.map.shape == (crf.shape[0], *crf.shape[2:])


def test_exact_small_chunks_agree_with_one_chunk():
    gen = torch.Generator().manual_seed(0)
    crf = ck.GridCRF(torch.randn(2, 3, 2, 3, dtype=DT, generator=gen), torch.randn(2, 3, 3, dtype=DT, generator=gen))
    a, b = exact(crf), exact(crf, chunk_size=7)
    for name in ("marginals", "log_z", "map", "map_energy"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name))


def test_map_ties_go_to_the_first_labelling():
    crf = ck.GridCRF(torch.zeros(1, 3, 1, 2, dtype=DT), torch.zeros(3, 3, dtype=DT))
    assert exact(crf).map.tolist() == [[[0, 0]]]
    # with Potts, all three constant labellings tie at 0: (0, 0) comes first
    crf = ck.GridCRF(torch.zeros(1, 3, 1, 2, dtype=DT), ck.potts(3, 1.0, dtype=DT))
    assert exact(crf).map.tolist() == [[[0, 0]]]
    unary = torch.zeros(1, 3, 1, 2, dtype=DT)
    unary[0, 0] = 1.0  # label 0 costs 1 everywhere: (1, 1) is the first minimiser
    assert exact(ck.GridCRF(unary, ck.potts(3, 1.0, dtype=DT))).map.tolist() == [[[1, 1]]]


@settings(max_examples=20, deadline=None)
@given(crf=random_model(max_pixels=6), c=st.floats(-30, 30))
def test_shift_invariance(crf, c):
    res = exact(crf)
    n = crf.shape[2] * crf.shape[3]
    shifted = exact(ck.GridCRF(crf.unary + c, crf.pairwise, crf.offsets))
    torch.testing.assert_close(shifted.marginals, res.marginals)
    torch.testing.assert_close(shifted.log_z, res.log_z - n * c)
    assert torch.equal(shifted.map, res.map)
    # a per-pixel shift: log Z moves by the sum of the shifts
    per_pixel = torch.linspace(-3, 3, n, dtype=DT).reshape(1, 1, *crf.shape[2:])
    moved = exact(ck.GridCRF(crf.unary + per_pixel, crf.pairwise, crf.offsets))
    torch.testing.assert_close(moved.marginals, res.marginals)
    torch.testing.assert_close(moved.log_z, res.log_z - per_pixel.sum())
    # a constant added to every pairwise table: log Z moves by (#edges) * c
    if crf.pairwise.dim() <= 3:
        moved = exact(ck.GridCRF(crf.unary, crf.pairwise + c, crf.offsets))
        torch.testing.assert_close(moved.marginals, res.marginals)
        torch.testing.assert_close(moved.log_z, res.log_z - crf.num_edges() * c)


@pytest.mark.parametrize("b, k, h, w", [(1, 2, 1, 1), (2, 3, 2, 2), (1, 2, 3, 4)])
def test_zero_potentials(b, k, h, w):
    res = exact(ck.GridCRF(torch.zeros(b, k, h, w, dtype=DT), torch.zeros(k, k, dtype=DT)))
    torch.testing.assert_close(res.log_z, torch.full((b,), h * w * math.log(k), dtype=DT))
    torch.testing.assert_close(res.marginals, torch.full((b, k, h, w), 1 / k, dtype=DT))
    assert torch.equal(res.map_energy, torch.zeros(b, dtype=DT))


@pytest.mark.parametrize("kind", ["2d", "3d", "6d"])
def test_log_z_gradient_is_minus_marginals(kind):
    gen = torch.Generator().manual_seed(3)
    b, k, h, w = 2, 2, 2, 3
    unary = torch.randn(b, k, h, w, dtype=DT, generator=gen).requires_grad_(True)
    pairwise = make_pairwise(kind, b, 2, k, h, w, gen).requires_grad_(True)
    res = exact(ck.GridCRF(unary, pairwise))
    (grad_u,) = torch.autograd.grad(res.log_z.sum(), unary)
    torch.testing.assert_close(grad_u, -res.marginals.detach())
    # gradcheck through the enumeration, w.r.t. both potentials
    u, p = unary.detach()[:1, :, :, :2].clone(), pairwise.detach()
    p = p[:1, :, :, :, :, :2].clone() if kind == "6d" else p.clone()
    assert torch.autograd.gradcheck(
        lambda u, p: exact(ck.GridCRF(u, p)).log_z, (u.requires_grad_(True), p.requires_grad_(True))
    )


def test_refuses_large_graphs():
    crf = ck.GridCRF(torch.zeros(1, 3, 4, 4), ck.potts(3))
    with pytest.raises(ValueError, match=r"K\^\(H\*W\) = 3\^\(4\*4\) = 43046721 labellings, more than max_states = 1048576"):
        exact(crf)
    chain = ck.GridCRF(torch.zeros(1, 3, 1, 30), ck.potts(3))
    with pytest.raises(ValueError, match=r"forward_backward\(crf\) and viterbi\(crf\)"):
        exact(chain)
    with pytest.raises(ValueError, match="max_states = 8"):
        exact(ck.GridCRF(torch.zeros(1, 3, 1, 2), ck.potts(3)), max_states=8)
    assert exact(ck.GridCRF(torch.zeros(1, 3, 1, 2), ck.potts(3)), max_states=9).log_z.shape == (1,)
    with pytest.raises(TypeError, match="exact expects a crfkit.GridCRF, got Tensor"):
        exact(torch.zeros(1, 3, 1, 2))


# -- chains ----------------------------------------------------------------------------------


@st.composite
def chains(draw, max_len=8):
    b, k = draw(st.integers(1, 2)), draw(st.integers(2, 3))
    length = draw(st.integers(1, max_len))
    vertical = draw(st.booleans())
    h, w = (length, 1) if vertical else (1, length)
    step = (1, 0) if vertical else (0, 1)
    back = (-step[0], -step[1])
    off_grid = (0, 1) if vertical else (1, 0)  # present in the model, but no edge on the grid
    offsets = draw(st.sampled_from([(step,), (back,), (step, off_grid), (off_grid, back), (step, back)]))
    kind = draw(st.sampled_from(["2d", "3d", "5d", "6d"]))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    unary = 2 * torch.randn(b, k, h, w, dtype=DT, generator=gen)
    return ck.GridCRF(unary, make_pairwise(kind, b, len(offsets), k, h, w, gen, scale=2.0), offsets)


@settings(max_examples=40, deadline=None)
@given(crf=chains())
def test_forward_backward_and_viterbi_equal_exact(crf):
    want = exact(crf)
    fb = forward_backward(crf)
    torch.testing.assert_close(fb.marginals, want.marginals)
    torch.testing.assert_close(fb.log_z, want.log_z)
    vit = viterbi(crf)
    torch.testing.assert_close(vit.map_energy, want.map_energy)
    torch.testing.assert_close(crf.energy(vit.map), want.map_energy)
    assert torch.equal(vit.map, want.map)  # continuous random potentials: the minimiser is unique


def test_long_chain_is_stable_and_consistent():
    gen = torch.Generator().manual_seed(4)
    b, k, w = 2, 4, 200
    unary = 50 * torch.randn(b, k, 1, w, generator=gen)  # float32, large energies
    crf = ck.GridCRF(unary, 20 * torch.randn(b, 1, k, k, 1, w, generator=gen))
    fb = forward_backward(crf)
    assert torch.isfinite(fb.marginals).all() and torch.isfinite(fb.log_z).all()
    torch.testing.assert_close(fb.marginals.sum(1), torch.ones(b, 1, w))
    vit = viterbi(crf)
    torch.testing.assert_close(crf.energy(vit.map), vit.map_energy)
    assert (-fb.log_z <= vit.map_energy + 1e-3 * vit.map_energy.abs()).all()  # -log Z <= min E
    # a single-pixel "chain"
    one = forward_backward(ck.GridCRF(unary[:, :, :, :1], ck.potts(k)))
    torch.testing.assert_close(one.marginals, torch.softmax(-unary[:, :, :, :1], 1))


def test_forward_backward_log_z_gradient_is_minus_marginals():
    gen = torch.Generator().manual_seed(5)
    unary = torch.randn(2, 3, 1, 9, dtype=DT, generator=gen).requires_grad_(True)
    fb = forward_backward(ck.GridCRF(unary, torch.randn(1, 3, 3, dtype=DT, generator=gen), offsets=((0, -1),)))
    (grad,) = torch.autograd.grad(fb.log_z.sum(), unary)
    torch.testing.assert_close(grad, -fb.marginals.detach())


def test_chain_errors():
    with pytest.raises(ValueError, match=r"forward_backward needs a chain, a 1 x W or H x 1 grid, got H x W = 2 x 3"):
        forward_backward(ck.GridCRF(torch.zeros(1, 2, 2, 3), ck.potts(2)))
    with pytest.raises(ValueError, match=r"viterbi needs a chain.*offset \(0, 2\)"):
        viterbi(ck.GridCRF(torch.zeros(1, 2, 1, 5), ck.potts(2), offsets=((0, 1), (0, 2))))
    # an H x 1 chain: (1, 1) has no edge on the grid (ignored), (2, 0) skips a pixel
    with pytest.raises(ValueError, match=r"offset \(2, 0\) joins other pixels of this 5 x 1 grid"):
        viterbi(ck.GridCRF(torch.zeros(1, 2, 5, 1), ck.potts(2), offsets=((1, 1), (2, 0))))
    with pytest.raises(TypeError, match="viterbi expects a crfkit.GridCRF"):
        viterbi("chain")
