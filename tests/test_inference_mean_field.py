"""crfkit.inference.mean_field on a GridCRF: messages, fixed points, free energy, gradients.

Oracles: a pixel-loop message (every edge sends a table row to its source and a column to
its target), the free energy of a product distribution by enumerating every labelling
(``E_Q[E] - H(Q)`` with energies from test_crf.brute_energy), and ``inference.exact``.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_crf import DT, OFFSET_POOL, brute_energy, full_tables, make_pairwise, random_model

import crfkit as ck
from crfkit.inference import exact, grid_messages, mean_field, mean_field_free_energy


pytestmark = pytest.mark.usefixtures("one_thread")


def random_q(crf, seed):
    logits = 3 * torch.randn(crf.shape, generator=torch.Generator().manual_seed(seed), dtype=DT)
    return torch.softmax(logits, 1)


def loop_messages(crf, q):
    b, k, h, w = crf.shape
    tables = full_tables(crf.pairwise, crf.shape, len(crf.offsets))
    m = torch.zeros_like(q)
    for bi, i, j in itertools.product(range(b), range(h), range(w)):
        for e, (dy, dx) in enumerate(crf.offsets):
            ii, jj = i + dy, j + dx
            if 0 <= ii < h and 0 <= jj < w:
                t = tables[bi, e, :, :, i, j]  # [k at (i, j), k' at (ii, jj)]
                m[bi, :, i, j] += t @ q[bi, :, ii, jj]  # row to the source
                m[bi, :, ii, jj] += t.T @ q[bi, :, i, j]  # column to the target
    return m


def brute_free_energy(crf, q):
    b, k, h, w = crf.shape
    out = torch.zeros(b, dtype=DT)
    for y in itertools.product(range(k), repeat=h * w):
        y = torch.tensor(y).reshape(1, h, w).expand(b, h, w)
        qy = q.gather(1, y[:, None]).flatten(1).prod(1)  # Q(y) [B]
        out += qy * (brute_energy(crf.unary, crf.pairwise, crf.offsets, y) + torch.log(qy))
    return out


@settings(max_examples=40, deadline=None)
@given(crf=random_model(max_pixels=9), seed=st.integers(0, 10_000))
def test_messages_match_pixel_loop(crf, seed):
    q = random_q(crf, seed)
    torch.testing.assert_close(grid_messages(crf, q), loop_messages(crf, q))


@settings(max_examples=25, deadline=None)
@given(crf=random_model(max_pixels=6), seed=st.integers(0, 10_000))
def test_free_energy_is_exact_and_bounds_minus_log_z(crf, seed):
    q = random_q(crf, seed)
    f = mean_field_free_energy(crf, q)
    torch.testing.assert_close(f, brute_free_energy(crf, q))
    log_z = exact(crf).log_z
    assert (f >= -log_z - 1e-9).all()
    q_mf = mean_field(crf, 20, damping=0.5)
    assert (mean_field_free_energy(crf, q_mf) >= -log_z - 1e-9).all()


@pytest.mark.parametrize("schedule", ["parallel", "checkerboard"])
@pytest.mark.parametrize("iterations", [0, 1, 7])
def test_zero_pairwise_gives_softmax(iterations, schedule):
    unary = 3 * torch.randn(2, 4, 3, 5, dtype=DT, generator=torch.Generator().manual_seed(0))
    crf = ck.GridCRF(unary, torch.zeros(2, 4, 4, dtype=DT))
    q = mean_field(crf, iterations, schedule=schedule, damping=0.3)
    torch.testing.assert_close(q, torch.softmax(-unary, 1))


@pytest.mark.parametrize("kind", ["2d", "3d", "6d"])
def test_damped_iterations_reach_a_fixed_point_of_the_mean_field_equations(kind):
    gen = torch.Generator().manual_seed(1)
    b, k, h, w = 2, 3, 4, 5
    crf = ck.GridCRF(torch.randn(b, k, h, w, dtype=DT, generator=gen), make_pairwise(kind, b, 2, k, h, w, gen, 0.3))
    q = mean_field(crf, 200, damping=0.5)
    # Q_p(k) = softmax_k(-unary_p(k) - sum_q sum_k' psi(k, k') Q_q(k')), from the pixel-loop messages
    again = torch.softmax(-crf.unary - loop_messages(crf, q), 1)
    assert (again - q).abs().max() < 1e-6
    torch.testing.assert_close(q.sum(1), torch.ones(b, h, w, dtype=DT))


@pytest.mark.parametrize("offsets", [((0, 1), (1, 0)), ((0, 1), (1, 0), (1, 1), (1, -1)), ((0, -1), (2, 1))])
def test_checkerboard_schedule_never_increases_the_free_energy(offsets):
    # Theorem: pixels of one colour share no edge, so updating a colour class is an exact
    # minimisation of F over those factors given the rest; F is non-increasing. Strong,
    # frustrated coupling (random tables of scale 3) where parallel updates oscillate.
    gen = torch.Generator().manual_seed(2)
    b, k, h, w = 2, 3, 5, 6
    crf = ck.GridCRF(torch.randn(b, k, h, w, dtype=DT, generator=gen),
                     make_pairwise("5d", b, len(offsets), k, h, w, gen, 3.0), offsets)
    _, trace = mean_field(crf, 15, history=True, schedule="checkerboard")
    f = torch.stack([mean_field_free_energy(crf, torch.softmax(-crf.unary, 1))] + [mean_field_free_energy(crf, q) for q in trace])
    assert (f[1:] <= f[:-1] + 1e-10).all()
    # the same holds for one colour class at a time: check the classes are edge-free

    masks = crf.colour_classes()
    for mask in masks:
        m = mask[0, 0]
        for dy, dx in offsets:
            (sr, sc), (dr, dc) = ck.crf.edge_slices(h, w, (dy, dx))
            assert not (m[sr, sc] & m[dr, dc]).any()


def test_damped_parallel_updates_decrease_the_free_energy_on_weak_coupling():
    # Not a theorem for parallel updates; an observed property on weak coupling (Potts 0.3,
    # damping 0.5), where the update is a contraction.
    gen = torch.Generator().manual_seed(3)
    crf = ck.GridCRF(torch.randn(2, 3, 4, 4, dtype=DT, generator=gen), ck.potts(3, 0.3, dtype=DT))
    _, trace = mean_field(crf, 30, history=True, damping=0.5)
    f = torch.stack([mean_field_free_energy(crf, q) for q in trace])
    assert (f[1:] <= f[:-1] + 1e-12).all()


def test_history_and_init():
    gen = torch.Generator().manual_seed(4)
    crf = ck.GridCRF(torch.randn(1, 2, 3, 3, dtype=DT, generator=gen), ck.potts(2, 1.0, dtype=DT))
    q, trace = mean_field(crf, 4, history=True)
    assert len(trace) == 4 and torch.equal(trace[-1], q)
    torch.testing.assert_close(mean_field(crf, 2), trace[1])
    # init: continuing from trace[1] for 2 more iterations gives the 4-iteration result
    torch.testing.assert_close(mean_field(crf, 2, init=trace[1]), q)
    q0, empty = mean_field(crf, 0, history=True)
    assert empty == [] and torch.equal(q0, torch.softmax(-crf.unary, 1))


def test_weak_coupling_is_close_to_exact():
    gen = torch.Generator().manual_seed(5)
    b, k, h, w = 2, 3, 3, 3
    crf = ck.GridCRF(torch.randn(b, k, h, w, dtype=DT, generator=gen), make_pairwise("3d", b, 2, k, h, w, gen, 0.1))
    q = mean_field(crf, 50)
    res = exact(crf)
    err = (q - res.marginals).abs().max()
    assert err < 5e-3, err
    # and it beats ignoring the pairwise altogether
    assert err < (torch.softmax(-crf.unary, 1) - res.marginals).abs().max()


@pytest.mark.parametrize("kind, schedule", [("2d", "parallel"), ("3d", "checkerboard"), ("6d", "parallel")])
def test_gradcheck(kind, schedule):
    gen = torch.Generator().manual_seed(6)
    b, k, h, w = 1, 2, 2, 3
    unary = torch.randn(b, k, h, w, dtype=DT, generator=gen).requires_grad_(True)
    pairwise = make_pairwise(kind, b, 2, k, h, w, gen).requires_grad_(True)

    def fn(u, p):
        return mean_field(ck.GridCRF(u, p), 3, damping=0.2, schedule=schedule)

    assert torch.autograd.gradcheck(fn, (unary, pairwise))
    f = lambda u, p: mean_field_free_energy(ck.GridCRF(u, p), torch.softmax(-u, 1))  # noqa: E731
    assert torch.autograd.gradcheck(f, (unary, pairwise))


def test_errors():
    crf = ck.GridCRF(torch.zeros(1, 2, 3, 3), ck.potts(2))
    with pytest.raises(TypeError, match=r"model: mean_field expects a crfkit.GridCRF or crfkit.DenseCRF, got Tensor"):
        mean_field(torch.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match="iterations: expected a non-negative int, got -1"):
        mean_field(crf, -1)
    with pytest.raises(ValueError, match=r"damping: expected a finite number in \[0, 1\), got 1.0"):
        mean_field(crf, damping=1.0)
    with pytest.raises(ValueError, match="schedule: expected one of"):
        mean_field(crf, schedule="random")
    with pytest.raises(ValueError, match=r"init: expected shape \[B, K, H, W\] = \[1, 2, 3, 3\], got \[1, 3, 3, 3\]"):
        mean_field(crf, init=torch.full((1, 3, 3, 3), 1 / 3))
    with pytest.raises(ValueError, match="init: expected probabilities that sum to 1"):
        mean_field(crf, init=torch.ones(1, 2, 3, 3))
    with pytest.raises(TypeError, match="init: expected dtype torch.float32"):
        mean_field(crf, init=torch.full((1, 2, 3, 3), 0.5, dtype=DT))
    with pytest.raises(ValueError, match="q: expected probabilities >= 0"):
        mean_field_free_energy(crf, torch.tensor([2.0, -1.0]).reshape(1, 2, 1, 1).expand(1, 2, 3, 3))
    with pytest.raises(TypeError, match="mean_field_free_energy expects a crfkit.GridCRF"):
        mean_field_free_energy(None, torch.zeros(1))


def test_offset_pool_is_covered():
    # the Hypothesis models above draw negative, diagonal and long offsets
    assert {(0, -1), (1, -1), (0, 2)} <= set(OFFSET_POOL)


def test_a_bool_or_float_iteration_count_is_a_type_error():
    crf = ck.GridCRF(torch.zeros(1, 2, 3, 3), ck.potts(2))
    with pytest.raises(TypeError, match="iterations: expected a non-negative int, got bool True"):
        mean_field(crf, True)
    with pytest.raises(TypeError, match="iterations: expected a non-negative int, got float 2.0"):
        mean_field(crf, 2.0)
    with pytest.raises(TypeError, match="damping: expected a finite number in \\[0, 1\\), got str"):
        mean_field(crf, damping="0.5")
