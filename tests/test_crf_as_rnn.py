"""CRF-as-RNN layers (crfkit.nn.MeanFieldCRF, GridMeanFieldCRF), losses through dense mean field,
and ConvCRF's downsampled ("blur") filter."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import crfkit as ck
from crfkit.filters import dense_filters
from crfkit.inference import mean_field
from crfkit.nn import GridMeanFieldCRF, MeanFieldCRF

F64 = torch.float64
FILTERS = ("exact", "permutohedral", "conv")


def _inputs(b=2, k=3, h=6, w=7, seed=0, dtype=F64):
    gen = torch.Generator().manual_seed(seed)
    unary = torch.randn(b, k, h, w, generator=gen, dtype=dtype)
    image = 255 * torch.rand(b, 3, h, w, generator=gen, dtype=dtype)
    return unary, image


def _kernels():
    # widths small enough that the bilateral kernel sees the colours of a 6 x 7 image
    return (ck.GaussianKernel(sxy=2.0, weight=3.0), ck.BilateralKernel(sxy=4.0, srgb=40.0, weight=5.0))


# --------------------------------------------------------------------------- equality at initialisation


@pytest.mark.parametrize("filter", FILTERS)
def test_layer_at_initialisation_equals_mean_field_on_a_dense_crf(filter):
    unary, image = _inputs()
    layer = MeanFieldCRF(3, _kernels(), iterations=4, filter=filter, window=5, dtype=F64)
    want = mean_field(ck.DenseCRF(unary, image, _kernels()), 4, filter=filter, window=5)
    got = layer(unary, image)
    assert got.shape == (2, 3, 6, 7)
    assert torch.allclose(got, want, rtol=0, atol=1e-12)
    with torch.no_grad():  # the fused path (permutohedral) and eval mode give the same values
        assert torch.allclose(layer.eval()(unary, image), want, rtol=0, atol=1e-12)


def test_layer_default_kernels_are_pydensecrfs_and_float32_works():
    unary, image = _inputs(h=12, w=12, dtype=torch.float32)
    layer = MeanFieldCRF(3)
    assert torch.allclose(layer.weights, torch.tensor([3.0, 10.0]))
    assert torch.equal(layer.compat[0], 1 - torch.eye(3)) and torch.equal(layer.compat[1], 1 - torch.eye(3))
    want = mean_field(ck.DenseCRF(unary, image), 5)
    assert torch.allclose(layer(unary, image), want, atol=1e-5)


def test_grid_twin_at_initialisation_equals_grid_mean_field():
    unary, _ = _inputs()
    offsets = ((0, 1), (1, 0), (1, 1), (1, -1))
    layer = GridMeanFieldCRF(3, offsets, iterations=3, weight=0.7, dtype=F64)
    want = mean_field(ck.GridCRF(unary, ck.potts(3, 0.7, dtype=F64), offsets), 3)
    assert torch.equal(layer(unary), want)
    assert layer.pairwise.shape == (4, 3, 3)


# --------------------------------------------------------------------------- gradients


def _functional(image, filter, iterations=2):
    """The layer written out: kernels rebuilt from (log-weights, compatibilities) given as tensors."""

    def fn(u, log_w, compat):
        kernels = tuple(replace(k, weight=log_w[m].exp(), compat=compat[m]) for m, k in enumerate(_kernels()))
        return mean_field(ck.DenseCRF(u, image, kernels), iterations, filter=filter, window=3)

    return fn


@pytest.mark.parametrize("filter", FILTERS)
def test_layer_gradcheck_in_unary_weights_and_compatibility(filter):
    unary, image = _inputs(b=1, k=2, h=3, w=4)
    layer = MeanFieldCRF(2, _kernels(), iterations=2, filter=filter, window=3, dtype=F64)
    with torch.no_grad():
        layer.compat.add_(0.3 * torch.randn(2, 2, 2, generator=torch.Generator().manual_seed(1), dtype=F64))
    fn = _functional(image, filter)
    inputs = (unary.clone().requires_grad_(), layer.log_weights.detach().clone().requires_grad_(),
              layer.compat.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7)
    # the layer is that function: same values, and its parameters get the same gradients
    weights = torch.randn(1, 2, 3, 4, generator=torch.Generator().manual_seed(2), dtype=F64)
    u = inputs[0]
    (layer(u, image) * weights).sum().backward()
    grads = torch.autograd.grad((fn(*inputs) * weights).sum(), inputs)
    assert torch.allclose(u.grad, grads[0], atol=1e-12)
    assert torch.allclose(layer.log_weights.grad, grads[1], atol=1e-12)
    assert torch.allclose(layer.compat.grad, grads[2], atol=1e-12)


def test_learned_widths_have_central_difference_gradients():
    unary, image = _inputs(b=1, k=2, h=5, w=5)
    layer = MeanFieldCRF(2, _kernels(), iterations=2, filter="conv", window=5, learn_widths=True, dtype=F64)
    weights = torch.randn(1, 2, 5, 5, generator=torch.Generator().manual_seed(3), dtype=F64)

    def loss():
        return (layer(unary, image) * weights).sum()

    loss().backward()
    for name in ("log_sxy", "log_srgb"):
        p = getattr(layer, name)
        for m in range(2):
            if name == "log_srgb" and m == 0:
                assert p.grad[0] == 0  # the Gaussian kernel has no colour width
                continue
            with torch.no_grad():
                p[m] += 1e-6
                up = loss().item()
                p[m] -= 2e-6
                down = loss().item()
                p[m] += 1e-6
            assert p.grad[m].item() == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-9), (name, m)


def test_learned_widths_are_refused_by_the_permutohedral_lattice():
    with pytest.raises(ValueError, match="learn_widths: the permutohedral lattice is not differentiable"):
        MeanFieldCRF(2, learn_widths=True)
    unary, image = _inputs()
    sxy = torch.tensor(2.0, dtype=F64, requires_grad=True)
    crf = ck.DenseCRF(unary, image, (ck.GaussianKernel(sxy=sxy),))
    with pytest.raises(ValueError, match=r"kernels\[0\]: the permutohedral lattice is not differentiable"):
        mean_field(crf, 2)
    with torch.no_grad():  # no gradient asked for: fine
        mean_field(crf, 2)


def test_batch_elements_are_independent():
    unary, image = _inputs(b=3)
    layer = MeanFieldCRF(3, _kernels(), iterations=3, dtype=F64)
    whole = layer(unary, image)
    for i in range(3):
        assert torch.allclose(layer(unary[i : i + 1], image[i : i + 1]), whole[i : i + 1], atol=1e-12)
    # a gradient at image 0 reaches only unary 0
    u = unary.clone().requires_grad_()
    layer(u, image)[0].sum().backward()
    assert u.grad[1:].abs().max() == 0 and u.grad[0].abs().max() > 0


def test_train_and_test_iterations_and_the_grid_twins_image_argument():
    unary, image = _inputs()
    layer = MeanFieldCRF(3, _kernels(), iterations=1, test_iterations=6, dtype=F64)
    crf = ck.DenseCRF(unary, image, _kernels())
    assert torch.allclose(layer(unary, image), mean_field(crf, 1), atol=1e-12)
    layer.eval()
    assert layer.current_iterations() == 6
    assert torch.allclose(layer(unary, image), mean_field(crf, 6), atol=1e-12)
    grid = GridMeanFieldCRF(3, iterations=2, dtype=F64)
    assert torch.equal(grid(unary, image), grid(unary))


def test_training_the_layer_moves_its_parameters_and_lowers_the_loss():
    unary, image = _inputs(b=2, k=3, h=8, w=8)
    labels = (-unary).argmax(1)
    labels[:, :4] = 2  # a region the unary disagrees with
    layer = MeanFieldCRF(3, _kernels(), iterations=3, dtype=F64)
    before = [p.detach().clone() for p in layer.parameters()]
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        loss = F.nll_loss(torch.log(layer(unary, image)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(not torch.equal(a, b) for a, b in zip(before, layer.parameters()))
    assert (layer.weights > 0).all()


# --------------------------------------------------------------------------- losses through every filter


@pytest.mark.parametrize("filter", FILTERS)
@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy", "crfkit"])
def test_standard_losses_backpropagate_through_dense_mean_field(filter, loss):
    # used to fail with "grad_input must be contiguous" (labels-innermost output view)
    unary, image = _inputs()
    u = unary.clone().requires_grad_()
    q = mean_field(ck.DenseCRF(u, image, _kernels()), 3, filter=filter, window=3)
    labels = torch.randint(0, 3, (2, 6, 7), generator=torch.Generator().manual_seed(0))
    labels[0, 0] = 255
    if loss == "nll_loss":
        value = F.nll_loss(torch.log(q), labels, ignore_index=255)
    elif loss == "cross_entropy":
        value = F.cross_entropy(torch.log(q), labels, ignore_index=255)
    else:
        value = ck.losses.cross_entropy(torch.log(q), labels)
    value.backward()
    assert torch.isfinite(u.grad).all() and u.grad.abs().max() > 0


def test_losses_backpropagate_through_the_layer_and_its_history():
    unary, image = _inputs()
    layer = MeanFieldCRF(3, _kernels(), iterations=2, dtype=F64)
    labels = torch.randint(0, 3, (2, 6, 7), generator=torch.Generator().manual_seed(0))
    F.nll_loss(torch.log(layer(unary, image)), labels).backward()
    assert layer.compat.grad.abs().max() > 0
    u = unary.clone().requires_grad_()
    _, trace = mean_field(ck.DenseCRF(u, image, _kernels()), 2, history=True, filter="exact")
    F.nll_loss(torch.log(trace[0]), labels).backward()
    assert u.grad.abs().max() > 0


# --------------------------------------------------------------------------- ConvCRF's blur


def test_conv_blur_one_is_the_plain_truncated_filter_and_blur_equals_a_naive_version():
    unary, image = _inputs(b=1, k=2, h=7, w=9)
    crf = ck.DenseCRF(unary, image, _kernels(), normalization="none")
    values = torch.randn(1, 63, 2, generator=torch.Generator().manual_seed(4), dtype=F64)
    for m, (plain, blurred) in enumerate(zip(dense_filters(crf, "conv", 3), dense_filters(crf, "conv", 3, blur=2))):
        # naive: block means of values and features, truncated Gaussian sum between blocks, bilinear up
        def blocks(t):  # [1, C, 7, 9] -> [1, C, 4, 5]
            return F.avg_pool2d(t, 2, ceil_mode=True, count_include_pad=False)

        feats = blocks(crf.features(m).transpose(1, 2).reshape(1, -1, 7, 9))[0]  # [d, 4, 5]
        grid = blocks(values.transpose(1, 2).reshape(1, 2, 7, 9))[0]  # [2, 4, 5]
        out = torch.zeros_like(grid)
        for i in range(4):
            for j in range(5):
                for di in (-1, 0, 1):
                    for dj in (-1, 0, 1):
                        a, c = i + di, j + dj
                        if 0 <= a < 4 and 0 <= c < 5:
                            kval = torch.exp(-0.5 * (feats[:, i, j] - feats[:, a, c]).square().sum())
                            out[:, i, j] += kval * grid[:, a, c]
        up = F.interpolate(out[None], size=(8, 10), mode="bilinear", align_corners=False)[0, :, :7, :9]
        assert torch.allclose(blurred(values), up.reshape(2, 63).T[None], atol=1e-12)
        assert not torch.allclose(plain(values), blurred(values), atol=1e-3)


def test_conv_blur_through_mean_field_and_its_errors():
    unary, image = _inputs(h=16, w=16)
    crf = ck.DenseCRF(unary, image, _kernels())
    q = mean_field(crf, 3, filter="conv", window=5, blur=4)
    assert q.shape == unary.shape and torch.allclose(q.sum(1), torch.ones(2, 16, 16, dtype=F64))
    with pytest.raises(ValueError, match=r"blur: expected 1 for filter='permutohedral' \(blur is ConvCRF's"):
        mean_field(crf, 3, blur=2)
    with pytest.raises(ValueError, match=r"blur: expected a positive int, got 0"):
        mean_field(crf, 3, filter="conv", blur=0)
    with pytest.raises(ValueError, match=r"blur: expected 1 for filter='exact'"):
        MeanFieldCRF(3, filter="exact", blur=2)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(num_labels=0), ValueError, "num_labels: expected a positive int, got 0"),
    (dict(iterations=-1), ValueError, "iterations: expected a non-negative int, got -1"),
    (dict(filter="fast"), ValueError, r"filter: expected one of \['permutohedral', 'exact', 'conv'\], got 'fast'"),
    (dict(kernels=(ck.GaussianKernel(weight=0.0),)), ValueError, r"kernels\[0\].weight: expected a finite number > 0, got 0.0"),
    (dict(kernels=(ck.GaussianKernel(compat=torch.zeros(2, 2)),)), ValueError,
     r"kernels\[0\].compat: expected shape \[K, K\] = \[3, 3\] \(num_labels\), got \[2, 2\]"),
    (dict(kernels=("gaussian",)), TypeError, r"kernels\[0\]"),
])
def test_layer_rejects_bad_arguments(kwargs, error, match):
    args = dict(num_labels=3) | kwargs
    with pytest.raises(error, match=match):
        MeanFieldCRF(**args)


def test_layer_rejects_bad_inputs():
    layer = MeanFieldCRF(3, _kernels(), dtype=F64)
    unary, image = _inputs()
    with pytest.raises(ValueError, match=r"unary: expected K = 3 labels \(num_labels\)"):
        layer(unary[:, :2], image)
    with pytest.raises(ValueError, match="unary: expected a batched 4-D tensor"):
        layer(unary[0], image[0])
    with pytest.raises(ValueError, match="unary: expected finite values"):
        layer(unary * float("nan"), image)
    with pytest.raises(ValueError, match="image: expected shape"):
        layer(unary, image[:, :, :5])
    with pytest.raises(ValueError, match=r"offsets: expected non-zero"):
        GridMeanFieldCRF(3, offsets=((0, 0),))


def test_layer_leaves_its_inputs_alone():
    unary, image = _inputs()
    keep = unary.clone(), image.clone()
    MeanFieldCRF(3, _kernels(), dtype=F64)(unary, image)
    with torch.no_grad():
        MeanFieldCRF(3, _kernels(), dtype=F64)(unary, image)
    assert torch.equal(unary, keep[0]) and torch.equal(image, keep[1])


# --------------------------------------------------------------------------- ConvCRF's window sum and its backward


def _window_sum_naive(grid, weights, window):
    r = window // 2
    h, w = grid.shape[2:]
    padded = F.pad(grid, (r, r, r, r))
    return sum(weights[:, o : o + 1] * padded[:, :, o // window : o // window + h, o % window : o % window + w]
               for o in range(window * window))


@pytest.mark.parametrize("window", [1, 3, 5])
def test_window_sum_equals_the_naive_sum_and_passes_gradcheck(window):
    from crfkit.filters import WindowSum

    gen = torch.Generator().manual_seed(window)
    grid = torch.randn(2, 3, 4, 5, generator=gen, dtype=F64, requires_grad=True)
    weights = torch.rand(2, window * window, 4, 5, generator=gen, dtype=F64, requires_grad=True)
    out = WindowSum.apply(grid, weights, window)
    assert torch.allclose(out, _window_sum_naive(grid, weights, window), atol=1e-13)
    assert torch.autograd.gradcheck(lambda g, w: WindowSum.apply(g, w, window), (grid, weights))
    # only the gradients asked for are computed
    (g_grid,) = torch.autograd.grad(WindowSum.apply(grid, weights.detach(), window).sum(), grid)
    (n_grid,) = torch.autograd.grad(_window_sum_naive(grid, weights.detach(), window).sum(), grid)
    assert torch.allclose(g_grid, n_grid, atol=1e-13)
