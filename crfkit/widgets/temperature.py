"""Lecture 00's widget: the temperature of the Gibbs distribution of a unary.

Per pixel, the labels follow ``p(k) = softmax(-unary / T)_k = exp(-unary_k / T) / sum_l
exp(-unary_l / T)``. Low ``T`` makes every pixel certain (``p`` tends to one-hot), high ``T``
makes it uniform (``p -> 1 / K``); the most likely label ``argmin_k unary_k`` does not depend
on ``T``. Cost: one softmax over ``[K, H, W]`` per redraw.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch

from crfkit._validate import check_int, check_real
from crfkit.widgets._common import one_unary


def _gibbs(unary: torch.Tensor, temperature: float) -> torch.Tensor:
    """``p = softmax(-unary / T)`` over labels; ``unary`` is ``[K, H, W]``."""
    return torch.softmax(-unary / temperature, dim=0)


def temperature_summary(unary: torch.Tensor, temperature: float) -> str:
    """One line describing ``p = softmax(-unary / T)`` at temperature ``T``.

    Parameters
    ----------
    unary : Tensor of shape ``[K, H, W]``
        Unary energies of one image.
    temperature : float
        ``T > 0``.

    Returns
    -------
    str
        The mean probability of the most likely label, the mean entropy in nats (at
        most ``log K``) and the share of pixels whose most likely label equals the
        ``T = 1`` one (always 100 %: the argmax does not depend on ``T``).
    """
    probs = _gibbs(unary, temperature)  # [K, H, W]
    top = probs.max(dim=0).values.mean().item()
    entropy = -(probs * probs.clamp_min(1e-30).log()).sum(dim=0).mean().item()
    same = (probs.argmax(0) == unary.argmin(0)).float().mean().item()
    k = unary.shape[0]
    return (
        f"T = {temperature:.2f}: mean top probability {top:.3f}, "
        f"mean entropy {entropy:.3f} nats (max log K = {math.log(k):.3f}), "
        f"argmax unchanged at {100 * same:.0f}% of pixels"
    )


def temperature_figure(unary: torch.Tensor, temperature: float, label: int = 1):
    """Figure of ``p(label) = softmax(-unary / T)`` and of the most likely label.

    Parameters
    ----------
    unary : Tensor of shape ``[K, H, W]``
        Unary energies of one image.
    temperature : float
        ``T > 0``.
    label : int
        The label whose probability map is drawn.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels: the probability map (fixed 0..1 colour scale) and the argmax.
    """
    probs = _gibbs(unary.detach().cpu(), temperature)  # [K, H, W]
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(7, 3.2))
    im = ax0.imshow(probs[label].numpy(), vmin=0, vmax=1, cmap="magma")
    ax0.set_title(f"p(label {label}), T = {temperature:.2f}")
    fig.colorbar(im, ax=ax0, fraction=0.046)
    ax1.imshow(probs.argmax(0).numpy(), cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
    ax1.set_title("most likely label (same for every T)")
    for ax in (ax0, ax1):
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def temperature_explorer(
    unary: torch.Tensor,
    temperature: float = 1.0,
    min_temperature: float = 0.05,
    max_temperature: float = 5.0,
    label: int = 1,
):
    """A slider over the temperature ``T`` of ``p = softmax(-unary / T)``.

    Low ``T`` makes every pixel certain, high ``T`` makes it uniform; the most likely
    label never changes. This is the first widget of the course (lecture 00).

    Parameters
    ----------
    unary : Tensor of shape ``[1, K, H, W]`` or ``[K, H, W]``
        Unary energies of one image (a batch of one is unwrapped).
    temperature, min_temperature, max_temperature : float
        Start value and range of the slider, ``0 < min <= temperature <= max``.
    label : int
        The label whose probability map is drawn, ``0..K-1``.

    Returns
    -------
    ipywidgets.VBox
        The slider above an output area holding the summary line and the figure.

    Raises
    ------
    TypeError, ValueError
        Naming the argument: unary not one ``[K, H, W]`` image, ``K < 2``, NaN/inf; a
        temperature that is not a finite number or breaks ``0 < min <= temperature <= max``;
        ``label`` not an int in ``0..K-1``.
    """
    import ipywidgets as widgets
    from IPython.display import display

    unary = one_unary(unary)  # [K, H, W]
    for name, value in [("min_temperature", min_temperature), ("temperature", temperature),
                        ("max_temperature", max_temperature)]:
        check_real(name, value)
    if not 0 < min_temperature <= temperature <= max_temperature:
        raise ValueError(
            "temperature: expected 0 < min_temperature <= temperature <= max_temperature, "
            f"got {min_temperature}, {temperature}, {max_temperature}"
        )
    label = check_int("label", label, minimum=0, maximum=unary.shape[0] - 1)

    slider = widgets.FloatSlider(
        value=temperature,
        min=min_temperature,
        max=max_temperature,
        step=0.05,
        description="T",
        continuous_update=False,
        readout_format=".2f",
    )
    out = widgets.Output()

    def redraw(change=None) -> None:
        with out:
            out.clear_output(wait=True)
            print(temperature_summary(unary, slider.value))
            fig = temperature_figure(unary, slider.value, label)
            display(fig)
            plt.close(fig)

    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([slider, out])
