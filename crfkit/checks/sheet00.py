"""Check cells of exercise sheet 00: unary energies and probabilities.

=========  ===========================================  ====================================
exercise   the student writes                           checked against
=========  ===========================================  ====================================
0.1        ``probs_from_unary(unary) -> [B, K, H, W]``  :func:`crfkit.probs_from_unary`
           ``p = softmax(-unary)`` over the labels      (incl. energies around 1000)
0.2        ``unary_energy(unary, labels) -> [B]``,      :func:`crfkit.unary_energy`
           ``sum_p unary[y_p]`` per image
=========  ===========================================  ====================================

Every checker makes its own random numbers with a private ``torch.Generator``, so running a
check cell does not change the random state of the notebook.
"""

from __future__ import annotations

from typing import Callable

import torch

from crfkit.checks._common import CheckFailed, call, exercise, expect_tensor, generator, unchanged
from crfkit.potentials import probs_from_unary, unary_energy


@exercise("0.1")
def check_probs_from_unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Exercise 0.1: probabilities from unary energies, ``p = softmax(-unary)`` over K."""
    n = "0.1"
    gen = generator(1)
    unary = 3 * torch.rand(2, 3, 4, 5, generator=gen, dtype=torch.float64)  # [B, K, H, W]
    keep = unary.clone()
    got = expect_tensor(n, call(n, fn, unary), (2, 3, 4, 5), "probabilities")
    unchanged(n, keep, unary, "unary")
    want = probs_from_unary(unary)
    sums = got.sum(dim=1)  # [B, H, W]
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
        other = [d for d in (0, 2, 3) if torch.allclose(got.sum(dim=d), torch.ones(1, dtype=got.dtype), atol=1e-5)]
        hint = f" Yours sum to 1 over dimension {other[0]} instead." if other else ""
        raise CheckFailed(
            f"Exercise {n}: the probabilities of a pixel must sum to 1 over the labels, "
            f"dimension 1 (K) of [B, K, H, W].{hint} Normalise with dim=1."
        )
    if torch.allclose(got, torch.softmax(unary, dim=1), atol=1e-6):
        raise CheckFailed(
            f"Exercise {n}: the most likely label must be the one with the LOWEST energy, "
            "but yours gives the highest energy the highest probability. Energies are "
            "negative log-probabilities: p is proportional to exp(-unary), mind the minus sign."
        )
    if not torch.allclose(got, want, atol=1e-6, rtol=1e-5):
        worst = float((got - want).abs().max())
        raise CheckFailed(
            f"Exercise {n}: the probabilities are off by up to {worst:.3g}. Expected "
            "p[b, k, i, j] = exp(-unary[b, k, i, j]) / sum_k' exp(-unary[b, k', i, j])."
        )
    big = unary * 400 + 1000  # energies around 1000..2200: exp(-u) underflows to 0
    got_big = expect_tensor(n, call(n, fn, big), (2, 3, 4, 5), "probabilities for large energies")
    if not torch.allclose(got_big, probs_from_unary(big), atol=1e-6):
        raise CheckFailed(
            f"Exercise {n}: correct for small energies but wrong for large ones "
            "(around 1000). exp(-1000) underflows to 0: subtract each pixel's minimum "
            "energy before exponentiating (the result does not change), or use torch.softmax."
        )


@exercise("0.2")
def check_unary_energy(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 0.2: the unary energy of a labelling, ``sum_p unary[y_p]`` per image."""
    n = "0.2"
    gen = generator(2)
    unary = torch.rand(3, 4, 5, 6, generator=gen, dtype=torch.float64)  # [B, K, H, W]
    labels = torch.randint(0, 4, (3, 5, 6), generator=gen)  # [B, H, W]
    keep_u, keep_l = unary.clone(), labels.clone()
    got = call(n, fn, unary, labels)
    unchanged(n, keep_u, unary, "unary")
    unchanged(n, keep_l, labels, "labels")
    if isinstance(got, torch.Tensor) and tuple(got.shape) == (3, 5, 6):
        raise CheckFailed(
            f"Exercise {n}: you return one energy per pixel, shape [B, H, W]. The energy "
            "of a labelling is one number per image: sum over the pixels too, giving [B]."
        )
    if isinstance(got, torch.Tensor) and got.dim() == 0:
        raise CheckFailed(
            f"Exercise {n}: you return a single number for the whole batch. Sum over the "
            "pixels of each image separately, giving shape [B]."
        )
    got = expect_tensor(n, got, (3,), "energies")
    want = unary_energy(unary, labels)
    if torch.allclose(got, unary.sum(dim=(1, 2, 3))):
        raise CheckFailed(
            f"Exercise {n}: you summed the energies of all labels. Each pixel contributes "
            "only the energy of ITS label: pick unary[b, labels[b, i, j], i, j] "
            "(torch.gather along dimension 1), then sum."
        )
    if torch.allclose(got, want / (5 * 6)):
        raise CheckFailed(
            f"Exercise {n}: you averaged over the pixels; the energy is their sum."
        )
    if not torch.allclose(got, want, atol=1e-8):
        raise CheckFailed(
            f"Exercise {n}: energies {[round(v, 4) for v in got.tolist()]} differ from the "
            f"expected {[round(v, 4) for v in want.tolist()]}. Each pixel (i, j) of image b adds "
            "unary[b, labels[b, i, j], i, j]."
        )
