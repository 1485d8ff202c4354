"""The permutohedral lattice of crfkit at 512x512 (scikit-image's astronaut).

Times, for the dense CRF's two kernels (bilateral: 5-D features x/80, y/80, rgb/13 with
colours in 0..255; spatial: 2-D features x/3, y/3), the lattice build (once per image) and
one filter call (every mean-field iteration) with C = 21 and C = 2 channels; median of
ROUNDS runs after a warm-up, on 1 and 2 intra-op threads. The spatial kernel is also timed as
a separable Gaussian convolution (truncated at 4 sigma, exact up to truncation), which needs
no lattice; the lattice build and a separable convolution are measured alternately in the
same run, so their ratio is meaningful even where absolute times drift.

pydensecrf2 is compared when it is importable; otherwise the reference figures of
shared/PERFORMANCE.md are printed as context (C++ code of Krähenbühl & Koltun, one thread).

Run: .venv/bin/python benchmarks/permutohedral.py [--rounds N]
"""

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from crfkit.data.photos import photo
from crfkit.permutohedral import lattice


def features(image, sxy, srgb=None):
    """``[1, H W, d]`` features of a ``[3, H, W]`` 0..255 image."""
    _, h, w = image.shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    channels = [xx / sxy, yy / sxy]
    if srgb is not None:
        channels += [image[0] / srgb, image[1] / srgb, image[2] / srgb]
    return torch.stack(channels, -1).reshape(1, h * w, len(channels))  # [1, N, d]


def separable_gaussian(values, sigma):
    """Exact-up-to-truncation Gaussian sum of ``values [1, C, H, W]`` (sigma in pixels)."""
    radius = int(4 * sigma)
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=values.dtype) / sigma) ** 2)
    c = values.shape[1]
    out = F.conv2d(values, taps.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    return F.conv2d(out, taps.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)


def medians(fns, rounds):
    """Median ms of each function, run alternately (one warm-up each)."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(rounds):
        for t, fn in zip(times, fns):
            start = time.perf_counter()
            fn()
            t.append(time.perf_counter() - start)
    return [1e3 * statistics.median(t) for t in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    image = photo("astronaut") * 255  # [3, 512, 512], 0..255
    h, w = image.shape[1:]
    kernels = {"bilateral sxy 80 srgb 13 (d=5)": features(image, 80, 13), "spatial sxy 3 (d=2)": features(image, 3)}
    print(f"crfkit permutohedral lattice, astronaut {h}x{w}, N = {h * w}; torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}, no GPU used; median of {args.rounds} runs, ms")
    print(f"{'kernel':32s} {'threads':>7s} {'vertices':>9s} {'build':>8s} {'filter C=21':>12s} "
          f"{'filter C=2':>11s} {'sep. conv C=21':>15s}")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for name, feats in kernels.items():
            lat = lattice(feats)
            v21, v2 = torch.rand(1, h * w, 21), torch.rand(1, h * w, 2)
            fns = [lambda: lattice(feats), lambda: lat.filter(v21), lambda: lat.filter(v2)]
            conv = ""
            if feats.shape[-1] == 2:
                img21 = v21.reshape(1, h, w, 21).permute(0, 3, 1, 2).contiguous()  # [1, C, H, W]
                fns.append(lambda: separable_gaussian(img21, 3.0))
            times = medians(fns, args.rounds)
            if len(times) == 4:
                conv = f"{times[3]:15.1f}"
            print(f"{name:32s} {threads:7d} {lat.num_vertices:9d} {times[0]:8.1f} {times[1]:12.1f} {times[2]:11.1f} {conv}")
    try:
        import pydensecrf  # noqa: F401
        print("pydensecrf2 is importable: a side-by-side comparison is not implemented yet")
    except ImportError:
        print("\npydensecrf2 not installed; reference figures (shared/PERFORMANCE.md, same image and "
              "kernels, C++ one thread, per mean-field iteration with 21 labels):\n"
              "  Gaussian (spatial) filter ~21 ms, bilateral filter ~28 ms; C++ lattice build "
              "(hash table) ~42 ms vs ~240 ms for a naive torch sort/unique build")


if __name__ == "__main__":
    main()
