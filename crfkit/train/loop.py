"""The one fit loop every objective plugs into.

A training run is four things, and :func:`fit` takes each as an argument:

* ``draw(step) -> batch``: the data of one step (sampling, augmentation, moving to the device);
* ``objective(model, batch) -> loss``: a scalar tensor to minimise (a loss from
  :mod:`crfkit.losses`, applied to the model's output);
* ``optimizer`` (and an optional learning-rate ``scheduler``, stepped after every step);
* what to record: every ``record_every`` steps the running mean of the loss, the gradient
  norms of chosen weights, and whatever ``evaluate(model)`` returns (validation scores).

One step, as the box of every SGD textbook::

    batch = draw(step)                  # data
    loss = objective(model, batch)      # forward
    check the loss is finite            # a NaN or inf stops training with a clear message
    optimizer.zero_grad(); loss.backward()
    record gradient norms               # (record steps only)
    optimizer.step(); scheduler.step()
    record loss and evaluate(model)     # (record steps only)

The loss is checked **before** the backward pass, so a diverging run stops at the step that
diverged, before a non-finite gradient reaches the weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from crfkit._validate import check_positive_int

Objective = Callable[[nn.Module, Any], torch.Tensor]
"""``objective(model, batch) -> loss``: a scalar tensor, differentiable in the model's parameters."""


@dataclass
class History:
    """What :func:`fit` (and :func:`~crfkit.train.fit_classifier`,
    :func:`~crfkit.train.fit_segmenter`) recorded.

    Attributes
    ----------
    step : list of int
        The steps at which ``train_loss`` (a running mean since the previous record) and the
        metrics were recorded.
    train_loss : list of float
        One value per recorded step.
    metrics : dict of str to list of float
        Each value ``evaluate(model)`` returned, one per recorded step (empty without
        ``evaluate``): ``"val_accuracy"`` for classifiers, ``"val_mean_iou"`` for segmenters.
    grad_norms : dict of str to list of float
        For every watched weight (by default those of the convolution and linear layers, in
        forward order), the L2 norm of its gradient at each recorded step.
    """

    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    grad_norms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def val_accuracy(self) -> list[float]:
        """Validation accuracy per recorded step (empty without validation data)."""
        return self.metrics.get("val_accuracy", [])

    @property
    def val_mean_iou(self) -> list[float]:
        """Validation mean IoU per recorded step (empty without validation data)."""
        return self.metrics.get("val_mean_iou", [])

    def mean_grad_norms(self) -> dict[str, float]:
        """Each weight's gradient norm averaged over the recorded steps."""
        return {k: sum(v) / len(v) for k, v in self.grad_norms.items() if v}


def layer_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights of the convolution and linear layers of ``model``, in registration order."""
    return {
        f"{name}.weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
    }


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (the CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def check_loss(loss: torch.Tensor, step: int, lr: float) -> None:
    """Raise ``FloatingPointError`` naming the step and the (peak) learning rate ``lr`` if
    ``loss`` is NaN or inf."""
    if not bool(torch.isfinite(loss)):
        raise FloatingPointError(f"the loss became {loss.item()} at step {step}; lower lr (now {lr})")


def fit(
    model: nn.Module,
    objective: Objective,
    draw: Callable[[int], Any],
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    record_every: int = 10,
    evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
    watch: Mapping[str, torch.Tensor] | None = None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Minimise ``objective`` over ``steps`` optimiser steps; record curves as it goes.

    Parameters
    ----------
    model : nn.Module
        Trained in place, in train mode (it is left in train mode).
    objective : callable ``(model, batch) -> Tensor``
        A scalar loss; see :data:`Objective`.
    draw : callable ``(step) -> batch``
        The batch of step ``step`` (1-based), already on the model's device.
    optimizer : torch.optim.Optimizer
        Over the parameters to train.
    steps : int
        Number of optimiser steps.
    scheduler : torch.optim.lr_scheduler.LRScheduler, optional
        Stepped once after every optimiser step.
    record_every : int
        Record every ``record_every`` steps, and at the last step.
    evaluate : callable ``(model) -> {name: float}``, optional
        Called at every record step; each value is appended to ``History.metrics[name]``.
        The model is put back in train mode afterwards.
    watch : {name: Tensor}, optional
        Weights whose gradient norm is recorded at every record step (a weight without a
        gradient records 0).
    progress : bool
        Show a tqdm progress bar (one line, updated in place) labelled ``desc``.

    Returns
    -------
    History
        Cost: ``steps`` forward and backward passes, plus ``evaluate`` at each record step.

    Raises
    ------
    FloatingPointError
        When the loss becomes NaN or inf (before its backward pass).
    """
    steps = check_positive_int("steps", steps)
    record_every = check_positive_int("record_every", record_every)
    from tqdm.auto import tqdm

    watch = dict(watch or {})
    history = History(grad_norms={name: [] for name in watch})
    model.train()
    running, count = 0.0, 0
    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False)
    for step in bar:
        record = step % record_every == 0 or step == steps
        batch = draw(step)  # data
        loss = objective(model, batch)  # forward
        check_loss(loss, step, optimizer.param_groups[0].get("initial_lr", optimizer.param_groups[0]["lr"]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # backward
        if record:
            for name, weight in watch.items():
                history.grad_norms[name].append(weight.grad.norm().item() if weight.grad is not None else 0.0)
        optimizer.step()  # update
        if scheduler is not None:
            scheduler.step()
        running, count = running + loss.item(), count + 1
        if record:
            history.step.append(step)
            history.train_loss.append(running / count)
            running, count = 0.0, 0
            postfix = {"loss": f"{history.train_loss[-1]:.3f}"}
            if evaluate is not None:
                for name, value in evaluate(model).items():
                    history.metrics.setdefault(name, []).append(float(value))
                    postfix[name] = f"{value:.3f}"
                model.train()
            bar.set_postfix(postfix)
    bar.close()
    return history
