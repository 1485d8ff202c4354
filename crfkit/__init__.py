"""crfkit: deep structured models for semantic segmentation in PyTorch.

crfkit implements every model the course teaches (classification and segmentation
networks, grid and fully connected CRFs, mean field, belief propagation, Gibbs
sampling, learned pairwise potentials) as small, batched, differentiable PyTorch
functions that run wherever their inputs live (CPU, CUDA, MPS).

Conventions
-----------
Every function in crfkit uses the same names and shapes; this table is their one home, and
the other modules' docstrings point here:

==================  =============================  ===================================
name                shape                          meaning
==================  =============================  ===================================
``image``           ``[B, C, H, W]`` float         network input; dense-CRF colour
                                                   features in 0..255 units (``srgb``)
``unary``           ``[B, K, H, W]`` float         **energies**, lower = more likely;
                                                   ``unary = -log p``
``pairwise`` (grid) broadcastable to               energy of the label pair (k at p,
                    ``[B, E, K, K, H, W]``         k' at p + offset[e]) for edge class e
``marginals``/``Q`` ``[B, K, H, W]`` float         probabilities, sum to 1 over K
``labels``          ``[B, H, W]`` int64            class index; ``255`` = ignore
``log_z``           ``[B]``                        log partition function
==================  =============================  ===================================

Dimension letters: ``B`` batch, ``C`` image channels, ``K`` labels (classes),
``H``/``W`` height/width, ``E`` edge classes (one per offset ``(dy, dx)``),
``S`` samples, ``N = H * W`` pixels.

The distribution is ``p(y | x) = exp(-E(y, x)) / Z(x)`` with
``E(y) = sum_p unary[y_p] + sum_e sum_p pairwise_e[y_p, y_{p + offset_e}]``.

Models and inference
--------------------
``GridCRF(unary, pairwise, offsets=((0, 1), (1, 0)))`` is a pairwise CRF on the pixel grid
(``potts(K, weight)`` builds the Potts table); ``crf.energy(labels)`` gives ``E(y)``. The
algorithms are functions in ``crfkit.inference`` that take the model: ``exact`` (enumeration,
tiny grids), ``forward_backward`` / ``viterbi`` (chains) and ``mean_field``.

Quick start
-----------
>>> import crfkit as ck
>>> ck.seed_everything(0)
>>> dev = ck.device()          # cuda, then mps, then cpu; CRFKIT_DEVICE overrides
"""

from crfkit.crf import GridCRF, potts
from crfkit.dense import BilateralKernel, DenseCRF, GaussianKernel
from crfkit.potentials import probs_from_unary, unary_energy, unary_from_probs
from crfkit.utils import device, seed_everything

__version__ = "0.1.0"

# Submodules load on first use (``ck.checks``, ``ck.widgets`` ...), so that
# ``import crfkit`` stays light for researchers who only want the models. Every public
# submodule is listed (tests/test_package.py compares the list with the files).
_SUBMODULES = (
    "checks", "course", "crf", "data", "dense", "filters", "inference", "landscape", "losses", "metrics", "models", "nn",
    "permutohedral", "potentials", "summary", "train", "utils", "viz", "widgets",
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"crfkit.{name}")
    raise AttributeError(f"module 'crfkit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))

__all__ = [
    "BilateralKernel",
    "DenseCRF",
    "GaussianKernel",
    "GridCRF",
    "__version__",
    "device",
    "potts",
    "probs_from_unary",
    "seed_everything",
    "unary_energy",
    "unary_from_probs",
]
