"""Every checker of sheet 04 accepts a right answer and rejects the typical wrong ones, with a hint."""

from __future__ import annotations

import itertools
import sys

import pytest
import torch

import crfkit as ck
from crfkit import checks
from crfkit.checks import sheet04  # noqa: F401 - exercises 4.1-4.3
from crfkit.checks._common import asymmetric_table


# --- 4.1: the energy of a labelling, right and with typical slips


def energy(unary, pairwise, labels):
    """Written from the exercise text: unary of each pixel's label, right and down edges."""
    e = unary.gather(1, labels[:, None]).flatten(1).sum(1)  # [B]
    e = e + pairwise[labels[:, :, :-1], labels[:, :, 1:]].flatten(1).sum(1)  # right
    return e + pairwise[labels[:, :-1, :], labels[:, 1:, :]].flatten(1).sum(1)  # down


def _u(unary, labels):
    return unary.gather(1, labels[:, None]).flatten(1).sum(1)


def energy_right_only(u, p, y):
    return _u(u, y) + p[y[:, :, :-1], y[:, :, 1:]].flatten(1).sum(1)


def energy_down_only(u, p, y):
    return _u(u, y) + p[y[:, :-1], y[:, 1:]].flatten(1).sum(1)


def energy_transposed(u, p, y):
    return energy(u, p.T, y)


def energy_rolled(u, p, y):  # torch.roll joins the last column to the first
    return _u(u, y) + (p[y, y.roll(-1, 2)] + p[y, y.roll(-1, 1)]).flatten(1).sum(1)


def energy_rolled_backwards(u, p, y):
    return _u(u, y) + (p[y, y.roll(1, 2)] + p[y, y.roll(1, 1)]).flatten(1).sum(1)


def energy_both_ways(u, p, y):
    return energy(u, p, y) + energy(torch.zeros_like(u), p.T, y)


def energy_batch_sum(u, p, y):
    return energy(u, p, y).sum()


def energy_batch_sum_broadcast(u, p, y):
    e = energy(u, p, y)
    return e.sum().expand_as(e).clone()


def energy_all_labels(u, p, y):
    return u.sum(dim=(1, 2, 3)) + energy(torch.zeros_like(u), p, y)


def energy_wrong_label(u, p, y):  # the unary of the next label
    return _u(u, (y + 1) % u.shape[1]) + energy(torch.zeros_like(u), p, y)


def energy_minus(u, p, y):
    return -energy(u, p, y)


def energy_unary_minus_pair(u, p, y):
    return 2 * _u(u, y) - energy(u, p, y)


def energy_no_pairwise(u, p, y):
    return _u(u, y)


def energy_per_pixel(u, p, y):
    return u.gather(1, y[:, None])[:, 0]


def energy_in_place(u, p, y):
    y += 0
    u.mul_(1.0)
    labels = y.clone()
    p.add_(1.0)
    return energy(u, p - 1.0, labels)


def energy_vertical_twice(u, p, y):  # the "right" edges written with the row dimension
    return _u(u, y) + 2 * p[y[:, :-1], y[:, 1:]].flatten(1).sum(1)


def energy_with_crfkit(u, p, y):
    return ck.GridCRF(u, p).energy(y)


# --- 4.2: brute force, right and with typical slips


def brute_force(unary, pairwise):
    """Enumerate every labelling with itertools.product, in log space."""
    b, k, h, w = unary.shape
    ys = torch.tensor(list(itertools.product(range(k), repeat=h * w))).reshape(-1, h, w)  # [S, H, W]
    energies = torch.stack([energy(unary, pairwise, y.expand(b, h, w)) for y in ys], dim=1)  # [B, S]
    log_z = torch.logsumexp(-energies, dim=1)  # [B]
    p = torch.exp(-energies - log_z[:, None])  # [B, S]
    onehot = torch.nn.functional.one_hot(ys, k).to(unary.dtype)  # [S, H, W, K]
    marginals = torch.einsum("bs,shwk->bkhw", p, onehot)
    return marginals, log_z


def _enumerate(unary, pairwise):
    b, k, h, w = unary.shape
    ys = torch.tensor(list(itertools.product(range(k), repeat=h * w))).reshape(-1, h, w)
    energies = torch.stack([energy(unary, pairwise, y.expand(b, h, w)) for y in ys], dim=1)
    onehot = torch.nn.functional.one_hot(ys, k).to(unary.dtype)
    return energies, onehot


def brute_force_plus_sign(u, p):
    return brute_force(-u, -p)


def brute_force_naive(u, p):  # exp(-E) underflows for large energies
    energies, onehot = _enumerate(u, p)
    weights = torch.exp(-energies)
    z = weights.sum(1)
    return torch.einsum("bs,shwk->bkhw", weights / z[:, None], onehot), torch.log(z)


def brute_force_unnormalised(u, p):
    energies, onehot = _enumerate(u, p)
    return torch.einsum("bs,shwk->bkhw", torch.exp(-energies), onehot), torch.logsumexp(-energies, 1)


def brute_force_reshaped(u, p):  # [B, H, W, K] reshaped instead of permuted
    m, log_z = brute_force(u, p)
    return m.permute(0, 2, 3, 1).reshape(m.shape), log_z


def brute_force_sum_of_logs(u, p):
    energies, _ = _enumerate(u, p)
    return brute_force(u, p)[0], (-energies).sum(1)


def brute_force_max(u, p):
    energies, _ = _enumerate(u, p)
    return brute_force(u, p)[0], (-energies).max(1).values


def brute_force_z(u, p):
    m, log_z = brute_force(u, p)
    return m, torch.exp(log_z)


def brute_force_log_z_plus(u, p):
    energies, _ = _enumerate(u, p)
    return brute_force(u, p)[0], torch.logsumexp(energies, 1)


def brute_force_scalar_log_z(u, p):
    m, log_z = brute_force(u, p)
    return m, log_z.sum()


def brute_force_calls_exact(u, p):
    result = ck.inference.exact(ck.GridCRF(u, p))
    return result.marginals, result.log_z


def brute_force_result_object(u, p):
    return ck.inference.exact(ck.GridCRF(u, p))


def brute_force_transposed(u, p):
    return brute_force(u, p.T)


# --- 4.3: log Z of a chain, right and with typical slips


def chain_log_z(unary, pairwise, *, reduce=torch.logsumexp, table=None, sign=1.0):
    """The forward recursion in log space; the keywords reproduce the usual slips."""
    table = pairwise if table is None else table
    alpha = -sign * unary[:, :, 0]  # [B, K]
    for t in range(1, unary.shape[2]):
        alpha = -sign * unary[:, :, t] + reduce(alpha[:, :, None] - sign * table[None], dim=1)  # [B, K]
    return reduce(alpha, dim=1)


def _max(x, dim):
    return x.max(dim=dim).values


def chain_naive(unary, pairwise):  # probabilities, not logs: underflows on long chains
    alpha = torch.exp(-unary[:, :, 0])
    for t in range(1, unary.shape[2]):
        alpha = torch.exp(-unary[:, :, t]) * (alpha @ torch.exp(-pairwise))
    return torch.log(alpha.sum(1))


def chain_float32(unary, pairwise):
    return chain_log_z(unary.float(), pairwise.float()).double()


def chain_calls_forward_backward(unary, pairwise):
    return ck.inference.forward_backward(ck.GridCRF(unary[:, :, None], pairwise)).log_z


def chain_no_final_reduce(unary, pairwise):
    alpha = -unary[:, :, 0]
    for t in range(1, unary.shape[2]):
        alpha = -unary[:, :, t] + torch.logsumexp(alpha[:, :, None] - pairwise[None], dim=1)
    return alpha


def chain_off_by_one(unary, pairwise):  # forgets the first pixel's unary
    alpha = torch.zeros_like(unary[:, :, 0])
    for t in range(1, unary.shape[2]):
        alpha = -unary[:, :, t] + torch.logsumexp(alpha[:, :, None] - pairwise[None], dim=1)
    return torch.logsumexp(alpha, dim=1)


# exercise -> (right answer, [(wrong answer, words the hint must contain), ...])
CASES = {
    "4.1": (
        energy,
        [
            (energy_right_only, "only the horizontal edges"),
            (energy_down_only, "only the vertical edges"),
            (energy_transposed, "transposed"),
            (energy_rolled, "torch.roll"),
            (energy_rolled_backwards, "torch.roll"),
            (energy_both_ways, "twice"),
            (lambda u, p, y: _u(u, y) + 2 * (energy(u, p, y) - _u(u, y)), "twice"),
            (energy_batch_sum, "single number"),
            (energy_batch_sum_broadcast, "whole batch"),
            (energy_all_labels, "all labels"),
            (energy_wrong_label, "own label"),
            (energy_minus, "wrong sign"),
            (energy_unary_minus_pair, "subtracted"),
            (energy_no_pairwise, "left out the pairwise"),
            (energy_per_pixel, "per pixel"),
            (energy_in_place, "in place"),
            (energy_vertical_twice, "right and its lower neighbour"),
            (lambda u, p, y: energy(u, p, y).float().to(torch.int64), "floating-point"),
            ("not a function", "expected a function"),
        ],
    ),
    "4.2": (
        brute_force,
        [
            (brute_force_plus_sign, "exp(+E"),
            (brute_force_naive, "logsumexp"),
            (brute_force_unnormalised, "sum to Z"),
            (brute_force_reshaped, "permute"),
            (brute_force_sum_of_logs, "log of a SUM"),
            (brute_force_max, "largest term"),
            (brute_force_z, "not log Z"),
            (brute_force_log_z_plus, "exp(+E(y))"),
            (brute_force_scalar_log_z, "One log Z per image"),
            (brute_force_calls_exact, "calls crfkit.inference.exact"),
            (brute_force_result_object, "calls crfkit.inference.exact"),
            (brute_force_transposed, "off by"),
            (lambda u, p: brute_force(u, p)[0], "expected a pair"),
        ],
    ),
    "4.3": (
        chain_log_z,
        [
            (lambda u, p: chain_log_z(u, p, table=p.T), "transposed"),
            (lambda u, p: chain_log_z(u, p, sign=-1.0), "exp(+E(y))"),
            (lambda u, p: -chain_log_z(u, p), "wrong sign"),
            (lambda u, p: chain_log_z(u, p, reduce=_max), "Viterbi"),
            (lambda u, p: chain_log_z(u, torch.zeros_like(p)), "left out the pairwise"),
            (chain_naive, "underflow"),
            (chain_float32, "although short chains pass"),
            (chain_calls_forward_backward, "calls crfkit.inference"),
            (chain_no_final_reduce, "alpha of the last pixel"),
            (chain_off_by_one, "alpha_0 = -u_0"),
            (lambda u, p: chain_log_z(u, p).sum(), "One log Z per image"),
        ],
    ),
}


def test_forbidding_crfkit_restores_the_library():
    exact_module = sys.modules["crfkit.inference.exact"]  # `crfkit.inference.exact` is the function

    def library():
        return {(module.__name__, name): getattr(module, name) for module in (exact_module, ck.inference)
                for name in ("exact", "forward_backward", "viterbi", "labellings", "_chain")
                if hasattr(module, name)}

    refused = {f for number in ("4.2", "4.3") for f in checks.refusals()[number]}
    assert {ck.inference.exact, ck.inference.forward_backward, ck.inference.viterbi} <= refused
    before = library()
    with pytest.raises(checks.CheckFailed):
        checks.check("4.2", brute_force_calls_exact)
    with pytest.raises(checks.CheckFailed):
        checks.check("4.3", chain_calls_forward_backward)
    after = library()
    assert after.keys() == before.keys() and all(after[key] is before[key] for key in before)
    crf = ck.GridCRF(torch.rand(1, 2, 2, 2, dtype=torch.float64), ck.potts(2, 1.0, dtype=torch.float64))
    assert torch.isfinite(ck.inference.exact(crf).log_z).all()


def test_slips_of_4_1_are_told_apart():
    gen = torch.Generator().manual_seed(0)
    u = torch.rand(2, 3, 3, 5, generator=gen, dtype=torch.float64)
    p = asymmetric_table(3, gen)
    y = torch.randint(0, 3, (2, 3, 5), generator=gen)
    values = [energy(u, p, y)] + [v for v, _ in sheet04._energy_mistakes(u, p, y)]
    for i, a in enumerate(values):
        for b in values[i + 1:]:
            assert not torch.allclose(a, b)


def test_long_chain_of_4_3_is_beyond_probabilities():
    assert not torch.isfinite(chain_naive(50 + 20 * torch.rand(1, 4, 300, dtype=torch.float64),
                                          torch.rand(4, 4, dtype=torch.float64))).all()


@pytest.mark.parametrize("answer", [energy_with_crfkit, lambda u, p, y: energy(u, p, y).float()])
def test_4_1_accepts_crfkit_and_float32(answer):
    checks.check("4.1", answer)
