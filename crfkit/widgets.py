"""Interactive widgets for the lectures (ipywidgets + matplotlib).

Each widget is a function that returns an ``ipywidgets`` box; its drawing is a
separate pure function (``*_figure``) so that tests and static figures use the
same code without a browser.
"""

from __future__ import annotations

import io
import math
import numbers

import matplotlib.pyplot as plt
import numpy as np
import torch

from crfkit._validate import check_finite, check_tensor
from crfkit.dense import NORMALIZATIONS, BilateralKernel, DenseCRF, GaussianKernel
from crfkit.inference.mean_field import mean_field, mean_field_free_energy
from crfkit.viz import voc_colormap


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
        The label whose probability map is drawn.

    Returns
    -------
    ipywidgets.VBox
        The slider above an output area holding the summary line and the figure.
    """
    import ipywidgets as widgets
    from IPython.display import display

    unary = _one_image(unary)
    if not 0 < min_temperature <= temperature <= max_temperature:
        raise ValueError(
            "temperature: expected 0 < min_temperature <= temperature <= max_temperature, "
            f"got {min_temperature}, {temperature}, {max_temperature}"
        )
    if not 0 <= label < unary.shape[0]:
        raise ValueError(f"label: expected 0..{unary.shape[0] - 1}, got {label}")

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


def _one_image(unary: torch.Tensor) -> torch.Tensor:
    check_tensor("unary", unary, floating=True)
    if unary.dim() == 4 and unary.shape[0] == 1:
        unary = unary[0]
    if unary.dim() != 3:
        raise ValueError(
            f"unary: expected one image, shape [1, K, H, W] or [K, H, W], got {list(unary.shape)}"
        )
    check_finite("unary", unary)
    if unary.shape[0] < 2:
        raise ValueError(f"unary: expected at least 2 labels (K >= 2), got K = {unary.shape[0]}")
    return unary.detach().cpu()


# --------------------------------------------------------------------------------------------
# mean field in a dense CRF: watch Q and the free energy iteration by iteration
# --------------------------------------------------------------------------------------------

#: Size (inches) and resolution of the mean-field figure: 864 x 194 pixels at 72 dpi. Drawing
#: and PNG encoding, not inference, dominate the time of an update, so both are kept small.
MEAN_FIELD_FIGSIZE = (12.0, 2.7)
MEAN_FIELD_DPI = 72


def _one_photo(image: torch.Tensor, unary: torch.Tensor) -> torch.Tensor:
    """``[3, H, W]`` float32 copy of ``image`` (``[1, 3, H, W]`` or ``[3, H, W]``, 0..255) on
    the CPU, checked against ``unary [K, H, W]``."""
    check_tensor("image", image)
    if not (image.is_floating_point() or image.dtype == torch.uint8):
        raise TypeError(f"image: expected a floating-point or uint8 tensor, got dtype {image.dtype}")
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(
            f"image: expected one RGB image, shape [1, 3, H, W] or [3, H, W], got {list(image.shape)}"
        )
    h, w = unary.shape[1:]
    if tuple(image.shape[1:]) != (h, w):
        raise ValueError(
            f"image: expected shape [3, {h}, {w}] (the height and width of unary), got {list(image.shape)}"
        )
    check_finite("image", image)
    image = image.detach().cpu().float()  # [3, H, W]
    lo, hi = float(image.min()), float(image.max())
    if lo < 0 or hi > 255:
        raise ValueError(f"image: expected colours in 0..255, got values in [{lo:.4g}, {hi:.4g}]")
    if 0 < hi <= 1:
        raise ValueError(
            f"image: expected colours in 0..255 (the units of the bilateral kernel's srgb), got values "
            f"in [{lo:.4g}, {hi:.4g}]; multiply a 0..1 photo by 255"
        )
    return image


def _split_kernels(kernels) -> tuple[GaussianKernel, BilateralKernel]:
    """The Gaussian and the bilateral kernel the sliders start from (a missing one: weight 0)."""
    if kernels is None:
        return GaussianKernel(sxy=3.0, weight=3.0), BilateralKernel(sxy=80.0, srgb=13.0, weight=10.0)
    if isinstance(kernels, (GaussianKernel, BilateralKernel)):
        kernels = [kernels]
    try:
        kernels = list(kernels)
    except TypeError:
        raise TypeError(
            f"kernels: expected None or a sequence of GaussianKernel / BilateralKernel, got "
            f"{type(kernels).__name__}"
        ) from None
    for i, kern in enumerate(kernels):
        if not isinstance(kern, (GaussianKernel, BilateralKernel)):
            raise TypeError(
                f"kernels[{i}]: expected a crfkit.GaussianKernel or crfkit.BilateralKernel, got "
                f"{type(kern).__name__}"
            )
    gaussian = [kern for kern in kernels if isinstance(kern, GaussianKernel)]
    bilateral = [kern for kern in kernels if isinstance(kern, BilateralKernel)]
    if len(gaussian) > 1 or len(bilateral) > 1:
        raise ValueError(
            "kernels: expected at most one GaussianKernel and at most one BilateralKernel (one set of "
            f"sliders each), got {len(gaussian)} and {len(bilateral)}"
        )
    g = gaussian[0] if gaussian else GaussianKernel(sxy=3.0, weight=0.0)
    b = bilateral[0] if bilateral else BilateralKernel(sxy=80.0, srgb=13.0, weight=0.0)
    return g, b


def _energies_np(energies, iteration: int) -> np.ndarray:
    """``energies`` as a 1-D float64 array ``[T + 1]`` with ``0 <= iteration <= T``."""
    if isinstance(energies, torch.Tensor):
        energies = energies.detach().cpu().double().numpy()
    values = np.asarray(energies, dtype=np.float64)
    if values.ndim != 1 or values.size < 1:
        raise ValueError(f"energies: expected a 1-D sequence [T + 1] of free energies, got shape {list(values.shape)}")
    if isinstance(iteration, bool) or not isinstance(iteration, numbers.Integral) or not 0 <= iteration < values.size:
        raise ValueError(f"iteration: expected an integer in 0..{values.size - 1} (T = len(energies) - 1), got {iteration!r}")
    return values


def _one_q(q: torch.Tensor, unary: torch.Tensor) -> torch.Tensor:
    """``q`` (``[1, K, H, W]`` or ``[K, H, W]``, the shape of ``unary [K, H, W]``) on the CPU."""
    check_tensor("q", q, floating=True)
    if q.dim() == 4 and q.shape[0] == 1:
        q = q[0]
    if tuple(q.shape) != tuple(unary.shape):
        raise ValueError(f"q: expected shape {list(unary.shape)} (that of unary, [K, H, W]), got {list(q.shape)}")
    return q.detach().cpu()


def mean_field_summary(unary: torch.Tensor, q: torch.Tensor, energies, iteration: int) -> str:
    """One line describing mean field after ``iteration`` updates.

    Parameters
    ----------
    unary : Tensor of shape ``[K, H, W]`` or ``[1, K, H, W]``
        Unary energies of one image.
    q : Tensor of shape ``[K, H, W]`` or ``[1, K, H, W]``
        The beliefs ``Q^t`` after ``t = iteration`` updates (``Q^0 = softmax(-unary)``).
    energies : sequence or Tensor of shape ``[T + 1]``
        The free energy per pixel ``F(Q^s) / (H W)`` of ``Q^0 .. Q^T``.
    iteration : int
        ``t`` in ``0..T``.

    Returns
    -------
    str
        ``"t = 3/10: 12.4 % of pixels changed from the unary argmax, F = -1.2345 per pixel
        (t = 0: -0.9876)"``.
    """
    unary = _one_image(unary)  # [K, H, W]
    values = _energies_np(energies, iteration)
    q = _one_q(q, unary)
    changed = (q.argmax(0) != unary.argmin(0)).float().mean().item()  # share of pixels
    last = values.size - 1
    return (
        f"t = {iteration}/{last}: {100 * changed:.1f} % of pixels changed from the unary argmax, "
        f"F = {values[iteration]:.4f} per pixel (t = 0: {values[0]:.4f})"
    )


def mean_field_figure(image: torch.Tensor, unary: torch.Tensor, q: torch.Tensor, energies, iteration: int, label: int = 1):
    """One step of dense-CRF mean field: the labelling, one belief map and the free energy.

    Parameters
    ----------
    image : Tensor of shape ``[3, H, W]`` or ``[1, 3, H, W]``
        The photo, colours in 0..255 (float or uint8; the dense CRF's units).
    unary : Tensor of shape ``[K, H, W]`` or ``[1, K, H, W]``
        Unary energies of the image.
    q : Tensor of shape ``[K, H, W]`` or ``[1, K, H, W]``
        The beliefs ``Q^t`` after ``t = iteration`` updates; ``Q^0 = softmax(-unary)``.
    energies : sequence or Tensor of shape ``[T + 1]``
        The mean-field free energy per pixel, ``F(Q^s) / (H W)``, of ``Q^0 .. Q^T``
        (:func:`crfkit.inference.mean_field_free_energy` divided by ``H W``).
    iteration : int
        ``t`` in ``0..T``, marked on the curve.
    label : int
        The class ``k`` whose belief map ``Q^t(k)`` is drawn.

    Returns
    -------
    matplotlib.figure.Figure
        Five panels, ``fig.axes[0..4]`` in order: the image; the unary argmax; the labelling
        ``argmax_k Q^t(k)`` (labels 0..K-1 in the VOC palette; ``images[0].get_array()`` is the
        label map); the belief map ``Q^t(label)`` on a fixed 0..1 scale; the free-energy curve
        over ``0..T`` (``lines[0]``) with the current iteration marked (``lines[1]``). The belief
        map's colorbar is an inset below it (``fig.axes[3].child_axes[0]``).
        Detached from pyplot (``plt.close``), as the figures of :mod:`crfkit.viz`.
    """
    unary = _one_image(unary)  # [K, H, W]
    image = _one_photo(image, unary)  # [3, H, W] 0..255
    q = _one_q(q, unary)  # [K, H, W]
    values = _energies_np(energies, iteration)
    k = unary.shape[0]
    if isinstance(label, bool) or not isinstance(label, numbers.Integral) or not 0 <= label < k:
        raise ValueError(f"label: expected 0..{k - 1}, got {label!r}")
    t, last = int(iteration), values.size - 1
    start = unary.argmin(0)  # [H, W], the argmax of Q^0
    labels = q.argmax(0)  # [H, W]
    changed = (labels != start).float().mean().item()

    from matplotlib.colors import ListedColormap

    palette = ListedColormap(voc_colormap(k) / 255.0)
    label_style = dict(cmap=palette, vmin=-0.5, vmax=k - 0.5, interpolation="nearest")
    fig = plt.figure(figsize=MEAN_FIELD_FIGSIZE, dpi=MEAN_FIELD_DPI)
    grid = fig.add_gridspec(1, 5, width_ratios=[1, 1, 1, 1, 1.7], left=0.01, right=0.99, top=0.84,
                            bottom=0.19, wspace=0.4)
    axes = [fig.add_subplot(grid[0, i]) for i in range(5)]
    axes[0].imshow((image.permute(1, 2, 0) / 255.0).clamp(0, 1).numpy(), interpolation="nearest")
    axes[0].set_title("image")
    axes[1].imshow(start.numpy(), **label_style)
    axes[1].set_title("unary argmax (t = 0)")
    axes[2].imshow(labels.numpy(), **label_style)
    after = f"after {t} iteration{'' if t == 1 else 's'}"
    axes[2].set_title(f"argmax Q {after}")
    axes[2].text(0.5, -0.04, f"{100 * changed:.1f} % of pixels changed", transform=axes[2].transAxes,
                 ha="center", va="top", fontsize=8)
    belief = axes[3].imshow(q[label].float().numpy(), vmin=0, vmax=1, cmap="magma", interpolation="nearest")
    axes[3].set_title(f"Q(label {label}) {after}")
    cax = axes[3].inset_axes([0.0, -0.1, 1.0, 0.06])  # below the map, taking no room from it
    fig.colorbar(belief, cax=cax, orientation="horizontal", ticks=[0, 0.5, 1])
    cax.tick_params(labelsize=7)
    for ax in axes[:4]:
        ax.set_axis_off()
    curve = axes[4]
    steps = np.arange(last + 1)
    curve.plot(steps, values, "-", color="0.35", marker=".", label="F(Q$^t$)")
    curve.plot([t], [values[t]], "o", color="C3", markersize=8, label=f"t = {t}")
    curve.set_title("free energy F(Q) = KL(Q||p) - log Z")
    curve.set_xlabel("iteration t")
    curve.set_ylabel("F / pixel")
    curve.set_xlim(-0.3, max(last, 1) + 0.3)
    curve.xaxis.get_major_locator().set_params(integer=True)
    curve.legend(loc="upper right", fontsize=8, frameon=False)
    for ax in axes:
        ax.title.set_fontsize(9)
    curve.tick_params(labelsize=8)
    plt.close(fig)
    return fig


def _png(fig) -> bytes:
    """PNG bytes of ``fig`` at its own size (no tight bounding box: one draw, not two)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=MEAN_FIELD_DPI)
    return buffer.getvalue()


class MeanFieldExplorer:
    """Dense-CRF mean field, iteration by iteration, with the kernels on sliders.

    Mean field starts from the unary alone, ``Q^0 = softmax(-unary)``, and each update lets
    every pixel listen to the others through the Gaussian (smoothness) and bilateral
    (appearance) kernels. The explorer runs ``iterations`` updates once, keeps every ``Q^t``
    and the free energy ``F(Q^t) = KL(Q^t || p) - log Z`` (per pixel), and shows them:

    * the *iteration* slider moves through the recorded history (a redraw, no inference);
    * the *label* dropdown picks the class whose belief map ``Q^t(label)`` is drawn;
    * the five kernel sliders (Gaussian weight and ``sxy``; bilateral weight, ``sxy`` and
      ``srgb``) re-run mean field and the free energies, then redraw.

    Every control has ``continuous_update=False``: work happens when a slider is released.
    In a notebook, make the explorer the last line of a cell (it displays its
    :attr:`widget`); in tests, set a control's ``.value`` and read :attr:`figure`.

    Parameters
    ----------
    image : Tensor of shape ``[1, 3, H, W]`` or ``[3, H, W]``
        The photo in 0..255 (float or uint8), the units of ``srgb``.
    unary : Tensor of shape ``[1, K, H, W]`` or ``[K, H, W]``
        Unary energies (``-log p``), ``K >= 2``.
    kernels : sequence of GaussianKernel / BilateralKernel, optional
        Where the sliders start: at most one of each (a missing one starts at weight 0; their
        ``compat`` tables are kept). Default: pydensecrf's ``GaussianKernel(sxy=3, weight=3)``
        and ``BilateralKernel(sxy=80, srgb=13, weight=10)``.
    iterations : int
        ``T >= 1`` mean-field updates (pydensecrf's ``inference(T)``).
    label : int
        The class of the belief map at the start, ``0..K-1``.
    normalization : str
        The kernels' normalisation, as :class:`crfkit.DenseCRF`.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The controls above :attr:`output`.
    iteration_slider, label_dropdown : ipywidgets.IntSlider, ipywidgets.Dropdown
    gaussian_weight_slider, gaussian_sxy_slider : ipywidgets.FloatSlider
    bilateral_weight_slider, bilateral_sxy_slider, bilateral_srgb_slider : ipywidgets.FloatSlider
    output : ipywidgets.Output
        The summary line and the figure as a PNG.
    q0 : Tensor ``[K, H, W]``
        ``softmax(-unary)``.
    trace : list of T Tensors ``[K, H, W]``
        ``trace[t - 1]`` is ``Q^t``, for the current kernels.
    energies : Tensor ``[T + 1]``
        ``F(Q^t) / (H W)`` for ``t = 0..T``, float64.
    figure : matplotlib.figure.Figure
        The last figure drawn (:func:`mean_field_figure`); ``summary`` its line.

    Raises
    ------
    TypeError, ValueError
        Naming the argument: unary not one ``[K, H, W]`` image, ``K < 2``, NaN/inf; image not
        ``[3, H, W]`` with unary's ``H, W``, or not in 0..255 (a 0..1 photo); ``iterations < 1``;
        ``label`` outside ``0..K-1``; an unknown normalisation; kernels that are not one
        Gaussian and one bilateral kernel at most.

    Examples
    --------
    >>> import crfkit as ck
    >>> image = 255 * ck.data.photos.photo("astronaut", max_side=128)   # [3, 128, 128]
    >>> explorer = ck.widgets.MeanFieldExplorer(image, unary, iterations=10)  # unary [K, 128, 128]
    >>> explorer                                           # last line of a cell: the widget
    """

    def __init__(self, image, unary, kernels=None, iterations: int = 10, label: int = 1,
                 normalization: str = "symmetric"):
        import ipywidgets as widgets

        # private, contiguous copies: nothing done here (or by inference) can reach the caller's tensors
        self.unary = _one_image(unary).clone(memory_format=torch.contiguous_format)  # [K, H, W]
        self.image = _one_photo(image, self.unary).clone(memory_format=torch.contiguous_format)  # [3, H, W]
        k = self.unary.shape[0]
        if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral) or iterations < 1:
            raise ValueError(f"iterations: expected an integer >= 1, got {iterations!r}")
        if isinstance(label, bool) or not isinstance(label, numbers.Integral) or not 0 <= label < k:
            raise ValueError(f"label: expected 0..{k - 1}, got {label!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization: expected one of {NORMALIZATIONS}, got {normalization!r}")
        gaussian, bilateral = _split_kernels(kernels)
        self.iterations = int(iterations)
        self.normalization = normalization
        self._compat = tuple(
            None if kern.compat is None else kern.compat.detach().cpu().to(self.unary.dtype)
            for kern in (gaussian, bilateral)
        )
        self.q0 = torch.softmax(-self.unary, dim=0)  # [K, H, W]

        def slider(description, value, low, high, step):
            value = float(value)
            return widgets.FloatSlider(
                value=value, min=min(low, value), max=max(high, value), step=step,
                description=description, continuous_update=False, readout_format=".1f",
                style={"description_width": "initial"},
            )

        self.iteration_slider = widgets.IntSlider(
            value=self.iterations, min=0, max=self.iterations, step=1, description="iteration t",
            continuous_update=False,
        )
        self.label_dropdown = widgets.Dropdown(
            options=list(range(k)), value=int(label), description="belief of label",
            style={"description_width": "initial"}, layout=widgets.Layout(width="180px"),
        )
        self.gaussian_weight_slider = slider("Gaussian weight", float(gaussian.weight), 0.0, 10.0, 0.5)
        self.gaussian_sxy_slider = slider("Gaussian sxy", gaussian.sxy, 0.5, 20.0, 0.5)
        self.bilateral_weight_slider = slider("bilateral weight", float(bilateral.weight), 0.0, 30.0, 0.5)
        self.bilateral_sxy_slider = slider("bilateral sxy", bilateral.sxy, 1.0, 200.0, 1.0)
        self.bilateral_srgb_slider = slider("bilateral srgb", bilateral.srgb, 1.0, 100.0, 1.0)
        self.output = widgets.Output()
        kernel_sliders = (
            self.gaussian_weight_slider, self.gaussian_sxy_slider,
            self.bilateral_weight_slider, self.bilateral_sxy_slider, self.bilateral_srgb_slider,
        )
        self.widget = widgets.VBox([
            widgets.HBox([self.iteration_slider, self.label_dropdown]),
            widgets.HBox(list(kernel_sliders[:2])),
            widgets.HBox(list(kernel_sliders[2:])),
            self.output,
        ])
        self.iteration_slider.observe(self.redraw, names="value")
        self.label_dropdown.observe(self.redraw, names="value")
        for control in kernel_sliders:
            control.observe(self._rerun, names="value")
        self.figure = None
        self.summary = ""
        self.run()
        self.redraw()

    def kernels(self) -> tuple[GaussianKernel, BilateralKernel]:
        """The two kernels the sliders set now (Potts, or the ``compat`` tables given)."""
        return (
            GaussianKernel(sxy=self.gaussian_sxy_slider.value, weight=self.gaussian_weight_slider.value,
                           compat=self._compat[0]),
            BilateralKernel(sxy=self.bilateral_sxy_slider.value, srgb=self.bilateral_srgb_slider.value,
                            weight=self.bilateral_weight_slider.value, compat=self._compat[1]),
        )

    def run(self) -> None:
        """Run mean field with the current kernels; record every ``Q^t`` and ``F(Q^t)``."""
        h, w = self.unary.shape[1:]
        with torch.no_grad():
            crf = DenseCRF(self.unary[None], self.image[None], kernels=self.kernels(),
                           normalization=self.normalization)
            _, trace = mean_field(crf, self.iterations, history=True)  # T x [1, K, H, W]
            energies = mean_field_free_energy(crf, [self.q0[None]] + list(trace))  # [T + 1, 1]
        self.trace = [q[0] for q in trace]  # T x [K, H, W]
        self.energies = energies[:, 0].double() / (h * w)  # [T + 1], per pixel

    def q_at(self, iteration: int) -> torch.Tensor:
        """``Q^t`` ``[K, H, W]`` for ``t`` in ``0..T`` (``Q^0 = softmax(-unary)``)."""
        return self.q0 if iteration == 0 else self.trace[iteration - 1]

    def redraw(self, change=None) -> None:
        """Draw the summary line and the figure of the current iteration and label."""
        from IPython.display import Image, display

        t, label = self.iteration_slider.value, self.label_dropdown.value
        q = self.q_at(t)
        self.summary = mean_field_summary(self.unary, q, self.energies, t)
        self.figure = mean_field_figure(self.image, self.unary, q, self.energies, t, label)
        png = _png(self.figure)
        with self.output:
            self.output.clear_output(wait=True)
            print(self.summary)
            display(Image(data=png, format="png"))

    def _rerun(self, change=None) -> None:
        self.run()
        self.redraw()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        k, h, w = self.unary.shape
        return f"MeanFieldExplorer(K={k}, H={h}, W={w}, iterations={self.iterations})"
