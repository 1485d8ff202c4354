"""The permutohedral lattice filter against the exact Gaussian filter, and its properties.

Accuracy is measured on the *normalised* filter ``filter(v) / filter(1)`` (what a dense CRF
uses: pydensecrf's normalisations cancel the lattice's overall scale) with values in [0, 1],
so errors are fractions of the value range. The bounds are about twice the errors measured
with these seeds: the lattice replaces the Gaussian by splat / [1 2 1]-blur / slice on a
lattice whose spacing is about one standard deviation, so the error is small where points
have many neighbours within a standard deviation (images, dense clouds: mean error well under
1 %) and largest at isolated points in 5-D, whose sum is mostly their own, imprecise, weight.
"""

import pytest
import torch

from crfkit.data.photos import photo
import crfkit.permutohedral as permutohedral
from crfkit._validate import check_finite
from crfkit.permutohedral import (
    PermutohedralLattice,
    gaussian_filter_exact,
    lattice,
    permutohedral_filter,
)


def _normalised_errors(features, num_channels, seed=0):
    gen = torch.Generator().manual_seed(seed)
    values = torch.rand(*features.shape[:2], num_channels, generator=gen, dtype=features.dtype)
    ones = torch.ones_like(values[..., :1])
    lat = lattice(features)
    ours = lat.filter(values) / lat.filter(ones)
    exact = gaussian_filter_exact(features, values) / gaussian_filter_exact(features, ones)
    diff = (ours - exact).abs()
    return diff.max().item(), diff.mean().item()


def _crop_features(d, sxy, srgb=13.0, dtype=torch.float64):
    image = photo("astronaut", dtype=dtype)[:, 100:132, 200:232] * 255  # [3, 32, 32], 0..255
    yy, xx = torch.meshgrid(
        torch.arange(32, dtype=dtype), torch.arange(32, dtype=dtype), indexing="ij"
    )
    channels = [xx / sxy, yy / sxy]
    if d == 5:
        channels += [image[0] / srgb, image[1] / srgb, image[2] / srgb]
    return torch.stack(channels, -1).reshape(1, 32 * 32, d)  # [1, N, d]


# ---- accuracy against the oracle -------------------------------------------------------------


@pytest.mark.parametrize("num_channels", [1, 21])
@pytest.mark.parametrize(
    "d, spread, max_bound, mean_bound",
    [(2, 1.0, 0.03, 0.002), (5, 0.5, 0.02, 0.002), (5, 1.0, 0.6, 0.012)],
)
def test_random_clouds_match_exact(d, spread, max_bound, mean_bound, num_channels):
    gen = torch.Generator().manual_seed(d)
    features = torch.randn(2, 800, d, generator=gen, dtype=torch.float64) * spread
    worst, mean = _normalised_errors(features, num_channels)
    assert mean < mean_bound and worst < max_bound, (worst, mean)


@pytest.mark.parametrize("num_channels", [1, 21])
@pytest.mark.parametrize(
    "d, sxy, srgb, max_bound, mean_bound",
    [(2, 3.0, None, 0.04, 0.005), (5, 5.0, 13.0, 0.4, 0.012), (5, 80.0, 13.0, 0.3, 0.005)],
)
def test_image_features_match_exact(d, sxy, srgb, max_bound, mean_bound, num_channels):
    worst, mean = _normalised_errors(_crop_features(d, sxy, srgb or 13.0), num_channels)
    assert mean < mean_bound and worst < max_bound, (worst, mean)


def test_exact_include_self():
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(2, 50, 3, generator=gen, dtype=torch.float64)
    values = torch.randn(2, 50, 4, generator=gen, dtype=torch.float64)
    full = gaussian_filter_exact(features, values)
    without = gaussian_filter_exact(features, values, include_self=False)
    torch.testing.assert_close(full - without, values)
    # against the definition, one point at a time
    i = 7
    weights = torch.exp(-0.5 * ((features[1, i] - features[1]) ** 2).sum(-1))  # [N]
    torch.testing.assert_close(full[1, i], weights @ values[1])


# ---- properties --------------------------------------------------------------------------------


@pytest.fixture
def cloud():
    gen = torch.Generator().manual_seed(1)
    features = torch.randn(3, 200, 5, generator=gen) * 1.5  # [B, N, d] float32
    values = torch.rand(3, 200, 4, generator=gen)
    return features, values


def test_constant_values_stay_constant(cloud):
    features, _ = cloud
    lat = lattice(features)
    ones = torch.ones(3, 200, 1)
    constant = torch.full((3, 200, 2), 0.37)
    torch.testing.assert_close(lat.filter(constant) / lat.filter(ones), constant)


def test_linear_in_values(cloud):
    features, values = cloud
    lat = lattice(features)
    other = torch.randn_like(values)
    torch.testing.assert_close(
        lat.filter(2.0 * values - 3.0 * other),
        2.0 * lat.filter(values) - 3.0 * lat.filter(other),
        rtol=1e-4, atol=1e-4,
    )


def test_batch_equals_per_element(cloud):
    features, values = cloud
    batched = lattice(features).filter(values)
    for b in range(features.shape[0]):
        single = lattice(features[b : b + 1]).filter(values[b : b + 1])
        torch.testing.assert_close(batched[b : b + 1], single, rtol=1e-5, atol=1e-5)


def test_float64_agrees_with_float32(cloud):
    features, values = cloud
    out64 = lattice(features.double()).filter(values.double())
    assert out64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), lattice(features).filter(values), rtol=1e-4, atol=1e-4)


def test_steps_compose_to_filter(cloud):
    features, values = cloud
    lat = lattice(features)
    torch.testing.assert_close(lat.slice(lat.blur(lat.splat(values))), lat.filter(values))
    assert lat.splat(values).shape == (lat.num_vertices, 4)
    torch.testing.assert_close(permutohedral_filter(features, values), lat.filter(values))


def test_gradcheck_values():
    gen = torch.Generator().manual_seed(2)
    features = torch.randn(2, 12, 3, generator=gen, dtype=torch.float64)
    values = torch.randn(2, 12, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    lat = lattice(features)
    assert torch.autograd.gradcheck(lat.filter, (values,))
    assert torch.autograd.gradgradcheck(lat.filter, (values,))
    steps = lambda v: lat.slice(lat.blur(lat.splat(v)))  # noqa: E731
    assert torch.autograd.gradcheck(steps, (values,))


def test_lattice_is_reusable(cloud):
    features, values = cloud
    lat = lattice(features)
    other = torch.rand_like(values)
    first, second = lat.filter(values), lat.filter(other)
    torch.testing.assert_close(first, lattice(features).filter(values))
    torch.testing.assert_close(second, lattice(features).filter(other))


def test_inputs_not_mutated(cloud):
    features, values = cloud
    f0, v0 = features.clone(), values.clone()
    lattice(features).filter(values)
    gaussian_filter_exact(features, values)
    assert torch.equal(features, f0) and torch.equal(values, v0)


def test_blur_neighbours_are_mutual(cloud):
    features, _ = cloud
    lat = lattice(features)
    prev, nxt = lat.neighbours[:, 0], lat.neighbours[:, 1]  # [d + 1, M] each
    m = lat.num_vertices
    for j in range(lat.dim + 1):
        has = nxt[j] < m
        assert torch.equal(prev[j][nxt[j][has]], torch.arange(m)[has])


def test_splat_weights_are_barycentric(cloud):
    features, _ = cloud
    lat = lattice(features)
    weights = lat.splat_matrix.to_dense()  # [M, B N]
    torch.testing.assert_close(weights.sum(0), torch.ones(3 * 200))
    assert bool((weights >= -1e-6).all())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(cloud):
    features, values = cloud
    cpu = lattice(features).filter(values)
    gpu = lattice(features.cuda()).filter(values.cuda())
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("features", ["cloud", "image"])
def test_simplex_hashing_equals_hashing_every_vertex(features, cloud, monkeypatch):
    """Points in one simplex share their vertices, so the build hashes simplices first; with
    the simplex keys declared too wide it hashes every point's vertices. Same lattice."""
    feats = cloud[0] if features == "cloud" else _crop_features(5, 8.0, dtype=torch.float32)
    values = torch.rand(*feats.shape[:2], 3, generator=torch.Generator().manual_seed(2))
    fast = lattice(feats)
    monkeypatch.setattr(permutohedral, "_SIMPLEX_KEY_LIMIT", 0)
    slow = lattice(feats)
    assert fast.num_vertices == slow.num_vertices
    torch.testing.assert_close(fast.filter(values), slow.filter(values), rtol=0, atol=1e-6)
    for lat in (fast, slow):  # each point's d + 1 vertices are distinct
        ids = lat.slice_matrix.col_indices().reshape(-1, feats.shape[-1] + 1)
        assert bool((ids.sort(1).values.diff(dim=1) > 0).all())


def test_scaled_filter_folds_the_factors(cloud):
    features, values = cloud
    gen = torch.Generator().manual_seed(5)
    pre, post = torch.rand(3, 200, 1, generator=gen) + 0.5, torch.rand(3, 200, generator=gen) + 0.5
    lat = lattice(features)
    expected = post[..., None] * lat.filter(pre * values)  # [B, N, C]
    scaled = lat.scaled(pre, post)
    torch.testing.assert_close(scaled(values), expected)
    flat, base = values.reshape(600, 4), torch.rand(600, 4, generator=gen)
    out = torch.empty(600, 4)
    torch.testing.assert_close(scaled.into(flat, out), expected.reshape(600, 4))
    torch.testing.assert_close(scaled.accumulate(flat, out.clone(), alpha=-2.0, base=base), base - 2 * expected.reshape(600, 4))
    acc = base.clone()
    scaled.accumulate(flat, acc)  # out += ...
    torch.testing.assert_close(acc, base + expected.reshape(600, 4))
    torch.testing.assert_close(lat.scaled()(values), lat.filter(values))  # no factors: the filter
    assert torch.equal(pre, pre.clone()) and torch.equal(values, cloud[1])
    with pytest.raises(ValueError, match=r"pre: expected shape \[B, N, 1\] or \[B, N\] with B = 3, N = 200, got \[3, 199, 1\]"):
        lat.scaled(pre[:, :199])
    with pytest.raises(TypeError, match=r"post: expected dtype torch.float32 on cpu"):
        lat.scaled(post=post.double())
    bad = post.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"post: expected finite values, got 0 NaN and 1 inf"):
        lat.scaled(post=bad)


def test_check_finite_decides_by_one_sum_and_names_the_bad_values():
    check_finite("x", torch.full((4,), 3e38))  # finite values whose float32 sum overflows: accepted
    check_finite("x", torch.zeros(0))
    check_finite("x", torch.tensor([1, 2]))  # integers are always finite
    for bad, counts in ((float("nan"), "1 NaN and 0 inf"), (float("inf"), "0 NaN and 1 inf"), (-float("inf"), "0 NaN and 1 inf")):
        x = torch.tensor([1.0, bad, 2.0])
        with pytest.raises(ValueError, match=f"x: expected finite values, got {counts}"):
            check_finite("x", x)
    with pytest.raises(ValueError, match="x: expected finite values, got 1 NaN and 1 inf"):
        check_finite("x", torch.tensor([float("inf"), float("nan")], dtype=torch.float64))


# ---- errors ------------------------------------------------------------------------------------


def test_errors():
    features = torch.randn(2, 10, 2)
    with pytest.raises(TypeError, match=r"features: expected a torch.Tensor"):
        PermutohedralLattice(features.numpy())
    with pytest.raises(ValueError, match=r"features: expected a 3-D tensor of shape \[B, N, d\], got shape \[10, 2\]"):
        lattice(features[0])
    with pytest.raises(TypeError, match=r"features: expected a floating-point tensor, got dtype torch.int64"):
        lattice(features.long())
    bad = features.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"features: expected finite values, got 1 NaN and 0 inf"):
        lattice(bad)
    with pytest.raises(ValueError, match=r"features: expected B, N, d >= 1"):
        lattice(torch.zeros(2, 0, 2))
    lat = lattice(features)
    with pytest.raises(ValueError, match=r"values: expected shape \[B, N, C\] with B = 2, N = 10 \(as the features\), got \[2, 9, 3\]"):
        lat.filter(torch.zeros(2, 9, 3))
    with pytest.raises(ValueError, match=r"values: expected a 3-D tensor of shape \[B, N, C\], got shape \[2, 10\]"):
        lat.filter(torch.zeros(2, 10))
    with pytest.raises(TypeError, match=r"values: expected dtype torch.float32 \(that of the features\), got torch.float64"):
        lat.filter(torch.zeros(2, 10, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"values: expected shape \[B, N, C\] with B = 2, N = 10"):
        gaussian_filter_exact(features, torch.zeros(1, 10, 1))
    with pytest.raises(ValueError, match=r"features: expected a spread that fits"):
        lattice(torch.tensor([[[0.0] * 5, [1e6] * 5]]))
