"""Command line: ``python -m crfkit.train TASK ...`` trains crfkit's small networks.

::

    python -m crfkit.train segmentation [--models fcn32s fcn8s ...] [--out DIR]
                                        [--steps N] [--device D] [--threads T]

trains with :data:`crfkit.train.RECIPE`, scores the test and val splits with the
float16-rounded weights, prints a table (model, parameters, steps, train time, test mIoU,
pixel accuracy) and writes ``<name>.pt`` into ``crfkit/weights`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import time

import torch

from crfkit._validate import check_positive_int
from crfkit.train.recipes import RECIPE, format_table, train_segmentation_models


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
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(check_positive_int("--threads", args.threads))
    start = time.perf_counter()
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
