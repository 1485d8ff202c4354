"""Lecture 05's widget: dense-CRF mean field, iteration by iteration, with the kernels on sliders.

Mean field starts from the unary alone, ``Q^0 = softmax(-unary)``, and updates every pixel at
once from the previous beliefs (Krähenbühl & Koltun 2011, Algorithm 1):

.. math::

    Q^{t+1}_p(k) \\propto \\exp\\Big(-\\psi_u(k) - \\sum_m w^{(m)} \\sum_{k'} \\mu^{(m)}(k, k')
        \\sum_{q} \\tilde k^{(m)}(f_p, f_q)\\, Q^t_q(k')\\Big),

(``k~`` the kernel normalised as pydensecrf does, the sum including ``q = p``) with a
Gaussian (smoothness, positions only) and a bilateral (appearance, positions and colours)
kernel ``k^{(m)}``. The widget records every ``Q^t`` and the mean-field free energy
``F(Q^t)`` per pixel (:func:`crfkit.inference.mean_field_free_energy`: the free energy of the model
mean field actually iterates, with pydensecrf's normalised kernels and the pixel itself in the
sum; it differs from ``KL(Q || p) - log Z`` of :meth:`crfkit.DenseCRF.energy`'s model by the
normalisation, the self term and a constant, so it may lie below ``-log K``), so the iteration
slider only redraws; a kernel
slider re-runs the ``T`` updates (:func:`crfkit.inference.mean_field`) and
:func:`crfkit.inference.mean_field_free_energy` once, then redraws.

References
----------
P. Krähenbühl, V. Koltun (2011). Efficient inference in fully connected CRFs with Gaussian
edge potentials. NeurIPS.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from crfkit._validate import check_choice, check_instance, check_int, check_positive_int
from crfkit.dense import NORMALIZATIONS, BilateralKernel, DenseCRF, GaussianKernel
from crfkit.inference.mean_field import mean_field, mean_field_free_energy
from crfkit.viz import voc_colormap
from crfkit.widgets._common import one_photo, one_q, one_unary, png

#: Size (inches) and resolution of the mean-field figure: 864 x 194 pixels at 72 dpi. Drawing
#: and PNG encoding, not inference, dominate the time of an update, so both are kept small.
MEAN_FIELD_FIGSIZE = (12.0, 2.7)
MEAN_FIELD_DPI = 72


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
        check_instance(f"kernels[{i}]", kern, (GaussianKernel, BilateralKernel))
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


def _energies_array(energies, iteration: int) -> np.ndarray:
    """``energies`` as a 1-D float64 array ``[T + 1]`` with ``0 <= iteration <= T``."""
    if isinstance(energies, torch.Tensor):
        energies = energies.detach().cpu().double().numpy()
    values = np.asarray(energies, dtype=np.float64)
    if values.ndim != 1 or values.size < 1:
        raise ValueError(f"energies: expected a 1-D sequence [T + 1] of free energies, got shape {list(values.shape)}")
    check_int("iteration", iteration, minimum=0, maximum=values.size - 1)  # 0..T
    return values


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
    unary = one_unary(unary)  # [K, H, W]
    values = _energies_array(energies, iteration)
    q = one_q(q, unary)
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
    unary = one_unary(unary)  # [K, H, W]
    image = one_photo(image, unary)  # [3, H, W] 0..255
    q = one_q(q, unary)  # [K, H, W]
    values = _energies_array(energies, iteration)
    k = unary.shape[0]
    label = check_int("label", label, minimum=0, maximum=k - 1)
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
    curve.set_title("mean-field free energy F(Q) (normalised kernels)")
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


class MeanFieldExplorer:
    """Dense-CRF mean field, iteration by iteration, with the kernels on sliders.

    Mean field starts from the unary alone, ``Q^0 = softmax(-unary)``, and each update lets
    every pixel listen to the others through the Gaussian (smoothness) and bilateral
    (appearance) kernels. The explorer runs ``iterations`` updates once, keeps every ``Q^t``
    and the mean-field free energy ``F(Q^t)`` of the model it iterates (per pixel; see the
    module docstring: with normalised kernels it is not ``KL(Q || p) - log Z``), and shows them:

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
        ``[3, H, W]`` with unary's ``H, W``, or not in 0..255 (a 0..1 photo); ``iterations`` not a
        positive int; ``label`` not an int in ``0..K-1``; an unknown normalisation; kernels that
        are not one Gaussian and one bilateral kernel at most.

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
        self.unary = one_unary(unary).clone(memory_format=torch.contiguous_format)  # [K, H, W]
        self.image = one_photo(image, self.unary).clone(memory_format=torch.contiguous_format)  # [3, H, W]
        k = self.unary.shape[0]
        iterations = check_positive_int("iterations", iterations)
        label = check_int("label", label, minimum=0, maximum=k - 1)
        check_choice("normalization", normalization, NORMALIZATIONS)
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
        image = png(self.figure)
        with self.output:
            self.output.clear_output(wait=True)
            print(self.summary)
            display(Image(data=image, format="png"))

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
