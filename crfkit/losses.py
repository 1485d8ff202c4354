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

The CRF objectives of the later lectures (piecewise, pseudo-likelihood, maximum likelihood
with Gibbs sampling, the latent CRF's bound) join them here.

References
----------
J. Long, E. Shelhamer, T. Darrell. Fully convolutional networks for semantic segmentation.
CVPR 2015.
S. Zheng et al. Conditional random fields as recurrent neural networks. ICCV 2015.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from crfkit._validate import check_int, check_tensor

__all__ = ["cross_entropy", "marginal_nll"]


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
