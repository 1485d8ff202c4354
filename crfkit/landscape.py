"""Two-dimensional slices of a loss landscape with filter-normalised directions.

Li et al. (2018) draw the loss around trained weights :math:`\\theta^*` on the plane

.. math::

    f(\\alpha, \\beta) = L(\\theta^* + \\alpha\\, \\delta + \\beta\\, \\eta),

where :math:`\\delta, \\eta` are random Gaussian directions, **filter-normalised**:
each filter :math:`d_{i}` of a direction (one output channel of a convolution, one
row of a linear layer) is rescaled to the norm of the corresponding filter of the
weights, :math:`d_i \\leftarrow d_i \\, \\lVert\\theta_i\\rVert / \\lVert d_i\\rVert`.
That removes the scale invariance of ReLU networks with batch norm, so slices of
different networks can be compared. Biases and batch-norm parameters get a zero
direction, as in the paper.

References
----------
H. Li, Z. Xu, G. Taylor, C. Studer, T. Goldstein. Visualizing the Loss Landscape of
Neural Nets. NeurIPS 2018. https://arxiv.org/abs/1712.09913
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def filter_normalized_direction(
    model: nn.Module, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """A random direction in parameter space, filter-normalised to ``model``'s weights.

    Parameters
    ----------
    model : nn.Module
    generator : torch.Generator, optional
        For reproducible directions.

    Returns
    -------
    list of Tensor
        One tensor per parameter of ``model`` (same shapes, order of
        ``model.parameters()``): for parameters with 2 or more dimensions, Gaussian
        noise whose every filter (slice along dimension 0) has the norm of the
        weight's filter; zeros for biases and normalisation parameters.
    """
    direction = []
    for param in model.parameters():
        if param.dim() <= 1:
            direction.append(torch.zeros_like(param))
            continue
        d = torch.randn(param.shape, generator=generator, dtype=param.dtype).to(param.device)
        d_norm = d.flatten(1).norm(dim=1).clamp_min(1e-12)  # [filters]
        w_norm = param.detach().flatten(1).norm(dim=1)  # [filters]
        d = d * (w_norm / d_norm).view(-1, *([1] * (param.dim() - 1)))
        direction.append(d)
    return direction


@torch.no_grad()
def loss_surface(
    model: nn.Module,
    loss_fn: Callable[[nn.Module], torch.Tensor],
    span: float = 1.0,
    steps: int = 21,
    generator: torch.Generator | None = None,
    directions: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss on a 2-D plane through the weights of ``model`` (Li et al. 2018).

    Parameters
    ----------
    model : nn.Module
        Evaluated in eval mode at ``theta + a * delta + b * eta``; its weights and
        mode are restored afterwards.
    loss_fn : callable
        ``loss_fn(model) -> scalar tensor``, e.g. the cross-entropy on a fixed batch.
    span : float
        ``a`` and ``b`` range over ``[-span, span]``.
    steps : int
        Grid points per axis (odd, so that the centre is the trained weights).
    generator : torch.Generator, optional
        Draws the two directions.
    directions : (delta, eta), optional
        Use these directions instead of drawing new ones.

    Returns
    -------
    coords : Tensor of shape ``[steps]``
        The values of ``a`` (and ``b``).
    losses : Tensor of shape ``[steps, steps]``
        ``losses[i, j] = L(theta + coords[j] * delta + coords[i] * eta)``.
        Cost: ``steps**2`` evaluations of ``loss_fn``.
    """
    if not isinstance(steps, int) or steps < 3 or steps % 2 == 0:
        raise ValueError(f"steps: expected an odd int >= 3 (the centre is the model), got {steps!r}")
    if not span > 0:
        raise ValueError(f"span: expected a positive number, got {span!r}")
    params = list(model.parameters())
    if directions is None:
        directions = (
            filter_normalized_direction(model, generator),
            filter_normalized_direction(model, generator),
        )
    delta, eta = directions
    if len(delta) != len(params) or len(eta) != len(params):
        raise ValueError(
            f"directions: expected {len(params)} tensors each (one per parameter), "
            f"got {len(delta)} and {len(eta)}"
        )
    original = [p.detach().clone() for p in params]
    was_training = model.training
    model.eval()
    coords = torch.linspace(-span, span, steps)
    losses = torch.empty(steps, steps)
    try:
        for i, b in enumerate(coords.tolist()):
            for j, a in enumerate(coords.tolist()):
                for p, w, d, e in zip(params, original, delta, eta):
                    p.copy_(w + a * d + b * e)
                losses[i, j] = float(loss_fn(model))
    finally:
        for p, w in zip(params, original):
            p.copy_(w)
        model.train(was_training)
    return coords, losses
