"""How the shipped segmentation checkpoints are made: one recipe for every network.

:func:`train_pretrained` runs :data:`RECIPE` for one network (what a lecture's ``RETRAIN = True``
calls); :func:`train_segmentation_models` trains, scores and saves several, and is what
``python -m crfkit.train segmentation`` runs (:mod:`crfkit.train.__main__`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from crfkit._validate import check_positive_int
from crfkit.train.loop import History, model_device
from crfkit.train.segmentation import evaluate_segmenter, fit_segmenter, scenes_tensors


@dataclass(frozen=True)
class SegmentationRecipe:
    """How the shipped segmentation checkpoints are trained (one recipe for every model).

    Attributes
    ----------
    size : int
        Side of the :class:`~crfkit.data.scenes.SyntheticScenes` images.
    n_train : int
        Training scenes: the first ``n_train`` of the train split (data seed ``data_seed``).
    steps, batch_size : int
        AdamW steps and images per step (drawn at random with replacement).
    lr, weight_decay : float
        Peak learning rate and decoupled weight decay of ``torch.optim.AdamW``.
    lr_schedule : {"poly", "constant"}
        ``"poly"``: ``lr (1 - t / steps)^0.9`` (Chen et al. 2018, Sec. 4.1).
    flip : bool
        Mirror each training image left-right with probability 1/2.
    seed : int
        Seeds the initial weights (``torch.manual_seed``) and the batches and flips.
    data_seed : int
        Seed of the synthetic data set.
    """

    size: int = 64
    n_train: int = 1000
    steps: int = 2000
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    lr_schedule: str = "poly"
    flip: bool = True
    seed: int = 0
    data_seed: int = 0


#: The recipe of the shipped checkpoints (``crfkit/weights``).
RECIPE = SegmentationRecipe()


def _override(recipe: SegmentationRecipe, steps: int | None, n_train: int | None) -> SegmentationRecipe:
    from dataclasses import replace

    if steps is not None:
        recipe = replace(recipe, steps=check_positive_int("steps", steps))
    if n_train is not None:
        recipe = replace(recipe, n_train=check_positive_int("n_train", n_train))
    return recipe


def train_pretrained(name: str, *, steps: int | None = None, device: str | torch.device | None = None,
                     progress: bool = True, recipe: SegmentationRecipe = RECIPE,
                     n_train: int | None = None) -> tuple[nn.Module, History]:
    """Train the network behind :func:`crfkit.models.pretrained` ``(name)`` exactly as shipped.

    Runs :data:`RECIPE`: seeds, data, optimiser and steps of the shipped checkpoint, then
    rounds the weights to float16 and back as the checkpoint stores them, so that on the
    machine that made the checkpoint (CPU, same torch and thread count) the result equals
    ``pretrained(name)``. About 1-3 minutes per model on two CPU cores.

    Parameters
    ----------
    name : {"fcn32s", "fcn16s", "fcn8s", "segnet", "deeplab"}
    steps : int, optional
        Override the number of steps (then it is no longer the shipped recipe).
    device : str or torch.device, optional
        Where to train (CPU by default; on a GPU the result differs in the last bits).
    progress : bool
        Show a progress bar.
    recipe : SegmentationRecipe
        Another recipe (default :data:`RECIPE`).
    n_train : int, optional
        Override the number of training scenes (for quick tests).

    Returns
    -------
    (nn.Module, History)
        The model in eval mode, float32 weights on ``device``, and the training curve.
    """
    from crfkit.models.checkpoints import build, load_state, rounded_state_dict

    recipe = _override(recipe, steps, n_train)
    images, labels = scenes_tensors("train", recipe.size, recipe.n_train, recipe.data_seed)
    torch.manual_seed(recipe.seed)
    model = build(name)
    history = fit_segmenter(
        model, images, labels, steps=recipe.steps, batch_size=recipe.batch_size, lr=recipe.lr,
        weight_decay=recipe.weight_decay, seed=recipe.seed, lr_schedule=recipe.lr_schedule,
        flip=recipe.flip, device=device, progress=progress, desc=name,
    )
    load_state(model, rounded_state_dict(model))  # what the checkpoint stores
    return model.eval(), history


def _scores_dict(scores) -> dict:
    return {
        "mean_iou": float(scores.mean_iou),
        "pixel_accuracy": float(scores.pixel_accuracy),
        "iou": [float(v) for v in scores.iou],
    }


def train_segmentation_models(names=None, *, out=None, steps: int | None = None,
                              device: str | torch.device | None = None, progress: bool = True,
                              n_train: int | None = None, n_eval: int | None = None,
                              recipe: SegmentationRecipe = RECIPE, echo=print) -> list[dict]:
    """Train, evaluate (test and val splits) and save the segmentation checkpoints.

    What ``python -m crfkit.train segmentation`` runs. Returns one row per model:
    ``name, params, steps, train_time_s, train_cpu_time_s, test_mean_iou,
    test_pixel_accuracy, val_mean_iou, path``.
    """
    import time
    from dataclasses import asdict
    from pathlib import Path

    from crfkit.data.scenes import SyntheticScenes
    from crfkit.models.checkpoints import PRETRAINED, save_checkpoint, weights_dir

    names = list(PRETRAINED) if names is None else list(names)
    for name in names:
        if name not in PRETRAINED:
            raise ValueError(f"models: expected names from {list(PRETRAINED)}, got {name!r}")
    out = weights_dir() if out is None else Path(out)
    recipe = _override(recipe, steps, n_train)
    test = scenes_tensors("test", recipe.size, n_eval, recipe.data_seed)
    val = scenes_tensors("val", recipe.size, n_eval, recipe.data_seed)
    rows = []
    for name in names:
        start, cpu_start = time.perf_counter(), time.process_time()
        model, _ = train_pretrained(name, device=device, progress=progress, recipe=recipe)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        k = SyntheticScenes.num_classes
        metrics = {"test": _scores_dict(evaluate_segmenter(model, *test, k)),
                   "val": _scores_dict(evaluate_segmenter(model, *val, k)),
                   "n_test": len(test[0]), "n_val": len(val[0])}
        path = save_checkpoint(out / f"{name}.pt", model, name=name, kwargs={}, recipe=asdict(recipe),
                               metrics=metrics, train_time_s=round(elapsed, 1),
                               train_cpu_time_s=round(cpu, 1),
                               device=str(model_device(model)), threads=torch.get_num_threads())
        rows.append(dict(name=name, params=sum(p.numel() for p in model.parameters()), steps=recipe.steps,
                         train_time_s=elapsed, train_cpu_time_s=cpu,
                         test_mean_iou=metrics["test"]["mean_iou"],
                         test_pixel_accuracy=metrics["test"]["pixel_accuracy"],
                         val_mean_iou=metrics["val"]["mean_iou"], path=str(path)))
        echo(f"{name}: {elapsed:.0f} s, test mIoU {rows[-1]['test_mean_iou']:.3f}, wrote {path}")
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows of :func:`train_segmentation_models` as a fixed-width text table."""
    head = (f"{'model':8s} {'params':>9s} {'steps':>6s} {'train time':>10s} {'CPU time':>8s} "
            f"{'test mIoU':>9s} {'pixel acc':>9s} {'val mIoU':>8s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:8s} {r['params']:>9,d} {r['steps']:>6d} {r['train_time_s']:>9.0f}s "
                     f"{r['train_cpu_time_s']:>7.0f}s {r['test_mean_iou']:>9.3f} {r['test_pixel_accuracy']:>9.3f} "
                     f"{r['val_mean_iou']:>8.3f}")
    return "\n".join(lines)
