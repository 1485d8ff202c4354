"""crfkit.nn.arithmetic: sizes, receptive fields and jumps against real torch layer stacks.

The oracle is torch itself: (a) output sizes are the shapes torch's layers produce;
(b) the region of the input that influences an output pixel is where the gradient of that
pixel is non-zero (all weights 1, so nothing cancels), measured on inputs large enough that
the borders do not clip it; (c) the jump is how far that region moves between outputs.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from crfkit.nn import arithmetic as ar
from crfkit.nn.arithmetic import conv, pool, transposed

DT = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


@st.composite
def layer_specs(draw, kinds=("conv", "pool", "transposed"), pool_dilation=False):
    kind = draw(st.sampled_from(kinds))
    k, s = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    if kind == "pool":
        d = draw(st.integers(1, 2)) if pool_dilation else 1
        return pool(k, s, draw(st.integers(0, k // 2)), dilation=d,
                    ceil_mode=draw(st.booleans()))
    d, p = draw(st.integers(1, 3)), draw(st.integers(0, 3))
    if kind == "conv":
        return conv(k, s, p, d)
    return transposed(k, s, p, draw(st.integers(0, max(s, d) - 1)), d)


def _torch_stack(layers, square=True, pool_max=False):
    """The torch layers of a stack, all weights 1; ``square=False`` acts on the height only."""

    def hw(value, trivial):
        return value if square else (value, trivial)

    modules = []
    for layer in layers:
        k, s, p, d = layer.kernel_size, layer.stride, layer.padding, layer.dilation
        if layer.kind == "conv":
            modules.append(nn.Conv2d(1, 1, hw(k, 1), hw(s, 1), hw(p, 0), hw(d, 1), bias=False))
        elif layer.kind == "transposed":
            modules.append(nn.ConvTranspose2d(1, 1, hw(k, 1), hw(s, 1), hw(p, 0),
                                              hw(layer.output_padding, 0), bias=False,
                                              dilation=hw(d, 1)))
        elif pool_max:
            modules.append(nn.MaxPool2d(hw(k, 1), hw(s, 1), hw(p, 0), hw(d, 1),
                                        ceil_mode=layer.ceil_mode))
        else:
            assert d == 1
            modules.append(nn.AvgPool2d(hw(k, 1), hw(s, 1), hw(p, 0), ceil_mode=layer.ceil_mode))
    net = nn.Sequential(*modules).to(DT)
    for param in net.parameters():
        nn.init.ones_(param)
    return net


# ---------------------------------------------------------------------------------------
# (a) output sizes


@settings(max_examples=120, deadline=None)
@given(layers=st.lists(layer_specs(pool_dilation=True), min_size=1, max_size=4),
       size=st.integers(1, 24), pool_max=st.booleans())
def test_output_sizes_are_torch_shapes(layers, size, pool_max):
    if not pool_max:  # AvgPool2d has no dilation
        layers = [ar.Layer(**{**vars(layer), "dilation": 1}) if layer.kind == "pool" else layer
                  for layer in layers]
    net = _torch_stack(layers, pool_max=pool_max)
    x = torch.zeros(1, 1, size, size, dtype=DT)
    shapes = []
    with torch.no_grad():
        try:
            for module in net:
                x = module(x)
                shapes.append(x.shape[-1])
        except RuntimeError:
            shapes = None  # torch refuses: the input is too small for some layer
    assert ar.layers_of(net) == [ar.Layer(**{**vars(layer), "name": str(i)})
                                 for i, layer in enumerate(layers)]
    if shapes is None:
        with pytest.raises(ValueError, match=f"input_size: expected a size that reaches every "
                                             f"layer, got {size}, which fails at layer"):
            ar.describe(net, size)
        return
    table = ar.describe(net, size)
    assert [row.output_size for row in table] == shapes
    layer = layers[0]  # the three size functions on their own
    if layer.kind == "conv":
        assert ar.conv_output_size(size, layer.kernel_size, layer.stride, layer.padding,
                                   layer.dilation) == shapes[0]
    elif layer.kind == "pool":
        assert ar.pool_output_size(size, layer.kernel_size, layer.stride, layer.padding,
                                   layer.ceil_mode, dilation=layer.dilation) == shapes[0]
    else:
        assert ar.conv_transpose_output_size(size, layer.kernel_size, layer.stride,
                                             layer.padding, layer.output_padding,
                                             layer.dilation) == shapes[0]


def test_known_sizes():
    assert ar.conv_output_size(227, 11, stride=4) == 55  # AlexNet conv1
    assert ar.pool_output_size(55, 3, stride=2) == 27  # AlexNet's overlapping pooling
    assert ar.conv_output_size(5, 3, padding=1, dilation=1) == 5  # "same"
    assert ar.conv_output_size(7, 3, padding=2, dilation=2) == 7  # DeepLab: same with holes
    # Dumoulin & Visin (2016), relationships 8, 12 and 14 (their a is output_padding)
    assert ar.conv_transpose_output_size(2, 3) == 4
    assert ar.conv_transpose_output_size(3, 3, stride=2) == 7
    assert ar.conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1) == 6
    assert ar.pool_output_size(1, 3, 3, ceil_mode=True) == 1  # a partial window, as torch


# ---------------------------------------------------------------------------------------
# (b), (c) receptive field, input regions and jump against gradients


def _hull_bound(layers):
    """1 + sum of the kernels' spans in input pixels, a real number: an upper bound on r."""
    r, j = Fraction(1), Fraction(1)
    for layer in layers:
        if layer.kind == "transposed":
            j /= layer.stride
            r += layer.dilation * (layer.kernel_size - 1) * j
        else:
            r += layer.dilation * (layer.kernel_size - 1) * j
            j *= layer.stride
    return r


def _measured_regions(layers, outputs_wanted):
    """First and last input pixel with a non-zero gradient, for consecutive middle outputs.

    The stack acts along the height only ((k, 1) kernels), so the input is a column.
    """
    period = math.prod(layer.stride for layer in layers if layer.kind == "transposed")
    reach = Fraction(0)  # how far (in input pixels) anything in the stack can shift or spread
    j = Fraction(1)
    for layer in layers:
        j_out = j / layer.stride if layer.kind == "transposed" else j * layer.stride
        reach += (layer.padding + layer.dilation * layer.kernel_size + layer.stride
                  + layer.output_padding) * max(j, j_out)
        j = j_out
    n = math.ceil(6 * reach + 3 * (outputs_wanted + period) * j) + 40
    net = _torch_stack(layers, square=False)
    x = torch.ones(1, 1, n, 1, dtype=DT, requires_grad=True)
    y = net(x)  # [1, 1, m, 1]
    m = y.shape[2]
    outputs = list(range(m // 2 - outputs_wanted // 2, m // 2 - outputs_wanted // 2
                         + outputs_wanted))
    probes = torch.zeros(len(outputs), *y.shape, dtype=DT)
    for row, o in enumerate(outputs):
        probes[row, 0, 0, o, 0] = 1
    (grad,) = torch.autograd.grad(y, x, probes, is_grads_batched=True)  # [outputs, 1, 1, n, 1]
    regions = {}
    for row, o in enumerate(outputs):
        idx = torch.nonzero(grad[row, 0, 0, :, 0]).flatten()
        regions[o] = (int(idx[0]), int(idx[-1])) if len(idx) else None
        if len(idx):  # far from both borders, so nothing was clipped
            assert reach <= int(idx[0]) and int(idx[-1]) < n - reach
    return regions, period


rf_stacks = st.lists(layer_specs(), min_size=1, max_size=4).filter(
    lambda layers: sum(layer.kind == "transposed" for layer in layers) <= 2)


@settings(max_examples=150, deadline=None)
@given(layers=rf_stacks)
def test_receptive_field_region_and_jump_equal_the_gradient_support(layers):
    period = math.prod(layer.stride for layer in layers if layer.kind == "transposed")
    regions, period = _measured_regions(layers, 2 * period + 2)
    # (b) the region of every output pixel, and the receptive field (a full period is covered)
    for o, region in regions.items():
        assert ar.input_region(layers, o) == region, o
    extents = [last - first + 1 for first, last in filter(None, regions.values())]
    assert ar.receptive_field(layers) == max(extents, default=0)
    assert ar.receptive_field(layers) <= math.floor(_hull_bound(layers))
    # (c) the jump: how far the region moves per output pixel (per period once upsampled)
    jump = ar.output_stride(layers)
    assert ar.describe(layers).output_stride == jump
    assert ar.describe(layers).rows[-1].jump == jump
    for o in regions:
        if o + period in regions and regions[o] and regions[o + period]:
            assert regions[o + period][0] - regions[o][0] == period * jump
            assert regions[o + period][1] - regions[o][1] == period * jump
    if period == 1:  # no transposed layer: every output looks alike, the recurrence holds
        assert all(regions.values())
        assert len({last - first for first, last in regions.values()}) == 1


@settings(max_examples=40, deadline=None)
@given(layers=st.lists(layer_specs(kinds=("conv", "pool")), min_size=1, max_size=5))
def test_conv_pool_stacks_follow_the_recurrence(layers):
    # r += d (k - 1) j, j *= s (Araujo et al. 2019); first(o) = o j - sum of p j
    r, j, first = 1, 1, 0
    for layer in layers:
        first -= layer.padding * j
        r += layer.dilation * (layer.kernel_size - 1) * j
        j *= layer.stride
    table = ar.describe(layers)
    assert table.receptive_field == ar.receptive_field(layers) == r
    assert table.output_stride == ar.output_stride(layers) == j
    assert isinstance(j, int)
    for o in (-3, 0, 5):
        assert ar.input_region(layers, o) == (first + o * j, first + o * j + r - 1)


def test_square_2d_stack_measured_in_two_dimensions():
    # one full 2-D check (the hypothesis test uses (k, 1) kernels): conv, pool, transposed
    layers = [conv(3, padding=1), pool(2), conv(3, 2, 2, 2), transposed(4, 2, 1)]
    net = _torch_stack(layers)
    x = torch.ones(1, 1, 40, 40, dtype=DT, requires_grad=True)
    y = net(x)
    assert y.shape[-2:] == (ar.describe(layers, 40).rows[-1].output_size,) * 2 == (20, 20)
    for o in (8, 9, 10, 11):
        (g,) = torch.autograd.grad(y[0, 0, o, o], x, retain_graph=True)
        rows, cols = torch.nonzero(g[0, 0], as_tuple=True)
        expected = ar.input_region(layers, o)
        assert (int(rows.min()), int(rows.max())) == expected
        assert (int(cols.min()), int(cols.max())) == expected
    # the conv/pool part sees 12 pixels with jump 4; each output of the 4/2 transposed conv
    # sums 2 neighbours of it, 4 pixels apart: 12 + 4
    assert ar.receptive_field(layers) == 16 and ar.output_stride(layers) == 2


# ---------------------------------------------------------------------------------------
# the transposed recurrence: where it holds, where it does not


def _ceil_recurrence(layers):
    r, j = Fraction(1), Fraction(1)
    for layer in layers:
        if layer.kind == "transposed":
            r += (math.ceil((layer.dilation * (layer.kernel_size - 1) + 1) / layer.stride)
                  - 1) * j
            j /= layer.stride
        else:
            r += layer.dilation * (layer.kernel_size - 1) * j
            j *= layer.stride
    return r


@pytest.mark.parametrize("k", range(1, 8))
@pytest.mark.parametrize("s", range(1, 5))
@pytest.mark.parametrize("d", range(1, 5))
def test_single_transposed_layer(k, s, d):
    exact = ar.receptive_field([transposed(k, s, dilation=d)])
    g = math.gcd(d, s)
    assert exact == (k - 1) * g // s * (d // g) + 1  # the general single-layer formula
    if d % s == 0 or s % d == 0:  # then the ceil recurrence is exact
        assert exact == math.ceil((d * (k - 1) + 1) / s) == _ceil_recurrence(
            [transposed(k, s, dilation=d)])


def test_where_the_recurrences_miss():
    # k = 2, s = 2, d = 3: taps 0 and 3 never both meet a multiple of 2
    assert ar.receptive_field([transposed(2, 2, dilation=3)]) == 1
    assert _ceil_recurrence([transposed(2, 2, dilation=3)]) == 2
    # 6/2 then 2/1: one output sees 3 inputs, two neighbours together see 4, not 3.5
    layers = [transposed(6, 2), transposed(2, 1)]
    assert ar.receptive_field(layers) == 4 and _ceil_recurrence(layers) == Fraction(7, 2)
    # a 1x1 stride-2 transposed conv, then a 1x1 stride-2 conv that reads only the zeros
    degenerate = [transposed(1, 2), conv(1, 2, padding=1)]
    assert ar.receptive_field(degenerate) == 0
    assert ar.input_region(degenerate, 3) is None


def test_output_stride_is_a_fraction_after_upsampling():
    assert ar.output_stride([transposed(4, 2, 1)]) == Fraction(1, 2)
    assert isinstance(ar.output_stride([transposed(4, 2, 1), conv(3, 2)]), int)
    assert ar.output_stride([conv(3, 2), conv(3, 3), transposed(4, 2, 1)]) == 3
    assert ar.output_stride([]) == 1 and ar.receptive_field([]) == 1
    # FCN-32s: five 2x2 pools, then a 64x64 stride-32 transposed conv back to the input
    vgg = [layer for stage in range(5) for layer in (conv(3, padding=1), conv(3, padding=1),
                                                     pool(2))]
    table = ar.describe([*vgg, transposed(64, 32, 16)], input_size=224)
    assert [row.output_size for row in table][-2:] == [7, 224]
    assert table.rows[-2].jump == 32 and table.output_stride == 1


# ---------------------------------------------------------------------------------------
# the table and layers_of


def test_describe_table():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(8, 8, 3, padding=2, dilation=2), nn.BatchNorm2d(8),
                        nn.ConvTranspose2d(8, 2, 4, stride=2, padding=1))
    table = ar.describe(net, input_size=32)
    assert [row.name for row in table] == ["0", "2", "3", "5"]
    assert [row.kind for row in table] == ["conv", "pool", "conv", "transposed"]
    assert [(row.output_size, row.receptive_field, row.jump) for row in table] == [
        (32, 3, 1), (16, 4, 2), (16, 12, 2), (32, 14, 1)]
    assert len(table) == 4 and table[1].stride == 2
    text = str(table)
    lines = text.splitlines()
    assert lines[0].split() == ["#", "layer", "kind", "k", "s", "p", "d", "size", "RF", "jump"]
    assert lines[2].split() == ["0", "0", "conv", "3", "1", "1", "1", "32", "3", "1"]
    assert lines[-1] == "input 32   receptive field 14   output stride 1"
    assert len({len(line) for line in lines[2:-2]}) == 1  # aligned
    assert "<table>" in table._repr_html_() and "transposed" in table._repr_html_()
    no_size = ar.describe([conv(3, name="a"), transposed(2, 2, name="b")])
    assert [row.output_size for row in no_size] == [None, None]
    assert str(no_size).splitlines()[-1] == "receptive field 3   output stride 1/2"
    assert no_size.rows[1].jump == Fraction(1, 2)


def test_layers_of_reads_modules():
    net = nn.Sequential(nn.Conv2d(1, 1, (3, 3), padding="same", dilation=2),
                        nn.Sequential(nn.AvgPool2d(3, 2, 1, ceil_mode=True)),
                        nn.ConvTranspose2d(1, 1, 3, 2, 1, output_padding=1),
                        nn.Conv2d(1, 1, 5, padding="valid"))
    assert ar.layers_of(net) == [
        conv(3, 1, 2, 2, name="0"), pool(3, 2, 1, name="1.0", ceil_mode=True),
        transposed(3, 2, 1, 1, name="2"), conv(5, name="3")]
    assert ar.layers_of(nn.Conv2d(1, 1, 3)) == [conv(3, name="Conv2d")]
    assert ar.receptive_field(net) == ar.receptive_field(ar.layers_of(net))


@pytest.mark.parametrize("call, error, match", [
    (lambda: ar.layers_of(nn.Conv2d(1, 1, (1, 7))), ValueError,
     r"Conv2d: expected the same kernel_size for height and width, got \(1, 7\)"),
    (lambda: ar.layers_of(nn.Sequential(nn.Conv2d(1, 1, 3, stride=(1, 2)))), ValueError,
     r"0: expected the same stride for height and width, got \(1, 2\)"),
    (lambda: ar.layers_of(nn.Conv2d(1, 1, 2, padding="same")), ValueError,
     r"Conv2d: expected even total padding for padding='same', got 1"),
    (lambda: ar.layers_of("conv"), TypeError, "module: expected an nn.Module, got str"),
    (lambda: ar.describe([conv(3), "pool"]), TypeError,
     "layers: expected a list of Layer or an nn.Module, got list"),
    (lambda: ar.describe([conv(3)], input_size=0), ValueError,
     "input_size: expected a positive int, got 0"),
    (lambda: ar.describe([conv(3), conv(5, name="big")], input_size=5), ValueError,
     r"input_size: expected a size that reaches every layer, got 5, which fails at layer 1 "
     r"\('big'\): size: expected at least 5"),
    (lambda: conv(0), ValueError, "kernel_size: expected a positive int, got 0"),
    (lambda: conv(3, stride=0), ValueError, "stride: expected a positive int, got 0"),
    (lambda: conv(3, padding=-1), ValueError, "padding: expected a non-negative int, got -1"),
    (lambda: conv(3, dilation=1.5), TypeError, "dilation: expected a positive int, got float 1.5"),
    (lambda: pool(2, padding=2), ValueError,
     r"padding: expected at most kernel_size // 2 = 1 \(torch's rule for pooling\), got 2"),
    (lambda: transposed(3, stride=2, output_padding=2), ValueError,
     r"output_padding: expected smaller than stride or dilation \(torch's rule\), got "
     r"output_padding=2 with stride=2, dilation=1"),
    (lambda: ar.Layer("deconv", 3), ValueError,
     r"kind: expected one of \['conv', 'pool', 'transposed'\], got 'deconv'"),
    (lambda: ar.Layer("conv", 3, output_padding=1), ValueError,
     "output_padding: expected 0 for a conv layer, got 1"),
    (lambda: ar.conv_output_size(2, 3, dilation=2), ValueError,
     "size: expected at least 5 for kernel_size=3, padding=0, dilation=2, got 2"),
    (lambda: ar.conv_transpose_output_size(1, 1, padding=1), ValueError,
     "size: expected a size giving a non-empty output with padding=1, got 1"),
    (lambda: ar.pool_output_size(0, 2), ValueError, "size: expected a positive int, got 0"),
    (lambda: ar.pool_output_size(1, 3, 1), ValueError, "size: expected at least 3"),
    (lambda: ar.input_region([conv(3)], 1.0), TypeError, "index: expected an int, got float"),
])
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
