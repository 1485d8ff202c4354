"""Pictures for the course: label colours, overlays, and segmentation / belief figures.

Every lecture draws the same few things: an image next to its ground truth and one or
more predictions (as in the figures of the FCN, DeepLab and CRF-as-RNN papers), and the
per-class belief maps ``Q`` of an inference routine. These functions keep notebooks to one
line per figure. They take torch tensors (any device; detached and moved to the CPU
inside) or NumPy arrays, never modify them, and return a ``matplotlib.figure.Figure``
without calling ``plt.show()``.

The figures are made with pyplot and then detached from it (``plt.close(fig)``), so
nothing piles up in loops and there is nothing to close. In Jupyter, make the call the
last line of a cell (or ``display(fig)``) and the figure is drawn once; in a script, use
``fig.savefig("out.png")``.

Colours follow the PASCAL VOC palette (Everingham et al. 2010): class ``k`` gets the colour
whose bits are the bits of ``k`` interleaved over R, G and B, most significant first;
index 255, VOC's "void / ignore" label, is cream ``(224, 224, 192)``.

Image conventions
-----------------
An *image* is float in ``[0, 1]`` or ``uint8`` in ``0..255``, either channels-first
``[C, H, W]`` (torch's layout, as in ``[B, C, H, W]`` batches) or channels-last
``[H, W, C]`` (NumPy / matplotlib's), with ``C`` in {1, 3}; a 2-D ``[H, W]`` array is grey.
A 3-D array is read as channels-first when its first dimension is 1 or 3 and its last is
not; otherwise as channels-last (for the ambiguous ``[3, H, 3]``: tensors channels-first,
arrays channels-last). Dense-CRF images in 0..255 float units: divide by 255 first.

References
----------
M. Everingham, L. Van Gool, C. K. I. Williams, J. Winn, A. Zisserman. "The PASCAL Visual
Object Classes (VOC) Challenge." IJCV 88(2), 2010 (palette and the 255 = void label).

J. Long, E. Shelhamer, T. Darrell. "Fully Convolutional Networks for Semantic
Segmentation." CVPR 2015 (the image / truth / prediction figure layout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from crfkit._validate import check_positive_int, check_probability

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "VOC_IGNORE_COLOR",
    "colorize",
    "overlay",
    "show_beliefs",
    "show_images",
    "show_segmentation",
    "voc_colormap",
]

#: Colour of VOC's ignore / "void" label 255 in the standard palette.
VOC_IGNORE_COLOR = (224, 224, 192)


# --------------------------------------------------------------------------- colours


def voc_colormap(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour palette.

    Parameters
    ----------
    n : int, default 256
        Number of colours (``>= 1``).

    Returns
    -------
    ndarray of shape ``(n, 3)``, uint8
        ``palette[k]`` is the RGB colour of class ``k``: the bits of ``k`` are dealt out
        in turn to R, G and B, filling each channel from its most significant bit.
        ``palette[0] = (0, 0, 0)`` background, ``palette[1] = (128, 0, 0)`` aeroplane,
        ``palette[15] = (192, 128, 128)`` person, ``palette[255] = (224, 224, 192)``
        ignore ("void").

    References
    ----------
    Everingham et al. (2010), the VOC development kit's ``VOClabelcolormap.m``.
    """
    n = check_positive_int("n", n)
    index = np.arange(int(n), dtype=np.int64)  # (n,)
    palette = np.zeros((int(n), 3), dtype=np.int64)  # (n, 3)
    c = index.copy()
    for j in range(8):  # bit j of each channel, from the most significant (7 - j)
        for ch in range(3):
            palette[:, ch] |= ((c >> ch) & 1) << (7 - j)
        c >>= 3
    return palette.astype(np.uint8)


def colorize(
    labels: torch.Tensor | np.ndarray,
    palette: np.ndarray | None = None,
    ignore_index: int | None = 255,
    ignore_color: Sequence[int] = VOC_IGNORE_COLOR,
) -> np.ndarray:
    """Paint a label map with one colour per class.

    Parameters
    ----------
    labels : Tensor or ndarray of shape ``[H, W]`` or ``[B, H, W]``, integer
        Class per pixel; ``ignore_index`` marks unlabelled pixels.
    palette : array-like of shape ``(n, 3)``, optional
        Colour of each class: integers in ``0..255`` or floats in ``[0, 1]`` (e.g. from a
        matplotlib colormap). Default: :func:`voc_colormap`\\ ``(256)``.
    ignore_index : int or None, default 255
        Label painted with ``ignore_color`` whatever the palette says. ``None``: no
        special label.
    ignore_color : sequence of 3 int, default ``(224, 224, 192)``
        RGB colour of ignored pixels (VOC's "void" colour).

    Returns
    -------
    ndarray of shape ``(H, W, 3)`` or ``(B, H, W, 3)``, uint8
        ``out[..., i, j, :] = palette[labels[..., i, j]]``.

    Raises
    ------
    TypeError
        If ``labels`` is not an integer tensor/array.
    ValueError
        If ``labels`` is not 2-D or 3-D, a label (other than ``ignore_index``) is negative
        or has no palette entry, or ``palette`` / ``ignore_color`` is malformed.
    """
    lab = _labels_np("labels", labels, dims=(2, 3))
    pal = _palette_np(palette)
    ignore_rgb = _rgb_triple("ignore_color", ignore_color)
    ignored = lab == ignore_index if ignore_index is not None else np.zeros(lab.shape, bool)
    _check_label_range("labels", lab, ~ignored, len(pal), ignore_index)
    out = pal[np.where(ignored, 0, lab)]  # (..., H, W, 3)
    out[ignored] = ignore_rgb
    return out


def overlay(
    image: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    alpha: float = 0.5,
    palette: np.ndarray | None = None,
    ignore_index: int | None = 255,
) -> np.ndarray:
    """Blend label colours over an image.

    ``out = (1 - alpha) * image + alpha * colorize(labels) / 255`` at every labelled pixel;
    ignored pixels show the plain image.

    Parameters
    ----------
    image : Tensor or ndarray, ``[3, H, W]`` / ``[H, W, 3]`` / ``[H, W]``
        Float in ``[0, 1]`` or uint8 in ``0..255`` (see the module docstring for the
        layout rule); grey images are repeated over RGB.
    labels : Tensor or ndarray of shape ``[H, W]``, integer
        Class per pixel, ``ignore_index`` for unlabelled ones.
    alpha : float in ``[0, 1]``, default 0.5
        Weight of the label colour: 0 gives the image, 1 the colour map.
    palette, ignore_index
        As in :func:`colorize`.

    Returns
    -------
    ndarray of shape ``(H, W, 3)``, float64 in ``[0, 1]``

    Raises
    ------
    TypeError, ValueError
        If an input has the wrong type, number of dimensions or value range, the image
        and label sizes differ, or ``alpha`` is outside ``[0, 1]``.
    """
    alpha = check_probability("alpha", alpha, below_one=False)
    img = _image_np("image", image)  # (H, W, 3)
    lab = _labels_np("labels", labels, dims=(2,))
    if img.shape[:2] != lab.shape:
        raise ValueError(
            f"image and labels: expected the same height and width, got image "
            f"{list(img.shape[:2])} (H, W) and labels {list(lab.shape)}"
        )
    colours = colorize(lab, palette=palette, ignore_index=ignore_index).astype(np.float64) / 255
    out = (1.0 - alpha) * img + alpha * colours  # (H, W, 3)
    if ignore_index is not None:
        ignored = lab == ignore_index
        out[ignored] = img[ignored]
    return out


# --------------------------------------------------------------------------- figures


def show_images(
    images: Any,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    panel_size: float = 2.5,
    cmap: str = "gray",
) -> Figure:
    """A small grid of images.

    Parameters
    ----------
    images : list of images, or a batch ``[B, C, H, W]`` tensor / ``[B, H, W, C]`` array
        Colour images: float in ``[0, 1]`` or uint8 (layout rule in the module docstring).
        2-D ``[H, W]`` arrays of any finite range (energies, gradients, ...) are drawn
        with ``cmap``, scaled to their own min..max.
    titles : sequence of str, optional
        One per image.
    ncols : int, optional
        Panels per row; default ``min(B, 6)``.
    panel_size : float, default 2.5
        Width and height of one panel in inches.
    cmap : str, default "gray"
        Colormap for 2-D images.

    Returns
    -------
    matplotlib.figure.Figure
        One axes (with one image) per input image; spare grid cells are removed.
    """
    items = _image_list("images", images)
    n = len(items)
    titles = _titles("titles", titles, n)
    ncols = check_positive_int("ncols", ncols) if ncols is not None else min(n, 6)
    nrows = -(-n // ncols)
    fig, axes = _grid(nrows, ncols, panel_size)
    for i, item in enumerate(items):
        ax = axes[i // ncols][i % ncols]
        if item.ndim == 2:
            ax.imshow(item, cmap=cmap)
        else:
            ax.imshow(item)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    _remove_unused(axes, n, ncols)
    return fig


def show_segmentation(
    images: Any,
    truths: torch.Tensor | np.ndarray | None,
    predictions: torch.Tensor | np.ndarray | Mapping[str, Any] | None = None,
    titles: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    *,
    palette: np.ndarray | None = None,
    ignore_index: int | None = 255,
    alpha: float | None = None,
    row_titles: Sequence[str] | None = None,
    legend: bool | None = None,
    panel_size: float = 2.5,
) -> Figure:
    """Rows = examples; columns = image, ground truth and one or more predictions.

    The layout of the qualitative figures of Long et al. (2015, Fig. 6) and the CRF papers:
    ``show_segmentation(x, y, {"CNN": cnn_labels, "CNN+CRF": crf_labels}, class_names=VOC)``.

    Parameters
    ----------
    images : ``[B, C, H, W]`` tensor / ``[B, H, W, C]`` array / list of B images, or None
        The inputs (float in ``[0, 1]`` or uint8; layout rule in the module docstring). A
        single image is accepted when ``B = 1``; ``[B, H, W]`` is a batch of grey images.
        A one-channel float image outside ``[0, 1]`` (a depth map in metres) is stretched
        from its minimum to its maximum for drawing. ``None`` leaves out the image column (toy problems without an image).
    truths : ``[B, H, W]`` or ``[H, W]`` integer labels, or None
        Ground truth; ``ignore_index`` pixels are drawn in the VOC "void" colour.
        ``None`` leaves out the truth column.
    predictions : ``[B, H, W]`` labels, or a dict ``{name: [B, H, W] labels}``, optional
        One column per entry, titled with its name. Pass ``marginals.argmax(1)``.
    titles : sequence of str, optional
        Column titles, one per column; default ``"image"``, ``"ground truth"``,
        ``"prediction"`` or the dict's names.
    class_names : sequence of str, optional
        Names of classes ``0..len-1``; turns on a legend of the classes that occur.
    palette : array-like ``(n, 3)``, optional
        Class colours (default VOC, :func:`voc_colormap`).
    ignore_index : int or None, default 255
        Label of unscored pixels.
    alpha : float in ``[0, 1]``, optional
        If given, labels are blended over the image (:func:`overlay`) instead of drawn
        as flat colour maps.
    row_titles : sequence of B str, optional
        Label at the left of each row.
    legend : bool, optional
        Draw the class legend; default: when ``class_names`` is given.
    panel_size : float, default 2.5
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        ``B * columns`` axes with one image each (plus none for the legend, which is a
        figure legend).

    Raises
    ------
    TypeError, ValueError
        If nothing is given to draw, shapes disagree (all label maps must be ``[B, H, W]``
        with the images' ``H, W``), labels are out of the palette's range, or
        ``class_names`` / ``titles`` / ``row_titles`` have the wrong length.
    """
    # (argument name, column title, [B, H, W] labels), in column order
    label_sets: list[tuple[str, str, np.ndarray]] = []
    if truths is not None:
        label_sets.append(("truths", "ground truth", _labels_batch("truths", truths)))
    if predictions is not None:
        if isinstance(predictions, Mapping):
            if not predictions:
                raise ValueError("predictions: expected a non-empty dict {name: labels}, got {}")
            for key, value in predictions.items():
                arg = f"predictions[{key!r}]"
                label_sets.append((arg, str(key), _labels_batch(arg, value)))
        else:
            lab = _labels_batch("predictions", predictions)
            label_sets.append(("predictions", "prediction", lab))
    if not label_sets and images is None:
        raise ValueError("show_segmentation: expected images, truths or predictions, got all None")
    pal = _palette_np(palette)
    for arg, _, lab in label_sets:
        valid = lab != ignore_index if ignore_index is not None else np.ones(lab.shape, bool)
        _check_label_range(arg, lab, valid, len(pal), ignore_index)

    if label_sets:
        ref_arg, _, ref = label_sets[0]
        for arg, _, lab in label_sets[1:]:
            if lab.shape != ref.shape:
                raise ValueError(
                    f"{arg}: expected the shape of {ref_arg} {list(ref.shape)} [B, H, W], "
                    f"got {list(lab.shape)}"
                )
        b, h, w = ref.shape
        imgs = None if images is None else _image_batch("images", images, b, h, w)
    else:
        imgs = _image_list("images", images)
        b = len(imgs)

    if alpha is not None:
        alpha = check_probability("alpha", alpha, below_one=False)
        if imgs is None:
            raise ValueError("alpha: overlaying labels needs images, got images=None")

    columns: list[tuple[str, list[np.ndarray]]] = []  # (title, B panels)
    if imgs is not None:
        columns.append(("image", imgs))
    for _, title, lab in label_sets:
        if alpha is None:
            panels = list(colorize(lab, palette=pal, ignore_index=ignore_index))
        else:
            panels = [overlay(imgs[i], lab[i], alpha, pal, ignore_index) for i in range(b)]
        columns.append((title, panels))

    ncols = len(columns)
    titles = _titles("titles", titles, ncols)
    col_titles = list(titles) if titles is not None else [c[0] for c in columns]
    row_titles = _titles("row_titles", row_titles, b)

    names = None
    present: list[int] = []
    if class_names is not None:
        names = [str(c) for c in class_names]
        for name, _, lab in label_sets:
            used = np.unique(lab if ignore_index is None else lab[lab != ignore_index])
            if used.size and used.max() >= len(names):
                raise ValueError(
                    f"class_names: expected a name for every label in {name}, got "
                    f"{len(names)} names but label {int(used.max())}"
                )
            present.extend(int(u) for u in used)
        present = sorted(set(present))
    if legend is None:
        legend = names is not None
    if legend and names is None:
        raise ValueError("legend: a legend needs class_names, got class_names=None")

    fig, axes = _grid(b, ncols, panel_size)
    for r in range(b):
        for c, (_, panels) in enumerate(columns):
            ax = axes[r][c]
            panel = panels[r]
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, interpolation="nearest")
            if r == 0:
                ax.set_title(col_titles[c], fontsize=10)
        if row_titles is not None:
            axes[r][0].set_ylabel(row_titles[r], fontsize=9)
            axes[r][0].axis("on")
            axes[r][0].set_xticks([])
            axes[r][0].set_yticks([])
            for spine in axes[r][0].spines.values():
                spine.set_visible(False)

    if legend and present:
        from matplotlib.patches import Patch

        handles = [
            Patch(facecolor=pal[k] / 255.0, edgecolor="0.3", label=names[k]) for k in present
        ]
        has_ignore = any((lab == ignore_index).any() for _, _, lab in label_sets)
        if ignore_index is not None and has_ignore:
            handles.append(
                Patch(facecolor=np.array(VOC_IGNORE_COLOR) / 255.0, edgecolor="0.3", label="ignore")
            )
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6),
                   fontsize=8, frameon=False)
    return fig


def show_beliefs(
    marginals: torch.Tensor | np.ndarray,
    class_names: Sequence[str] | None = None,
    ncols: int | None = None,
    cmap: str = "viridis",
    title: str | None = None,
    panel_size: float = 2.2,
) -> Figure:
    """One panel per class of a belief (marginal) map, on a shared 0..1 colour scale.

    Parameters
    ----------
    marginals : Tensor or ndarray of shape ``[K, H, W]`` or ``[1, K, H, W]``, float
        Beliefs ``Q[k, i, j] = q(y_ij = k)`` in ``[0, 1]`` (e.g. from
        ``ck.inference.mean_field``); for a batch pass ``marginals[b]``.
    class_names : sequence of K str, optional
        Panel titles; default ``"k = 0"``, ``"k = 1"``, ...
    ncols : int, optional
        Panels per row; default ``min(K, 6)``.
    cmap : str, default "viridis"
        Colormap of the belief values.
    title : str, optional
        Figure title (e.g. ``"mean field, 5 iterations"``).
    panel_size : float, default 2.2
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        ``K`` axes with one image each, plus one colorbar axes (``K + 1`` in all).

    Raises
    ------
    TypeError, ValueError
        If ``marginals`` is not a float array of shape ``[K, H, W]`` / ``[1, K, H, W]``,
        holds NaN/inf or values outside ``[0, 1]``, or ``class_names`` has the wrong length.
    """
    q = _to_numpy("marginals", marginals)
    if not np.issubdtype(q.dtype, np.floating):
        raise TypeError(
            f"marginals: expected a floating-point array of beliefs, got dtype {q.dtype}"
        )
    if q.ndim == 4:
        if q.shape[0] != 1:
            raise ValueError(
                f"marginals: expected [K, H, W] or [1, K, H, W], got shape {list(q.shape)}; "
                "for a batch pass marginals[b]"
            )
        q = q[0]  # (K, H, W)
    if q.ndim != 3:
        raise ValueError(
            f"marginals: expected [K, H, W] or [1, K, H, W], got shape {list(q.shape)}"
        )
    _check_finite_np("marginals", q)
    lo, hi = float(q.min()), float(q.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(
            f"marginals: expected probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
            "for energies use ck.probs_from_unary"
        )
    k = q.shape[0]
    names = _titles("class_names", class_names, k)
    names = list(names) if names is not None else [f"k = {i}" for i in range(k)]
    ncols = check_positive_int("ncols", ncols) if ncols is not None else min(k, 6)
    nrows = -(-k // ncols)
    fig, axes = _grid(nrows, ncols, panel_size)
    used = [axes[i // ncols][i % ncols] for i in range(k)]
    for i, ax in enumerate(used):
        mappable = ax.imshow(q[i], vmin=0.0, vmax=1.0, cmap=cmap, interpolation="nearest")
        ax.set_title(names[i], fontsize=9)
    _remove_unused(axes, k, ncols)
    fig.colorbar(mappable, ax=used, shrink=0.8, label="belief")
    if title is not None:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- helpers


def _to_numpy(name: str, value: Any) -> np.ndarray:
    """A NumPy copy-free view of a tensor (detached, on the CPU) or an array."""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.dtype in (torch.bfloat16, torch.float16):
            value = value.float()
        return value.cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(value).__name__}")


def _labels_np(name: str, value: Any, dims: tuple[int, ...]) -> np.ndarray:
    """Integer label array (int64) with a number of dimensions in ``dims``."""
    arr = _to_numpy(name, value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        is_float = np.issubdtype(arr.dtype, np.floating)
        hint = "; for beliefs [K, H, W] pass .argmax(0)" if is_float else ""
        raise TypeError(f"{name}: expected integer class labels, got dtype {arr.dtype}{hint}")
    if arr.ndim not in dims:
        want = " or ".join({2: "[H, W]", 3: "[B, H, W]"}[d] for d in dims)
        raise ValueError(f"{name}: expected labels of shape {want}, got shape {list(arr.shape)}")
    return arr.astype(np.int64, copy=False)


def _labels_batch(name: str, value: Any) -> np.ndarray:
    lab = _labels_np(name, value, dims=(2, 3))
    return lab[None] if lab.ndim == 2 else lab  # (B, H, W)


def _check_label_range(
    name: str, lab: np.ndarray, valid: np.ndarray, n: int, ignore_index: int | None
) -> None:
    bad = valid & ((lab < 0) | (lab >= n))
    if bad.any():
        vals = lab[bad]
        ign = f" (or the ignore label {ignore_index})" if ignore_index is not None else ""
        raise ValueError(
            f"{name}: expected labels in [0, {n}){ign} to index a palette of {n} colours, "
            f"got {int(bad.sum())} pixel(s) out of range "
            f"(min {int(vals.min())}, max {int(vals.max())})"
        )


def _palette_np(palette: Any) -> np.ndarray:
    """``(n, 3)`` uint8 palette from ints in 0..255 or floats in [0, 1]."""
    if palette is None:
        return voc_colormap(256)
    if isinstance(palette, torch.Tensor):
        pal = _to_numpy("palette", palette)
    else:
        pal = np.asarray(palette)
    if pal.ndim != 2 or pal.shape[1] != 3 or pal.shape[0] < 1:
        raise ValueError(f"palette: expected an array of shape (n, 3), got shape {list(pal.shape)}")
    if np.issubdtype(pal.dtype, np.floating):
        _check_finite_np("palette", pal)
        if pal.min() < 0 or pal.max() > 1:
            raise ValueError(
                f"palette: expected floats in [0, 1] or integers in 0..255, got floats in "
                f"[{pal.min():.4g}, {pal.max():.4g}]"
            )
        return np.rint(pal * 255).astype(np.uint8)
    if not np.issubdtype(pal.dtype, np.integer):
        raise TypeError(f"palette: expected integer or float colours, got dtype {pal.dtype}")
    if pal.min() < 0 or pal.max() > 255:
        raise ValueError(
            f"palette: expected integers in 0..255, got values in [{pal.min()}, {pal.max()}]"
        )
    return pal.astype(np.uint8)


def _rgb_triple(name: str, value: Sequence[int]) -> np.ndarray:
    arr = np.asarray(value)
    ok = arr.shape == (3,) and np.issubdtype(arr.dtype, np.integer)
    if not ok or arr.min() < 0 or arr.max() > 255:
        raise ValueError(f"{name}: expected 3 integers in 0..255, got {value!r}")
    return arr.astype(np.uint8)


def _check_finite_np(name: str, arr: np.ndarray) -> None:
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError(
            f"{name}: expected finite values, got {int(np.isnan(arr).sum())} NaN and "
            f"{int(np.isinf(arr).sum())} inf"
        )


def _image_np(name: str, value: Any, grey_ok_any_range: bool = False) -> np.ndarray:
    """One image as float64 ``(H, W, 3)`` in [0, 1] (or ``(H, W)`` if ``grey_ok_any_range``)."""
    is_tensor = isinstance(value, torch.Tensor)
    arr = _to_numpy(name, value)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float64)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name}: expected a float or uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 3:
        first, last = arr.shape[0] in (1, 3), arr.shape[-1] in (1, 3)
        if first and (not last or is_tensor):
            arr = np.moveaxis(arr, 0, -1)  # (C, H, W) -> (H, W, C)
        elif not last:
            raise ValueError(
                f"{name}: expected an image [3, H, W], [H, W, 3] or [H, W] (1 or 3 channels), "
                f"got shape {list(arr.shape)}"
            )
    elif arr.ndim != 2:
        raise ValueError(
            f"{name}: expected an image [3, H, W], [H, W, 3] or [H, W], got shape {list(arr.shape)}"
        )
    _check_finite_np(name, arr)
    if arr.ndim == 2 and grey_ok_any_range and np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float64)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() > 255:
            raise ValueError(
                f"{name}: expected integer pixel values in 0..255, got [{arr.min()}, {arr.max()}]"
            )
        arr = arr.astype(np.float64) / 255.0
    else:
        lo, hi = float(arr.min()), float(arr.max())
        single = arr.ndim == 2 or arr.shape[-1] == 1
        if single and (lo < -1e-6 or hi > 1 + 1e-6):
            # one channel of another unit (a depth map in metres): stretch it to 0..1 to draw it
            arr = (arr.astype(np.float64) - lo) / max(hi - lo, 1e-12)
            lo, hi = 0.0, 1.0
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(
                f"{name}: expected float pixel values in [0, 1] (or uint8), got values in "
                f"[{lo:.4g}, {hi:.4g}]; divide 0..255 images by 255, undo any normalisation"
            )
        arr = np.clip(arr.astype(np.float64), 0.0, 1.0)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr  # (H, W, 3)


def _image_list(name: str, images: Any, grey_any_range: bool = True) -> list[np.ndarray]:
    """A list of images from a list or a batch (``[B, C, H, W]`` / ``[B, H, W, C]``)."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError(f"{name}: expected at least one image, got an empty sequence")
        return [_image_np(f"{name}[{i}]", im, grey_any_range) for i, im in enumerate(images)]
    arr = images.detach() if isinstance(images, torch.Tensor) else images
    if isinstance(arr, (torch.Tensor, np.ndarray)) and arr.ndim == 4:
        if arr.shape[0] == 0:
            raise ValueError(f"{name}: expected at least one image, got shape {list(arr.shape)}")
        return [_image_np(f"{name}[{i}]", arr[i], grey_any_range) for i in range(arr.shape[0])]
    return [_image_np(name, images, grey_any_range)]


def _image_batch(name: str, images: Any, b: int, h: int, w: int) -> list[np.ndarray]:
    """B RGB images of size (h, w) from a batch, a list, or (B = 1) a single image."""
    is_arr = isinstance(images, (torch.Tensor, np.ndarray))
    if is_arr and images.ndim == 3 and tuple(images.shape) == (b, h, w):
        items = [_image_np(f"{name}[{i}]", images[i]) for i in range(b)]  # grey batch
    else:
        items = _image_list(name, images, grey_any_range=False)
    if len(items) != b:
        raise ValueError(
            f"{name}: expected {b} image(s) to match the label maps [B, H, W] = {[b, h, w]}, "
            f"got {len(items)}"
        )
    for i, im in enumerate(items):
        if im.shape[:2] != (h, w):
            raise ValueError(
                f"{name}[{i}]: expected height and width {[h, w]} like the label maps, got "
                f"{list(im.shape[:2])}"
            )
    return items


def _titles(name: str, titles: Sequence[str] | None, n: int) -> Sequence[str] | None:
    if titles is None:
        return None
    if isinstance(titles, str):
        raise TypeError(f"{name}: expected a sequence of {n} str, got a single str {titles!r}")
    titles = list(titles)
    if len(titles) != n:
        raise ValueError(f"{name}: expected {n} entries, got {len(titles)}")
    return titles


def _grid(nrows: int, ncols: int, panel_size: float):
    """A figure with an ``nrows x ncols`` grid of bare axes (a list of rows)."""
    import matplotlib.pyplot as plt

    number = isinstance(panel_size, (int, float)) and not isinstance(panel_size, bool)
    if not number or not panel_size > 0:
        raise ValueError(f"panel_size: expected a positive number of inches, got {panel_size!r}")
    fig = plt.figure(figsize=(panel_size * ncols, panel_size * nrows), layout="constrained")
    # Detach from pyplot's list of open figures: nothing to close, no leak in loops, and in
    # Jupyter the returned figure is drawn once (as the cell's value), not twice.
    plt.close(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for row in axes:
        for ax in row:
            ax.set_axis_off()
    return fig, [list(row) for row in axes]


def _remove_unused(axes: list[list[Any]], n: int, ncols: int) -> None:
    for i, row in enumerate(axes):
        for j, ax in enumerate(row):
            if i * ncols + j >= n:
                ax.remove()
