"""The lecture-00 widget's drawing code (the browser test drives the live widget)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch

import crfkit as ck


def _unary():
    gen = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, 6, 6, generator=gen) * 3  # [1, K, H, W]


def test_summary_tracks_temperature():
    u = _unary()[0]
    cold, hot = ck.widgets.temperature_summary(u, 0.1), ck.widgets.temperature_summary(u, 50.0)
    assert cold.startswith("T = 0.10") and hot.startswith("T = 50.00")
    top = lambda s: float(s.split("mean top probability ")[1].split(",")[0])  # noqa: E731
    ent = lambda s: float(s.split("mean entropy ")[1].split(" ")[0])  # noqa: E731
    assert top(cold) > 0.9 and abs(top(hot) - 1 / 3) < 0.02
    assert ent(cold) < 0.3 and abs(ent(hot) - math.log(3)) < 0.01
    assert "argmax unchanged at 100% of pixels" in hot


def test_figure_has_probability_and_argmax_panels():
    fig = ck.widgets.temperature_figure(_unary()[0], 1.0, label=2)
    try:
        images = [ax.images[0] for ax in fig.axes if ax.images]
        assert len(images) == 2
        p = torch.softmax(-_unary()[0], dim=0)
        assert torch.allclose(torch.as_tensor(images[0].get_array()), p[2].float(), atol=1e-6)
    finally:
        plt.close(fig)


def test_explorer_builds_a_slider_and_redraws_on_change():
    box = ck.widgets.temperature_explorer(_unary(), temperature=1.0)
    slider, out = box.children
    assert (slider.min, slider.value, slider.max) == (0.05, 1.0, 5.0)
    assert slider.description == "T"


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(unary=torch.zeros(2, 3, 4, 4)), ValueError, r"unary: expected one image, shape \[1, K, H, W\]"),
    (dict(unary=torch.zeros(1, 1, 4, 4)), ValueError, "at least 2 labels"),
    (dict(unary=torch.zeros(1, 3, 4, 4), temperature=0.0), ValueError, "0 < min_temperature"),
    (dict(unary=torch.zeros(1, 3, 4, 4), label=3), ValueError, "label: expected 0..2, got 3"),
    (dict(unary=torch.full((1, 2, 2, 2), float("nan"))), ValueError, "finite"),
])
def test_explorer_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        ck.widgets.temperature_explorer(**kwargs)
