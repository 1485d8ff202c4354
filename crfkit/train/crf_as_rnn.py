"""Training a CNN and a CRF together: the CRF-as-RNN recipe of lecture 06 (Zheng et al. 2015).

The shipped DeepLab (:func:`crfkit.models.pretrained` ``("deeplab")``) gets a dense
:class:`~crfkit.nn.MeanFieldCRF` on top (:class:`~crfkit.models.CNNCRF`) and both are trained
on :func:`crfkit.losses.marginal_nll` of the CRF's marginals, ``-(1/|P|) sum_p log Q_p(y_p)``,
by :func:`crfkit.train.fit` with AdamW (one learning rate for the CNN, a larger one for the
CRF's kernel weights and compatibilities). :func:`train_crf_as_rnn` runs the whole
comparison, every row on the same test scenes:

=========================  ==========================================================
row                        what it is
=========================  ==========================================================
CNN                        the shipped DeepLab alone (argmax of its scores)
CNN fine-tuned             the same CNN trained alone for as many steps as the joint
                           model (so the joint row's gain is not just more training)
CNN + dense CRF            post-hoc: the dense CRF with parameters chosen on validation
                           scenes (grid search, as DeepLab and lecture 05 do), CNN fixed
CRF-as-RNN (dense)         CNN and dense CRF trained jointly from the two rows above
CRF-as-RNN (grid)          the same with :class:`~crfkit.nn.GridMeanFieldCRF` (4-connected,
                           one learnable table per offset, Potts weight chosen on validation)
=========================  ==========================================================

scored by mean IoU, pixel accuracy and the accuracy in a band of ``band`` pixels around the
true boundaries (:func:`crfkit.metrics.boundary_band`), with the time per test scene.
``python -m crfkit.train crf-as-rnn`` runs it, prints the table and writes the joint dense
model to ``crfkit/weights/deeplab_crf.pt`` (its ``metrics`` hold the whole table).

References
----------
S. Zheng et al., "Conditional Random Fields as Recurrent Neural Networks", ICCV 2015.
L.-C. Chen et al., "DeepLab", TPAMI 2018 (choosing the CRF's parameters on held-out images).
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from crfkit._validate import check_positive_int
from crfkit.losses import marginal_nll
from crfkit.train.loop import History, fit, model_device
from crfkit.train.segmentation import check_segmentation_data, fit_segmenter, scenes_tensors, segmentation_batches

__all__ = ["CRFAsRNNRecipe", "CRF_AS_RNN_RECIPE", "fit_jointly", "tune_dense_crf", "tune_grid_crf",
           "evaluate_rows", "train_crf_as_rnn", "format_rows"]


@dataclass(frozen=True)
class CRFAsRNNRecipe:
    """How ``crfkit/weights/deeplab_crf.pt`` is trained.

    Attributes
    ----------
    size, n_train, data_seed
        The training scenes (as :class:`~crfkit.train.SegmentationRecipe`).
    n_val : int
        Validation scenes on which the post-hoc CRF's parameters are chosen.
    steps, batch_size : int
        Joint AdamW steps from the shipped DeepLab, and images per step.
    lr_cnn, lr_crf : float
        Learning rates of the CNN's weights and of the CRF's parameters (constant).
    iterations : int
        Mean-field iterations in training and at test time (Zheng et al.: 5 in training).
    flip : bool
        Mirror training images left-right with probability 1/2.
    seed : int
        Seeds the batches and flips.
    bilateral_search : tuple of (weight, sxy, srgb)
        The grid searched for the bilateral kernel (the Gaussian one stays pydensecrf's
        ``sxy 3, weight 3``), lecture 05's grid.
    grid_weights : tuple of float
        Potts weights searched for the grid CRF.
    band : int
        Half-width of the boundary band of the scores.
    """

    size: int = 64
    n_train: int = 1000
    n_val: int = 48
    steps: int = 300
    batch_size: int = 8
    lr_cnn: float = 1e-4
    lr_crf: float = 1e-2
    iterations: int = 5
    flip: bool = True
    seed: int = 0
    data_seed: int = 0
    bilateral_search: tuple = tuple((w, sxy, srgb) for w in (5.0, 10.0) for sxy in (5.0, 20.0)
                                    for srgb in (13.0, 30.0))
    grid_weights: tuple = (0.5, 1.0, 2.0, 4.0)
    band: int = 2


#: The recipe of the shipped ``deeplab_crf`` checkpoint.
CRF_AS_RNN_RECIPE = CRFAsRNNRecipe()


def fit_jointly(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, steps: int, batch_size: int,
                lr_cnn: float, lr_crf: float, seed: int = 0, flip: bool = True, record_every: int = 25,
                progress: bool = True, desc: str = "CRF-as-RNN") -> History:
    """Train a :class:`~crfkit.models.CNNCRF` end to end on :func:`~crfkit.losses.marginal_nll`.

    Parameters
    ----------
    model : CNNCRF
        ``.cnn`` and ``.crf`` are trained in place, with AdamW at ``lr_cnn`` and ``lr_crf``.
    images : Tensor ``[N, 3, H, W]`` (0..1), labels : Tensor ``[N, H, W]`` int64
    steps, batch_size, seed, flip
        As :func:`~crfkit.train.fit_segmenter` (the same batches for the same seed).

    Returns
    -------
    History
        The model is left in eval mode. Cost per step: the CNN's forward and backward plus
        ``iterations`` mean-field iterations unrolled and backpropagated.
    """
    check_segmentation_data(images, labels)
    device = model_device(model)
    draw = segmentation_batches(images, labels, batch_size, seed=seed, flip=flip, device=device)
    optimizer = torch.optim.AdamW([{"params": model.cnn.parameters(), "lr": lr_cnn},
                                   {"params": model.crf.parameters(), "lr": lr_crf}], weight_decay=0.0)

    def objective(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return marginal_nll(model(x), y)  # Q [n, K, H, W]

    history = fit(model, objective, draw, optimizer, steps=steps, record_every=record_every,
                  progress=progress, desc=desc)
    model.eval()
    return history


@torch.no_grad()
def _unary(cnn: nn.Module, images: torch.Tensor, chunk: int = 50) -> torch.Tensor:
    cnn.eval()
    device = model_device(cnn)
    return torch.cat([-torch.log_softmax(cnn(images[s : s + chunk].to(device)), 1).cpu()
                      for s in range(0, len(images), chunk)])  # [N, K, H, W]


@torch.no_grad()
def _crf_labels(layer: nn.Module, unary: torch.Tensor, images: torch.Tensor, chunk: int = 50) -> torch.Tensor:
    layer.eval()
    return torch.cat([layer(unary[s : s + chunk], 255 * images[s : s + chunk]).argmax(1)
                      for s in range(0, len(unary), chunk)])  # [N, H, W]


def _miou(pred: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    from crfkit.metrics import confusion_matrix, segmentation_scores

    return float(segmentation_scores(confusion_matrix(pred, labels, k)).mean_iou)


def tune_dense_crf(cnn: nn.Module, images: torch.Tensor, labels: torch.Tensor, search, iterations: int = 5):
    """Choose the bilateral kernel's ``(weight, sxy, srgb)`` by validation mIoU.

    Returns ``(best, {(weight, sxy, srgb): val mIoU})``; the Gaussian kernel is pydensecrf's
    ``sxy 3, weight 3``, images are passed to the CRF in 0..255.
    """
    from crfkit.dense import BilateralKernel, GaussianKernel
    from crfkit.nn import MeanFieldCRF

    unary = _unary(cnn, images)
    k = unary.shape[1]
    table = {}
    for w, sxy, srgb in search:
        layer = MeanFieldCRF(k, (GaussianKernel(3.0, 3.0), BilateralKernel(sxy, srgb, w)), iterations=iterations)
        table[(w, sxy, srgb)] = _miou(_crf_labels(layer, unary, images), labels, k)
    return max(table, key=table.get), table


def tune_grid_crf(cnn: nn.Module, images: torch.Tensor, labels: torch.Tensor, weights, iterations: int = 5):
    """Choose the 4-connected grid CRF's Potts weight by validation mIoU: ``(best, {weight: mIoU})``."""
    from crfkit.nn import GridMeanFieldCRF

    unary = _unary(cnn, images)
    k = unary.shape[1]
    table = {w: _miou(_crf_labels(GridMeanFieldCRF(k, weight=w, iterations=iterations), unary, images), labels, k)
             for w in weights}
    return max(table, key=table.get), table


@torch.no_grad()
def evaluate_rows(models: dict, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                  band: int = 2) -> list[dict]:
    """Score each ``name -> model`` (scores or marginals out, argmax over dim 1) on a data set.

    Returns one dict per model: ``name, mean_iou, pixel_accuracy, band_accuracy, ms_per_scene``
    (the forward pass of the whole set, on the model's device, per scene).
    """
    from crfkit.metrics import boundary_band, confusion_matrix, segmentation_scores

    inside = boundary_band(labels, band)  # [N, H, W]
    rows = []
    for name, model in models.items():
        model.eval()
        device = model_device(model)
        start = time.perf_counter()
        pred = torch.cat([model(images[s : s + 50].to(device)).argmax(1).cpu() for s in range(0, len(images), 50)])
        seconds = time.perf_counter() - start
        scores = segmentation_scores(confusion_matrix(pred, labels, num_classes))
        right = (pred == labels) & inside
        rows.append(dict(name=name, mean_iou=float(scores.mean_iou), pixel_accuracy=float(scores.pixel_accuracy),
                         band_accuracy=float(right.sum() / inside.sum()), ms_per_scene=1000 * seconds / len(images)))
    return rows


def train_crf_as_rnn(recipe: CRFAsRNNRecipe = CRF_AS_RNN_RECIPE, *, steps: int | None = None,
                     n_train: int | None = None, n_val: int | None = None, n_eval: int | None = None,
                     progress: bool = True, echo=print) -> tuple[nn.Module, list[dict], dict]:
    """Run the comparison of this module's table; return ``(joint dense model, rows, info)``.

    ``info`` holds the chosen post-hoc parameters, the validation searches, the training
    histories' losses and the train times. ``steps``, ``n_train``, ``n_val`` and ``n_eval``
    override the recipe (smoke tests). About 5 minutes on two CPU cores.
    """
    from dataclasses import replace

    from crfkit.data.scenes import SyntheticScenes
    from crfkit.models import pretrained
    from crfkit.models.crf_as_rnn import CNNCRF, deeplab_crf_small
    from crfkit.nn import GridMeanFieldCRF

    if steps is not None:
        recipe = replace(recipe, steps=check_positive_int("steps", steps))
    if n_train is not None:
        recipe = replace(recipe, n_train=check_positive_int("n_train", n_train))
    if n_val is not None:
        recipe = replace(recipe, n_val=check_positive_int("n_val", n_val))
    train = scenes_tensors("train", recipe.size, recipe.n_train, recipe.data_seed)
    val = scenes_tensors("val", recipe.size, recipe.n_val, recipe.data_seed)
    test = scenes_tensors("test", recipe.size, n_eval, recipe.data_seed)
    cnn = pretrained("deeplab")
    k = SyntheticScenes.num_classes

    echo("choosing the post-hoc CRFs' parameters on the validation scenes ...")
    best_dense, dense_search = tune_dense_crf(cnn, *val, recipe.bilateral_search, recipe.iterations)
    best_grid, grid_search = tune_grid_crf(cnn, *val, recipe.grid_weights, recipe.iterations)
    w, sxy, srgb = best_dense
    echo(f"  dense: bilateral weight {w}, sxy {sxy}, srgb {srgb}; grid: Potts weight {best_grid}")

    def dense_model() -> CNNCRF:
        model = deeplab_crf_small(k, bilateral=(sxy, srgb, w), iterations=recipe.iterations)
        model.cnn.load_state_dict(cnn.state_dict())
        return model

    post_hoc = dense_model()
    grid = CNNCRF(copy.deepcopy(cnn), GridMeanFieldCRF(k, weight=best_grid, iterations=recipe.iterations))
    joint, finetuned = dense_model(), copy.deepcopy(cnn)
    seconds, losses = {}, {}
    common = dict(steps=recipe.steps, batch_size=recipe.batch_size, seed=recipe.seed, flip=recipe.flip,
                  progress=progress)
    for name, run in [
        ("CNN fine-tuned", lambda: fit_segmenter(finetuned, *train, lr=recipe.lr_cnn, desc="CNN alone", **common)),
        ("CRF-as-RNN (dense)", lambda: fit_jointly(joint, *train, lr_cnn=recipe.lr_cnn, lr_crf=recipe.lr_crf,
                                                   desc="dense CRF-as-RNN", **common)),
        ("CRF-as-RNN (grid)", lambda: fit_jointly(grid, *train, lr_cnn=recipe.lr_cnn, lr_crf=recipe.lr_crf,
                                                  desc="grid CRF-as-RNN", **common)),
    ]:
        start = time.perf_counter()
        history = run()
        seconds[name] = time.perf_counter() - start
        losses[name] = history.train_loss
        echo(f"  trained {name} in {seconds[name]:.0f} s")

    # what the checkpoint stores: float16 weights
    from crfkit.models.checkpoints import load_state, rounded_state_dict

    load_state(joint, rounded_state_dict(joint))
    rows = evaluate_rows({"CNN": cnn, "CNN fine-tuned": finetuned, "CNN + dense CRF": post_hoc,
                          "CRF-as-RNN (dense)": joint, "CRF-as-RNN (grid)": grid}, *test, k, band=recipe.band)
    for row in rows:
        row["train_time_s"] = seconds.get(row["name"], 0.0)
    info = dict(recipe=asdict(recipe), chosen_bilateral=dict(weight=w, sxy=sxy, srgb=srgb), chosen_grid_weight=best_grid,
                dense_search={f"{a}/{b}/{c}": v for (a, b, c), v in dense_search.items()},
                grid_search={str(a): v for a, v in grid_search.items()}, train_loss=losses, n_test=len(test[0]),
                kwargs=dict(gaussian=(3.0, 3.0), bilateral=(sxy, srgb, w), iterations=recipe.iterations))
    return joint, rows, info


def format_rows(rows: list[dict], band: int = 2) -> str:
    """The rows of :func:`evaluate_rows` as a fixed-width text table (percentages)."""
    head = f"{'model':20s} {'mIoU':>6s} {'pixel acc':>9s} {f'band-{band} acc':>11s} {'ms/scene':>8s} {'train':>6s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        train = f"{r['train_time_s']:5.0f}s" if r.get("train_time_s") else f"{'-':>6s}"
        lines.append(f"{r['name']:20s} {100 * r['mean_iou']:6.1f} {100 * r['pixel_accuracy']:9.1f} "
                     f"{100 * r['band_accuracy']:11.1f} {r['ms_per_scene']:8.2f} {train}")
    return "\n".join(lines)
