"""Training: one fit loop every objective plugs into, and the recipes built on it.

* :mod:`crfkit.train.loop`: :func:`fit` (draw a batch, evaluate an objective, check the loss
  is finite, step the optimiser, record) and its :class:`History`;
* :mod:`crfkit.train.classification`: :func:`fit_classifier` (SGD, cross-entropy, gradient
  norms per layer; lecture 01);
* :mod:`crfkit.train.segmentation`: :func:`fit_segmenter` (AdamW, per-pixel cross-entropy,
  poly schedule, flips), :func:`predict`, :func:`evaluate_segmenter`, :func:`scenes_tensors`;
* :mod:`crfkit.train.recipes`: :data:`RECIPE` and :func:`train_pretrained`, which make the
  shipped checkpoints, run from the command line by ``python -m crfkit.train segmentation``
  (``crfkit/train/__main__.py``).

A new objective (a CRF loss from :mod:`crfkit.losses`) needs no new loop: write
``objective(model, batch) -> loss`` and ``draw(step) -> batch`` and call :func:`fit`.
"""

from crfkit.train.classification import accuracy, fit_classifier
from crfkit.train.loop import History, Objective, check_loss, fit, layer_weights, model_device
from crfkit.train.recipes import RECIPE, SegmentationRecipe, train_pretrained, train_segmentation_models
from crfkit.train.segmentation import evaluate_segmenter, fit_segmenter, predict, scenes_tensors, segmentation_batches

__all__ = [
    "History", "Objective", "fit", "check_loss", "layer_weights", "model_device",
    "accuracy", "fit_classifier",
    "fit_segmenter", "predict", "evaluate_segmenter", "scenes_tensors", "segmentation_batches",
    "SegmentationRecipe", "RECIPE", "train_pretrained", "train_segmentation_models",
]
