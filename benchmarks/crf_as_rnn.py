"""CRF-as-RNN layer: forward + backward time and peak memory per mean-field iteration.

:class:`crfkit.nn.MeanFieldCRF` (the training path: autograd through every iteration) on the
scikit-image astronaut shrunk to 256 x 256 (0..255), batch 1, float32, 21 labels (a soft
assignment of each pixel to 21 random pixel colours, ``cluster_unary`` of ``dense_crf.py``),
pydensecrf's default kernels (Gaussian sxy 3 / w 3, bilateral sxy 80 / srgb 13 / w 10). One
timed call = ``layer(unary, image)`` (build of the lattices / window weights + ``T``
iterations; "forward") then the NLL of ``Q`` against labels (the unary's own argmin; any
labels do) and ``backward()`` to the unary and the layer's parameters ("fwd+bwd").

Per iteration: the configurations of table 1 are timed with ``T = 5`` and ``T = 1``; the cost
of one iteration is the slope ``(t5 - t1) / 4`` and the build (lattices, window weights,
normalisations) is in the intercept ``t1 - slope``. Totals for ``T = 5`` are printed too.

* Table 1: the permutohedral filter, and the conv filter (ConvCRF's truncated window) at
  window 11 with blur 1 and with blur 4 (ConvCRF's setting).
* Table 2: the conv filter against the window (3, 5, 7, 11, 15 at blur 1; 7, 11 at blur 2
  and 4), timed at ``T = 5`` only (``f+b / 5`` includes the build; table 1 gives the slope for
  windows 11), with the predicted size of the window weights: ``window^2 N / blur^2`` float32
  per kernel on the general path (at blur 1 the Gaussian kernel is a separable convolution
  with no stored weights, so one kernel; at blur > 1 both). A closing line fits
  ``peak = a + b window^2`` (blur 1) and compares ``b`` with the prediction.

Memory is that of the tensors: bytes allocated by torch's allocator during the call above
those allocated before it. Two figures: the **peak** during forward + backward (gradients
included), and what is **kept** live at the end of the forward (autograd's saved tensors and
``Q``), the latter measured at ``T = 1`` and ``5`` and split, like the time, into a slope per
iteration and a build intercept. The kept memory is linear in ``T``; the peak is not split
that way, because at ``T = 1`` it can fall after the build's tensors are freed (the conv
filter's window weights go once the last iteration's backward is done, before the separable
Gaussian's convolution backward peaks), so ``(peak5 - peak1) / 4`` would mix the build into
the slope. How memory grows with the window: the window weights (``window^2 N / blur^2``
numbers per kernel on the general path) are built once per forward and kept for backward
once, in the build; the per-iteration memory (``Q``, the filtered ``Q`` of each kernel, the
softmax, all at full resolution) does not depend on the window nor on blur.

On CUDA the peak is ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``
and the kept memory ``memory_allocated()`` after the forward, both minus ``memory_allocated()``
before. On the CPU they come from the ``[memory]`` allocation / free events of
``torch.profiler.profile(profile_memory=True)``: the maximum of their running sum, and the sum
up to the end of a ``record_function`` around the forward; the same quantity as on CUDA, on the
CPU allocator (tracemalloc does not see it; ``ru_maxrss`` in a fresh subprocess would count the
interpreter, glibc's retained heap and page granularity, only ever grows, and would cost an
interpreter and torch import per configuration). The memory run is one extra, untimed
(profiled) call per configuration, at ``T = 1`` and ``5``; memory is deterministic.

Timing follows ``benchmarks/README.md``: all configurations run alternately in each round,
after a warm-up round (the memory run), medians over ``--rounds``. CPU rows with
``--threads`` (default: torch's default), CUDA rows added when a GPU is present. About 35 s
with the defaults on 2 quiet CPU threads (the conv filter is memory-bound: several times that
when other work shares the machine).

Run: ``.venv/bin/python benchmarks/crf_as_rnn.py [--size 256] [--labels 21] [--rounds 3] [--threads N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile, record_function

import crfkit as ck
from crfkit.data.photos import photo
from dense_crf import cluster_unary  # benchmarks/ is on sys.path when a script here runs

MB = 2**20
FORWARD = "crf_as_rnn.forward"  # the profiler annotation that ends the forward
TABLE1 = [("permutohedral", 11, 1), ("conv", 11, 1), ("conv", 11, 4)]  # (filter, window, blur)
TABLE2 = [("conv", w, 1) for w in (3, 5, 7, 11, 15)] + [("conv", w, b) for b in (2, 4) for w in (7, 11)]
ITERATIONS = (1, 5)


def label(filter: str, window: int, blur: int) -> str:
    return filter if filter != "conv" else f"conv w{window} blur{blur}"


def general_kernels(blur: int) -> int:
    """Kernels of pydensecrf's pair that store window weights (see ``crfkit.filters._conv_sum``)."""
    return 1 if blur == 1 else 2  # at blur 1 the Gaussian kernel is a separable convolution


def weight_bytes(window: int, blur: int, h: int, w: int) -> int:
    """Predicted size of the conv filter's window weights, float32, batch 1."""
    return window**2 * math.ceil(h / blur) * math.ceil(w / blur) * 4 * general_kernels(blur)


class Case:
    """One configuration on one device: the layer and its inputs, built once."""

    def __init__(self, filter, window, blur, iterations, unary, image, labels):
        self.layer = ck.nn.MeanFieldCRF(unary.shape[1], iterations=iterations, filter=filter, window=window,
                                        blur=blur, device=unary.device, dtype=unary.dtype)
        self.unary = unary.detach().clone().requires_grad_(True)  # [1, K, H, W]
        self.image, self.labels = image, labels  # [1, 3, H, W], [1, H, W]
        self.cuda = unary.is_cuda

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def __call__(self, after_forward=None) -> tuple[float, float]:
        """(forward ms, forward + backward ms) of one call."""
        self.layer.zero_grad(set_to_none=True)
        self.unary.grad = None
        self.sync()
        start = time.perf_counter()
        with record_function(FORWARD):
            q = self.layer(self.unary, self.image)  # [1, K, H, W]
        self.sync()
        mid = time.perf_counter()
        if after_forward:
            after_forward()
        F.nll_loss(q.clamp_min(1e-30).log(), self.labels).backward()
        self.sync()
        end = time.perf_counter()
        return (mid - start) * 1e3, (end - start) * 1e3

    def memory(self) -> tuple[int, int]:
        """Tensor bytes of one call above those allocated before it: (peak during forward +
        backward, live at the end of the forward: what autograd keeps for backward, and Q)."""
        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            kept = []
            self(lambda: kept.append(torch.cuda.memory_allocated() - before))
            return torch.cuda.max_memory_allocated() - before, kept[0]
        with quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            self()
        events = prof.profiler.kineto_results.events()
        forward_end = max(e.end_ns() for e in events if e.name() == FORWARD)
        allocations = [e for e in events
                       if e.name() == "[memory]" and e.device_type() == torch._C._autograd.DeviceType.CPU]
        live = peak = kept = 0
        for e in sorted(allocations, key=lambda e: e.start_ns()):
            live += e.nbytes()
            peak = max(peak, live)
            if e.start_ns() <= forward_end:
                kept = live
        return peak, kept


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 (kineto logs its start / stop there, from C++)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def fit_line(xs, ys):
    """Least squares ``y = a + b x``: (a, b, R^2)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    ss = sum((y - my) ** 2 for y in ys)
    r2 = 1 - sum((y - a - b * x) ** 2 for x, y in zip(xs, ys)) / ss if ss else 1.0
    return a, b, r2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="longer side of the photo (at most 512, the astronaut's)")
    parser.add_argument("--labels", type=int, default=21)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    image_cpu = 255 * photo("astronaut", max_side=args.size)  # [3, H, W] float32 in 0..255
    _, h, w = image_cpu.shape
    k = args.labels
    unary_cpu = cluster_unary(image_cpu, k)  # [1, K, H, W]
    labels_cpu = unary_cpu.argmin(1)  # [1, H, W]
    configs = list(dict.fromkeys(TABLE1 + TABLE2))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    cases = {}
    for device in devices:
        unary, image, labels = (t.to(device) for t in (unary_cpu, image_cpu[None], labels_cpu))
        for cfg in configs:
            for t in ITERATIONS:
                cases[device, cfg, t] = Case(*cfg, t, unary, image, labels)
    # timed: T = 1 and 5 for table 1, T = 5 only for the rest of table 2 (keeps the default run short)
    timed = [key for key in cases if key[1] in TABLE1 or key[2] == 5]

    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"
    print(f"MeanFieldCRF on the astronaut {h}x{w}, K = {k}, batch 1, float32, pydensecrf's default kernels, "
          f"loss NLL; torch {torch.__version__}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch "
          f"thread(s){gpu}; median of {args.rounds} rounds, all configurations alternately, after a warm-up "
          "round (the memory run)")
    start = time.perf_counter()
    # round 0, the warm-up, is the (untimed, profiled) memory run of every configuration
    memory = {key: case.memory() for key, case in cases.items()}
    peak = {key: m[0] / MB for key, m in memory.items()}
    kept = {key: m[1] / MB for key, m in memory.items()}
    times: dict = {key: [] for key in timed}
    for _ in range(args.rounds):
        for key in timed:
            times[key].append(cases[key]())
    fwd = {key: statistics.median(x[0] for x in v) for key, v in times.items()}
    both = {key: statistics.median(x[1] for x in v) for key, v in times.items()}

    def slope(d, device, cfg):  # per iteration
        return (d[device, cfg, 5] - d[device, cfg, 1]) / 4

    def intercept(d, device, cfg):  # the build
        return d[device, cfg, 1] - slope(d, device, cfg)

    print("\nTable 1: ms per mean-field iteration = slope (T=5 - T=1) / 4, build = intercept; totals at T = 5. "
          "peak = MB of tensors at the peak of forward + backward; kept = MB live after the forward "
          "(autograd's saved tensors), per iteration (slope) and build (intercept)")
    print(f"{'device':>6} {'filter':>18} {'fwd ms/it':>10} {'f+b ms/it':>10} {'f+b build':>10} {'fwd T=5':>9} "
          f"{'f+b T=5':>9} {'peak T=5':>9} {'peak T=1':>9} {'kept/it':>8} {'kept build':>11}")
    for device in devices:
        for cfg in TABLE1:
            key1, key5 = (device, cfg, 1), (device, cfg, 5)
            print(f"{device:>6} {label(*cfg):>18} {slope(fwd, device, cfg):>10.1f} {slope(both, device, cfg):>10.1f} "
                  f"{intercept(both, device, cfg):>10.1f} {fwd[key5]:>9.1f} {both[key5]:>9.1f} {peak[key5]:>9.1f} "
                  f"{peak[key1]:>9.1f} {slope(kept, device, cfg):>8.1f} {intercept(kept, device, cfg):>11.1f}")

    print("\nTable 2: conv filter against the window, T = 5 (f+b / 5 includes the build: compare table 1's slope); "
          "MB as table 1; weights = predicted window weights, window^2 N / blur^2 x 4 B x kernels on the "
          "general path (1 at blur 1, the Gaussian being separable; 2 at blur > 1)")
    print(f"{'device':>6} {'window':>6} {'blur':>4} {'f+b T=5':>9} {'f+b / 5':>8} {'peak T=5':>9} {'kept/it':>8} "
          f"{'kept build':>11} {'weights':>8}")
    for device in devices:
        for cfg in TABLE2:
            _, window, blur = cfg
            key5 = device, cfg, 5
            print(f"{device:>6} {window:>6} {blur:>4} {both[key5]:>9.1f} {both[key5] / 5:>8.1f} {peak[key5]:>9.1f} "
                  f"{slope(kept, device, cfg):>8.1f} {intercept(kept, device, cfg):>11.1f} "
                  f"{weight_bytes(window, blur, h, w) / MB:>8.2f}")
    for device in devices:
        ones = [cfg for cfg in TABLE2 if cfg[2] == 1]
        sq = [cfg[1] ** 2 for cfg in ones]
        per_w2 = weight_bytes(1, 1, h, w) / 1024  # kB per window^2
        a, b, r2 = fit_line(sq, [peak[device, cfg, 5] for cfg in ones])
        ka, kb, _ = fit_line(sq, [intercept(kept, device, cfg) for cfg in ones])
        per_it = [slope(kept, device, cfg) for cfg in ones]
        ta, tb, tr2 = fit_line(sq, [both[device, cfg, 5] / 5 for cfg in ones])
        w11 = " / ".join(f"{peak[device, ('conv', 11, blur), 5]:.0f}" for blur in (1, 2, 4))
        print(f"{device}: conv at blur 1, peak (T=5) = {a:.0f} MB + {b * 1024:.0f} kB x window^2 (R^2 {r2:.3f}; "
              f"the window weights predict {per_w2:.0f} kB x window^2, ratio {b * 1024 / per_w2:.2f}); they are kept "
              f"once per forward ({kb * 1024 / per_w2:.2f} x predicted in the build), not per iteration "
              f"({min(per_it):.1f} to {max(per_it):.1f} MB/it for windows {ones[0][1]} to {ones[-1][1]}); "
              f"window 11 at blur 1 / 2 / 4: {w11} MB; f+b ms per iteration ~ {ta:.0f} + {tb:.1f} x window^2 "
              f"(R^2 {tr2:.2f})")
    print(f"total {time.perf_counter() - start:.0f} s (after the setup)")


if __name__ == "__main__":
    main()
