"""Segmentation networks: FCN-32s/16s/8s, SegNet, DeepLab (shapes, initialisation, errors)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import crfkit.models as M
from crfkit.models.deeplab import DEFAULT_RATES

BUILDERS = {
    "fcn32s": M.fcn32s_small,
    "fcn16s": M.fcn16s_small,
    "fcn8s": M.fcn8s_small,
    "segnet": M.segnet_small,
    "deeplab": M.deeplab_small,
    "deeplab_os16": lambda **kw: M.deeplab_small(output_stride=16, **kw),
}

# The counts in the docstring tables (crfkit/models/__init__.py, fcn.py, segnet.py, deeplab.py).
DOCUMENTED = {
    "fcn32s": (452_314, 452_314 - 40_960),
    "fcn16s": (423_844, 423_844 - 10_240),
    "fcn8s": (418_414, 418_414 - 2_560),
    "segnet": (568_314, 568_314),
    "deeplab": (482_650, 482_650),
    "deeplab_os16": (482_650, 482_650),
}


def n_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _model(name, **kwargs):
    torch.manual_seed(0)
    return BUILDERS[name](**kwargs).eval()


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("size", [(37, 50), (64, 64), (96, 80)])
def test_output_shape_any_size(name, size):
    model = _model(name)
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 10, *size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["fcn8s", "segnet", "deeplab"])
def test_in_channels_and_num_classes(name):
    model = _model(name, num_classes=4, in_channels=1)
    with torch.no_grad():
        assert model(torch.rand(1, 1, 33, 47)).shape == (1, 4, 33, 47)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_documented_parameter_counts(name):
    total, trainable = DOCUMENTED[name]
    model = _model(name)
    assert n_params(model) == total
    assert n_params(model, trainable_only=True) == trainable


@pytest.mark.parametrize("name", list(BUILDERS))
def test_gradients_reach_the_first_layer(name):
    model = _model(name).train()
    x = torch.rand(2, 3, 64, 48)
    y = torch.randint(0, 10, (2, 64, 48))
    F.cross_entropy(model(x), y).backward()
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == 3
    assert first.weight.grad is not None and first.weight.grad.abs().sum() > 0
    for p in model.parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all()


# ---------------------------------------------------------------------------- FCN


def _interior(t, border):
    return t[..., border:-border, border:-border]


@pytest.mark.parametrize("variant, factor", [("32s", 32), ("16s", 16), ("8s", 8)])
def test_fcn_final_upsampling_is_fixed_bilinear(variant, factor):
    model = M.FCN(10, 3, variant).eval()
    assert model.variant == variant
    layer = model.upscore
    assert isinstance(layer, nn.ConvTranspose2d)
    assert not layer.weight.requires_grad
    assert (layer.stride, layer.kernel_size) == ((factor, factor), (2 * factor, 2 * factor))
    scores = torch.randn(2, 10, 3, 4)
    with torch.no_grad():
        up = layer(scores)
    ref = F.interpolate(scores, scale_factor=factor, mode="bilinear", align_corners=False)
    assert up.shape == ref.shape == (2, 10, 3 * factor, 4 * factor)
    # Equal away from the border, where F.interpolate clamps and the transposed conv zero-pads.
    torch.testing.assert_close(_interior(up, factor), _interior(ref, factor), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attr", ["upscore2", "upscore_pool4"])
def test_fcn_learnable_x2_upsampling_starts_bilinear(attr):
    model = M.fcn8s_small().eval()
    layer = getattr(model, attr)
    assert layer.weight.requires_grad and layer.weight.shape == (10, 10, 4, 4)
    scores = torch.randn(1, 10, 5, 6)
    with torch.no_grad():
        up = layer(scores)
    ref = F.interpolate(scores, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(_interior(up, 2), _interior(ref, 2), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("variant", ["16s", "8s"])
def test_fcn_skips_start_at_zero_so_only_the_coarse_path_counts(variant):
    torch.manual_seed(0)
    model = M.FCN(10, 3, variant).eval()
    skips = [model.score_pool4] + ([model.score_pool3] if variant == "8s" else [])
    for layer in skips:
        assert layer.weight.abs().sum() == 0 and layer.bias.abs().sum() == 0
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        coarse = model.coarse_scores(x)["score32"]  # [2, K, 2, 3]
        up = model.upscore2(coarse)
        if variant == "8s":
            up = model.upscore_pool4(up)
        torch.testing.assert_close(model(x), model.upscore(up))


def test_fcn_without_skips_has_no_skip_layers():
    model = M.fcn32s_small()
    assert not hasattr(model, "score_pool4") and not hasattr(model, "upscore2")
    assert model.upscore.stride == (32, 32)


def test_fcn_padding_keeps_aligned_grids():
    # Every score map of a padded input lands exactly on the next grid.
    model = M.fcn8s_small().eval()
    with torch.no_grad():
        maps = model.coarse_scores(torch.rand(1, 3, 64, 96))
    assert maps["score32"].shape[-2:] == (2, 3)
    assert maps["score16"].shape[-2:] == (4, 6)
    assert maps["score8"].shape[-2:] == (8, 12)


# ---------------------------------------------------------------------------- SegNet


def test_segnet_unpooling_puts_values_at_the_argmax():
    model = M.segnet_small()
    x = torch.randn(2, 3, 7, 9)
    pooled, indices = model.pool(x)  # [2, 3, 3, 4]
    up = model.unpool(pooled, indices, output_size=x.shape[-2:])
    assert up.shape == x.shape
    expected = torch.zeros_like(x)
    for i in range(3):
        for j in range(4):
            window = x[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].reshape(2, 3, 4)
            arg = window.argmax(-1)  # [2, 3]
            dy, dx = arg // 2, arg % 2
            for b in range(2):
                for c in range(3):
                    y, xx = 2 * i + dy[b, c], 2 * j + dx[b, c]
                    expected[b, c, y, xx] = x[b, c, y, xx]
    torch.testing.assert_close(up, expected)
    # The last row (odd height) and column (odd width) are dropped by the pool: zero.
    assert up[:, :, 6].abs().sum() == 0 and up[:, :, :, 8].abs().sum() == 0


def test_segnet_decoder_uses_the_encoder_switches():
    # Moving an input maximum moves where the unpooled values land: the switches matter.
    model = M.SegNet(2, 1, widths=(1,), depths=(1,))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias) if m.bias is not None else None
    encoder_conv = model.encoder[0][0]
    with torch.no_grad():
        encoder_conv.weight[0, 0, 1, 1] = 1.0  # identity
    records = []
    model.unpool.register_forward_hook(lambda mod, inp, out: records.append(out.detach()))
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 1] = 5.0
    model.eval()
    with torch.no_grad():
        model(x)
    assert records[-1].shape == (1, 1, 4, 4)
    assert records[-1][0, 0, 0, 1] > 0 and records[-1][0, 0].flatten().count_nonzero() == 1


def test_segnet_rejects_too_small_inputs():
    with pytest.raises(ValueError, match=r"x: expected H, W >= 32 for 5 pooling stages, got shape \[1, 3, 16, 64\]"):
        M.segnet_small()(torch.rand(1, 3, 16, 64))


# ---------------------------------------------------------------------------- DeepLab


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("size", [(64, 64), (37, 50)])
def test_deeplab_backbone_resolution_and_dilations(output_stride, size):
    model = M.deeplab_small(output_stride=output_stride).eval()
    assert model.output_stride == output_stride
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        features = model.backbone(x)
        low = model.low_res_scores(x)
    h, w = (math.ceil(s / output_stride) for s in size)
    assert features.shape == (1, 96, h, w)
    assert low.shape == (1, 10, h, w)
    convs = [m for m in model.backbone.modules() if isinstance(m, nn.Conv2d)]
    assert [c.dilation[0] for c in convs] == [1] * 7 + [2 if output_stride == 8 else 1] * 2
    assert all(c.padding == c.dilation for c in convs)  # "same" size
    assert model.dilations == ((1, 1, 1, 1, 2) if output_stride == 8 else (1, 1, 1, 1, 1))
    assert model.rates == DEFAULT_RATES[output_stride] == model.aspp.rates
    with torch.no_grad():
        up = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
        torch.testing.assert_close(model(x), up)


def test_deeplab_low_res_map_of_a_64_image_is_8x8():
    with torch.no_grad():
        assert M.deeplab_small().eval().low_res_scores(torch.rand(1, 3, 64, 64)).shape == (1, 10, 8, 8)


def test_deeplab_custom_rates():
    model = M.deeplab_small(rates=[1, 3])
    assert model.rates == (1, 3)
    dilations = [branch[0].dilation[0] for branch in model.aspp.branches]
    assert dilations == [1, 1, 3]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("build, error, match", [
    (lambda: M.FCN(10, 3, "4s"), ValueError, r"variant: expected one of \['32s', '16s', '8s'\], got '4s'"),
    (lambda: M.fcn8s_small(num_classes=0), ValueError, r"num_classes: expected a positive int, got 0"),
    (lambda: M.fcn32s_small(in_channels=2.0), TypeError, "in_channels: expected a positive int, got float 2.0"),
    (lambda: M.FCN(widths=(8, 16)), ValueError, r"widths: expected a sequence of 5 positive ints, got \(8, 16\)"),
    (lambda: M.segnet_small(num_classes=-1), ValueError, "num_classes: expected a positive int"),
    (lambda: M.SegNet(widths=(8, 16), depths=(1,)), ValueError, "depths: expected a sequence of 2 positive ints"),
    (lambda: M.deeplab_small(output_stride=4), ValueError, r"output_stride: expected one of \[8, 16\], got 4"),
    (lambda: M.deeplab_small(rates=[]), TypeError, "rates: expected a non-empty sequence of positive ints"),
    (lambda: M.deeplab_small(rates=[2, 0]), ValueError, r"rates: expected a positive int, got 0"),
])
def test_bad_arguments_raise_clear_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()
