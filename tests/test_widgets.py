"""The lecture widgets' drawing code and checks (the browser test drives the live widgets).

Lecture 00's temperature explorer (:mod:`crfkit.widgets.temperature`), then lecture 05's mean-field
explorer (:mod:`crfkit.widgets.mean_field`).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import crfkit as ck
import crfkit.widgets.mean_field as mean_field_widget

pytestmark = pytest.mark.usefixtures("one_thread")


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
    (dict(unary=torch.zeros(1, 3, 4, 4), label=3), ValueError, "label: expected an int in 0..2, got 3"),
    (dict(unary=torch.zeros(1, 3, 4, 4), label=1.0), TypeError, "label: expected an int in 0..2, got float 1.0"),
    (dict(unary=torch.zeros(1, 3, 4, 4), temperature="1"), TypeError, "temperature: expected a finite number, got str"),
    (dict(unary=torch.zeros(1, 3, 4, 4), max_temperature=float("nan")), ValueError,
     "max_temperature: expected a finite number, got nan"),
    (dict(unary=torch.full((1, 2, 2, 2), float("nan"))), ValueError, "finite"),
])
def test_temperature_explorer_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        ck.widgets.temperature_explorer(**kwargs)


# --------------------------------------------------------------------------- mean field explorer


def _scene(size: int = 32):
    """A ``size`` x ``size`` crop of the astronaut (0..255) and the unary of a noisy labelling.

    Returns ``image [1, 3, H, W]``, ``unary [1, 3, H, W]`` (K = 3) and the clean labelling
    ``[H, W]`` (brightness and redness thresholds); the unary's argmax differs from it at
    about 20 % of the pixels, which the default dense CRF mostly repairs.
    """
    from crfkit.data.photos import photo

    image = 255 * photo("astronaut", max_side=128)[:, 40:40 + size, 40:40 + size]  # [3, H, W]
    labels = (image.mean(0) > 110).long() + (image[0] > image[2] + 30).long()  # [H, W] in 0..2
    gen = torch.Generator().manual_seed(0)
    clean = torch.nn.functional.one_hot(labels, 3).permute(2, 0, 1).float() * 0.5 + 0.5 / 3  # [K, H, W]
    probs = 0.5 * clean + 0.5 * torch.rand(3, size, size, generator=gen)
    probs = probs / probs.sum(0)
    return image[None].contiguous(), (-probs.log())[None].contiguous(), labels


def _panels(fig):
    """The figure's image, unary-argmax, labelling, belief and curve axes."""
    image, start, labelling, belief = [ax for ax in fig.axes if ax.images][:4]
    curve = [ax for ax in fig.axes if ax.lines][0]
    return image, start, labelling, belief, curve


def _data(ax) -> torch.Tensor:
    return torch.as_tensor(np.asarray(ax.images[0].get_array()))


@pytest.fixture
def count_inference(monkeypatch):
    """Count the calls of mean_field and mean_field_free_energy made by crfkit.widgets.mean_field."""
    calls = {"mean_field": 0, "free_energy": 0}
    real_mf, real_fe = mean_field_widget.mean_field, mean_field_widget.mean_field_free_energy

    def mf(*args, **kwargs):
        calls["mean_field"] += 1
        return real_mf(*args, **kwargs)

    def fe(*args, **kwargs):
        calls["free_energy"] += 1
        return real_fe(*args, **kwargs)

    monkeypatch.setattr(mean_field_widget, "mean_field", mf)
    monkeypatch.setattr(mean_field_widget, "mean_field_free_energy", fe)
    return calls


def test_mean_field_figure_draws_iteration_t():
    image, unary, _ = _scene()
    crf = ck.DenseCRF(unary, image)
    _, trace = ck.inference.mean_field(crf, 4, history=True)
    q0 = torch.softmax(-unary, 1)
    energies = ck.inference.mean_field_free_energy(crf, [q0] + trace)[:, 0] / 32**2  # [5]
    for t in (0, 2, 4):
        q = q0 if t == 0 else trace[t - 1]
        fig = ck.widgets.mean_field_figure(image, unary, q, energies, t, label=2)
        shown, start, labelling, belief, curve = _panels(fig)
        assert torch.allclose(_data(shown), (image[0] / 255).permute(1, 2, 0), atol=1e-6)
        assert torch.equal(_data(start), unary[0].argmin(0))
        assert torch.equal(_data(labelling), q[0].argmax(0))
        assert torch.allclose(_data(belief).float(), q[0, 2], atol=1e-6)
        assert belief.images[0].get_clim() == (0, 1)
        assert f"Q(label 2) after {t} iterations" in belief.get_title()
        line, marker = curve.lines[:2]
        assert list(line.get_xdata()) == [0, 1, 2, 3, 4]
        assert np.allclose(line.get_ydata(), energies.numpy())
        assert list(marker.get_xdata()) == [t] and np.isclose(marker.get_ydata()[0], energies[t].item())
    assert not torch.equal(trace[3][0].argmax(0), unary[0].argmin(0))  # the test can tell them apart


def test_explorer_shows_exactly_trace_t_minus_1(count_inference):
    image, unary, _ = _scene()
    explorer = ck.widgets.MeanFieldExplorer(image, unary, iterations=5, label=0)
    # the explorer's model is the documented default: pydensecrf's kernels, symmetric normalisation
    _, trace = ck.inference.mean_field(ck.DenseCRF(unary, image), 5, history=True)
    for t in (5, 1, 3):
        explorer.iteration_slider.value = t
        _, _, labelling, belief, _ = _panels(explorer.figure)
        assert torch.equal(_data(labelling), trace[t - 1][0].argmax(0)), t
        assert torch.allclose(_data(belief).float(), trace[t - 1][0, 0], atol=1e-5)
        assert explorer.summary.startswith(f"t = {t}/5: ")
    changed = float(explorer.summary.split(": ")[1].split(" %")[0])
    assert changed == pytest.approx(100 * (trace[2][0].argmax(0) != unary[0].argmin(0)).float().mean().item(), abs=0.05)
    assert count_inference == {"mean_field": 1, "free_energy": 1}


def test_iteration_slider_redraws_without_inference(count_inference):
    image, unary, _ = _scene()
    explorer = ck.widgets.MeanFieldExplorer(image, unary, iterations=6)
    slider = explorer.iteration_slider
    assert (slider.min, slider.value, slider.max, slider.continuous_update) == (0, 6, 6, False)
    _, _, labelling, _, curve = _panels(explorer.figure)
    before, before_marker = _data(labelling), curve.lines[1].get_xdata()[0]
    slider.value = 0
    _, start, labelling, belief, curve = _panels(explorer.figure)
    assert torch.equal(_data(labelling), _data(start))  # Q^0 = softmax(-unary)
    assert not torch.equal(_data(labelling), before)
    assert torch.allclose(_data(belief).float(), torch.softmax(-unary[0], 0)[1], atol=1e-6)
    assert (before_marker, curve.lines[1].get_xdata()[0]) == (6, 0)
    assert curve.lines[1].get_ydata()[0] == pytest.approx(explorer.energies[0].item())
    assert explorer.summary.startswith("t = 0/6: 0.0 % of pixels changed")
    explorer.label_dropdown.value = 2
    _, _, _, belief, _ = _panels(explorer.figure)
    assert torch.allclose(_data(belief).float(), torch.softmax(-unary[0], 0)[2], atol=1e-6)
    assert count_inference == {"mean_field": 1, "free_energy": 1}


def test_kernel_sliders_rerun_inference(count_inference):
    image, unary, clean = _scene()
    explorer = ck.widgets.MeanFieldExplorer(image, unary, iterations=5)
    _, _, labelling, belief, curve = _panels(explorer.figure)
    default_labels, default_belief = _data(labelling), _data(belief)
    default_curve = curve.lines[0].get_ydata().copy()
    # the CRF repairs the noisy unary: closer to the clean labelling than the unary argmax is
    assert (default_labels != clean).float().mean() < 0.5 * (unary[0].argmin(0) != clean).float().mean()

    explorer.gaussian_weight_slider.value = 0.0
    explorer.bilateral_weight_slider.value = 0.0
    assert count_inference == {"mean_field": 3, "free_energy": 3}
    _, start, labelling, belief, curve = _panels(explorer.figure)
    # no pairwise term: every iteration returns softmax(-unary)
    assert torch.equal(_data(labelling), _data(start))
    assert torch.allclose(_data(belief).float(), torch.softmax(-unary[0], 0)[1], atol=1e-5)
    assert np.allclose(curve.lines[0].get_ydata(), curve.lines[0].get_ydata()[0])

    explorer.bilateral_weight_slider.value = 20.0
    _, _, labelling, belief, curve = _panels(explorer.figure)
    assert not torch.equal(_data(labelling), default_labels)
    assert not torch.allclose(_data(belief), default_belief)
    assert not np.allclose(curve.lines[0].get_ydata(), default_curve)
    for name, value in [("gaussian_weight", 6.0), ("gaussian_sxy", 8.0), ("bilateral_sxy", 10.0),
                        ("bilateral_srgb", 40.0)]:
        energies = explorer.energies.clone()
        getattr(explorer, f"{name}_slider").value = value
        assert not torch.allclose(explorer.energies, energies), name
    assert count_inference == {"mean_field": 8, "free_energy": 8}
    g, b = explorer.kernels()
    assert (g.weight, g.sxy, b.weight, b.sxy, b.srgb) == (6.0, 8.0, 20.0, 10.0, 40.0)
    assert all(s.continuous_update is False for s in (
        explorer.gaussian_weight_slider, explorer.gaussian_sxy_slider, explorer.bilateral_weight_slider,
        explorer.bilateral_sxy_slider, explorer.bilateral_srgb_slider))


def test_explorer_accepts_unbatched_inputs_and_kernels_and_leaves_inputs_alone():
    image, unary, _ = _scene(16)
    image_copy, unary_copy = image.clone(), unary.clone()
    batched = ck.widgets.MeanFieldExplorer(image, unary, iterations=3)
    unbatched = ck.widgets.MeanFieldExplorer(image[0].round().to(torch.uint8), unary[0], iterations=3)
    assert torch.equal(image, image_copy) and torch.equal(unary, unary_copy)
    # labels innermost in memory (as one_hot(...).permute gives): still never written to
    unary_last = unary.contiguous(memory_format=torch.channels_last)
    explorer = ck.widgets.MeanFieldExplorer(image, unary_last, iterations=3)
    for step in range(2):  # one run, then two (an in-place negation done twice would hide)
        assert torch.equal(unary_last, unary_copy) and torch.equal(explorer.unary, unary_copy[0]), step
        explorer.iteration_slider.value = 0
        assert explorer.summary.startswith("t = 0/3: 0.0 % of pixels changed"), step
        explorer.bilateral_weight_slider.value = 5.0
    assert torch.allclose(batched.energies, unbatched.energies, atol=1e-3)
    only_gaussian = ck.widgets.MeanFieldExplorer(image, unary, kernels=[ck.GaussianKernel(sxy=2, weight=5)],
                                                 iterations=2)
    assert (only_gaussian.gaussian_weight_slider.value, only_gaussian.gaussian_sxy_slider.value) == (5.0, 2.0)
    assert only_gaussian.bilateral_weight_slider.value == 0.0
    assert "application/vnd.jupyter.widget-view+json" in batched._repr_mimebundle_()
    assert repr(batched) == "MeanFieldExplorer(K=3, H=16, W=16, iterations=3)"


def _bad(**changes):
    image, unary = 255 * torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0)), torch.zeros(1, 3, 4, 4)
    kwargs = dict(image=image, unary=unary)
    kwargs.update(changes)
    return kwargs


@pytest.mark.parametrize("kwargs, error, match", [
    (_bad(image=torch.zeros(1, 3, 4, 5)), ValueError, r"image: expected shape \[3, 4, 4\] \(the height and width of unary\)"),
    (_bad(image=torch.zeros(1, 1, 4, 4)), ValueError, r"image: expected one RGB image"),
    (_bad(image=torch.rand(3, 4, 4)), ValueError, "image: expected colours in 0..255.*multiply a 0..1 photo by 255"),
    (_bad(image=torch.full((3, 4, 4), float("nan"))), ValueError, "image: expected finite"),
    (_bad(unary=torch.full((1, 3, 4, 4), float("nan"))), ValueError, "unary: expected finite"),
    (_bad(unary=torch.zeros(2, 3, 4, 4)), ValueError, r"unary: expected one image, shape \[1, K, H, W\]"),
    (_bad(unary=torch.zeros(1, 1, 4, 4)), ValueError, "unary: expected at least 2 labels"),
    (_bad(label=3), ValueError, "label: expected an int in 0..2, got 3"),
    (_bad(iterations=0), ValueError, "iterations: expected a positive int, got 0"),
    (_bad(iterations=True), TypeError, "iterations: expected a positive int, got bool True"),
    (_bad(normalization="both"), ValueError,
     r"normalization: expected one of \['symmetric', 'before', 'after', 'none'\], got 'both'"),
    (_bad(kernels=[ck.GaussianKernel(), ck.GaussianKernel()]), ValueError, "kernels: expected at most one GaussianKernel"),
    (_bad(kernels=["gaussian"]), TypeError,
     r"kernels\[0\]: expected a crfkit.GaussianKernel or crfkit.BilateralKernel, got str"),
    (_bad(kernels=3), TypeError, "kernels: expected None or a sequence of GaussianKernel"),
])
def test_mean_field_explorer_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        ck.widgets.MeanFieldExplorer(**kwargs)


def test_mean_field_figure_rejects_bad_iteration_and_label():
    image, unary, _ = _scene(8)
    q = torch.softmax(-unary, 1)
    with pytest.raises(ValueError, match=r"iteration: expected an int in 0..2, got 3"):
        ck.widgets.mean_field_figure(image, unary, q, [0.0, -1.0, -2.0], 3)
    with pytest.raises(TypeError, match=r"iteration: expected an int in 0..2, got float 1.0"):
        ck.widgets.mean_field_figure(image, unary, q, [0.0, -1.0, -2.0], 1.0)
    with pytest.raises(ValueError, match="label: expected an int in 0..2, got 5"):
        ck.widgets.mean_field_figure(image, unary, q, [0.0], 0, label=5)
    with pytest.raises(ValueError, match=r"q: expected shape \[3, 8, 8\]"):
        ck.widgets.mean_field_figure(image, unary, q[:, :2], [0.0], 0)


def test_mean_field_summary_accepts_batched_or_unbatched_inputs():
    g = torch.Generator().manual_seed(0)
    unary = torch.rand(3, 5, 6, generator=g)
    q = torch.softmax(-2 * unary, 0)
    energies = [0.5, 0.25]
    from crfkit.widgets import mean_field_summary

    line = mean_field_summary(unary, q, energies, 1)
    assert line == mean_field_summary(unary[None], q[None], energies, 1) == mean_field_summary(unary[None], q, energies, 1)
    assert line.startswith("t = 1/1: 0.0 % of pixels changed") and "F = 0.2500 per pixel (t = 0: 0.5000)" in line
    changed = torch.softmax(unary, 0)  # the opposite preference: every pixel whose argmin is unique changes
    assert "100.0 % of pixels changed" in mean_field_summary(unary[None], changed[None], energies, 0)
