"""Inference on crfkit's CRF models: one function per algorithm, each taking the model object.

=========================  ==========================================  ============================
function                   computes                                    on
=========================  ==========================================  ============================
:func:`exact`              marginals, log Z, MAP by enumeration        tiny ``GridCRF`` (K^N states)
:func:`forward_backward`   exact marginals, log Z (sum-product)        ``1 x W`` / ``H x 1`` chains
:func:`viterbi`            exact MAP labelling (min-sum)               chains
:func:`mean_field`         naive mean-field marginals                  ``GridCRF``, ``DenseCRF``
=========================  ==========================================  ============================

:func:`labellings` enumerates labellings in the order :func:`exact` visits them. The dense
CRF's message passing (Gaussian filtering) lives in :mod:`crfkit.filters`; the model's own
geometry (edge windows, colour classes, energies of many labellings) in :class:`~crfkit.GridCRF`.

Every function is a pure, batched, differentiable function of the potentials: it reads
``model.unary [B, K, H, W]`` and ``model.pairwise``, returns new tensors and keeps no state.
:func:`exact` is the oracle the approximate algorithms are tested against.
"""

from crfkit.inference.exact import (
    ChainResult,
    ExactResult,
    ViterbiResult,
    exact,
    forward_backward,
    labellings,
    viterbi,
)
from crfkit.inference.mean_field import (
    dense_mean_field,
    grid_messages,
    mean_field,
    mean_field_free_energy,
)

__all__ = [
    "ChainResult",
    "ExactResult",
    "ViterbiResult",
    "dense_mean_field",
    "exact",
    "forward_backward",
    "labellings",
    "grid_messages",
    "mean_field",
    "mean_field_free_energy",
    "viterbi",
]
