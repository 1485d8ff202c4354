"""Tests for crfkit.viz: palette, colorize, overlay maths, figure layout, input errors."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from crfkit import viz  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def n_images(fig: Figure) -> int:
    return sum(len(ax.get_images()) for ax in fig.axes)


# --------------------------------------------------------------------------- palette


def test_voc_colormap_known_entries():
    pal = viz.voc_colormap()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    assert tuple(pal[0]) == (0, 0, 0)  # background
    assert tuple(pal[1]) == (128, 0, 0)  # aeroplane
    assert tuple(pal[2]) == (0, 128, 0)  # bicycle
    assert tuple(pal[3]) == (128, 128, 0)  # bird
    assert tuple(pal[15]) == (192, 128, 128)  # person
    assert tuple(pal[20]) == (0, 64, 128)  # tv/monitor
    assert tuple(pal[255]) == (224, 224, 192)  # void / ignore
    assert tuple(pal[255]) == viz.VOC_IGNORE_COLOR
    assert len({tuple(c) for c in pal}) == 256  # all distinct
    assert np.array_equal(viz.voc_colormap(21), pal[:21])


def test_voc_colormap_errors():
    with pytest.raises(ValueError, match=r"n: expected a positive int, got 0"):
        viz.voc_colormap(0)
    with pytest.raises(TypeError, match=r"n: expected a positive int, got float"):
        viz.voc_colormap(2.0)


# --------------------------------------------------------------------------- colorize


def test_colorize_maps_each_label_to_its_colour():
    pal = viz.voc_colormap()
    labels = torch.tensor([[0, 1, 2], [15, 255, 20]])
    before = labels.clone()
    rgb = viz.colorize(labels)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    for i in range(2):
        for j in range(3):
            assert tuple(rgb[i, j]) == tuple(pal[labels[i, j]])
    assert tuple(rgb[1, 1]) == (224, 224, 192)
    assert torch.equal(labels, before)


def test_colorize_batch_numpy_custom_palette_and_ignore_colour():
    labels = np.array([[[0, 1], [1, 9]], [[9, 0], [0, 0]]])
    pal = [[10, 20, 30], [40, 50, 60]]
    rgb = viz.colorize(labels, palette=pal, ignore_index=9, ignore_color=(1, 2, 3))
    assert rgb.shape == (2, 2, 2, 3)
    assert tuple(rgb[0, 0, 1]) == (40, 50, 60)
    assert tuple(rgb[0, 1, 1]) == (1, 2, 3) and tuple(rgb[1, 0, 0]) == (1, 2, 3)
    # float palettes in [0, 1] are scaled to 0..255
    rgb = viz.colorize(np.array([[0, 1]]), palette=np.array([[0.0, 0.5, 1.0], [1.0, 1.0, 1.0]]))
    assert tuple(rgb[0, 0]) == (0, 128, 255)
    # with ignore_index=None, 255 is an ordinary label of the VOC palette
    assert tuple(viz.colorize(np.array([[255]]), ignore_index=None)[0, 0]) == (224, 224, 192)


def test_colorize_errors():
    with pytest.raises(ValueError, match=r"labels: expected labels in \[0, 21\).*1 pixel.*max 21"):
        viz.colorize(torch.tensor([[0, 21]]), palette=viz.voc_colormap(21))
    with pytest.raises(ValueError, match=r"labels: expected labels in \[0, 256\).*min -1"):
        viz.colorize(torch.tensor([[0, -1]]))
    with pytest.raises(
        TypeError, match=r"labels: expected integer class" r" labels, got dtype float32.*argmax"
    ):
        viz.colorize(torch.zeros(2, 2))
    with pytest.raises(
        ValueError,
        match=r"labels: expected labels of shape \[H,"
        r" W\] or \[B, H, W\], got shape \[4\]",
    ):
        viz.colorize(torch.zeros(4, dtype=torch.long))
    with pytest.raises(
        TypeError, match=r"labels: expected a torch.Tensor" r" or numpy.ndarray, got list"
    ):
        viz.colorize([[0, 1]])
    with pytest.raises(
        ValueError, match=r"palette: expected an array of" r" shape \(n, 3\), got shape \[2, 4\]"
    ):
        viz.colorize(torch.zeros(2, 2, dtype=torch.long), palette=np.zeros((2, 4), np.uint8))
    with pytest.raises(ValueError, match=r"palette: expected floats in \[0, 1\]"):
        viz.colorize(torch.zeros(2, 2, dtype=torch.long), palette=np.full((2, 3), 2.0))
    with pytest.raises(ValueError, match=r"ignore_color: expected 3 integers"):
        viz.colorize(torch.zeros(2, 2, dtype=torch.long), ignore_color=(1, 2))


# --------------------------------------------------------------------------- overlay


def test_overlay_math():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 4, 5, generator=g)
    labels = torch.randint(0, 21, (4, 5), generator=g)
    labels[0, 0] = 255
    img_hwc = image.permute(1, 2, 0).double().numpy()
    colours = viz.colorize(labels).astype(np.float64) / 255

    out0 = viz.overlay(image, labels, alpha=0.0)
    assert out0.shape == (4, 5, 3) and out0.dtype == np.float64
    np.testing.assert_allclose(out0, img_hwc, atol=1e-7)

    out1 = viz.overlay(image, labels, alpha=1.0)
    expected1 = colours.copy()
    expected1[0, 0] = img_hwc[0, 0]  # ignored pixels show the image
    np.testing.assert_allclose(out1, expected1, atol=1e-7)

    out = viz.overlay(image, labels, alpha=0.3)
    expected = 0.7 * img_hwc + 0.3 * colours
    expected[0, 0] = img_hwc[0, 0]
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_overlay_accepts_layouts_and_dtypes():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(3, 6, 7, generator=g)
    labels = torch.randint(0, 5, (6, 7), generator=g)
    ref = viz.overlay(image, labels, alpha=0.5)
    hwc = image.permute(1, 2, 0).numpy()
    np.testing.assert_allclose(viz.overlay(hwc, labels.numpy(), alpha=0.5), ref, atol=1e-7)
    np.testing.assert_allclose(viz.overlay(image.numpy(), labels, alpha=0.5), ref, atol=1e-7)
    u8 = (hwc * 255).round().astype(np.uint8)
    np.testing.assert_allclose(viz.overlay(u8, labels, alpha=0.5), ref, atol=0.5 / 255 + 1e-7)
    grey = viz.overlay(image[0], labels, alpha=0.0)
    np.testing.assert_allclose(grey, np.repeat(image[0].numpy()[..., None], 3, -1), atol=1e-7)
    # requires_grad tensors are fine, and nothing is mutated
    x = image.clone().requires_grad_(True)
    viz.overlay(x, labels)
    assert torch.equal(x.detach(), image)


def test_overlay_errors():
    image = torch.rand(3, 4, 5)
    labels = torch.zeros(4, 5, dtype=torch.long)
    with pytest.raises(
        ValueError,
        match=r"image and labels: expected the same height"
        r" and width, got image \[4, 5\].*labels \[4, 6\]",
    ):
        viz.overlay(image, torch.zeros(4, 6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"image: expected float pixel values in \[0, 1\].*255"):
        viz.overlay(image * 255, labels)
    with pytest.raises(ValueError, match=r"image: expected finite values, got 1 NaN"):
        bad = image.clone()
        bad[0, 0, 0] = float("nan")
        viz.overlay(bad, labels)
    with pytest.raises(ValueError, match=r"image: expected an image.*got shape \[1, 3, 4, 5\]"):
        viz.overlay(image[None], labels)
    with pytest.raises(ValueError, match=r"image: expected an image.*got shape \[5, 4, 5\]"):
        viz.overlay(torch.rand(5, 4, 5), labels)
    with pytest.raises(ValueError, match=r"alpha: expected a finite number in \[0, 1\], got 1.5"):
        viz.overlay(image, labels, alpha=1.5)
    with pytest.raises(
        ValueError, match=r"labels: expected labels of shape" r" \[H, W\], got shape \[1, 4, 5\]"
    ):
        viz.overlay(image, labels[None])
    with pytest.raises(ValueError, match=r"labels: expected labels in \[0, 21\)"):
        viz.overlay(image, labels + 30, palette=viz.voc_colormap(21))


# --------------------------------------------------------------------------- figures


def test_show_segmentation_grid_with_several_predictions():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 8, 9, generator=g)
    truths = torch.randint(0, 4, (3, 8, 9), generator=g)
    truths[0, 0, 0] = 255
    preds = {"CNN": torch.randint(0, 4, (3, 8, 9), generator=g), "CNN+CRF": truths.clamp(max=3)}
    fig = viz.show_segmentation(images, truths, preds, class_names=["bg", "a", "b", "c"],
                                row_titles=["x", "y", "z"])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * 4 and n_images(fig) == 3 * 4
    assert [ax.get_title() for ax in fig.axes[:4]] == ["image", "ground truth", "CNN", "CNN+CRF"]
    assert fig.axes[4].get_ylabel() == "y"
    assert len(fig.legends) == 1
    legend_names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend_names[:4] == ["bg", "a", "b", "c"] and legend_names[-1] == "ignore"
    # the truth panel is the colour map of the labels
    np.testing.assert_array_equal(fig.axes[1].get_images()[0].get_array(), viz.colorize(truths[0]))


def test_show_segmentation_variants():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(3, 6, 6, generator=g)
    truth = torch.randint(0, 3, (6, 6), generator=g)
    fig = viz.show_segmentation(image, truth)  # one example, no prediction
    assert len(fig.axes) == 2 and not fig.legends
    fig = viz.show_segmentation(None, truth[None], truth[None], titles=["y", "y hat"])
    assert [ax.get_title() for ax in fig.axes] == ["y", "y hat"]
    fig = viz.show_segmentation(image.permute(1, 2, 0).numpy()[None], truth[None], alpha=0.5)
    assert n_images(fig) == 2
    assert np.allclose(fig.axes[1].get_images()[0].get_array(), viz.overlay(image, truth, 0.5))
    # a batch of grey images [B, H, W] and a list of images
    fig = viz.show_segmentation(torch.rand(2, 6, 6), truth.expand(2, 6, 6), None)
    assert len(fig.axes) == 4
    fig = viz.show_segmentation([image, image], truth.expand(2, 6, 6))
    assert len(fig.axes) == 4


def test_show_segmentation_errors():
    images = torch.rand(2, 3, 6, 6)
    truths = torch.zeros(2, 6, 6, dtype=torch.long)
    with pytest.raises(
        ValueError,
        match=r"predictions\['CRF'\]: expected the shape"
        r" of truths \[2, 6, 6\].*got \[2, 6, 5\]",
    ):
        viz.show_segmentation(images, truths, {"CRF": torch.zeros(2, 6, 5, dtype=torch.long)})
    with pytest.raises(ValueError, match=r"images: expected 2 image\(s\).*got 3"):
        viz.show_segmentation(torch.rand(3, 3, 6, 6), truths)
    with pytest.raises(
        ValueError, match=r"images\[0\]: expected height" r" and width \[6, 6\].*got \[5, 6\]"
    ):
        viz.show_segmentation(torch.rand(2, 3, 5, 6), truths)
    with pytest.raises(
        ValueError,
        match=r"class_names: expected a name for every"
        r" label in truths, got 2 names but label 3",
    ):
        viz.show_segmentation(images, truths + 3, class_names=["a", "b"])
    with pytest.raises(ValueError, match=r"titles: expected 2 entries, got 3"):
        viz.show_segmentation(images, truths, titles=["a", "b", "c"])
    with pytest.raises(ValueError, match=r"expected images, truths or predictions"):
        viz.show_segmentation(None, None)
    with pytest.raises(TypeError, match=r"predictions: expected integer class labels.*float32"):
        viz.show_segmentation(images, truths, torch.rand(2, 6, 6))
    with pytest.raises(ValueError, match=r"truths: expected labels in \[0, 256\)"):
        viz.show_segmentation(images, truths + 300)
    with pytest.raises(ValueError, match=r"alpha: overlaying labels needs images"):
        viz.show_segmentation(None, truths, alpha=0.5)


def test_show_beliefs_panels_and_shared_scale():
    q = torch.softmax(torch.randn(1, 5, 7, 8), dim=1)
    before = q.clone()
    fig = viz.show_beliefs(q, class_names=list("abcde"), title="mean field")
    assert len(fig.axes) == 5 + 1  # five panels and one colorbar
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 5
    assert all(im.get_clim() == (0.0, 1.0) for im in images)
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    np.testing.assert_allclose(images[2].get_array(), q[0, 2].numpy())
    assert torch.equal(q, before)
    fig = viz.show_beliefs(q[0].numpy(), ncols=2)  # 3 rows x 2 columns, one cell removed
    assert len(fig.axes) == 6 and n_images(fig) == 5


def test_show_beliefs_errors():
    with pytest.raises(
        ValueError,
        match=r"marginals: expected \[K, H, W\] or \[1, K, H,"
        r" W\], got shape \[2, 3, 4, 4\].*marginals\[b\]",
    ):
        viz.show_beliefs(torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"marginals: expected \[K, H, W\].*got shape \[4, 4\]"):
        viz.show_beliefs(torch.rand(4, 4))
    with pytest.raises(
        ValueError, match=r"marginals: expected probabilities" r" in \[0, 1\].*probs_from_unary"
    ):
        viz.show_beliefs(torch.randn(3, 4, 4) * 5)
    with pytest.raises(ValueError, match=r"marginals: expected finite values, got 1 NaN"):
        q = torch.rand(3, 4, 4)
        q[0, 0, 0] = float("nan")
        viz.show_beliefs(q)
    with pytest.raises(TypeError, match=r"marginals: expected a floating-point array.*int64"):
        viz.show_beliefs(torch.zeros(3, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"class_names: expected 3 entries, got 2"):
        viz.show_beliefs(torch.rand(3, 4, 4), class_names=["a", "b"])


def test_show_images():
    batch = torch.rand(4, 3, 5, 5)
    fig = viz.show_images(batch, titles=["a", "b", "c", "d"], ncols=3)
    assert len(fig.axes) == 4 and n_images(fig) == 4
    assert [ax.get_title() for ax in fig.axes] == ["a", "b", "c", "d"]
    # a list mixing a colour image and an energy map of any range
    fig = viz.show_images([batch[0], torch.randn(5, 5) * 10])
    assert n_images(fig) == 2
    with pytest.raises(ValueError, match=r"titles: expected 4 entries, got 1"):
        viz.show_images(batch, titles=["a"])
    with pytest.raises(TypeError, match=r"titles: expected a sequence of 4 str, got a single str"):
        viz.show_images(batch, titles="abcd")
    with pytest.raises(ValueError, match=r"images\[1\]: expected float pixel values in \[0, 1\]"):
        viz.show_images([batch[0], batch[1] * 255])
    with pytest.raises(ValueError, match=r"images: expected at least one image"):
        viz.show_images([])
    with pytest.raises(ValueError, match=r"ncols: expected a positive int, got 0"):
        viz.show_images(batch, ncols=0)


def test_figures_are_detached_from_pyplot():
    plt.close("all")
    viz.show_images(torch.rand(2, 3, 4, 4))
    assert plt.get_fignums() == []


def test_depth_images_are_stretched_for_drawing():
    from crfkit.viz import show_segmentation

    depth = torch.linspace(2.0, 4.0, 16).reshape(1, 1, 4, 4)  # metres, outside [0, 1]
    labels = torch.zeros(1, 4, 4, dtype=torch.int64)
    fig = show_segmentation(depth, labels)
    drawn = fig.axes[0].images[0].get_array()
    assert float(drawn.min()) == 0.0 and float(drawn.max()) == 1.0
    plt.close(fig)
    with pytest.raises(ValueError, match=r"expected float pixel values in \[0, 1\]"):
        show_segmentation(torch.full((1, 3, 4, 4), 2.0), labels)  # colour images are not stretched
