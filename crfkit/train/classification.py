"""Training classifiers: mini-batch SGD with momentum and cross-entropy (lecture 01).

:func:`fit_classifier` records, besides the loss and accuracy curves, the gradient norm of every
layer's weights, which shows in the degradation experiment of He et al. (2016) whether gradients
reach the first layers of a deep plain network.

References
----------
K. He, X. Zhang, S. Ren, J. Sun. Deep Residual Learning for Image Recognition. CVPR 2016.
"""

from __future__ import annotations

import torch
from torch import nn

from crfkit._validate import check_finite, check_positive_int, check_tensor
from crfkit.losses import cross_entropy
from crfkit.train.loop import History, fit, layer_weights


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, batch_size: int = 512) -> float:
    """Share of ``images`` ``[N, C, H, W]`` whose arg-max score equals ``targets`` ``[N]``.

    The model is put in eval mode for the evaluation and restored afterwards.
    """
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        scores = model(images[start : start + batch_size])  # [n, num_classes]
        correct += int((scores.argmax(1) == targets[start : start + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(images), 1)


def fit_classifier(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    steps: int = 200,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    record_every: int = 10,
    generator: torch.Generator | None = None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` with mini-batch SGD and cross-entropy; record curves and gradient norms.

    Parameters
    ----------
    model : nn.Module
        Maps ``[n, C, H, W]`` to scores ``[n, num_classes]``; trained in place.
    images : Tensor of shape ``[N, C, H, W]``, float
    targets : Tensor of shape ``[N]``, int64
        Class indices.
    steps : int
        Number of SGD steps; each draws a batch of ``batch_size`` examples at random.
    lr, momentum, weight_decay : float
        Parameters of ``torch.optim.SGD``.
    val : (images, targets), optional
        Validation data; its accuracy is recorded every ``record_every`` steps.
    record_every : int
        How often to record the loss, the accuracy and the gradient norms.
    generator : torch.Generator, optional
        Draws the batches, for reproducible runs.
    progress : bool
        Show a tqdm progress bar (one line, updated in place).

    Returns
    -------
    History
        ``step``, ``train_loss``, ``val_accuracy`` (with ``val``) and the ``grad_norms`` of
        :func:`~crfkit.train.loop.layer_weights`. Cost: ``steps`` forward and backward passes
        of a batch.

    Raises
    ------
    TypeError, ValueError
        On wrong shapes or dtypes, NaN/inf in ``images``, or non-positive counts.
    FloatingPointError
        When the loss becomes NaN or inf.
    """
    check_tensor("images", images, ndim=4, floating=True, dims="[N, C, H, W]")
    check_finite("images", images)
    check_tensor("targets", targets, ndim=1, dtype=torch.int64, dims="[N]")
    if len(targets) != len(images):
        raise ValueError(f"targets: expected {len(images)} entries (one per image), got {len(targets)}")
    batch_size = check_positive_int("batch_size", batch_size)

    def draw(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(0, len(images), (batch_size,), generator=generator)  # [n]
        return images[index], targets[index]  # [n, C, H, W], [n]

    def objective(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return cross_entropy(model(x), y, ignore_index=None)  # scores [n, num_classes]

    def evaluate(model: nn.Module) -> dict[str, float]:
        return {"val_accuracy": accuracy(model, *val)}

    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    return fit(model, objective, draw, optimizer, steps=steps, record_every=record_every,
               evaluate=evaluate if val is not None else None, watch=layer_weights(model),
               progress=progress, desc=desc)
