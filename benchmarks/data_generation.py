"""How long the synthetic data sets take to generate one item, by size.

There is no reference implementation to compare with; the figure to keep is
"a 64x64 scene in a few ms" (issue 3). Run: .venv/bin/python benchmarks/data_generation.py
"""

import time

import torch

from crfkit.data import SyntheticBodyParts, SyntheticScenes


def best_ms(dataset, n=10, rounds=5):
    dataset[0]  # warm-up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for i in range(n):
            dataset[i]
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e3


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'size':>6} {'scene ms':>10} {'body parts ms':>14}")
    for size in (64, 128, 256, 512):
        n = 10 if size <= 256 else 3
        print(f"{size:>6} {best_ms(SyntheticScenes(size=size), n):>10.1f} "
              f"{best_ms(SyntheticBodyParts(size=size), n):>14.1f}")
