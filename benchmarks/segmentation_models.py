"""Speed of the small segmentation networks (crfkit.models) on the CPU.

For each network: parameters, multiply-accumulates per 64x64 image (crfkit.summary),
the median time of a forward pass (eval mode) and of a training step (forward, backward,
AdamW) on a batch of 16 64x64 images, alternating the models round by round so that a
busy machine slows them all alike. Run with ``.venv/bin/python benchmarks/segmentation_models.py``.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

import crfkit.models as M
from crfkit.summary import summary

BUILDERS = {
    "fcn32s": M.fcn32s_small,
    "fcn16s": M.fcn16s_small,
    "fcn8s": M.fcn8s_small,
    "segnet": M.segnet_small,
    "deeplab": M.deeplab_small,
    "deeplab os16": lambda: M.deeplab_small(output_stride=16),
}


def main(rounds: int = 10, batch: int = 16, size: int = 64) -> None:
    torch.manual_seed(0)
    x = torch.rand(batch, 3, size, size)
    y = torch.randint(0, 10, (batch, size, size))
    models = {name: build() for name, build in BUILDERS.items()}
    optims = {name: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], 1e-3)
              for name, m in models.items()}
    fwd = {name: [] for name in models}
    step = {name: [] for name in models}
    for r in range(rounds + 1):  # round 0 is the warm-up
        for name, model in models.items():
            model.eval()
            t = time.perf_counter()
            with torch.no_grad():
                model(x)
            t_fwd = time.perf_counter() - t
            model.train()
            t = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            optims[name].zero_grad()
            loss.backward()
            optims[name].step()
            t_step = time.perf_counter() - t
            if r:
                fwd[name].append(t_fwd)
                step[name].append(t_step)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {batch} x 3 x {size} x {size}, "
          f"median of {rounds}")
    print(f"{'model':14s} {'params':>9s} {'MACs/img':>9s} {'forward':>9s} {'train step':>10s}")
    for name, model in models.items():
        table = summary(model.eval(), (1, 3, size, size))
        print(f"{name:14s} {table.total_params:>9,d} {table.total_macs / 1e6:>8.1f}M "
              f"{statistics.median(fwd[name]) * 1e3:>7.1f}ms {statistics.median(step[name]) * 1e3:>8.1f}ms")


if __name__ == "__main__":
    main()
