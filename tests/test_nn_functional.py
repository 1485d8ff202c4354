"""crfkit.nn.functional: the from-scratch layers against torch's own, forward and gradients.

Every comparison is in float64 to ~1e-10 over random configurations (batch, channels,
groups, non-square sizes down to 1 pixel, non-square kernels, strides, paddings, output
paddings, dilations), for the values and for the gradients with respect to every input.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from crfkit.nn import functional as nf

DT = torch.float64
TOL = dict(atol=1e-10, rtol=1e-10)
METHODS = ("zero_insertion", "scatter", "matrix")
SEED_X = [[1.0, 3.0, 0.0], [2.0, 0.0, 1.0], [0.0, 3.0, 1.0]]
SEED_K = [[1.0, 1.0], [2.0, 0.0]]


pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=DT)


def _maybe_pair(draw, lo, hi):
    """An int (same on both axes) or an (h, w) pair, as the functions accept either."""
    if draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return draw(st.integers(lo, hi)), draw(st.integers(lo, hi))


def _two(value):
    return value if isinstance(value, tuple) else (value, value)


def _grads(fn, inputs, seed):
    """Output of ``fn(*inputs)`` and the gradients of a random linear loss w.r.t. the inputs."""
    leaves = [t.detach().clone().requires_grad_(True) if t is not None else None for t in inputs]
    out = fn(*leaves)
    probe = _randn(_gen(seed), *out.shape)
    wrt = [t for t in leaves if t is not None]
    grads = torch.autograd.grad((out * probe).sum(), wrt)
    return out.detach(), grads


def _assert_same(ours, theirs):
    (out_a, grads_a), (out_b, grads_b) = ours, theirs
    assert out_a.shape == out_b.shape
    torch.testing.assert_close(out_a, out_b, **TOL)
    for ga, gb in zip(grads_a, grads_b):
        torch.testing.assert_close(ga, gb, **TOL)


# ---------------------------------------------------------------------------------------
# transposed convolution


@st.composite
def transposed_configs(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out_group = draw(st.integers(1, 2))
    size = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kernel = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, dilation = _maybe_pair(draw, 1, 3), _maybe_pair(draw, 1, 3)
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1))
                           for s, d in zip(_two(stride), _two(dilation)))
    # keep the output non-empty: 2 p <= (n - 1) s + d (k - 1) + op
    padding = tuple(draw(st.integers(0, min(4, ((n - 1) * s + d * (k - 1) + op) // 2)))
                    for n, s, d, k, op in zip(size, _two(stride), _two(dilation), kernel,
                                              output_padding))
    if padding[0] == padding[1] and draw(st.booleans()):
        padding = padding[0]
    return dict(batch=draw(st.integers(1, 2)), c_in=c_in, c_out_group=c_out_group,
                size=size, kernel=kernel, bias=draw(st.booleans()),
                kwargs=dict(stride=stride, padding=padding, output_padding=output_padding,
                            groups=groups, dilation=dilation))


@settings(max_examples=150, deadline=None)
@given(cfg=transposed_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose2d_equals_torch(cfg, seed):
    gen = _gen(seed)
    groups = cfg["kwargs"]["groups"]
    x = _randn(gen, cfg["batch"], cfg["c_in"], *cfg["size"])
    w = _randn(gen, cfg["c_in"], cfg["c_out_group"], *cfg["kernel"])
    b = _randn(gen, cfg["c_out_group"] * groups) if cfg["bias"] else None
    kw = cfg["kwargs"]
    theirs = _grads(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), (x, w, b), seed)
    for method in METHODS:
        _assert_same(_grads(lambda x, w, b: nf.conv_transpose2d(x, w, b, **kw, method=method),
                            (x, w, b), seed), theirs)
    # the three forms are also public on their own, with the same arguments
    for fn in (nf.conv_transpose2d_scatter, nf.conv_transpose2d_zero_insertion,
               nf.conv_transpose2d_matrix):
        torch.testing.assert_close(fn(x, w, b, **kw), theirs[0], **TOL)


def _naive_transposed(x, k, stride):
    """The definition, one input pixel at a time: add x[i, j] * k at (i s, j s)."""
    n, m = len(x), len(k)
    size = (n - 1) * stride + m
    out = [[0.0] * size for _ in range(size)]
    for i in range(n):
        for j in range(n):
            for a in range(m):
                for b in range(m):
                    out[i * stride + a][j * stride + b] += x[i][j] * k[a][b]
    return out


@pytest.mark.parametrize("method", METHODS)
def test_seed_worked_example(method):
    x = torch.tensor(SEED_X, dtype=DT)[None, None]  # [1, 1, 3, 3]
    k = torch.tensor(SEED_K, dtype=DT)[None, None]  # [1, 1, 2, 2]
    stride1 = [[1, 4, 3, 0], [4, 8, 1, 1], [4, 3, 6, 1], [0, 6, 2, 0]]
    stride2 = [[1, 1, 3, 3, 0, 0], [2, 0, 6, 0, 0, 0], [2, 2, 0, 0, 1, 1],
               [4, 0, 0, 0, 2, 0], [0, 0, 3, 3, 1, 1], [0, 0, 6, 0, 2, 0]]
    for stride, expected in ((1, stride1), (2, stride2)):
        assert _naive_transposed(SEED_X, SEED_K, stride) == expected
        assert F.conv_transpose2d(x, k, stride=stride)[0, 0].tolist() == expected
        assert nf.conv_transpose2d(x, k, stride=stride, method=method)[0, 0].tolist() == expected


def test_transposed_is_the_adjoint_of_the_convolution():
    gen = _gen(0)
    w = _randn(gen, 6, 2, 3, 2)  # conv: 4 -> 6 channels in 2 groups; transposed: 6 -> 4
    z = _randn(gen, 2, 4, 9, 8)
    y = _randn(gen, 2, 6, 5, 4)
    kw = dict(stride=2, padding=1, dilation=(1, 2), groups=2)
    conv = nf.dilated_conv2d(z, w, **kw)
    assert conv.shape == y.shape
    back = nf.conv_transpose2d(y, w, output_padding=(0, 1), **kw)
    assert back.shape == z.shape
    torch.testing.assert_close((conv * y).sum(), (z * back).sum(), **TOL)


def test_insert_zeros():
    x = torch.arange(1.0, 7.0).reshape(2, 3)
    z = nf.insert_zeros(x, (2, 3))
    assert z.shape == (3, 7)
    assert z.tolist() == [[1, 0, 0, 2, 0, 0, 3], [0] * 7, [4, 0, 0, 5, 0, 0, 6]]
    assert nf.insert_zeros(x, 1).equal(x)


def test_output_padding_beyond_the_stride_when_dilated():
    # torch allows output_padding < dilation even when it is >= stride; the matrix form
    # then pads x (the convolution it transposes has a larger output than x)
    gen = _gen(1)
    x, w = _randn(gen, 1, 2, 3, 4), _randn(gen, 2, 3, 2, 3)
    kw = dict(stride=1, padding=(0, 2), output_padding=2, dilation=3)
    ref = F.conv_transpose2d(x, w, **kw)
    for method in METHODS:
        torch.testing.assert_close(nf.conv_transpose2d(x, w, **kw, method=method), ref, **TOL)


def test_padding_larger_than_the_kernel_reach_crops():
    # zero insertion pads by d (k - 1) - p < 0 here, i.e. crops
    gen = _gen(2)
    x, w = _randn(gen, 1, 1, 6, 5), _randn(gen, 1, 1, 2, 2)
    ref = F.conv_transpose2d(x, w, stride=3, padding=(4, 3), output_padding=2)
    for method in METHODS:
        out = nf.conv_transpose2d(x, w, stride=3, padding=(4, 3), output_padding=2,
                                  method=method)
        torch.testing.assert_close(out, ref, **TOL)


# ---------------------------------------------------------------------------------------
# atrous convolution and the matrix view


@st.composite
def conv_configs(draw):
    groups = draw(st.integers(1, 3))
    kernel = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, dilation = _maybe_pair(draw, 1, 3), _maybe_pair(draw, 1, 3)
    padding = _maybe_pair(draw, 0, 3)
    # the smallest input the kernel fits in, then a little more (1-pixel inputs included)
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + draw(st.integers(0, 4))
                 for k, d, p in zip(kernel, _two(dilation), _two(padding)))
    return dict(batch=draw(st.integers(1, 2)), c_in=groups * draw(st.integers(1, 2)),
                c_out=groups * draw(st.integers(1, 2)), size=size, kernel=kernel,
                bias=draw(st.booleans()),
                kwargs=dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


@settings(max_examples=150, deadline=None)
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_dilated_conv2d_equals_torch(cfg, seed):
    gen = _gen(seed)
    groups = cfg["kwargs"]["groups"]
    x = _randn(gen, cfg["batch"], cfg["c_in"], *cfg["size"])
    w = _randn(gen, cfg["c_out"], cfg["c_in"] // groups, *cfg["kernel"])
    b = _randn(gen, cfg["c_out"]) if cfg["bias"] else None
    kw = cfg["kwargs"]
    _assert_same(_grads(lambda x, w, b: nf.dilated_conv2d(x, w, b, **kw), (x, w, b), seed),
                 _grads(lambda x, w, b: F.conv2d(x, w, b, **kw), (x, w, b), seed))
    # an ordinary convolution with the dilated kernel is the same layer
    plain = F.conv2d(x, nf.dilate_kernel(w, kw["dilation"]), b, kw["stride"], kw["padding"],
                     1, groups)
    torch.testing.assert_close(plain, nf.dilated_conv2d(x, w, b, **kw), **TOL)


@settings(max_examples=60, deadline=None)
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv_matrix(cfg, seed):
    gen = _gen(seed)
    groups = cfg["kwargs"]["groups"]
    x = _randn(gen, cfg["batch"], cfg["c_in"], *cfg["size"])
    w = _randn(gen, cfg["c_out"], cfg["c_in"] // groups, *cfg["kernel"])
    m = nf.conv_matrix(w, cfg["size"], **cfg["kwargs"])
    y = F.conv2d(x, w, None, **cfg["kwargs"])
    assert m.shape == (y[0].numel(), x[0].numel())
    assert m.dtype == w.dtype
    torch.testing.assert_close(x.flatten(1) @ m.T, y.flatten(1), **TOL)
    # its transpose is the transposed convolution (output_padding recovers the input size)
    s, p, d = (_two(cfg["kwargs"][k]) for k in ("stride", "padding", "dilation"))
    op = tuple(n + 2 * pp - dd * (k - 1) - 1 - (m_ - 1) * ss for n, pp, dd, k, m_, ss
               in zip(cfg["size"], p, d, cfg["kernel"], y.shape[-2:], s))
    back = F.conv_transpose2d(y, w, None, s, p, op, groups, d)
    torch.testing.assert_close(y.flatten(1) @ m, back.flatten(1), **TOL)


def test_dilate_kernel():
    k = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert nf.dilate_kernel(k, 2).tolist() == [[1, 0, 2], [0, 0, 0], [3, 0, 4]]
    assert nf.dilate_kernel(k, (1, 3)).shape == (2, 4)
    assert nf.dilate_kernel(k[None, None], 3).shape == (1, 1, 4, 4)


def test_dilation_widens_the_field_without_weights():
    # 3x3 kernel with dilation 2 reads a 5x5 window: the output at (0, 0) of a 5x5 input
    # depends on the corners and the centre, not on the pixels in the holes
    x = torch.zeros(1, 1, 5, 5, dtype=DT, requires_grad=True)
    nf.dilated_conv2d(x, torch.ones(1, 1, 3, 3, dtype=DT), dilation=2).sum().backward()
    assert x.grad[0, 0].tolist() == [[1, 0, 1, 0, 1], [0] * 5, [1, 0, 1, 0, 1], [0] * 5,
                                     [1, 0, 1, 0, 1]]


# ---------------------------------------------------------------------------------------
# unpooling


@st.composite
def pool_configs(draw):
    kernel = _maybe_pair(draw, 1, 4)
    stride = None if draw(st.booleans()) else _maybe_pair(draw, 1, 3)
    padding = tuple(draw(st.integers(0, k // 2)) for k in _two(kernel))
    size = tuple(k + draw(st.integers(0, 6)) for k in _two(kernel))
    return dict(batch=draw(st.integers(1, 2)), channels=draw(st.integers(1, 3)), size=size,
                kernel=kernel, stride=stride, padding=padding, delta=draw(st.integers(-2, 2)),
                full_size=draw(st.booleans()))


@settings(max_examples=80, deadline=None)
@given(cfg=pool_configs(), seed=st.integers(0, 2**16))
def test_max_unpool2d_equals_torch(cfg, seed):
    gen = _gen(seed)
    x = _randn(gen, cfg["batch"], cfg["channels"], *cfg["size"])
    k, s, p = cfg["kernel"], cfg["stride"], cfg["padding"]
    pooled, idx = F.max_pool2d(x, k, s, p, return_indices=True)
    s2, k2 = _two(k if s is None else s), _two(k)
    default = [(n - 1) * ss - 2 * pp + kk for n, ss, pp, kk in zip(pooled.shape[-2:], s2, p, k2)]
    # any size strictly within a stride of the default is allowed, if the indices fit;
    # the size of the pooled image always is; also pass (B, C, H, W)
    size = [n + max(1 - ss, min(ss - 1, cfg["delta"])) for n, ss in zip(default, s2)]
    if min(size) < 1 or int(idx.max()) >= size[0] * size[1]:
        size = list(x.shape[-2:])
    if cfg["full_size"]:
        size = [*pooled.shape[:2], *size]
    ours = _grads(lambda v: nf.max_unpool2d(v, idx, k, s, p, size), (pooled,), seed)
    theirs = _grads(lambda v: F.max_unpool2d(v, idx, k, s, p, size), (pooled,), seed)
    _assert_same(ours, theirs)


def test_max_unpool2d_overlapping_windows_and_the_mask_of_switches():
    x = torch.tensor([[1.0, 5.0, 2.0], [0.0, 3.0, 4.0], [7.0, 1.0, 0.0]], dtype=DT)[None, None]
    pooled, idx = F.max_pool2d(x, 2, stride=1, return_indices=True)  # [[5, 5], [7, 4]]
    assert idx.flatten().tolist() == [1, 1, 6, 5]  # the 5 is selected twice
    up = nf.max_unpool2d(pooled, idx, 2, stride=1)
    assert up[0, 0].tolist() == [[0, 5, 0], [0, 0, 4], [7, 0, 0]]
    assert up.equal(F.max_unpool2d(pooled, idx, 2, stride=1))


@settings(max_examples=40, deadline=None)
@given(size=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       scale=st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))),
       seed=st.integers(0, 2**16))
def test_nearest_and_bed_of_nails_unpooling(size, scale, seed):
    gen = _gen(seed)
    x = _randn(gen, 2, 3, *size)
    sh, sw = _two(scale)
    _assert_same(_grads(lambda v: nf.nearest_unpool2d(v, scale), (x,), seed),
                 _grads(lambda v: F.interpolate(v, scale_factor=(sh, sw), mode="nearest"),
                        (x,), seed))
    # bed of nails = stride-s transposed convolution with a one-hot s x s kernel, per channel
    nail = torch.zeros(3, 1, sh, sw, dtype=DT)
    nail[:, :, 0, 0] = 1
    _assert_same(_grads(lambda v: nf.bed_of_nails_unpool2d(v, scale), (x,), seed),
                 _grads(lambda v: F.conv_transpose2d(v, nail, stride=(sh, sw), groups=3),
                        (x,), seed))


def test_unpooling_pictures():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])[None, None]
    assert nf.nearest_unpool2d(x)[0, 0].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2],
                                                     [3, 3, 4, 4], [3, 3, 4, 4]]
    assert nf.bed_of_nails_unpool2d(x)[0, 0].tolist() == [[1, 0, 2, 0], [0, 0, 0, 0],
                                                          [3, 0, 4, 0], [0, 0, 0, 0]]


# ---------------------------------------------------------------------------------------
# gradcheck, dtypes, no mutation


def test_gradcheck_small_cases():
    gen = _gen(3)
    x = _randn(gen, 1, 2, 3, 2).requires_grad_(True)
    w = _randn(gen, 2, 2, 2, 3).requires_grad_(True)
    b = _randn(gen, 4).requires_grad_(True)
    for method in METHODS:
        assert torch.autograd.gradcheck(
            lambda x, w, b: nf.conv_transpose2d(x, w, b, stride=(2, 1), padding=(0, 1),
                                                output_padding=(1, 0), groups=2,
                                                dilation=(1, 2), method=method), (x, w, b))
    xc = _randn(gen, 1, 2, 5, 4).requires_grad_(True)
    wc = _randn(gen, 2, 1, 2, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda x, w: nf.dilated_conv2d(x, w, None, 2, 1, (2, 1), 2), (xc, wc))
    assert torch.autograd.gradcheck(lambda w: nf.conv_matrix(w, (3, 3), padding=1), (wc,))
    pooled, idx = F.max_pool2d(xc.detach(), 2, return_indices=True)
    pooled.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: nf.max_unpool2d(v, idx, 2), (pooled,))
    assert torch.autograd.gradcheck(lambda v: nf.bed_of_nails_unpool2d(v, 3), (pooled,))
    assert torch.autograd.gradcheck(lambda v: nf.nearest_unpool2d(v, (1, 2)), (pooled,))


def test_float32_and_dtype_follow_the_input():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 6, 5, generator=gen)
    w = torch.randn(4, 3, 3, 3, generator=gen)
    ref = F.conv_transpose2d(x, w, stride=2, padding=1)
    for method in METHODS:
        out = nf.conv_transpose2d(x, w, stride=2, padding=1, method=method)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert nf.conv_matrix(w, 4).dtype == torch.float32


def test_inputs_are_not_modified():
    gen = _gen(5)
    x, w, b = _randn(gen, 2, 2, 4, 3), _randn(gen, 2, 3, 2, 2), _randn(gen, 3)
    copies = [t.clone() for t in (x, w, b)]
    for method in METHODS:
        nf.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1, method=method)
    nf.dilated_conv2d(x, w.transpose(0, 1), None, 1, 1, 2)
    nf.conv_matrix(w, (3, 3))
    nf.insert_zeros(x, 2)
    nf.dilate_kernel(w, 2)
    nf.nearest_unpool2d(x)
    nf.bed_of_nails_unpool2d(x)
    pooled, idx = F.max_pool2d(x, 2, return_indices=True)
    pooled_copy, idx_copy = pooled.clone(), idx.clone()
    nf.max_unpool2d(pooled, idx, 2, output_size=x.shape[-2:])
    for t, c in zip((x, w, b, pooled, idx), (*copies, pooled_copy, idx_copy)):
        assert t.equal(c)


# ---------------------------------------------------------------------------------------
# FCN's bilinear initialisation


def test_bilinear_kernel_values():
    # Long et al.'s upsample_filt(4): [1, 3, 3, 1] / 4 in each direction
    k = nf.bilinear_kernel(4, dtype=DT)
    torch.testing.assert_close(k, torch.outer(*[torch.tensor([0.25, 0.75, 0.75, 0.25],
                                                             dtype=DT)] * 2))
    torch.testing.assert_close(nf.bilinear_kernel(3, dtype=DT)[1], torch.tensor(
        [0.5, 1.0, 0.5], dtype=DT))
    w = nf.bilinear_upsampling_weight(3, 2)
    assert w.shape == (3, 3, 4, 4) and w[0, 1].abs().sum() == 0
    with pytest.raises(ValueError, match="kernel_size: expected a positive int, got 0"):
        nf.bilinear_kernel(0)
    with pytest.raises(TypeError, match="factor: expected a positive int, got float 2.0"):
        nf.bilinear_upsampling_weight(3, 2.0)


@pytest.mark.parametrize("factor", [2, 3, 4, 5, 8])
def test_bilinear_transposed_convolution_is_bilinear_interpolation(factor):
    # kernel 2f - (f mod 2), stride f, padding f // 2: output f H x f W, equal to
    # F.interpolate(bilinear, align_corners=False) except for the f // 2 outermost pixels
    x = _randn(_gen(factor), 1, 2, 6, 5)
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    k = 2 * factor - factor % 2
    w = torch.zeros(2, 2, k, k, dtype=DT)
    w[0, 0] = w[1, 1] = nf.bilinear_kernel(k, dtype=DT)
    assert w.equal(nf.bilinear_upsampling_weight(2, factor, dtype=DT))
    out = nf.conv_transpose2d(x, w, stride=factor, padding=factor // 2)
    assert out.shape == ref.shape
    m = factor // 2
    torch.testing.assert_close(out[..., m:-m or None, m:-m or None],
                               ref[..., m:-m or None, m:-m or None], **TOL)
    if m:  # at the border the interpolation repeats the edge, the convolution pads with 0
        assert not torch.allclose(out[..., 0, :], ref[..., 0, :])


# ---------------------------------------------------------------------------------------
# errors name the argument


def _x(*shape):
    return torch.zeros(*shape, dtype=DT)


@pytest.mark.parametrize("call, error, match", [
    (lambda: nf.conv_transpose2d(_x(2, 3, 3), _x(2, 1, 2, 2)), ValueError,
     r"x: expected a 4-D tensor of shape \[B, C_in, H, W\], got shape \[2, 3, 3\]"),
    (lambda: nf.conv_transpose2d([[1.0]], _x(2, 1, 2, 2)), TypeError,
     "x: expected a torch.Tensor"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 2)), ValueError,
     r"weight: expected a 4-D tensor of shape \[C_in, C_out / groups, kH, kW\]"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(3, 1, 2, 2)), ValueError,
     r"weight: expected C_in = 2 \(x.shape\[1\]\) in dim 0, got shape \[3, 1, 2, 2\]"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 2, 2), groups=3), ValueError,
     r"groups: expected a divisor of C_in = 2"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 2, 2), groups=0), ValueError,
     "groups: expected a positive int, got 0"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 2, 2), stride=0), ValueError,
     "stride: expected positive values, got 0"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 2, 2), dilation=(1, 0)), ValueError,
     r"dilation: expected positive values, got \(1, 0\)"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 2, 2), padding=-1), ValueError,
     "padding: expected non-negative values, got -1"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 2, 2), stride=1.5), TypeError,
     "stride: expected an int or a pair of ints, got 1.5"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 2, 2), stride=2, output_padding=2),
     ValueError, r"output_padding: expected smaller than stride or dilation \(torch's rule\)"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 1, 1), _x(2, 1, 1, 1), padding=1), ValueError,
     "x: expected an input large enough for a non-empty output"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 2, 2), _x(3)), ValueError,
     r"bias: expected shape \[C_out\] = \[1\], got \[3\]"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 2, 2).float()), TypeError,
     "weight: expected the dtype of x, torch.float64, got torch.float32"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 1, 2, 2), method="fft"), ValueError,
     r"method: expected one of \['zero_insertion', 'scatter', 'matrix'\], got 'fft'"),
    (lambda: nf.conv_transpose2d(_x(1, 2, 3, 3).long(), _x(2, 1, 2, 2)), TypeError,
     "x: expected a floating-point tensor"),
    (lambda: nf.conv_transpose2d_matrix(_x(1, 64, 32, 32), _x(64, 64, 3, 3)), ValueError,
     "x: expected a convolution matrix of at most 67,108,864 entries"),
    (lambda: nf.dilated_conv2d(_x(1, 4, 5, 5), _x(2, 3, 3, 3)), ValueError,
     r"weight: expected C_in / groups = 4 input channels in dim 1"),
    (lambda: nf.dilated_conv2d(_x(1, 4, 5, 5), _x(3, 2, 3, 3), groups=2), ValueError,
     "groups: expected a divisor of C_out = 3"),
    (lambda: nf.dilated_conv2d(_x(1, 4, 5, 5), _x(2, 4, 3, 3), dilation=3), ValueError,
     r"x: expected spatial size at least \(7, 7\) for kernel \(3, 3\)"),
    (lambda: nf.dilated_conv2d(_x(4, 5, 5), _x(2, 4, 3, 3)), ValueError,
     r"x: expected a 4-D tensor of shape \[B, C_in, H, W\], got shape \[4, 5, 5\]"),
    (lambda: nf.conv_matrix(_x(2, 1, 3, 3), 2), ValueError,
     r"input_size: expected at least \(3, 3\)"),
    (lambda: nf.conv_matrix(_x(16, 16, 3, 3), (32, 32), padding=1), ValueError,
     "input_size: expected a convolution matrix of at most 67,108,864 entries"),
    (lambda: nf.conv_matrix(_x(3, 1, 3, 3), 5, groups=2), ValueError,
     "groups: expected a divisor of C_out = 3"),
    (lambda: nf.max_unpool2d(_x(1, 2, 2, 2), torch.zeros(1, 2, 2, 1, dtype=torch.long), 2),
     ValueError, r"indices: expected the shape of x \[1, 2, 2, 2\], got \[1, 2, 2, 1\]"),
    (lambda: nf.max_unpool2d(_x(1, 2, 2, 2), torch.zeros(1, 2, 2, 2, dtype=torch.int32), 2),
     TypeError, "indices: expected dtype torch.int64, got torch.int32"),
    (lambda: nf.max_unpool2d(_x(1, 2, 2, 2), torch.full((1, 2, 2, 2), 16), 2),
     ValueError, r"indices: expected values in \[0, 16\)"),
    (lambda: nf.max_unpool2d(_x(2, 2, 2), torch.zeros(2, 2, 2, dtype=torch.long), 2),
     ValueError, "x: expected a 4-D tensor"),
    (lambda: nf.max_unpool2d(_x(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.long), 2,
                             output_size=(6, 4)), ValueError,
     r"output_size: expected each size strictly between default - stride and default \+ "
     r"stride, \(2, 2\) and \(6, 6\), got \(6, 4\)"),
    (lambda: nf.max_unpool2d(_x(1, 1, 2, 2), torch.zeros(1, 1, 2, 2, dtype=torch.long), 2,
                             output_size=(4,)), ValueError,
     r"output_size: expected \(H_out, W_out\) or \(B, C, H_out, W_out\)"),
    (lambda: nf.nearest_unpool2d(_x(2, 2, 2), 2), ValueError, "x: expected a 4-D tensor"),
    (lambda: nf.bed_of_nails_unpool2d(_x(1, 2, 2, 2), 0), ValueError,
     "scale: expected positive values, got 0"),
    (lambda: nf.insert_zeros(_x(3), 2), ValueError, "x: expected at least 2 dimensions"),
    (lambda: nf.dilate_kernel(_x(3, 3), 0), ValueError, "dilation: expected positive values"),
])
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
