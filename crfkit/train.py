"""Small training loops for the lectures: a classifier on tensors, with a progress bar.

The loops are deliberately plain (mini-batch SGD with momentum, cross-entropy) so a
lecture can show them and talk about what they record: the loss and accuracy curves
and, for the degradation experiment of He et al. (2016), the gradient norm of every
layer's weights, which shows whether gradients reach the first layers of a deep net.

References
----------
K. He, X. Zhang, S. Ren, J. Sun. Deep Residual Learning for Image Recognition. CVPR 2016.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from crfkit._validate import check_finite, check_tensor


@dataclass
class History:
    """What :func:`fit_classifier` recorded.

    Attributes
    ----------
    step : list of int
        The steps at which ``train_loss`` (a running mean since the previous record)
        and ``val_accuracy`` were recorded.
    train_loss, val_accuracy : list of float
        One value per recorded step (``val_accuracy`` is empty without validation data).
    grad_norms : dict of str to list of float
        For every weight of a convolution or linear layer, in forward order, the
        L2 norm of its gradient at each recorded step.
    """

    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)

    def mean_grad_norms(self) -> dict[str, float]:
        """Each layer's gradient norm averaged over the recorded steps."""
        return {k: sum(v) / len(v) for k, v in self.grad_norms.items() if v}


def layer_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights of the convolution and linear layers of ``model``, in registration order."""
    return {
        f"{name}.weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
    }


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
        Cost: ``steps`` forward and backward passes of a batch.

    Raises
    ------
    TypeError, ValueError
        On wrong shapes or dtypes, NaN/inf in ``images``, or non-positive counts.
    """
    check_tensor("images", images, ndim=4, floating=True, dims="[N, C, H, W]")
    check_finite("images", images)
    check_tensor("targets", targets, ndim=1, dtype=torch.int64, dims="[N]")
    if len(targets) != len(images):
        raise ValueError(f"targets: expected {len(images)} entries (one per image), got {len(targets)}")
    for name, value in (("steps", steps), ("batch_size", batch_size), ("record_every", record_every)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}")
    from tqdm.auto import tqdm

    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    weights = layer_weights(model)
    history = History(grad_norms={name: [] for name in weights})
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    running, count = 0.0, 0
    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False)
    for step in bar:
        index = torch.randint(0, len(images), (batch_size,), generator=generator)
        loss = loss_fn(model(images[index]), targets[index])  # forward: scores [n, classes]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss.item()} at step {step}; lower lr (now {lr})")
        if step % record_every == 0 or step == steps:
            for name, weight in weights.items():
                norm = weight.grad.norm().item() if weight.grad is not None else 0.0
                history.grad_norms[name].append(norm)
        optimizer.step()
        running, count = running + loss.item(), count + 1
        if step % record_every == 0 or step == steps:
            history.step.append(step)
            history.train_loss.append(running / count)
            running, count = 0.0, 0
            if val is not None:
                history.val_accuracy.append(accuracy(model, *val))
                bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}", val_acc=f"{history.val_accuracy[-1]:.3f}")
            else:
                bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}")
    bar.close()
    return history
