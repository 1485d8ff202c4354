"""crfkit.models: parameter counts against the published numbers, shapes, blocks, gradients."""

from __future__ import annotations

import operator

import pytest
import torch
from torch import nn

import crfkit.models as M
from crfkit.models import (
    Bottleneck,
    ConvBNReLU,
    DenseBlock,
    DenseLayer,
    InceptionBlock,
    PadShortcut,
    ResidualBlock,
    SEBlock,
    Transition,
)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Published parameter counts for 1000 classes. Source: torchvision's model documentation
# ("num_params" of each weights enum, pytorch.org/vision/stable/models.html) unless noted.
PUBLISHED = {
    "alexnet": 61_100_840,  # torchvision AlexNet_Weights.IMAGENET1K_V1
    "vgg11": 132_863_336,  # torchvision VGG11_Weights
    "vgg11_bn": 132_868_840,  # torchvision VGG11_BN_Weights
    "vgg13": 133_047_848,  # torchvision VGG13_Weights
    "vgg13_bn": 133_053_736,  # torchvision VGG13_BN_Weights
    "vgg16": 138_357_544,  # torchvision VGG16_Weights
    "vgg16_bn": 138_365_992,  # torchvision VGG16_BN_Weights
    "vgg19": 143_667_240,  # torchvision VGG19_Weights
    "vgg19_bn": 143_678_248,  # torchvision VGG19_BN_Weights
    "googlenet": 6_624_904,  # torchvision GoogLeNet_Weights (aux_logits=False)
    "resnet18": 11_689_512,  # torchvision ResNet18_Weights
    "resnet34": 21_797_672,  # torchvision ResNet34_Weights
    "resnet50": 25_557_032,  # torchvision ResNet50_Weights
    "resnet101": 44_549_160,  # torchvision ResNet101_Weights
    "resnet152": 60_192_808,  # torchvision ResNet152_Weights
    "densenet121": 7_978_856,  # torchvision DenseNet121_Weights
    "densenet169": 14_149_480,  # torchvision DenseNet169_Weights
    "densenet201": 20_013_928,  # torchvision DenseNet201_Weights
    # Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018, Sec. 6.1: 28.1M with r = 16;
    # 28,088,024 is the exact count of the reference (Caffe/pretrainedmodels) SE-ResNet-50.
    "se_resnet50": 28_088_024,
}


SOURCE_IDS = [f"{n}-Hu2018" if n == "se_resnet50" else f"{n}-torchvision-docs" for n in PUBLISHED]


@pytest.mark.parametrize("name", list(PUBLISHED), ids=SOURCE_IDS)
def test_parameter_count_matches_published(name):
    with torch.device("meta"):  # no memory, no init cost: counting needs no values
        model = getattr(M, name)()
    count = n_params(model)
    published = PUBLISHED[name]
    assert abs(count - published) <= 0.005 * published
    assert count == published  # in fact exact


def test_se_resnet50_matches_paper_rounded():
    # Hu et al. 2018, Table 1 / Sec. 6.1: SE-ResNet-50 "28.1M" parameters vs ResNet-50 "25.6M"
    with torch.device("meta"):
        se, plain = M.se_resnet50(), M.resnet50()
    assert round(n_params(se) / 1e6, 1) == 28.1
    assert round(n_params(plain) / 1e6, 1) == 25.6


def test_googlenet_aux_and_paper_kernels_counts():
    with torch.device("meta"):
        aux = M.googlenet(aux_logits=True)
        paper = M.googlenet(kernel_5x5=5)
    assert n_params(aux) == 13_004_888  # torchvision googlenet(aux_logits=True, init_weights=True)
    assert n_params(paper) > 6_624_904  # true 5x5 kernels: more weights in branch 3


def test_num_classes_changes_only_the_head():
    with torch.device("meta"):
        a, b = M.resnet18(num_classes=1000), M.resnet18(num_classes=10)
    assert n_params(a) - n_params(b) == 990 * 512 + 990


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "googlenet"])
def test_full_size_forward_224(name):
    torch.manual_seed(0)
    model = getattr(M, name)(num_classes=1000).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name,size", [("vgg11_bn", 32), ("resnet50", 64), ("se_resnet50", 64),
                                       ("densenet121", 32)])
def test_full_size_forward_small_input(name, size):
    # The full networks on a small image (their adaptive pools accept it): cheap shape check.
    model = getattr(M, name)(num_classes=5, in_channels=1).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, size, size))
    assert out.shape == (1, 5)


def test_googlenet_aux_outputs_in_training_only():
    model = M.googlenet(num_classes=7, aux_logits=True)
    out = model.train()(torch.randn(2, 3, 64, 64))
    assert isinstance(out, M.GoogLeNetOutputs)
    assert [t.shape for t in out] == [(2, 7)] * 3
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 7)


SMALL = {
    "alexnet_small": lambda c, k: M.alexnet_small(in_channels=c, num_classes=k),
    "vgg_small": lambda c, k: M.vgg_small(in_channels=c, num_classes=k),
    "vgg_small13": lambda c, k: M.vgg_small(13, in_channels=c, num_classes=k, width=8),
    "googlenet_small": lambda c, k: M.googlenet_small(in_channels=c, num_classes=k),
    "resnet_small": lambda c, k: M.resnet_small(8, in_channels=c, num_classes=k),
    "resnet_small_plain": lambda c, k: M.resnet_small(8, c, k, residual=False),
    "resnet_small_projection": lambda c, k: M.resnet_small(14, c, k, shortcut="projection"),
    "se_resnet_small": lambda c, k: M.se_resnet_small(in_channels=c, num_classes=k),
    "densenet_small": lambda c, k: M.densenet_small(in_channels=c, num_classes=k),
}


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("channels,size", [(1, 32), (3, 64)])
def test_small_configs_forward_backward(name, channels, size):
    torch.manual_seed(0)
    model = SMALL[name](channels, 7)
    x = torch.randn(4, channels, size, size)
    out = model(x)  # training mode
    assert out.shape == (4, 7)
    nn.functional.cross_entropy(out, torch.arange(4)).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert n_params(model) < 2_000_000  # small means small


def test_small_config_documented_counts():
    # The numbers quoted in the docstrings (C=3, K=10).
    assert n_params(M.resnet_small(8)) == 75_290
    assert n_params(M.resnet_small(20)) == 269_722  # He et al. 2016, Table 6: "0.27M"
    assert n_params(M.resnet_small(56)) == 853_018  # He et al. 2016, Table 6: "0.85M"
    assert n_params(M.se_resnet_small()) == 78_118
    assert n_params(M.densenet_small()) == 46_682
    assert n_params(M.alexnet_small()) == 335_530
    assert n_params(M.vgg_small()) == 679_882
    assert n_params(M.googlenet_small()) == 78_754


# ---------------------------------------------------------------------------- blocks


@pytest.mark.parametrize(
    "block,x_shape,out_shape",
    [
        (ConvBNReLU(3, 8, 3, stride=2, padding=1), (2, 3, 9, 9), (2, 8, 5, 5)),
        (ResidualBlock(4, 4), (2, 4, 6, 6), (2, 4, 6, 6)),
        (ResidualBlock(4, 8, stride=2), (2, 4, 7, 7), (2, 8, 4, 4)),
        (ResidualBlock(4, 8, stride=2, shortcut="pad"), (2, 4, 7, 7), (2, 8, 4, 4)),
        (Bottleneck(16, 4), (2, 16, 6, 6), (2, 16, 6, 6)),
        (Bottleneck(8, 4, stride=2, se=True, reduction=4), (2, 8, 6, 6), (2, 16, 3, 3)),
        (SEBlock(8, reduction=4), (2, 8, 5, 5), (2, 8, 5, 5)),
        (DenseLayer(6, 3, bn_size=2), (2, 6, 5, 5), (2, 3, 5, 5)),
        (DenseBlock(3, 6, 4, bn_size=2), (2, 6, 5, 5), (2, 6 + 3 * 4, 5, 5)),
        (Transition(8, 4), (2, 8, 6, 6), (2, 4, 3, 3)),
        (InceptionBlock(6, 2, 3, 4, 2, 3, 2), (2, 6, 5, 5), (2, 2 + 4 + 3 + 2, 5, 5)),
        (InceptionBlock(6, 2, 3, 4, 2, 3, 2, kernel_5x5=5), (2, 6, 5, 5), (2, 11, 5, 5)),
        (PadShortcut(4, 6, 2), (2, 4, 5, 5), (2, 6, 3, 3)),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None,
)
def test_block_shapes(block, x_shape, out_shape):
    assert block(torch.randn(x_shape)).shape == out_shape
    if hasattr(block, "out_channels") and isinstance(block.out_channels, int):
        assert block.out_channels == out_shape[1]


@pytest.mark.parametrize(
    "make,x_shape",
    [
        (lambda: ResidualBlock(2, 2), (2, 2, 4, 4)),
        (lambda: ResidualBlock(2, 3, stride=2, se=True, reduction=3), (2, 2, 4, 4)),
        (lambda: ResidualBlock(2, 3, stride=2, shortcut="pad"), (2, 2, 4, 4)),
        (lambda: ResidualBlock(2, 2, residual=False), (2, 2, 4, 4)),
        (lambda: Bottleneck(4, 1), (2, 4, 3, 3)),
        (lambda: Bottleneck(2, 2, stride=2, se=True, reduction=2), (2, 2, 4, 4)),
        (lambda: SEBlock(4, reduction=2), (2, 4, 3, 3)),
        (lambda: DenseBlock(2, 2, 2, bn_size=1), (2, 2, 3, 3)),
        (lambda: Transition(3, 2), (2, 3, 4, 4)),
        (lambda: InceptionBlock(2, 1, 1, 2, 1, 1, 1), (2, 2, 3, 3)),
    ],
    ids=["residual", "residual-se-stride", "residual-pad", "plain", "bottleneck",
         "bottleneck-se-stride", "se", "dense", "transition", "inception"],
)
def test_block_gradcheck(make, x_shape):
    # Batch norm in training mode is a deterministic function of the batch, so gradcheck
    # applies; ReLU kinks are hit with probability 0 by random float64 inputs.
    torch.manual_seed(0)
    block = make().double()
    x = torch.randn(x_shape, dtype=torch.float64, requires_grad=True)
    params = tuple(p for p in block.parameters())

    def f(x, *ps):
        return torch.func.functional_call(block, dict(zip(
            [n for n, _ in block.named_parameters()], ps)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-5)


def test_se_block_is_input_times_gate():
    torch.manual_seed(0)
    se = SEBlock(32, reduction=16)
    nn.init.normal_(se.fc1.weight, std=1.0)
    nn.init.normal_(se.fc2.weight, std=1.0)
    x = torch.randn(3, 32, 5, 4)
    gate = se.gate(x)
    assert gate.shape == (3, 32)
    assert (gate > 0).all() and (gate < 1).all()
    torch.testing.assert_close(se(x), x * gate[:, :, None, None])
    # the gate depends only on per-channel means (squeeze)
    shuffled = x.flatten(2)[:, :, torch.randperm(20)].reshape(3, 32, 5, 4)
    torch.testing.assert_close(se.gate(shuffled), gate)
    assert n_params(se) == 2 * 32 * 2 + 2 + 32  # 2 C^2 / r + C / r + C


@pytest.mark.parametrize("make", [lambda r: ResidualBlock(8, 8, residual=r),
                                  lambda r: Bottleneck(32, 8, residual=r),
                                  lambda r: ResidualBlock(8, 8, residual=r, se=True, reduction=4)],
                         ids=["basic", "bottleneck", "basic-se"])
def test_zeroed_last_bn_makes_block_identity_then_relu(make):
    x = torch.randn(2, make(True).conv1.in_channels, 6, 6)
    for residual in (True, False):
        block = make(residual)
        nn.init.zeros_(block.last_bn.weight)
        nn.init.zeros_(block.last_bn.bias)
        out = block(x)
        expected = torch.relu(x) if residual else torch.zeros_like(x)  # plain: no skip
        torch.testing.assert_close(out, expected)


def test_zero_init_residual_zeroes_every_last_bn():
    model = M.resnet18(num_classes=10, zero_init_residual=True)
    blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
    assert len(blocks) == 8
    assert all(torch.count_nonzero(b.last_bn.weight) == 0 for b in blocks)


def _count_additions(model: nn.Module) -> int:
    graph = torch.fx.symbolic_trace(model).graph
    return sum(1 for n in graph.nodes if n.target in (operator.add, torch.add, "add"))


@pytest.mark.parametrize("depth", [8, 20])
def test_plain_switch_removes_every_skip(depth):
    residual = M.resnet_small(depth, residual=True)
    plain = M.resnet_small(depth, residual=False)
    n_blocks = 3 * (depth - 2) // 6
    assert _count_additions(residual) == n_blocks
    assert _count_additions(plain) == 0
    # He et al. 2016, Sec. 4.2: with option-A shortcuts both have exactly the same weights
    assert n_params(residual) == n_params(plain)
    plain.load_state_dict(residual.state_dict())
    x = torch.randn(2, 3, 32, 32)
    residual.eval(), plain.eval()
    with torch.no_grad():
        assert not torch.allclose(residual(x), plain(x))
    assert all(b.shortcut is None for b in plain.modules() if isinstance(b, ResidualBlock))


def test_imagenet_plain_net_drops_projection_weights():
    with torch.device("meta"):
        res, plain = M.resnet34(), M.resnet34(residual=False)
    # three projection shortcuts (1x1 conv + BN) at the starts of stages 2-4
    projections = sum(c_in * c_out + 2 * c_out for c_in, c_out in ((64, 128), (128, 256),
                                                                     (256, 512)))
    assert n_params(res) - n_params(plain) == projections


def test_dense_block_concatenates_input_first():
    block = DenseBlock(2, 3, 2, bn_size=1)
    x = torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(block(x)[:, :3], x)


def test_inception_branches_are_concatenated_in_order():
    block = InceptionBlock(4, 1, 2, 3, 1, 2, 2).eval()
    x = torch.randn(1, 4, 5, 5)
    out = block(x)
    torch.testing.assert_close(out[:, :1], block.branch1(x))
    torch.testing.assert_close(out[:, 1:4], block.branch2(x))
    torch.testing.assert_close(out[:, 6:], block.branch4(x))


def test_kaiming_initialisation():
    torch.manual_seed(0)
    model = M.vgg_small(width=64)
    conv = [m for m in model.modules() if isinstance(m, nn.Conv2d)][3]
    fan_out = conv.out_channels * 9
    std = conv.weight.std().item()
    assert abs(std - (2.0 / fan_out) ** 0.5) < 0.1 * (2.0 / fan_out) ** 0.5
    assert torch.count_nonzero(conv.bias) == 0


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: M.alexnet(num_classes=0),
         r"num_classes: expected a positive int, got 0"),
        (lambda: M.resnet50(num_classes=-3), "num_classes"),
        (lambda: M.vgg16(in_channels=0), "in_channels"),
        (lambda: M.resnet_small(depth=10), r"depth: expected 6n \+ 2 .* got 10"),
        (lambda: M.resnet_small(depth=2), "depth"),
        (lambda: M.vgg_small(depth=12), r"depth: expected one of \[11, 13, 16, 19\], got 12"),
        (lambda: SEBlock(32, reduction=5), "reduction: expected a divisor of channels=32, got 5"),
        (lambda: M.se_resnet_small(reduction=3), "reduction"),
        (lambda: M.googlenet(dropout=1.5), "dropout"),
        (lambda: InceptionBlock(4, 1, 1, 1, 1, 1, 1, kernel_5x5=4),
         "kernel_5x5: expected an odd"),
        (lambda: ResidualBlock(4, 4, shortcut="zero"), "shortcut: expected one of"),
        (lambda: ResidualBlock(8, 4, stride=2, shortcut="pad"), "out_channels"),
        (lambda: M.DenseNet(compression=0.0), "compression"),
        (lambda: M.densenet_small(growth_rate=0), "growth_rate"),
        (lambda: M.ResNet(ResidualBlock, (2, 2), (16,)), "layers, widths"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_non_integer_sizes_raise_type_error():
    with pytest.raises(TypeError, match="num_classes: expected a positive int, got float"):
        M.resnet18(num_classes=10.0)
