"""Small segmentation networks trained on the synthetic scenes, shipped with crfkit.

>>> from crfkit.models import pretrained
>>> model = pretrained("fcn8s")            # eval mode, float32, on the CPU  # doctest: +SKIP
>>> scores = model(images)                 # [B, 3, 64, 64] -> [B, 10, 64, 64]  # doctest: +SKIP

The checkpoints in ``crfkit/weights/`` are produced by ``python -m crfkit.train
segmentation`` (:func:`crfkit.train.train_pretrained` retrains one in a notebook with the
same data, seeds and steps). Every model is trained with the same recipe
(:data:`crfkit.train.RECIPE`: the 1000 64x64 training scenes with horizontal flips, AdamW
with peak learning rate 2e-3, "poly" decay and weight decay 1e-4, 2000 steps of 16 images,
seed 0; nothing tuned on the test split) and scored on the 200 test scenes at 64x64 with
its weights rounded to float16, as they are stored.

Stated bars (the minimums ``tests/test_pretrained.py`` checks on all 200 test scenes at
64x64) and what the shipped checkpoints measure (2000 steps, seed 0; the same numbers are
in each checkpoint's ``metrics``, see :func:`pretrained_info`; val = the 200 validation
scenes; train time on 2 CPU threads of a shared machine, torch 2.13):

==========  ===================  ==========  =========  ===========  =========  ========  ==========
name        builder              bar: mIoU   bar: acc.  test mIoU    test acc.  val mIoU  train time
==========  ===================  ==========  =========  ===========  =========  ========  ==========
fcn32s      ``fcn32s_small()``   0.27        0.72       0.301        0.747      0.299     64 s
fcn16s      ``fcn16s_small()``   0.40        0.83       0.438        0.854      0.440     57 s
fcn8s       ``fcn8s_small()``    0.62        0.90       0.660        0.921      0.664     56 s
segnet      ``segnet_small()``   0.75        0.93       0.809        0.952      0.805     99 s
deeplab     ``deeplab_small()``  0.60        0.90       0.646        0.918      0.649     66 s
==========  ===================  ==========  =========  ===========  =========  ========  ==========

Margins of test mIoU (:data:`MARGINS`): FCN-16s beats FCN-32s by at least 0.10 (measured
0.137), FCN-8s beats FCN-16s by 0.15 (0.222) and FCN-32s by 0.30 (0.359); DeepLab beats
FCN-32s by 0.30 (0.345).

What the numbers show: FCN-32s sees a 2x2 score map per 64x64 scene, upsampled x32, and
never finds a thing (IoU 0.00 for car, boat, person and rider, 0.03 for horse); each skip
brings finer detail (FCN-8s: 0.35-0.52 on those classes). DeepLab (output stride 8, 8x8
map, bilinear x8) lands next to FCN-8s (0.646 vs 0.660), not above it, on these small
images: both predict on an 8x8 grid, and the ASPP's wider context buys little when the
whole image is 64 pixels wide. SegNet, whose decoder returns to full resolution through
the pooling switches, is best (0.809; 0.83-0.86 on car and boat).

``deeplab_crf`` (:data:`JOINT`; ``deeplab_crf_small()``, lecture 06) is the shipped DeepLab
with a dense CRF-as-RNN layer on top, trained jointly by ``python -m crfkit.train crf-as-rnn``
(:data:`crfkit.train.crf_as_rnn.CRF_AS_RNN_RECIPE`: 300 AdamW steps of 8 scenes, learning
rates 1e-4 for the CNN and 1e-2 for the CRF, 5 mean-field iterations, the CRF started from the
post-hoc parameters chosen on 48 validation scenes). On the 200 test scenes (its ``metrics``
hold the whole table; 2 CPU threads, 113 s for the whole comparison):

=====================  =========  =========  ===============
row                    test mIoU  test acc.  band-2 accuracy
=====================  =========  =========  ===============
CNN (``deeplab``)      0.646      0.918      0.802
CNN fine-tuned         0.649      0.918      0.803
CNN + dense CRF        0.684      0.941      0.860
CRF-as-RNN (dense)     0.778      0.949      0.878
CRF-as-RNN (grid)      0.650      0.918      0.803
=====================  =========  =========  ===============

A checkpoint is a ``dict`` (``torch.save``, loadable with ``weights_only=True``) with
``name``, ``builder`` and ``kwargs`` (how to rebuild the network), ``recipe`` (how it was
trained), ``state_dict`` (floating tensors in ``float16``; the fixed bilinear layer of FCN
is left out, it is rebuilt exactly), ``metrics`` (``"test"`` and ``"val"`` scores of the
rounded weights: ``mean_iou``, ``pixel_accuracy``, per-class ``iou``), ``train_time_s``
and ``torch_version``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = [
    "BARS",
    "JOINT",
    "MARGINS",
    "PRETRAINED",
    "build",
    "checkpoint_path",
    "load_checkpoint",
    "pretrained",
    "pretrained_info",
    "save_checkpoint",
    "weights_dir",
]

#: Names of the shipped checkpoints.
PRETRAINED = ("fcn32s", "fcn16s", "fcn8s", "segnet", "deeplab")

#: Networks with a CRF-as-RNN layer on top, trained jointly from a checkpoint of
#: :data:`PRETRAINED` (``python -m crfkit.train crf-as-rnn``; lecture 06).
JOINT = ("deeplab_crf",)

#: Builder (a function of :mod:`crfkit.models`) behind each name.
BUILDERS = {
    "fcn32s": "fcn32s_small",
    "fcn16s": "fcn16s_small",
    "fcn8s": "fcn8s_small",
    "segnet": "segnet_small",
    "deeplab": "deeplab_small",
    "deeplab_crf": "deeplab_crf_small",
}

#: Minimum test mean IoU and pixel accuracy of each shipped checkpoint (the table above).
BARS = {
    "fcn32s": (0.27, 0.72),
    "fcn16s": (0.40, 0.83),
    "fcn8s": (0.62, 0.90),
    "segnet": (0.75, 0.93),
    "deeplab": (0.60, 0.90),
}

#: Minimum test-mIoU margins ``(better, worse, margin)``.
MARGINS = (
    ("fcn16s", "fcn32s", 0.10),
    ("fcn8s", "fcn16s", 0.15),
    ("fcn8s", "fcn32s", 0.30),
    ("deeplab", "fcn32s", 0.30),
)

_FORMAT = "crfkit-segmentation-checkpoint/1"


def _check_name(name: object) -> str:
    if name not in BUILDERS:
        raise ValueError(f"name: expected one of {list(PRETRAINED + JOINT)}, got {name!r}")
    return name


def weights_dir() -> Path:
    """The folder of the shipped checkpoints, ``crfkit/weights``."""
    return Path(__file__).resolve().parent.parent / "weights"


def checkpoint_path(name: str) -> Path:
    """Where the checkpoint of ``name`` lives: ``crfkit/weights/<name>.pt``."""
    return weights_dir() / f"{_check_name(name)}.pt"


def build(name: str, **kwargs) -> nn.Module:
    """A freshly initialised network of the kind behind ``name`` (``num_classes=10`` etc.)."""
    import crfkit.models as models

    return getattr(models, BUILDERS[_check_name(name)])(**kwargs)


def _fixed_parameters(model: nn.Module) -> set[str]:
    """Names of the parameters with ``requires_grad=False`` (rebuilt exactly, not stored)."""
    return {n for n, p in model.named_parameters() if not p.requires_grad}


def rounded_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state dict on the CPU, floating tensors in float16, fixed weights left out."""
    fixed = _fixed_parameters(model)
    return {
        k: (v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu()).clone()
        for k, v in model.state_dict().items()
        if k not in fixed
    }


def load_state(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """Load a (possibly float16) state dict into ``model``, casting to the model's dtype.

    Only the fixed (``requires_grad=False``) parameters may be missing.
    """
    current = model.state_dict()
    cast = {k: v.to(current[k].dtype) if k in current and v.is_floating_point() else v
            for k, v in state_dict.items()}
    missing, unexpected = model.load_state_dict(cast, strict=False)
    missing = set(missing) - _fixed_parameters(model)
    if missing or unexpected:
        raise ValueError(
            f"state_dict: expected the keys of {type(model).__name__}, got "
            f"{len(missing)} missing ({sorted(missing)[:3]}) and {len(unexpected)} unexpected "
            f"({sorted(unexpected)[:3]})"
        )
    return model


def save_checkpoint(path: str | Path, model: nn.Module, *, name: str, kwargs: dict | None = None,
                    recipe: dict | None = None, metrics: dict | None = None, **extra) -> Path:
    """Write ``model`` (weights rounded to float16) and its metadata to ``path``.

    Parameters
    ----------
    path : str or Path
        Target file (``.pt``); parent folders are created.
    model : nn.Module
        A network built by ``build(name, **kwargs)``.
    name : str
        One of :data:`PRETRAINED` or :data:`JOINT`.
    kwargs : dict, optional
        Builder arguments (default ``{}``).
    recipe, metrics : dict, optional
        How it was trained and what it scores (measured on the rounded weights).
    **extra
        Further entries (``train_time_s``, ...).

    Returns
    -------
    Path
    """
    _check_name(name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "format": _FORMAT,
        "name": name,
        "builder": BUILDERS[name],
        "kwargs": dict(kwargs or {}),
        "recipe": dict(recipe or {}),
        "metrics": dict(metrics or {}),
        "state_dict": rounded_state_dict(model),
        "dtype": "float16",
        "torch_version": str(torch.__version__),
        **extra,
    }
    torch.save(checkpoint, path)
    return path


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> tuple[nn.Module, dict]:
    """Rebuild the network stored at ``path``: ``(model in eval mode, float32; metadata)``.

    The metadata is the checkpoint dict without ``state_dict``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: expected a checkpoint file, got {str(path)!r}, which does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != _FORMAT:
        raise ValueError(f"path: expected a crfkit segmentation checkpoint ({_FORMAT}), got {str(path)!r}")
    model = build(checkpoint["name"], **checkpoint["kwargs"])
    load_state(model, checkpoint["state_dict"])
    meta = {k: v for k, v in checkpoint.items() if k != "state_dict"}
    return model.to(device or "cpu").eval(), meta


def _existing(name: str) -> Path:
    path = checkpoint_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"name: the checkpoint of {name!r} is missing: expected {path}. Create it with "
            + (f"`python -m crfkit.train crf-as-rnn` (a few minutes on a CPU)" if name in JOINT else
               f"`python -m crfkit.train segmentation --models {name}` (a few minutes on a CPU), "
               f"or train it in memory with crfkit.train.train_pretrained({name!r})")
        )
    return path


def pretrained(name: str, device: str | torch.device | None = None) -> nn.Module:
    """The shipped network ``name``, in eval mode, float32, on ``device`` (default CPU).

    Parameters
    ----------
    name : {"fcn32s", "fcn16s", "fcn8s", "segnet", "deeplab", "deeplab_crf"}
    device : str or torch.device, optional

    Returns
    -------
    nn.Module
        ``[B, 3, H, W]`` images in 0..1 -> ``[B, 10, H, W]`` scores (trained at 64x64);
        for ``"deeplab_crf"`` (a :class:`~crfkit.models.CNNCRF`) the CRF's marginals.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the names).
    FileNotFoundError
        If the checkpoint file is missing (the message gives the command that makes it).
    """
    return load_checkpoint(_existing(_check_name(name)), device)[0]


def pretrained_info(name: str) -> dict:
    """The metadata of the shipped checkpoint ``name``: recipe, metrics, train time, versions."""
    return load_checkpoint(_existing(_check_name(name)))[1]
