"""Small training loops for the lectures: classifiers and segmentation networks on tensors.

The loops are deliberately plain so a lecture can show them and talk about what they
record:

* :func:`fit_classifier`: mini-batch SGD with momentum and cross-entropy; the loss and
  accuracy curves and, for the degradation experiment of He et al. (2016), the gradient
  norm of every layer's weights, which shows whether gradients reach the first layers;
* :func:`fit_segmenter`: AdamW and the per-pixel cross-entropy of FCN (Long et al. 2015,
  Sec. 3), ``loss = -(1/|P|) sum_{p in P} log softmax(scores[:, p])[y_p]`` over the
  non-ignored pixels ``P`` of a batch; :func:`predict` and :func:`evaluate_segmenter`
  (mean IoU and pixel accuracy of one confusion matrix over the whole data set).

The shipped segmentation checkpoints (:func:`crfkit.models.pretrained`) come from
:func:`train_pretrained`, one recipe (:data:`RECIPE`) for every network, run by the
command line::

    python -m crfkit.train segmentation [--models fcn32s fcn8s ...] [--out DIR]
                                        [--steps N] [--device D]

which trains, scores the test and val splits with the float16-rounded weights, prints a
table (model, parameters, steps, train time, test mIoU, pixel accuracy) and writes
``<name>.pt`` into ``crfkit/weights`` (or ``--out``).

References
----------
K. He, X. Zhang, S. Ren, J. Sun. Deep Residual Learning for Image Recognition. CVPR 2016.
J. Long, E. Shelhamer, T. Darrell. Fully convolutional networks for semantic segmentation.
CVPR 2015.
L.-C. Chen, G. Papandreou, I. Kokkinos, K. Murphy, A. L. Yuille. DeepLab. TPAMI 2018
(the "poly" learning-rate schedule, Sec. 4.1).
I. Loshchilov, F. Hutter. Decoupled weight decay regularization (AdamW). ICLR 2019.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from crfkit._validate import check_finite, check_positive_int, check_tensor


@dataclass
class History:
    """What :func:`fit_classifier` or :func:`fit_segmenter` recorded.

    Attributes
    ----------
    step : list of int
        The steps at which ``train_loss`` (a running mean since the previous record)
        and ``val_accuracy`` were recorded.
    train_loss, val_accuracy : list of float
        One value per recorded step (``val_accuracy`` is empty without validation data).
    val_mean_iou : list of float
        Validation mean IoU per recorded step (:func:`fit_segmenter` with ``val``).
    grad_norms : dict of str to list of float
        For every weight of a convolution or linear layer, in forward order, the
        L2 norm of its gradient at each recorded step.
    """

    step: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    val_mean_iou: list[float] = field(default_factory=list)
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


# --------------------------------------------------------------------------- segmentation


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


def _check_count(name: str, value: object) -> int:
    return check_positive_int(name, value)


def _check_segmentation_data(images: object, labels: object) -> None:
    check_tensor("images", images, ndim=4, floating=True, dims="[N, C, H, W]")
    check_finite("images", images)
    check_tensor("labels", labels, ndim=3, dtype=torch.int64, dims="[N, H, W]")
    if labels.shape[0] != images.shape[0] or labels.shape[1:] != images.shape[2:]:
        raise ValueError(
            f"labels: expected shape {[images.shape[0], *images.shape[2:]]} (one [H, W] map per "
            f"image), got {list(labels.shape)}"
        )


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 50,
            device: str | torch.device | None = None) -> torch.Tensor:
    """Per-pixel arg-max labels of ``model`` on ``images``.

    Parameters
    ----------
    model : nn.Module
        ``[n, C, H, W] -> [n, K, H, W]`` scores. Run in eval mode (restored afterwards).
    images : Tensor of shape ``[N, C, H, W]``, float
    batch_size : int
        Images per forward pass.
    device : str or torch.device, optional
        Where to run; default the model's device. Images are moved there batch by batch.

    Returns
    -------
    Tensor of shape ``[N, H, W]``, int64
        On the device of ``images``.
    """
    check_tensor("images", images, ndim=4, floating=True, dims="[N, C, H, W]")
    _check_count("batch_size", batch_size)
    device = torch.device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        scores = model(images[start : start + batch_size].to(device))  # [n, K, H, W]
        out.append(scores.argmax(1).to(images.device))  # [n, H, W]
    model.train(was_training)
    return torch.cat(out)  # [N, H, W]


@torch.no_grad()
def evaluate_segmenter(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                       num_classes: int, batch_size: int = 50, ignore_index: int = 255,
                       device: str | torch.device | None = None):
    """Segmentation scores of ``model`` on a data set: one confusion matrix over all pixels.

    Parameters
    ----------
    model : nn.Module
        ``[n, C, H, W] -> [n, K, H, W]`` scores.
    images : Tensor of shape ``[N, C, H, W]``, float
    labels : Tensor of shape ``[N, H, W]``, int64
    num_classes : int
        ``K``.
    batch_size, device
        As in :func:`predict`.
    ignore_index : int
        Label of pixels that are not scored.

    Returns
    -------
    crfkit.metrics.SegmentationScores
        ``.pixel_accuracy``, ``.mean_iou``, ``.iou`` ``[K]``, ... of the summed confusion
        matrix (Long et al. 2015, Sec. 5).
    """
    from crfkit.metrics import confusion_matrix, segmentation_scores

    _check_segmentation_data(images, labels)
    _check_count("num_classes", num_classes)
    confmat = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for start in range(0, len(images), batch_size):
        pred = predict(model, images[start : start + batch_size], batch_size, device)  # [n, H, W]
        confmat += confusion_matrix(pred, labels[start : start + batch_size], num_classes,
                                    ignore_index).cpu()  # [K, K]
    return segmentation_scores(confmat)


def fit_segmenter(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int = 500,
    batch_size: int = 16,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    ignore_index: int = 255,
    seed: int = 0,
    lr_schedule: str = "constant",
    flip: bool = False,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    num_classes: int | None = None,
    record_every: int = 50,
    device: str | torch.device | None = None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Train a segmentation network with AdamW and per-pixel cross-entropy.

    The loss of a batch is the mean over its non-ignored pixels of
    ``-log softmax(scores)[y_p]`` (Long et al. 2015, Sec. 3: "a per-pixel multinomial
    logistic loss").

    Parameters
    ----------
    model : nn.Module
        ``[n, C, H, W] -> [n, K, H, W]`` scores; trained in place (moved to ``device``).
        Parameters with ``requires_grad=False`` (FCN's fixed upsampling) are not trained.
    images : Tensor of shape ``[N, C, H, W]``, float
    labels : Tensor of shape ``[N, H, W]``, int64
        Class per pixel; ``ignore_index`` pixels do not count.
    steps, batch_size : int
        AdamW steps; each draws ``batch_size`` images at random (with replacement).
    lr, weight_decay : float
        Peak learning rate and decoupled weight decay (``torch.optim.AdamW``).
    ignore_index : int
    seed : int
        Seeds the batches and flips (the initial weights are the caller's business:
        ``torch.manual_seed`` before building the model).
    lr_schedule : {"constant", "poly"}
        ``"poly"`` multiplies ``lr`` by ``(1 - t / steps)^0.9`` at step ``t`` (DeepLab).
    flip : bool
        Mirror each drawn image (and its labels) left-right with probability 1/2.
    val : (images, labels), optional
        Validation data; its mean IoU is recorded every ``record_every`` steps.
    num_classes : int, optional
        ``K`` for the validation scores (default: the model's output channels).
    record_every : int
        How often to record the running training loss (and the validation mIoU).
    device : str or torch.device, optional
        Where to train (default: where the model is). Batches are moved there.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    History
        ``step``, ``train_loss`` and (with ``val``) ``val_mean_iou``.
        Cost: ``steps`` forward and backward passes of a batch.

    Raises
    ------
    TypeError, ValueError
        On wrong shapes or dtypes, NaN/inf in ``images``, non-positive counts or an
        unknown ``lr_schedule``.
    """
    _check_segmentation_data(images, labels)
    for name, value in (("steps", steps), ("batch_size", batch_size), ("record_every", record_every)):
        _check_count(name, value)
    if lr_schedule not in ("constant", "poly"):
        raise ValueError(f"lr_schedule: expected 'constant' or 'poly', got {lr_schedule!r}")
    if val is not None:
        _check_segmentation_data(*val)
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if lr_schedule == "poly":
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: (1 - t / steps) ** 0.9)
    else:
        scheduler = None
    generator = torch.Generator().manual_seed(seed)
    history = History()
    loss_fn = nn.CrossEntropyLoss(ignore_index=ignore_index)
    model.train()
    running, count = 0.0, 0
    steps_iter = range(1, steps + 1)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(steps_iter, desc=desc, leave=False)
    else:
        bar = None
    for step in bar if bar is not None else steps_iter:
        index = torch.randint(0, len(images), (batch_size,), generator=generator)  # [n]
        x, y = images[index], labels[index]  # [n, C, H, W], [n, H, W]
        if flip:
            mirror = torch.rand(batch_size, generator=generator) < 0.5  # [n]
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
            y = torch.where(mirror[:, None, None], y.flip(-1), y)
        loss = loss_fn(model(x.to(device)), y.to(device))  # scores [n, K, H, W]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss became {loss.item()} at step {step}; lower lr (now {lr})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        running, count = running + loss.item(), count + 1
        if step % record_every == 0 or step == steps:
            history.step.append(step)
            history.train_loss.append(running / count)
            running, count = 0.0, 0
            postfix = {"loss": f"{history.train_loss[-1]:.3f}"}
            if val is not None:
                k = num_classes if num_classes is not None else _num_outputs(model, val[0])
                scores = evaluate_segmenter(model, *val, k, ignore_index=ignore_index)
                history.val_mean_iou.append(scores.mean_iou)
                model.train()
                postfix["val_miou"] = f"{history.val_mean_iou[-1]:.3f}"
            if bar is not None:
                bar.set_postfix(postfix)
    if bar is not None:
        bar.close()
    model.eval()
    return history


@torch.no_grad()
def _num_outputs(model: nn.Module, images: torch.Tensor) -> int:
    was_training = model.training
    model.eval()
    k = model(images[:1].to(_model_device(model))).shape[1]
    model.train(was_training)
    return k


_SCENES_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def scenes_tensors(split: str, size: int = 64, n: int | None = None,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` scenes of a :class:`~crfkit.data.scenes.SyntheticScenes` split as tensors.

    Returns images ``[n, 3, S, S]`` float32 (0..1) and labels ``[n, S, S]`` int64, cached in
    the process (1000 64x64 scenes: 66 MB, about 5 s to generate).
    """
    from crfkit.data.scenes import SyntheticScenes

    data = SyntheticScenes(split, size=size, seed=seed)
    n = len(data) if n is None else _check_count("n", n)
    key = (split, size, n, seed)
    if key not in _SCENES_CACHE:
        _SCENES_CACHE[key] = data.batch(range(n))
    return _SCENES_CACHE[key]


def _scores_dict(scores) -> dict:
    return {
        "mean_iou": float(scores.mean_iou),
        "pixel_accuracy": float(scores.pixel_accuracy),
        "iou": [float(v) for v in scores.iou],
    }


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
    from dataclasses import replace

    from crfkit.models.checkpoints import build, load_state, rounded_state_dict

    if steps is not None:
        recipe = replace(recipe, steps=_check_count("steps", steps))
    if n_train is not None:
        recipe = replace(recipe, n_train=_check_count("n_train", n_train))
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


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def train_segmentation_models(names=None, *, out=None, steps: int | None = None,
                              device: str | torch.device | None = None, progress: bool = True,
                              n_train: int | None = None, n_eval: int | None = None,
                              recipe: SegmentationRecipe = RECIPE, echo=print) -> list[dict]:
    """Train, evaluate (test and val splits) and save the segmentation checkpoints.

    What ``python -m crfkit.train segmentation`` runs. Returns one row per model:
    ``name, params, steps, train_time_s, test_mean_iou, test_pixel_accuracy, val_mean_iou,
    path``.
    """
    import time
    from dataclasses import asdict, replace
    from pathlib import Path

    from crfkit.data.scenes import SyntheticScenes
    from crfkit.models.checkpoints import PRETRAINED, save_checkpoint, weights_dir

    names = list(PRETRAINED) if names is None else list(names)
    for name in names:
        if name not in PRETRAINED:
            raise ValueError(f"models: expected names from {list(PRETRAINED)}, got {name!r}")
    out = weights_dir() if out is None else Path(out)
    if steps is not None:
        recipe = replace(recipe, steps=_check_count("steps", steps))
    if n_train is not None:
        recipe = replace(recipe, n_train=_check_count("n_train", n_train))
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
                               device=str(_model_device(model)), threads=torch.get_num_threads())
        rows.append(dict(name=name, params=_n_params(model), steps=recipe.steps, train_time_s=elapsed,
                         train_cpu_time_s=cpu,
                         test_mean_iou=metrics["test"]["mean_iou"],
                         test_pixel_accuracy=metrics["test"]["pixel_accuracy"],
                         val_mean_iou=metrics["val"]["mean_iou"], path=str(path)))
        echo(f"{name}: {elapsed:.0f} s, test mIoU {rows[-1]['test_mean_iou']:.3f}, wrote {path}")
    return rows


def _format_table(rows: list[dict]) -> str:
    head = (f"{'model':8s} {'params':>9s} {'steps':>6s} {'train time':>10s} {'CPU time':>8s} "
            f"{'test mIoU':>9s} {'pixel acc':>9s} {'val mIoU':>8s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:8s} {r['params']:>9,d} {r['steps']:>6d} {r['train_time_s']:>9.0f}s "
                     f"{r['train_cpu_time_s']:>7.0f}s {r['test_mean_iou']:>9.3f} {r['test_pixel_accuracy']:>9.3f} {r['val_mean_iou']:>8.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m crfkit.train segmentation [--models ...] [--out DIR] ...``."""
    import argparse
    import time

    from crfkit.models.checkpoints import PRETRAINED

    parser = argparse.ArgumentParser(
        prog="python -m crfkit.train",
        description="Train crfkit's small networks and write their checkpoints.",
    )
    sub = parser.add_subparsers(dest="task", required=True, metavar="TASK")
    seg = sub.add_parser(
        "segmentation",
        help="train the segmentation networks on the 64x64 synthetic scenes",
        description=(
            "Train FCN-32s/16s/8s, SegNet and DeepLab with the shipped recipe, evaluate them on "
            "the 200 test (and 200 val) scenes with float16-rounded weights, print a table and "
            "write one checkpoint per model."
        ),
    )
    seg.add_argument("--models", nargs="+", choices=PRETRAINED, default=list(PRETRAINED), metavar="NAME",
                     help=f"which models (default: all of {', '.join(PRETRAINED)})")
    seg.add_argument("--out", default=None, help="output folder (default: crfkit/weights in the package)")
    seg.add_argument("--steps", type=int, default=None, help=f"training steps (default: {RECIPE.steps})")
    seg.add_argument("--device", default=None, help="torch device (default: cpu)")
    seg.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    seg.add_argument("--n-train", type=int, default=None,
                     help=f"training scenes (default: {RECIPE.n_train}; fewer only for smoke tests)")
    seg.add_argument("--n-eval", type=int, default=None,
                     help="test and val scenes to score (default: all 200; fewer only for smoke tests)")
    seg.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(_check_count("--threads", args.threads))
    start = time.perf_counter()
    rows = train_segmentation_models(args.models, out=args.out, steps=args.steps, device=args.device,
                                     progress=not args.no_progress, n_train=args.n_train,
                                     n_eval=args.n_eval)
    print()
    print(_format_table(rows))
    print(f"\ntotal {time.perf_counter() - start:.0f} s, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
