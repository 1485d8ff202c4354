"""Dense-CRF mean field end to end: crfkit (each feasible filter) against pydensecrf2.

The scikit-image astronaut at 512 x 512; pydensecrf's default kernels (Gaussian sxy 3 / w 3,
bilateral sxy 80 / srgb 13 / w 10, symmetric normalisation); 21 and 2 labels; 5 and 10
iterations. One timed call = build the model (features, lattices / window weights,
normalisations) + the iterations + argmax, as one would call pydensecrf
(``DenseCRF2D``, ``setUnaryEnergy``, two ``addPairwise*``, ``inference``, argmax). crfkit and
pydensecrf run alternately in the same process, after a warm-up; medians and the ratio
crfkit / pydensecrf are printed (< 1 means crfkit is faster). ``filter="exact"`` (O(N^2),
N = 262144) is not feasible at this size and is left out; ``"conv"`` is ConvCRF's truncated
window (a different, local model), timed for context.

Run: ``.venv/bin/python benchmarks/dense_crf.py [--threads 1 2] [--rounds 3] [--no-conv]`` (by default
the CPU rows run with 1 thread and with all of torch's threads, and a CUDA row is added when a GPU
is present; pydensecrf's C++ is single-threaded).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import crfkit as ck
from crfkit.data.photos import photo
from crfkit.inference import mean_field

try:
    import numpy as np
    import pydensecrf.densecrf as dcrf
except ImportError:  # the reference is optional (pip install pydensecrf2)
    dcrf = None


def cluster_unary(image: torch.Tensor, k: int) -> torch.Tensor:
    """``[1, K, H, W]`` float32 unary: soft assignment of each pixel to K random pixel colours."""
    g = torch.Generator().manual_seed(0)
    pixels = image.float().reshape(3, -1).T  # [N, 3]
    centres = pixels[torch.randperm(pixels.shape[0], generator=g)[:k]]  # [K, 3]
    p = torch.softmax(-torch.cdist(pixels, centres) / 20, 1) * 0.6 + 0.4 / k  # [N, K]
    return (-p.log()).T.reshape(1, k, *image.shape[1:]).contiguous()


def run_crfkit(unary, image, iterations, filter, window):
    crf = ck.DenseCRF(unary, image)
    with torch.no_grad():
        labels = mean_field(crf, iterations, filter=filter, window=window).argmax(1)  # [1, H, W]
    if labels.is_cuda:
        torch.cuda.synchronize()
    return labels.cpu()


def run_reference(unary_np, rgb, k, h, w, iterations):
    d = dcrf.DenseCRF2D(w, h, k)
    d.setUnaryEnergy(unary_np)
    d.addPairwiseGaussian(sxy=3, compat=3)
    d.addPairwiseBilateral(sxy=80, srgb=13, rgbim=rgb, compat=10)
    return np.argmax(np.array(d.inference(iterations)), axis=0).reshape(h, w)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1e3, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="torch CPU thread counts to run (default: 1 and all cores; pydensecrf uses one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-conv", action="store_true", help="skip the (slow on CPU) conv filter")
    parser.add_argument("--window", type=int, default=7, help="ConvCRF window (its default filter size is 7)")
    parser.add_argument("--labels", type=int, nargs="+", default=[21, 2])
    parser.add_argument("--iterations", type=int, nargs="+", default=[5, 10])
    args = parser.parse_args()
    threads = args.threads or sorted({1, torch.get_num_threads()})
    devices = [("cpu", t) for t in threads] + ([("cuda", None)] if torch.cuda.is_available() else [])

    image_u8 = photo("astronaut", dtype=torch.uint8)  # [3, 512, 512]
    image = image_u8[None].float()  # [1, 3, H, W] in 0..255
    _, _, h, w = image.shape
    rgb = np.ascontiguousarray(image_u8.permute(1, 2, 0).numpy()) if dcrf else None
    filters = ["permutohedral"] + ([] if args.no_conv else ["conv"])
    print(f"astronaut {h}x{w}, torch {torch.__version__}, CPU threads {threads}"
          f"{', ' + torch.cuda.get_device_name() if torch.cuda.is_available() else ''}, "
          f"pydensecrf: {'yes (1 thread)' if dcrf else 'not installed'}, rounds {args.rounds} (+1 warm-up); "
          "ratio = crfkit / pydensecrf, < 1: crfkit faster")
    print(f"{'device':>8} {'K':>3} {'iters':>5} {'crfkit filter':>18} {'crfkit ms':>10} {'pydensecrf ms':>14} "
          f"{'ratio':>6} {'speed-up':>8} {'labels agree':>13}")
    for k in args.labels:
        unary_cpu = cluster_unary(image_u8, k)
        unary_np = np.ascontiguousarray(unary_cpu[0].reshape(k, -1).numpy()) if dcrf else None
        for iterations in args.iterations:
            for device, nthreads in devices:
                if nthreads:
                    torch.set_num_threads(nthreads)
                unary, img = unary_cpu.to(device), image.to(device)
                for filter in filters:
                    ours, ref = [], []
                    for r in range(args.rounds + 1):
                        t_ours, lab = timed(lambda: run_crfkit(unary, img, iterations, filter, args.window))
                        if dcrf:
                            t_ref, lab_ref = timed(lambda: run_reference(unary_np, rgb, k, h, w, iterations))
                        if r:  # round 0 is the warm-up
                            ours.append(t_ours)
                            if dcrf:
                                ref.append(t_ref)
                    name = filter if filter != "conv" else f"conv (window {args.window})"
                    where = f"cpu x{nthreads}" if nthreads else device
                    m_ours = statistics.median(ours)
                    if dcrf:
                        agree = float((lab[0].numpy() == lab_ref).mean())
                        m_ref = statistics.median(ref)
                        print(f"{where:>8} {k:>3} {iterations:>5} {name:>18} {m_ours:>10.0f} {m_ref:>14.0f} "
                              f"{m_ours / m_ref:>6.2f} {m_ref / m_ours:>7.2f}x {agree:>13.4f}")
                    else:
                        print(f"{where:>8} {k:>3} {iterations:>5} {name:>18} {m_ours:>10.0f} {'-':>14} {'-':>6} {'-':>8} {'-':>13}")


if __name__ == "__main__":
    main()
