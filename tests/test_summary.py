"""crfkit.summary: parameters, shapes, receptive fields and MACs against hand computations."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import crfkit.models as M
from crfkit.nn.arithmetic import layers_of, output_stride, receptive_field
from crfkit.summary import LayerTable, summary


def test_original_alexnet_conv1():
    # Krizhevsky et al. 2012, Sec. 3.5: 96 kernels of 11x11x3, stride 4, on 227x227 inputs
    # (the paper says 224; 227 makes (227 - 11) / 4 + 1 = 55 come out).
    table = summary(nn.Conv2d(3, 96, 11, stride=4), (1, 3, 227, 227))
    assert isinstance(table, LayerTable)
    (row,) = table.rows
    assert row.params == 96 * (11 * 11 * 3) + 96 == 34_944
    assert table.total_params == 34_944
    assert row.output_shape == (1, 96, 55, 55)
    assert row.receptive_field == (11, 11)
    assert row.jump == (4, 4)
    assert row.macs == table.total_macs == 55 * 55 * 96 * 363 == 105_415_200
    assert row.type == "Conv2d"


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_stack_of_3x3_convs_sees_2n_plus_1(n):
    stack = nn.Sequential(*[nn.Conv2d(2, 2, 3, padding=1) for _ in range(n)])
    table = summary(stack, (1, 2, 24, 24))
    assert [r.receptive_field for r in table.rows] == [(2 * i + 3, 2 * i + 3) for i in range(n)]
    assert table.rows[-1].jump == (1, 1)


def test_vgg_three_3x3_versus_one_7x7():
    # Simonyan & Zisserman 2015, Sec. 2.3: three 3x3 layers have a 7x7 receptive field and
    # 3 (3^2 C^2) = 27 C^2 weights, against 7^2 C^2 = 49 C^2 for a single 7x7 layer.
    c = 16
    three = nn.Sequential(*[nn.Conv2d(c, c, 3, padding=1, bias=False) for _ in range(3)])
    one = nn.Conv2d(c, c, 7, padding=3, bias=False)
    t3 = summary(three, (1, c, 14, 14))
    t1 = summary(one, (1, c, 14, 14))
    assert t3.total_params == 27 * c**2
    assert t1.total_params == 49 * c**2
    assert t3.rows[-1].receptive_field == t1.rows[-1].receptive_field == (7, 7)
    assert t3.total_macs == 27 * c**2 * 14 * 14
    assert t1.total_macs == 49 * c**2 * 14 * 14


layer_spec = st.tuples(
    st.sampled_from(["conv", "maxpool", "avgpool"]),
    st.integers(1, 4),  # kernel
    st.integers(1, 3),  # stride
    st.integers(1, 3),  # dilation (conv only)
)


def _build(specs):
    layers = []
    for kind, k, s, d in specs:
        if kind == "conv":
            layers.append(nn.Conv2d(1, 1, k, stride=s, dilation=d, bias=False))
        elif kind == "maxpool":
            layers.append(nn.MaxPool2d(k, stride=s))
        else:
            layers.append(nn.AvgPool2d(k, stride=s))
    return nn.Sequential(*layers)


def _hand_formula(specs):
    # r_L = 1 + sum_l d_l (k_l - 1) prod_{i<l} s_i ;  j_L = prod_l s_l  (Araujo et al. 2019)
    rf, jump = 1, 1
    for kind, k, s, d in specs:
        d = d if kind == "conv" else 1
        rf += d * (k - 1) * jump
        jump *= s
    return rf, jump


@settings(max_examples=40, deadline=None)
@given(st.lists(layer_spec, min_size=1, max_size=4))
def test_receptive_field_of_strided_dilated_stacks(specs):
    rf, jump = _hand_formula(specs)
    size = rf + 2 * jump  # big enough for at least one output pixel
    table = summary(_build(specs), (1, 1, size, size))
    assert table.rows[-1].receptive_field == (rf, rf)
    assert table.rows[-1].jump == (jump, jump)


@pytest.mark.parametrize("specs", [
    [("conv", 3, 2, 1), ("conv", 3, 1, 2), ("avgpool", 2, 2, 1), ("conv", 4, 1, 3)],
    [("conv", 5, 1, 1), ("conv", 3, 3, 1), ("conv", 2, 1, 2)],
    [("conv", 1, 2, 1), ("conv", 3, 1, 3)],
])
def test_receptive_field_equals_gradient_support(specs):
    # Oracle: with positive weights, output (0, 0) depends on exactly the input pixels its
    # receptive field spans; the gradient's support has extent r (gaps from dilation inside).
    rf, _ = _hand_formula(specs)
    net = _build(specs)
    for p in net.parameters():
        nn.init.constant_(p, 1.0)
    x = torch.zeros(1, 1, rf + 8, rf + 8, requires_grad=True)
    net(x)[0, 0, 0, 0].backward()
    rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
    extent = int(rows.max() - rows.min()) + 1, int(cols.max() - cols.min()) + 1
    assert extent == (rf, rf)
    assert summary(net, tuple(x.shape)).rows[-1].receptive_field == (rf, rf)


def test_non_square_kernels():
    net = nn.Sequential(nn.Conv2d(1, 1, (1, 7), padding=(0, 3)), nn.Conv2d(1, 1, (7, 1), stride=2))
    table = summary(net, (1, 1, 16, 16))
    assert table.rows[0].receptive_field == (1, 7)
    assert table.rows[1].receptive_field == (7, 7)
    assert table.rows[1].jump == (2, 2)
    assert "1x7" in str(table)


def test_macs_of_linear_grouped_and_transposed_layers():
    t = summary(nn.Linear(10, 4), (3, 10))
    assert t.total_macs == 3 * 10 * 4 and t.total_params == 44
    assert t.rows[0].receptive_field is None  # a linear layer sees everything
    t = summary(nn.Conv2d(8, 8, 3, padding=1, groups=8), (1, 8, 5, 5))  # depthwise
    assert t.total_macs == 8 * 5 * 5 * 9
    t = summary(nn.ConvTranspose2d(4, 2, 2, stride=2), (1, 4, 3, 3))
    assert t.rows[0].output_shape == (1, 2, 6, 6)
    assert t.total_macs == 4 * 3 * 3 * 2 * 2 * 2
    t = summary(nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2)), (2, 3, 4, 4))
    assert t.total_macs == 0 and t.total_params == 6


def test_alexnet_table_and_torchvision_macs():
    table = summary(M.alexnet(), (1, 3, 224, 224))
    assert table.total_params == 61_100_840
    assert len(table) == 21  # 13 feature layers, avgpool, 7 classifier layers
    # torchvision documents 0.71 "GFLOPS" (multiply-accumulates) for AlexNet
    assert abs(table.total_macs / 1e9 - 0.71) < 0.01
    conv = [r for r in table if r.type == "Conv2d"]
    assert [r.output_shape[1:] for r in conv] == [(64, 55, 55), (192, 27, 27), (384, 13, 13),
                                                  (256, 13, 13), (256, 13, 13)]
    assert [r.receptive_field[0] for r in conv] == [11, 51, 99, 131, 163]
    text = str(table)
    lines = text.splitlines()
    assert 20 < len(lines) < 40
    assert "features.0" in lines[2] and "23,296" in lines[2]
    assert "61,100,840" in lines[-1] and "714,188,480" in lines[-1]


def test_resnet18_macs_and_rows_sum_to_total():
    table = summary(M.resnet18(), (1, 3, 224, 224))
    assert abs(table.total_macs / 1e9 - 1.81) < 0.01  # torchvision docs: 1.81 GFLOPS
    assert sum(r.params for r in table) == table.total_params == 11_689_512


def test_residual_addition_takes_the_main_path():
    block = M.ResidualBlock(4, 4)
    table = summary(block, (1, 4, 8, 8))
    assert table.rows[-1].name == "relu2"
    assert table.rows[-1].receptive_field == (5, 5)  # two 3x3 convs, not the 1x1 identity


def test_pad_shortcut_subsamples():
    table = summary(M.ResidualBlock(4, 8, stride=2, shortcut="pad"), (1, 4, 8, 8))
    row = [r for r in table if r.type == "PadShortcut"][0]
    assert row.receptive_field == (1, 1) and row.jump == (2, 2)
    assert table.rows[-1].receptive_field == (7, 7) and table.rows[-1].jump == (2, 2)


def test_inception_concat_takes_the_widest_branch():
    block = M.InceptionBlock(4, 2, 2, 2, 2, 2, 2, kernel_5x5=5)
    net = nn.Sequential(block, nn.Conv2d(8, 1, 1))
    table = summary(net, (1, 4, 9, 9))
    assert table.rows[-1].receptive_field == (5, 5)  # after the 5x5 branch
    branch4_pool = [r for r in table if r.name == "0.branch4.0"][0]
    assert branch4_pool.receptive_field == (3, 3)  # each branch starts from the block input


def test_se_gate_does_not_make_the_network_global():
    table = summary(M.se_resnet_small(8), (1, 3, 32, 32))
    convs = [r for r in table if r.type == "Conv2d"]
    assert all(r.receptive_field is not None for r in convs)
    assert convs[-1].receptive_field[0] > convs[0].receptive_field[0]
    assert table.rows[-1].receptive_field is None  # the classifier


def test_restores_training_mode_and_runs_on_parameter_device():
    model = M.resnet_small(8).train()
    summary(model, (2, 3, 32, 32))
    assert model.training
    model.eval()
    summary(model, (2, 3, 32, 32), device="cpu")
    assert not model.training


@pytest.mark.parametrize("bad", [(3,), (1, 0, 4, 4), "1x3x32x32", (1, 3, 32.0, 32), (),
                                 (1, 3, True, 4)])
def test_bad_input_size(bad):
    with pytest.raises(ValueError, match="input_size: expected a sequence of at least two"):
        summary(nn.Conv2d(3, 3, 3), bad)


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match="model: expected an nn.Module, got function"):
        summary(lambda x: x, (1, 3))


@pytest.mark.parametrize("name", ["alexnet_small", "vgg_small", "googlenet_small",
                                  "resnet_small", "se_resnet_small", "densenet_small"])
def test_small_configs_are_small(name):
    table = summary(getattr(M, name)(), (1, 3, 32, 32))
    assert table.total_macs < 25e6  # per 32x32 image: a batch of 64 runs in milliseconds
    assert table.total_params == sum(p.numel() for p in getattr(M, name)().parameters())
    assert math.prod(table.output_shape) == 10


# --------------------------------------------------------------------------- one arithmetic
# summary's receptive fields and jumps are crfkit.nn.arithmetic's, transposed layers included


def _upsampling_stack(pool=nn.MaxPool2d):
    """A chain with two transposed convolutions (the second one upsamples below one input pixel)."""
    return nn.Sequential(
        nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.ReLU(), pool(2),
        nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1), nn.Conv2d(1, 1, 3, padding=1),
        nn.ConvTranspose2d(1, 1, 6, stride=4, padding=1), nn.Conv2d(1, 1, 2), nn.AvgPool2d(3, stride=1),
    )


@pytest.mark.parametrize("make", [
    _upsampling_stack,
    lambda: M.vgg_small().features,
    lambda: nn.Sequential(nn.ConvTranspose2d(1, 1, 3, stride=3), nn.Conv2d(1, 1, 5, dilation=2)),
    lambda: nn.Sequential(nn.Conv2d(1, 1, 7, stride=2, padding=3), nn.ConvTranspose2d(1, 1, 2, stride=2, dilation=3)),
], ids=["upsampling", "vgg_small.features", "transposed_then_dilated", "dilated_transposed"])
def test_every_row_is_nn_arithmetic_of_the_layers_so_far(make):
    net = make()
    layers = layers_of(net)
    table = summary(net, (1, net[0].in_channels, 48, 48))
    spatial = [r for r in table if r.type in ("Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d")]
    assert len(spatial) == len(layers)
    for i, row in enumerate(spatial):
        rf, jump = receptive_field(layers[: i + 1]), output_stride(layers[: i + 1])
        assert row.receptive_field == (rf, rf) and row.jump == (jump, jump), (i, row.name)
    assert table.rows[-1].receptive_field == (receptive_field(net),) * 2


def test_transposed_layer_divides_the_jump_exactly():
    table = summary(nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1), (1, 1, 5, 5))
    (row,) = table.rows
    assert row.jump == (Fraction(1, 2), Fraction(1, 2))  # neighbouring outputs: half a pixel apart
    assert row.receptive_field == (2, 2)  # each output receives ceil(4 / 2) input pixels
    assert "1/2" in str(table).splitlines()[2]


def test_upsampling_stack_receptive_field_equals_gradient_support():
    # Oracle: positive weights and average pooling, so an output depends on exactly the input
    # pixels its field spans; the widest gradient support over one period of output rows (8
    # phases: the jump ends at 1/2 after strides 2, 2, 1/2, 1/4) away from the borders is the
    # receptive field.
    net = _upsampling_stack(pool=nn.AvgPool2d)
    for p in net.parameters():
        nn.init.constant_(p, 1.0)
    x = torch.zeros(1, 1, 96, 96, requires_grad=True)
    out = net(x)[0, 0]  # [H', W']
    centre = out.shape[0] // 2
    widest = 0
    for o in range(centre, centre + 8):
        (grad,) = torch.autograd.grad(out[o, centre], x, retain_graph=True)
        rows = torch.nonzero(grad[0, 0].abs().sum(1) > 0)[:, 0]
        assert 0 < rows.min() and rows.max() < 95  # not clipped by the border
        widest = max(widest, int(rows.max() - rows.min()) + 1)
    table = summary(net, tuple(x.shape))
    assert table.rows[-1].receptive_field == (widest, widest)
    assert table.rows[-1].jump == (Fraction(1, 2),) * 2


def test_fcn8s_upsampling_rows_follow_the_main_path_exactly():
    # FCN-8s: backbone -> fc -> score_fr -> upscore2 (+ score_pool4) -> upscore_pool4 (+ score_pool3)
    # -> upscore. The fused sums take the main path (the larger field); each transposed layer's row
    # is nn.arithmetic's exact value for that chain. The former recurrence rounded the transposed
    # layers' fields per layer and gave 266 / 274 for upscore_pool4 / upscore, exact: 282 / 282.
    model = M.fcn8s_small(num_classes=5)
    backbone = [layer for stage in model.stages for layer in layers_of(stage) + layers_of(model.pool)]
    main = backbone + layers_of(model.fc) + layers_of(model.score_fr)
    rows = {r.name: r for r in summary(model, (1, 3, 64, 64))}
    for name in ("upscore2", "upscore_pool4", "upscore"):
        main = main + layers_of(getattr(model, name))
        rf, jump = receptive_field(main), output_stride(main)
        assert rows[name].receptive_field == (rf, rf) and rows[name].jump == (jump, jump), name
    assert rows["upscore"].receptive_field == (282, 282) and rows["upscore"].jump == (1, 1)
    pool4 = [layer for stage in model.stages[:4] for layer in layers_of(stage) + layers_of(model.pool)]
    assert rows["score_pool4"].receptive_field == (receptive_field(pool4),) * 2 == (74, 74)
