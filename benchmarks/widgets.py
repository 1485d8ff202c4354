"""The mean-field widget's response time: milliseconds per update at 128 x 128.

:class:`crfkit.widgets.MeanFieldExplorer` on the scikit-image astronaut shrunk to 128 x 128
(0..255), K = 4 soft colour clusters as the unary, pydensecrf's default kernels, 10
iterations. Two kinds of update are timed, as a slider release triggers them (the
``observe`` callbacks run synchronously when ``.value`` is set):

* **iteration slider**: summary line + :func:`~crfkit.widgets.mean_field_figure` + PNG
  encoding, no inference;
* **kernel slider** (the bilateral weight): mean field with history + the free energies of
  ``Q^0 .. Q^T`` (:meth:`~crfkit.widgets.MeanFieldExplorer.run`), then the same redraw.

Each is split into its parts (inference, figure, PNG). Medians over ``--rounds`` after a
warm-up. Outside a kernel the widget's ``Output`` prints to stdout; that is swallowed here.
The target is "well under 1 s per update" (a slider must feel live); nothing is asserted.

Run: ``.venv/bin/python benchmarks/widgets.py [--threads 1] [--rounds 5] [--size 128]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

import torch

from crfkit import widgets
from crfkit.widgets._common import png  # the explorer's PNG step, timed on its own
from crfkit.data.photos import photo
from dense_crf import cluster_unary  # benchmarks/ is on sys.path when a script here runs


def ms(fn) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        fn()
    return (time.perf_counter() - start) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=128, help="longer side of the photo")
    parser.add_argument("--iterations", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    image = 255 * photo("astronaut", max_side=args.size)  # [3, H, W]
    unary = cluster_unary(image, 4)  # [1, K, H, W]
    _, h, w = image.shape
    with contextlib.redirect_stdout(io.StringIO()):
        explorer = widgets.MeanFieldExplorer(image, unary, iterations=args.iterations)
    print(f"astronaut {h}x{w}, K = 4, {args.iterations} iterations, torch {torch.__version__}, "
          f"{args.threads} thread(s), figure {widgets.MEAN_FIELD_FIGSIZE} in at {widgets.MEAN_FIELD_DPI} dpi, "
          f"median of {args.rounds} rounds (+1 warm-up)")

    times: dict[str, list[float]] = {}
    iteration_values = [3, args.iterations]
    weight_values = [5.0, 10.0]
    for r in range(args.rounds + 1):
        row = {
            "iteration slider (redraw)": ms(lambda: setattr(explorer.iteration_slider, "value",
                                                            iteration_values[r % 2])),
            "kernel slider (re-run + redraw)": ms(lambda: setattr(explorer.bilateral_weight_slider, "value",
                                                                  weight_values[r % 2])),
            "  inference (mean field + F)": ms(explorer.run),
        }
        t = explorer.iteration_slider.value
        q = explorer.q_at(t)
        figure = []
        row["  figure"] = ms(lambda: figure.append(widgets.mean_field_figure(
            explorer.image, explorer.unary, q, explorer.energies, t, 1)))
        row["  PNG"] = ms(lambda: png(figure[0]))
        if r:  # round 0 is the warm-up
            for name, value in row.items():
                times.setdefault(name, []).append(value)
    for name, values in times.items():
        print(f"{name:<34} {statistics.median(values):>7.0f} ms   (min {min(values):.0f}, max {max(values):.0f})")


if __name__ == "__main__":
    main()
