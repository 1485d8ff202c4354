"""The from-scratch layers of crfkit.nn.functional against torch's own operations.

Each row times crfkit's layer and the torch operation it re-implements alternately in the
same process (a warm-up, then ROUNDS rounds of REPEATS calls each; the best round counts)
and prints the ratio crfkit / torch, forward only and forward + backward. Small sizes (an
[8, 16, 32, 32] float32 input, 3x3 kernels; the matrix form on [8, 4, 16, 16], as its dense
matrix grows with the square of the image), so it runs in seconds. The from-scratch layers
are for teaching and tests: torch's are one fused kernel, ours are a loop over kernel taps.

One intra-op thread by default (``--threads N`` to change): on a machine whose cores other
processes keep busy, threads that wait for each other make these small products take ten
times longer or more, on both sides, and the run takes minutes instead of seconds.

Run: .venv/bin/python benchmarks/from_scratch_layers.py [--threads N]
"""

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from crfkit.nn import functional as nf

ROUNDS, REPEATS = 7, 5


def _call(fn, backward):
    def run():
        out = fn()
        if backward:
            out.sum().backward()
    return run


def best_ms(ours, theirs, backward=False):
    """Best time per call of ``ours`` and ``theirs``, measured alternately."""
    runs = [_call(ours, backward), _call(theirs, backward)]
    for run in runs:  # warm-up
        run()
    best = [float("inf"), float("inf")]
    for _ in range(ROUNDS):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            for _ in range(REPEATS):
                run()
            best[i] = min(best[i], (time.perf_counter() - start) / REPEATS)
    return best[0] * 1e3, best[1] * 1e3


def cases():
    gen = torch.Generator().manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=gen).requires_grad_(True)

    x, x_small = randn(8, 16, 32, 32), randn(8, 4, 16, 16)
    w_t, w_t_small = randn(16, 16, 3, 3), randn(4, 4, 3, 3)  # [C_in, C_out, 3, 3]
    w_c = randn(16, 16, 3, 3)  # [C_out, C_in, 3, 3]
    up = dict(stride=2, padding=1, output_padding=1)
    for method in ("zero_insertion", "scatter"):
        yield (f"conv_transpose2d {method}", "x2, [8,16,32,32]",
               lambda m=method: nf.conv_transpose2d(x, w_t, **up, method=m),
               lambda: F.conv_transpose2d(x, w_t, **up))
    yield ("conv_transpose2d matrix", "x2, [8,4,16,16]",
           lambda: nf.conv_transpose2d(x_small, w_t_small, **up, method="matrix"),
           lambda: F.conv_transpose2d(x_small, w_t_small, **up))
    yield ("dilated_conv2d", "d=2, [8,16,32,32]",
           lambda: nf.dilated_conv2d(x, w_c, padding=2, dilation=2),
           lambda: F.conv2d(x, w_c, padding=2, dilation=2))
    pooled, idx = F.max_pool2d(x.detach(), 2, return_indices=True)
    pooled.requires_grad_(True)
    yield ("max_unpool2d", "2x2, [8,16,16,16]",
           lambda: nf.max_unpool2d(pooled, idx, 2), lambda: F.max_unpool2d(pooled, idx, 2))
    yield ("nearest_unpool2d", "x2, [8,16,16,16]",
           lambda: nf.nearest_unpool2d(pooled),
           lambda: F.interpolate(pooled, scale_factor=2, mode="nearest"))
    nail = torch.zeros(16, 1, 2, 2)
    nail[:, :, 0, 0] = 1
    yield ("bed_of_nails_unpool2d", "x2, [8,16,16,16]",
           lambda: nf.bed_of_nails_unpool2d(pooled),
           lambda: F.conv_transpose2d(pooled, nail, stride=2, groups=16))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    torch.set_num_threads(parser.parse_args().threads)
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} thread{'' if threads == 1 else 's'}, "
          f"{platform.processor() or platform.machine()}, float32, best of {ROUNDS} rounds "
          f"of {REPEATS} calls, crfkit and torch alternately")
    header = (f"{'layer':<33}{'size':<20}{'ours ms':>9}{'torch ms':>10}{'ratio':>8}"
              f"{'fwd+bwd ours':>14}{'torch':>8}{'ratio':>8}")
    print(header)
    print("-" * len(header))
    for name, size, ours, theirs in cases():
        fwd = best_ms(ours, theirs)
        both = best_ms(ours, theirs, backward=True)
        print(f"{name:<33}{size:<20}{fwd[0]:>9.2f}{fwd[1]:>10.2f}{fwd[0] / fwd[1]:>8.1f}"
              f"{both[0]:>14.2f}{both[1]:>8.2f}{both[0] / both[1]:>8.1f}")
    print("bed of nails is compared with its equivalent transposed convolution "
          "(one-hot 2x2 kernel, stride 2, groups = C)")
