"""Learning objectives: what :func:`crfkit.train.fit` minimises.

Every loss here takes the model's output and the labels and returns a differentiable tensor.
Conventions are crfkit's: scores are **logits** (higher = more likely; ``-scores`` are the
unary energies of a CRF), labels are ``int64`` class indices and ``255`` marks a pixel that
is not scored.

* :func:`cross_entropy`: the per-pixel multinomial logistic loss of FCN (Long et al. 2015,
  Sec. 3), for classifiers (``[B, K]`` scores) and segmentation networks (``[B, K, H, W]``)::

      loss = -(1 / |P|) sum_{p in P} log softmax_k(scores[:, p])[y_p]

  over the set ``P`` of non-ignored positions of the whole batch.
* :func:`marginal_nll`: the same mean negative log-likelihood for a model that outputs
  probabilities, such as the mean-field marginals ``Q`` of a CRF-as-RNN layer (Zheng et al.
  2015 train with it)::

      loss = -(1 / |P|) sum_{p in P} log Q_p(y_p)

* :func:`piecewise_nll`: the piecewise objective of Lin et al. (2016) on a
  :class:`~crfkit.GridCRF`: every factor is trained as its own softmax, so no inference is
  needed during training (lecture 07)::

      loss(image) = sum_p -log softmax_k(-unary_p)[y_p]
                  + sum_e sum_p -log softmax_(k,k')(-pairwise_e(p))[y_p, y_(p + o_e)]

  the second sum over the edges whose two ends lie on the grid; pixels labelled
  ``ignore_index``, and every edge touching one, are left out. (Energies: ``softmax(-E)``.)

The CRF objectives of the later lectures (pseudo-likelihood, maximum likelihood with Gibbs
sampling, the latent CRF's bound) join them here.

References
----------
J. Long, E. Shelhamer, T. Darrell. Fully convolutional networks for semantic segmentation.
CVPR 2015.
S. Zheng et al. Conditional random fields as recurrent neural networks. ICCV 2015.
G. Lin, C. Shen, A. van den Hengel, I. Reid. Efficient piecewise training of deep structured
models for semantic segmentation. CVPR 2016 (Sec. 5, eq. 12-13).
C. Sutton, A. McCallum. Piecewise training for structured prediction. Machine Learning 77, 2009.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from crfkit._validate import check_instance, check_int, check_label_range, check_tensor
from crfkit.crf import GridCRF

__all__ = ["cross_entropy", "marginal_nll", "piecewise_nll"]


def _check_scores_and_labels(name: str, scores: object, labels: object) -> None:
    check_tensor(name, scores, floating=True, dims="[B, K, *S]")
    if scores.dim() < 2:
        raise ValueError(f"{name}: expected a tensor of shape [B, K, *S], got shape {list(scores.shape)}")
    check_tensor("labels", labels, dtype=torch.int64, dims="[B, *S]")
    expected = [scores.shape[0], *scores.shape[2:]]
    if list(labels.shape) != expected:
        raise ValueError(f"labels: expected shape {expected} ({name}' shape without its label axis K), "
                         f"got {list(labels.shape)}")


def cross_entropy(scores: torch.Tensor, labels: torch.Tensor, *,
                  ignore_index: int | None = 255) -> torch.Tensor:
    """Mean negative log-likelihood of ``labels`` under ``softmax(scores)`` over the label axis.

    Parameters
    ----------
    scores : Tensor of shape ``[B, K]`` or ``[B, K, H, W]``, float
        Logits (any number of trailing spatial dims ``*S``).
    labels : Tensor of shape ``[B]`` or ``[B, H, W]``, int64
        ``[B, *S]``: class per position; ``ignore_index`` positions do not count.
    ignore_index : int or None
        Label of positions left out of the sum and of the count ``|P|``; ``None`` scores every
        position (for classifiers with more than 255 classes).

    Returns
    -------
    Tensor of shape ``[]``
        ``-(1/|P|) sum_{p in P} log softmax_k(scores[:, p])[y_p]``; NaN when every position is
        ignored (0/0), which :func:`crfkit.train.fit` stops on. Cost ``O(B K |S|)``.

    Raises
    ------
    TypeError, ValueError
        Scores that are not a floating-point tensor with a label axis, labels that are not
        ``int64`` or whose shape is not ``scores``' without its label axis.
    """
    _check_scores_and_labels("scores", scores, labels)
    # torch's own "ignore nothing" is -100, which no class index equals
    ignore_index = -100 if ignore_index is None else check_int("ignore_index", ignore_index)
    return F.cross_entropy(scores, labels, ignore_index=ignore_index)


def marginal_nll(q: torch.Tensor, labels: torch.Tensor, *, ignore_index: int | None = 255) -> torch.Tensor:
    """Mean negative log-probability of ``labels`` under per-position distributions ``q``.

    Parameters
    ----------
    q : Tensor of shape ``[B, K, *S]``, float
        Probabilities over the label axis (e.g. :class:`crfkit.nn.MeanFieldCRF`'s output).
        Probabilities below the dtype's smallest normal number are raised to it before the
        log (a marginal that underflowed to 0 gives a large finite loss, not inf).
    labels : Tensor of shape ``[B, *S]``, int64
    ignore_index : int or None
        As :func:`cross_entropy`.

    Returns
    -------
    Tensor of shape ``[]``
        ``-(1/|P|) sum_{p in P} log q[:, p][y_p]``; equals :func:`cross_entropy` of
        ``log q``. Cost ``O(B K |S|)``.
    """
    _check_scores_and_labels("q", q, labels)
    ignore_index = -100 if ignore_index is None else check_int("ignore_index", ignore_index)
    log_q = torch.log(q.clamp_min(torch.finfo(q.dtype).tiny))  # [B, K, *S]
    return F.nll_loss(log_q, labels, ignore_index=ignore_index)


def piecewise_nll(crf: GridCRF, labels: torch.Tensor, *, ignore_index: int | None = 255) -> torch.Tensor:
    """Lin et al.'s piecewise negative log-likelihood of ``labels`` under a grid CRF, per image.

    Each unary factor is a distribution ``softmax_k(-unary_p)`` over the ``K`` labels of its
    pixel, each pairwise factor a distribution ``softmax_(k,k')(-pairwise_e(p))`` over the
    ``K^2`` label pairs of its edge; the loss adds their negative log-likelihoods::

        sum_p -log softmax_k(-unary_p)[y_p]
          + sum_e sum_p -log softmax_(k,k')(-pairwise_e(p))[y_p, y_(p + o_e)]

    (the table of edge ``p -> p + o_e`` read at its source ``p``, crfkit's convention). No
    inference is needed: its gradient costs one softmax per factor. Without ignored pixels it
    bounds the CRF's negative log-likelihood ``E(y) + log Z`` from above, because
    ``Z = sum_y prod_f exp(-E_f(y_f)) <= prod_f sum_(y_f) exp(-E_f(y_f))`` (every factor summed
    on its own; Sutton & McCallum 2009).

    Parameters
    ----------
    crf : GridCRF
        Unary ``[B, K, H, W]`` and pairwise energies (shared, per edge class or per edge).
    labels : Tensor of shape ``[B, H, W]``, int64
        On ``crf``'s device; ``ignore_index`` pixels are left out together with every edge
        that touches one.
    ignore_index : int or None

    Returns
    -------
    Tensor of shape ``[B]``
        Differentiable in the unary and the pairwise energies. Cost O(B (N K + |edges| K^2)).

    Raises
    ------
    TypeError, ValueError
        A model that is not a GridCRF, labels that are not ``[B, H, W]`` int64 with the CRF's
        ``B, H, W``, or labels outside ``0..K-1`` (other than ``ignore_index``).
    """
    check_instance("crf", crf, GridCRF, "piecewise_nll")
    b, k, h, w = crf.shape
    check_tensor("labels", labels, ndim=3, dtype=torch.int64, dims="[B, H, W]")
    if tuple(labels.shape) != (b, h, w):
        raise ValueError(f"labels: expected shape [B, H, W] = {[b, h, w]} (those of the CRF), got {list(labels.shape)}")
    if labels.device != crf.unary.device:
        raise ValueError(f"labels: expected device {crf.unary.device} (that of the CRF), got {labels.device}")
    check_label_range("labels", labels, k, ignore_index)
    valid = labels != ignore_index if ignore_index is not None else torch.ones_like(labels, dtype=torch.bool)
    y = torch.where(valid, labels, 0)  # [B, H, W], ignored pixels read label 0, then masked
    # unary factors: -log softmax_k(-unary_p)[y_p]
    log_p = torch.log_softmax(-crf.unary, dim=1).gather(1, y[:, None]).squeeze(1)  # [B, H, W]
    total = -torch.where(valid, log_p, 0.0).flatten(1).sum(1)  # [B]
    # pairwise factors: -log softmax_(k,k')(-table)[y_p, y_q] over the edges (p, q = p + o_e)
    for e in range(crf.num_edge_classes):
        (sr, sc), (dr, dc) = crf.edge_slices(e)
        if sr.stop <= sr.start or sc.stop <= sc.start:
            continue  # no edge of this class on the grid
        table = crf.source_tables(e)  # [B', K, K, h' or 1, w' or 1]
        log_pair = torch.log_softmax(-table.flatten(1, 2), dim=1)  # [B', K K, h' or 1, w' or 1]
        pair = y[:, sr, sc] * k + y[:, dr, dc]  # [B, h', w'], index of (y_p, y_q)
        both = valid[:, sr, sc] & valid[:, dr, dc]  # [B, h', w']
        log_pair = log_pair.expand(b, k * k, *pair.shape[1:])  # [B, K K, h', w'] (a view)
        picked = log_pair.gather(1, pair[:, None]).squeeze(1)  # [B, h', w']
        total = total - torch.where(both, picked, 0.0).flatten(1).sum(1)
    return total
