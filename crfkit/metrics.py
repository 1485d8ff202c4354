"""Segmentation metrics: the confusion matrix and the scores the papers report.

Everything starts from the **confusion matrix** ``n`` of shape ``[K, K]``: ``n[i, j]`` is
the number of pixels whose truth is class ``i`` and whose prediction is class ``j``
(rows = truth, columns = prediction). With ``t_i = sum_j n[i, j]`` the number of pixels
of class ``i`` in the truth, the scores of Long, Shelhamer & Darrell (2015, Sec. 5) are

.. math::

    \\text{pixel accuracy} &= \\sum_i n_{ii} / \\sum_i t_i \\\\
    \\text{mean accuracy}  &= \\frac{1}{n_{cl}} \\sum_i n_{ii} / t_i \\\\
    \\text{mean IU}        &= \\frac{1}{n_{cl}} \\sum_i
                              \\frac{n_{ii}}{t_i + \\sum_j n_{ji} - n_{ii}} \\\\
    \\text{f.w. IU}        &= \\Big(\\sum_k t_k\\Big)^{-1} \\sum_i
                              \\frac{t_i \\, n_{ii}}{t_i + \\sum_j n_{ji} - n_{ii}}

The per-class IU is the PASCAL VOC segmentation measure (Everingham et al. 2010,
Sec. 4.3): true positives / (true positives + false positives + false negatives).

Confusion matrices **add**: the matrix of a dataset is the sum of the matrices of its
images (or batches), so evaluate a dataset by accumulating

>>> confmat = sum(confusion_matrix(model(x).argmax(1), y, K) for x, y in loader)  # doctest: +SKIP
>>> segmentation_scores(confmat).mean_iou                                         # doctest: +SKIP

and not by averaging per-image scores (which weights small images like large ones and
gives a different number).

Classes that never occur
------------------------
``n_cl`` counts only the classes for which the ratio is defined (``nanmean``):

* a class absent from both truth and prediction has IoU ``NaN`` and class accuracy
  ``NaN``; it is left out of both means;
* a class absent from the truth but predicted somewhere has IoU ``0`` (every pixel
  predicted as it is a false positive) and class accuracy ``NaN`` (``0 / 0``); it counts
  in the mean IoU and is left out of the mean accuracy.

References
----------
J. Long, E. Shelhamer, T. Darrell. "Fully Convolutional Networks for Semantic
Segmentation." CVPR 2015, Sec. 5 (metric definitions). https://arxiv.org/abs/1411.4038

M. Everingham, L. Van Gool, C. K. I. Williams, J. Winn, A. Zisserman. "The PASCAL Visual
Object Classes (VOC) Challenge." IJCV 88(2), 2010, Sec. 4.3 (segmentation accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from crfkit._validate import check_int, check_label_range, check_positive_int

__all__ = ["SegmentationScores", "boundary_band", "confusion_matrix", "segmentation_scores"]


def confusion_matrix(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: int | None = 255,
    *,
    per_image: bool = False,
) -> torch.Tensor:
    """Count (truth, prediction) label pairs over all pixels.

    Parameters
    ----------
    pred : Tensor of shape ``[B, H, W]`` (or ``[H, W]``, or any shape), integer
        Predicted class per pixel, e.g. ``marginals.argmax(1)``. Values must lie in
        ``[0, num_classes)`` wherever ``target`` is not ``ignore_index``; elsewhere they
        are not looked at.
    target : Tensor of the same shape as ``pred``, integer
        True class per pixel; ``ignore_index`` marks pixels that are not scored (VOC's
        object boundaries and "void" regions). Other values must lie in
        ``[0, num_classes)``.
    num_classes : int
        ``K``, the number of classes (``>= 1``).
    ignore_index : int or None, default 255
        Target value of pixels to drop. ``None`` drops nothing.
    per_image : bool, default False
        If True, return one matrix per element of the first dimension, ``[B, K, K]``
        (``pred`` must then be at least 1-D); ``segmentation_scores`` turns that into
        per-image scores.

    Returns
    -------
    Tensor of shape ``[K, K]`` (``[B, K, K]`` if ``per_image``), int64
        ``confmat[i, j]`` = number of non-ignored pixels with truth ``i`` and prediction
        ``j`` (rows = truth, columns = prediction). On the device of the inputs.
        Matrices add: the matrix of a dataset is the sum over its batches.

    Raises
    ------
    TypeError
        If an input is not a tensor / NumPy array of integers (floats and bools are
        refused: take ``argmax`` first), or ``num_classes`` / ``ignore_index`` is not an int.
    ValueError
        If the shapes differ, ``num_classes < 1``, or a label is out of range (the
        message gives the offending value and how many pixels have it).

    Notes
    -----
    One ``torch.bincount`` over ``target * K + pred``: O(N) time and O(K²) memory, on
    whatever device the inputs are. NumPy arrays are accepted and give a CPU tensor.
    Definitions: Long, Shelhamer & Darrell (2015), Sec. 5; Everingham et al. (2010).

    Examples
    --------
    >>> target = torch.tensor([[0, 0, 1, 255]])
    >>> pred = torch.tensor([[0, 1, 1, 7]])
    >>> confusion_matrix(pred, target, num_classes=2)
    tensor([[1, 1],
            [0, 1]])
    """
    pred = _as_label_tensor("pred", pred)
    target = _as_label_tensor("target", target)
    num_classes = check_positive_int("num_classes", num_classes)
    if ignore_index is not None:
        check_int("ignore_index", ignore_index)
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target: expected the same shape, got pred {list(pred.shape)} "
            f"and target {list(target.shape)}"
        )
    if pred.device != target.device:
        raise ValueError(
            f"pred and target: expected the same device, got pred on {pred.device} "
            f"and target on {target.device}"
        )
    if per_image and pred.dim() == 0:
        raise ValueError("pred: per_image=True needs at least a batch dimension, got a 0-D tensor")

    k = num_classes
    target = target.long()
    pred = pred.long()
    valid = torch.ones_like(target, dtype=torch.bool)
    if ignore_index is not None:
        valid = target != int(ignore_index)  # [B, H, W]

    check_label_range("target", target, k, ignore_index, valid=valid)
    check_label_range("pred", pred, k, valid=valid, where="where target is not ignored")

    # One bin per (image, truth, prediction); ignored pixels go to an extra last bin.
    index = target * k + pred  # [B, H, W], in [0, K*K) where valid
    if per_image:
        batch = pred.shape[0]
        offset = torch.arange(batch, device=pred.device) * (k * k)  # [B]
        index = index + offset.view(-1, *([1] * (pred.dim() - 1)))  # [B, H, W]
        n_bins = batch * k * k
    else:
        n_bins = k * k
    index = torch.where(valid, index, torch.full_like(index, n_bins))
    counts = torch.bincount(index.reshape(-1), minlength=n_bins + 1)[:n_bins]
    if per_image:
        return counts.view(pred.shape[0], k, k)  # [B, K, K]
    return counts.view(k, k)  # [K, K]


@dataclass(frozen=True, eq=False)
class SegmentationScores:
    """Scores of one confusion matrix (or one per image, for a batched matrix).

    Scalar fields are Python floats for a ``[K, K]`` matrix and float64 tensors of shape
    ``[B]`` for a ``[B, K, K]`` one. A score that is undefined (no pixel scored at all)
    is ``NaN``.

    Attributes
    ----------
    pixel_accuracy : float or Tensor ``[B]``
        ``sum_i n_ii / sum_i t_i``: fraction of scored pixels labelled correctly.
    mean_accuracy : float or Tensor ``[B]``
        Mean over classes present in the truth of ``n_ii / t_i``.
    mean_iou : float or Tensor ``[B]``
        Mean over classes of ``iou`` (``NaN`` entries left out).
    frequency_weighted_iou : float or Tensor ``[B]``
        ``sum_i t_i * iou_i / sum_i t_i``.
    iou : Tensor of shape ``[K]`` (or ``[B, K]``), float64
        Per-class intersection over union ``n_ii / (t_i + sum_j n_ji - n_ii)``; ``NaN``
        for a class absent from both truth and prediction, ``0`` for a class that is
        predicted but absent from the truth.
    class_accuracy : Tensor of shape ``[K]`` (or ``[B, K]``), float64
        Per-class recall ``n_ii / t_i``; ``NaN`` for a class absent from the truth.
    confmat : Tensor of shape ``[K, K]`` (or ``[B, K, K]``)
        The matrix the scores were computed from (rows = truth).
    """

    pixel_accuracy: float | torch.Tensor
    mean_accuracy: float | torch.Tensor
    mean_iou: float | torch.Tensor
    frequency_weighted_iou: float | torch.Tensor
    iou: torch.Tensor
    class_accuracy: torch.Tensor
    confmat: torch.Tensor

    def table(self, class_names: list[str] | tuple[str, ...] | None = None) -> str:
        """A plain-text table of the per-class and mean scores (``[K, K]`` matrices only).

        Parameters
        ----------
        class_names : sequence of K str, optional
            Row names; default ``"class 0"``, ``"class 1"``, ...

        Returns
        -------
        str
            One line per class (IoU and accuracy in %, ``-`` where undefined) and the means.
        """
        if self.iou.dim() != 1:
            raise ValueError(
                f"table: expected scores of one [K, K] matrix, got per-image scores of "
                f"shape {list(self.iou.shape)}; index a single image's matrix first"
            )
        k = self.iou.shape[0]
        if class_names is None:
            class_names = [f"class {i}" for i in range(k)]
        if len(class_names) != k:
            raise ValueError(f"class_names: expected {k} names, got {len(class_names)}")

        def pct(x: float) -> str:
            return "     -" if x != x else f"{100 * x:6.1f}"

        width = max(12, *(len(str(n)) for n in class_names))
        lines = [f"{'class':<{width}}    IoU%   acc%"]
        for name, iou, acc in zip(class_names, self.iou.tolist(), self.class_accuracy.tolist()):
            lines.append(f"{str(name):<{width}}  {pct(iou)} {pct(acc)}")
        lines.append(f"{'mean':<{width}}  {pct(self.mean_iou)} {pct(self.mean_accuracy)}")
        lines.append(
            f"pixel accuracy {pct(self.pixel_accuracy).strip()}%, "
            f"f.w. IoU {pct(self.frequency_weighted_iou).strip()}%"
        )
        return "\n".join(lines)


def segmentation_scores(confmat: torch.Tensor) -> SegmentationScores:
    """Pixel accuracy, mean (class) accuracy, per-class and mean IoU from a confusion matrix.

    Parameters
    ----------
    confmat : Tensor of shape ``[K, K]`` or ``[B, K, K]``
        Counts with rows = truth and columns = prediction, as from
        :func:`confusion_matrix` (summed over a dataset, or ``per_image=True``).
        Integer or float, non-negative and finite. NumPy arrays are accepted.

    Returns
    -------
    SegmentationScores
        ``.pixel_accuracy``, ``.mean_accuracy``, ``.mean_iou``,
        ``.frequency_weighted_iou`` (floats, or ``[B]`` float64 tensors for a batched
        matrix), ``.iou`` and ``.class_accuracy`` (``[K]`` / ``[B, K]`` float64), on the
        device of ``confmat``.

    Raises
    ------
    TypeError
        If ``confmat`` is not a tensor/array of numbers.
    ValueError
        If it is not square ``[K, K]`` / ``[B, K, K]``, or holds negative, NaN or inf
        counts.

    Notes
    -----
    With ``n`` the matrix and ``t_i = sum_j n_ij`` (Long, Shelhamer & Darrell 2015, Sec. 5):
    pixel accuracy ``sum_i n_ii / sum_i t_i``; mean accuracy
    ``(1/n_cl) sum_i n_ii / t_i``; mean IU ``(1/n_cl) sum_i n_ii / (t_i + sum_j n_ji - n_ii)``;
    frequency weighted IU ``(sum_k t_k)^-1 sum_i t_i n_ii / (t_i + sum_j n_ji - n_ii)``.
    The per-class IU is the PASCAL VOC measure (Everingham et al. 2010).
    A class absent from both truth and prediction gets IoU ``NaN`` and is left out of
    the means (``n_cl`` counts the defined entries); a class predicted but absent from the
    truth gets IoU 0 and class accuracy ``NaN``. A matrix with no pixels at all gives
    ``NaN`` for every score. O(K²).

    Examples
    --------
    >>> s = segmentation_scores(torch.tensor([[3, 1], [0, 2]]))
    >>> s.pixel_accuracy, s.mean_iou  # (3+2)/6, (3/4 + 2/3)/2
    (0.8333333333333334, 0.7083333333333333)
    """
    if isinstance(confmat, np.ndarray):
        confmat = torch.from_numpy(confmat)
    if not isinstance(confmat, torch.Tensor):
        raise TypeError(
            f"confmat: expected a torch.Tensor of shape [K, K] or [B, K, K], "
            f"got {type(confmat).__name__}"
        )
    if confmat.dtype == torch.bool or confmat.is_complex():
        raise TypeError(
            f"confmat: expected an integer or float tensor of counts, got {confmat.dtype}"
        )
    square = confmat.dim() in (2, 3) and confmat.shape[-1] == confmat.shape[-2]
    if not square or confmat.shape[-1] == 0:
        raise ValueError(
            f"confmat: expected a square matrix of shape [K, K] or [B, K, K] with K >= 1, "
            f"got shape {list(confmat.shape)}"
        )
    n = confmat.to(torch.float64)  # [..., K, K]
    if not bool(torch.isfinite(n).all()):
        raise ValueError(
            f"confmat: expected finite counts, got {int(torch.isnan(n).sum())} NaN and "
            f"{int(torch.isinf(n).sum())} inf"
        )
    if bool((n < 0).any()):
        raise ValueError(f"confmat: expected non-negative counts, got minimum {n.min().item()}")

    nan = torch.tensor(float("nan"), dtype=torch.float64, device=n.device)
    n_ii = torch.diagonal(n, dim1=-2, dim2=-1)  # [..., K] correct pixels per class
    t_i = n.sum(-1)  # [..., K] pixels of class i in the truth (row sums)
    p_i = n.sum(-2)  # [..., K] pixels predicted as class i (column sums)
    union = t_i + p_i - n_ii  # [..., K]
    total = t_i.sum(-1)  # [...]

    class_acc = torch.where(t_i > 0, n_ii / t_i.clamp_min(1e-300), nan)  # [..., K]
    iou = torch.where(union > 0, n_ii / union.clamp_min(1e-300), nan)  # [..., K]
    pixel_acc = torch.where(total > 0, n_ii.sum(-1) / total.clamp_min(1e-300), nan)  # [...]
    mean_acc = torch.nanmean(class_acc, dim=-1)  # [...]
    mean_iou = torch.nanmean(iou, dim=-1)  # [...]
    # classes with t_i = 0 contribute 0 (their iou may be NaN)
    weighted = torch.where(t_i > 0, t_i * torch.nan_to_num(iou, nan=0.0), torch.zeros_like(t_i))
    fw_iou = torch.where(total > 0, weighted.sum(-1) / total.clamp_min(1e-300), nan)  # [...]

    if confmat.dim() == 2:
        return SegmentationScores(
            pixel_accuracy=float(pixel_acc),
            mean_accuracy=float(mean_acc),
            mean_iou=float(mean_iou),
            frequency_weighted_iou=float(fw_iou),
            iou=iou,
            class_accuracy=class_acc,
            confmat=confmat,
        )
    return SegmentationScores(
        pixel_accuracy=pixel_acc,
        mean_accuracy=mean_acc,
        mean_iou=mean_iou,
        frequency_weighted_iou=fw_iou,
        iou=iou,
        class_accuracy=class_acc,
        confmat=confmat,
    )


def boundary_band(labels: torch.Tensor, width: int, ignore_index: int | None = 255) -> torch.Tensor:
    """Pixels within ``width`` pixels of a boundary between two labels (the "trimap" band).

    Scoring only the pixels of a narrow band around the true boundaries shows how well a
    segmentation localises edges, separately from how well it recognises regions
    (Kohli et al. 2009; Chen et al. 2018, Fig. 5, plot mean IoU against the band's width).

    A pixel ``p`` is in the band when some pixel ``q`` with ``max(|p_y - q_y|, |p_x - q_x|)
    <= width`` carries a different label than another pixel of that window, i.e. when the
    ``(2 width + 1)``-square window around ``p`` holds two or more labels. ``ignore_index``
    pixels neither make boundaries nor belong to the band.

    Parameters
    ----------
    labels : int tensor ``[B, H, W]``
        True labels.
    width : int
        Half-width of the band in pixels, ``>= 1``.
    ignore_index : int or None, default 255

    Returns
    -------
    bool tensor ``[B, H, W]`` on ``labels``' device. Cost: one max pooling of the
    ``[B, K, H, W]`` one-hot labels, ``O(B K H W width^2)``.

    Examples
    --------
    >>> y = torch.zeros(1, 1, 6, dtype=torch.long); y[..., 3:] = 1
    >>> boundary_band(y, 1)[0, 0].tolist()
    [False, False, True, True, False, False]
    """
    labels = _as_label_tensor("labels", labels)
    if labels.dim() != 3:
        raise ValueError(f"labels: expected a [B, H, W] tensor, got shape {list(labels.shape)}")
    check_positive_int("width", width)
    valid = labels != ignore_index if ignore_index is not None else torch.ones_like(labels, dtype=torch.bool)
    if not bool(valid.any()):
        return valid.clone()
    if bool((labels[valid] < 0).any()):
        raise ValueError(f"labels: expected labels >= 0 (or {ignore_index} = ignore), got {int(labels[valid].min())}")
    k = int(labels[valid].max()) + 1
    onehot = torch.zeros(labels.shape[0], k, *labels.shape[1:], device=labels.device)  # [B, K, H, W]
    onehot.scatter_(1, torch.where(valid, labels, 0)[:, None], valid[:, None].float())
    present = torch.nn.functional.max_pool2d(onehot, 2 * width + 1, stride=1, padding=width)  # [B, K, H, W]
    return (present.sum(1) > 1) & valid  # [B, H, W]


# --------------------------------------------------------------------------- helpers


def _as_label_tensor(name: str, value: object) -> torch.Tensor:
    """Tensor of integer labels from a tensor or NumPy array; floats/bools refused."""
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.integer):
            raise TypeError(
                f"{name}: expected integer class labels, got a NumPy array of dtype {value.dtype}"
                + _argmax_hint(value.dtype.kind == "f")
            )
        value = torch.from_numpy(np.ascontiguousarray(value).astype(np.int64, copy=False))
    if not isinstance(value, torch.Tensor):
        raise TypeError(
            f"{name}: expected a torch.Tensor of integer labels, got {type(value).__name__}"
        )
    if value.dtype == torch.bool or value.is_floating_point() or value.is_complex():
        raise TypeError(
            f"{name}: expected an integer tensor of class labels (e.g. int64), got dtype "
            f"{value.dtype}" + _argmax_hint(value.is_floating_point())
        )
    return value


def _argmax_hint(is_float: bool) -> str:
    return "; for scores or marginals [B, K, H, W] pass .argmax(1)" if is_float else ""
