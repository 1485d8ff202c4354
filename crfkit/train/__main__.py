"""Command line: ``python -m crfkit.train TASK ...`` trains crfkit's small networks.

::

    python -m crfkit.train segmentation [--models fcn32s fcn8s ...] [--out DIR]
                                        [--steps N] [--device D] [--threads T]

trains with :data:`crfkit.train.RECIPE`, scores the test and val splits with the
float16-rounded weights, prints a table (model, parameters, steps, train time, test mIoU,
pixel accuracy) and writes ``<name>.pt`` into ``crfkit/weights`` (or ``--out``);

::

    python -m crfkit.train crf-as-rnn [--out DIR] [--steps N] [--threads T]

trains the shipped DeepLab jointly with a dense CRF-as-RNN layer
(:data:`crfkit.train.crf_as_rnn.CRF_AS_RNN_RECIPE`), prints the comparison of
:mod:`crfkit.train.crf_as_rnn` (CNN, CNN fine-tuned, post-hoc dense CRF, joint dense and
grid CRF-as-RNN) and writes ``deeplab_crf.pt``.
"""

from __future__ import annotations

import argparse
import time

import torch

from crfkit._validate import check_positive_int
from crfkit.train.crf_as_rnn import CRF_AS_RNN_RECIPE, format_rows, train_crf_as_rnn
from crfkit.train.recipes import RECIPE, format_table, train_segmentation_models


def _crf_as_rnn(args) -> str:
    """Run :func:`~crfkit.train.crf_as_rnn.train_crf_as_rnn`, print its table, save the joint model."""
    from pathlib import Path

    from crfkit.models.checkpoints import save_checkpoint, weights_dir

    model, rows, info = train_crf_as_rnn(steps=args.steps, n_train=args.n_train, n_val=args.n_val,
                                         n_eval=args.n_eval, progress=not args.no_progress)
    print()
    print(f"{info['n_test']} test scenes")
    print(format_rows(rows, info["recipe"]["band"]))
    joint = next(r for r in rows if r["name"] == "CRF-as-RNN (dense)")
    out = weights_dir() if args.out is None else Path(args.out)
    metrics = {"test": {"mean_iou": joint["mean_iou"], "pixel_accuracy": joint["pixel_accuracy"]},
               "rows": rows, "n_test": info["n_test"]}
    path = save_checkpoint(out / "deeplab_crf.pt", model, name="deeplab_crf", kwargs=info.pop("kwargs"),
                           recipe=info["recipe"], metrics=metrics, info=info, threads=torch.get_num_threads())
    return str(path)


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the task, print its table; return 0."""
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
    joint = sub.add_parser(
        "crf-as-rnn",
        help="train the shipped DeepLab jointly with a dense CRF-as-RNN layer (lecture 06)",
        description=(
            "Choose a post-hoc dense CRF on validation scenes, train DeepLab + CRF-as-RNN (dense and grid) and "
            "the CNN alone from the shipped DeepLab, score all on the test scenes, print the table and write "
            "deeplab_crf.pt."
        ),
    )
    joint.add_argument("--out", default=None, help="output folder (default: crfkit/weights in the package)")
    joint.add_argument("--steps", type=int, default=None,
                       help=f"training steps (default: {CRF_AS_RNN_RECIPE.steps})")
    joint.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    joint.add_argument("--n-train", type=int, default=None, help="training scenes (fewer only for smoke tests)")
    joint.add_argument("--n-val", type=int, default=None,
                       help=f"validation scenes for the post-hoc CRF (default: {CRF_AS_RNN_RECIPE.n_val})")
    joint.add_argument("--n-eval", type=int, default=None, help="test scenes to score (default: all 200)")
    joint.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(check_positive_int("--threads", args.threads))
    start = time.perf_counter()
    if args.task == "crf-as-rnn":
        path = _crf_as_rnn(args)
        print(f"\nwrote {path}; total {time.perf_counter() - start:.0f} s, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads")
        return 0
    rows = train_segmentation_models(args.models, out=args.out, steps=args.steps, device=args.device,
                                     progress=not args.no_progress, n_train=args.n_train,
                                     n_eval=args.n_eval)
    print()
    print(format_table(rows))
    print(f"\ntotal {time.perf_counter() - start:.0f} s, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
