"""Conversions between probabilities and energies, at the edge of crfkit.

crfkit works with **energies** everywhere (see the conventions in :mod:`crfkit`): a unary potential
is ``unary[b, k, i, j] = -log p(y_ij = k | x)``, lower meaning more likely. Networks
output probabilities (or logits); these two functions are the named border crossing:

.. math::

    \\psi_u(k) = -\\log p(k), \\qquad p(k) = \\frac{\\exp(-\\psi_u(k))}{\\sum_{k'} \\exp(-\\psi_u(k'))}

Both work on ``[B, K, H, W]`` tensors, any device, and are differentiable.
"""

from __future__ import annotations

import torch

from crfkit._validate import check_finite, check_tensor


def probs_from_unary(unary: torch.Tensor) -> torch.Tensor:
    """Probabilities from unary energies: a softmax of ``-unary`` over labels.

    Parameters
    ----------
    unary : Tensor of shape ``[B, K, H, W]``, float
        Unary energies (lower = more likely).

    Returns
    -------
    Tensor of shape ``[B, K, H, W]``
        ``p[b, :, i, j] = softmax(-unary[b, :, i, j])``; sums to 1 over ``K``.
        Adding a constant to all ``K`` energies of a pixel leaves it unchanged.

    Raises
    ------
    TypeError, ValueError
        If ``unary`` is not a 4-D floating tensor, or holds NaN/inf.
    """
    check_tensor("unary", unary, ndim=4, floating=True, dims="[B, K, H, W]")
    check_finite("unary", unary)
    return torch.softmax(-unary, dim=1)


def unary_from_probs(probs: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Unary energies from probabilities: ``-log(max(p, eps))``.

    Parameters
    ----------
    probs : Tensor of shape ``[B, K, H, W]``, float
        Per-pixel class probabilities in ``[0, 1]`` that sum to 1 over ``K``
        (a network's softmax output).
    eps : float
        Probabilities below ``eps`` are raised to it, so that a zero probability
        gives the large but finite energy ``-log(eps)`` instead of ``inf``.

    Returns
    -------
    Tensor of shape ``[B, K, H, W]``
        ``unary = -log(p)``, non-negative.

    Raises
    ------
    TypeError, ValueError
        If ``probs`` is not a 4-D floating tensor with values in ``[0, 1]`` that sum
        to 1 over dimension 1, or if ``eps`` is not in ``(0, 1)``.
    """
    check_tensor("probs", probs, ndim=4, floating=True, dims="[B, K, H, W]")
    check_finite("probs", probs)
    if not 0.0 < float(eps) < 1.0:
        raise ValueError(f"eps: expected a value in (0, 1), got {eps}")
    lo, hi = float(probs.min()), float(probs.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"probs: expected values in [0, 1], got range [{lo:.4g}, {hi:.4g}]")
    total = probs.sum(dim=1)
    tol = 1e-3 if probs.dtype in (torch.float16, torch.bfloat16) else 1e-4
    worst = float((total - 1).abs().max())
    if worst > tol:
        raise ValueError(
            "probs: expected probabilities that sum to 1 over dimension 1 (K), "
            f"but a pixel's sum is off by {worst:.3g}; did you pass logits instead of a softmax?"
        )
    return -torch.log(probs.clamp_min(eps))


def unary_energy(unary: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The unary part of the energy of a labelling: ``sum_p unary[y_p]`` per image.

    Parameters
    ----------
    unary : Tensor of shape ``[B, K, H, W]``, float
        Unary energies.
    labels : Tensor of shape ``[B, H, W]``, int64
        One label in ``0..K-1`` per pixel (no ignore value: every pixel counts).

    Returns
    -------
    Tensor of shape ``[B]``
        ``E_u(y)[b] = sum_{i,j} unary[b, labels[b, i, j], i, j]``; differentiable in
        ``unary``. Cost O(B·H·W).

    Raises
    ------
    TypeError, ValueError
        On a wrong shape or dtype, NaN/inf in ``unary``, or labels outside ``0..K-1``.
    """
    check_tensor("unary", unary, ndim=4, floating=True, dims="[B, K, H, W]")
    check_finite("unary", unary)
    check_tensor("labels", labels, ndim=3, dtype=torch.int64, dims="[B, H, W]")
    b, k, h, w = unary.shape
    if tuple(labels.shape) != (b, h, w):
        raise ValueError(
            f"labels: expected shape [B, H, W] = {[b, h, w]} to match unary "
            f"{list(unary.shape)}, got {list(labels.shape)}"
        )
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(
            f"labels: expected values in 0..{k - 1} (K = {k}), got range "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    picked = unary.gather(1, labels.unsqueeze(1))  # [B, 1, H, W]
    return picked.flatten(1).sum(dim=1)  # [B]
