"""Training and scoring segmentation networks (lectures 02 and 03).

* :func:`fit_segmenter`: AdamW and the per-pixel cross-entropy of FCN (Long et al. 2015,
  Sec. 3), ``loss = -(1/|P|) sum_{p in P} log softmax(scores[:, p])[y_p]`` over the
  non-ignored pixels ``P`` of a batch (:func:`crfkit.losses.cross_entropy`), optionally with
  DeepLab's "poly" learning rate and left-right flips;
* :func:`predict` and :func:`evaluate_segmenter` (mean IoU and pixel accuracy of one
  confusion matrix over the whole data set);
* :func:`scenes_tensors`: the synthetic scenes as tensors, cached in the process.

References
----------
J. Long, E. Shelhamer, T. Darrell. Fully convolutional networks for semantic segmentation.
CVPR 2015.
L.-C. Chen, G. Papandreou, I. Kokkinos, K. Murphy, A. L. Yuille. DeepLab. TPAMI 2018
(the "poly" learning-rate schedule, Sec. 4.1).
I. Loshchilov, F. Hutter. Decoupled weight decay regularization (AdamW). ICLR 2019.
"""

from __future__ import annotations

import torch
from torch import nn

from crfkit._validate import check_finite, check_positive_int, check_tensor
from crfkit.losses import cross_entropy
from crfkit.train.loop import History, fit, model_device


def check_segmentation_data(images: object, labels: object) -> None:
    """Raise unless ``images`` ``[N, C, H, W]`` (finite floats) and ``labels`` ``[N, H, W]``
    (int64) describe the same pixels."""
    check_tensor("images", images, ndim=4, floating=True, dims="[N, C, H, W]")
    check_finite("images", images)
    check_tensor("labels", labels, ndim=3, dtype=torch.int64, dims="[N, H, W]")
    if labels.shape[0] != images.shape[0] or labels.shape[1:] != images.shape[2:]:
        raise ValueError(
            f"labels: expected shape {[images.shape[0], *images.shape[2:]]} (one [H, W] map per "
            f"image), got {list(labels.shape)}"
        )


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
    check_positive_int("batch_size", batch_size)
    device = torch.device(device) if device is not None else model_device(model)
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

    check_segmentation_data(images, labels)
    check_positive_int("num_classes", num_classes)
    confmat = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for start in range(0, len(images), batch_size):
        pred = predict(model, images[start : start + batch_size], batch_size, device)  # [n, H, W]
        confmat += confusion_matrix(pred, labels[start : start + batch_size], num_classes,
                                    ignore_index).cpu()  # [K, K]
    return segmentation_scores(confmat)


def segmentation_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, seed: int = 0,
                         flip: bool = False, device: str | torch.device = "cpu"):
    """``draw(step) -> (images [n, C, H, W], labels [n, H, W])`` for :func:`~crfkit.train.loop.fit`.

    Each call draws ``batch_size`` images at random with replacement (a ``torch.Generator``
    seeded with ``seed``) and, with ``flip``, mirrors each left-right with probability 1/2,
    labels with it; the batch is moved to ``device``. Two runs with the same seed see the
    same batches.
    """
    batch_size = check_positive_int("batch_size", batch_size)
    generator = torch.Generator().manual_seed(seed)

    def draw(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.randint(0, len(images), (batch_size,), generator=generator)  # [n]
        x, y = images[index], labels[index]  # [n, C, H, W], [n, H, W]
        if flip:
            mirror = torch.rand(batch_size, generator=generator) < 0.5  # [n]
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
            y = torch.where(mirror[:, None, None], y.flip(-1), y)
        return x.to(device), y.to(device)

    return draw


@torch.no_grad()
def num_outputs(model: nn.Module, images: torch.Tensor) -> int:
    """``K``: the channels of ``model``'s scores on the first of ``images``."""
    was_training = model.training
    model.eval()
    k = model(images[:1].to(model_device(model))).shape[1]
    model.train(was_training)
    return k


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
    logistic loss"), :func:`crfkit.losses.cross_entropy`.

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
        ``step``, ``train_loss`` and (with ``val``) ``val_mean_iou``; the model is left in
        eval mode. Cost: ``steps`` forward and backward passes of a batch.

    Raises
    ------
    TypeError, ValueError
        On wrong shapes or dtypes, NaN/inf in ``images``, non-positive counts or an
        unknown ``lr_schedule``.
    FloatingPointError
        When the loss becomes NaN or inf.
    """
    check_segmentation_data(images, labels)
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    check_positive_int("record_every", record_every)
    if lr_schedule not in ("constant", "poly"):
        raise ValueError(f"lr_schedule: expected 'constant' or 'poly', got {lr_schedule!r}")
    if val is not None:
        check_segmentation_data(*val)
    device = torch.device(device) if device is not None else model_device(model)
    model.to(device)
    draw = segmentation_batches(images, labels, batch_size, seed=seed, flip=flip, device=device)

    def objective(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return cross_entropy(model(x), y, ignore_index=ignore_index)  # scores [n, K, H, W]

    def evaluate(model: nn.Module) -> dict[str, float]:
        k = num_classes if num_classes is not None else num_outputs(model, val[0])
        return {"val_mean_iou": evaluate_segmenter(model, *val, k, ignore_index=ignore_index).mean_iou}

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr,
                                  weight_decay=weight_decay)
    scheduler = (torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: (1 - t / steps) ** 0.9)
                 if lr_schedule == "poly" else None)
    history = fit(model, objective, draw, optimizer, steps=steps, scheduler=scheduler,
                  record_every=record_every, evaluate=evaluate if val is not None else None,
                  progress=progress, desc=desc)
    model.eval()
    return history


_SCENES_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def scenes_tensors(split: str, size: int = 64, n: int | None = None,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` scenes of a :class:`~crfkit.data.scenes.SyntheticScenes` split as tensors.

    Returns images ``[n, 3, S, S]`` float32 (0..1) and labels ``[n, S, S]`` int64, cached in
    the process (1000 64x64 scenes: 66 MB, about 5 s to generate).
    """
    from crfkit.data.scenes import SyntheticScenes

    data = SyntheticScenes(split, size=size, seed=seed)
    n = len(data) if n is None else check_positive_int("n", n)
    key = (split, size, n, seed)
    if key not in _SCENES_CACHE:
        _SCENES_CACHE[key] = data.batch(range(n))
    return _SCENES_CACHE[key]
