"""crfkit.DenseCRF and dense mean field (filter = "permutohedral" | "exact" | "conv").

Oracles: ``softmax(-unary)`` when no kernel acts; the O(N^2) exact filter (a direct kernel
matrix) for the permutohedral lattice, within stated tolerances, and for ConvCRF's filter
when its window covers the whole image (then truncation removes nothing); a pixel-pair loop
for :meth:`DenseCRF.energy`; ``torch.autograd.gradcheck`` for the gradients. The agreement
with pydensecrf itself is in ``tests/test_dense_reference.py``.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import crfkit as ck
from crfkit.data.photos import photo
from crfkit.filters import dense_filters
from crfkit.inference import mean_field, mean_field_free_energy

FILTERS = ("permutohedral", "exact", "conv")
NORMS = ("symmetric", "before", "after", "none")


pytestmark = pytest.mark.usefixtures("one_thread")


def crop(size=24, top=10, left=30, dtype=torch.float64):
    """A ``[1, 3, size, size]`` crop of the astronaut at 128 x 128, colours in 0..255."""
    image = photo("astronaut", max_side=128, dtype=torch.float64) * 255  # [3, 128, 128]
    return image[:, top : top + size, left : left + size][None].to(dtype).contiguous()


def smooth_unary(b, k, h, w, seed=0, scale=4.0, dtype=torch.float64):
    """A random smooth ``[B, K, H, W]`` unary (box-blurred noise)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(b, k, h + 6, w + 6, generator=g, dtype=dtype)
    return scale * torch.nn.functional.avg_pool2d(noise, 7, 1)  # [B, K, H, W]


def small_model(b=2, k=3, h=5, w=6, seed=0, kernels=None, normalization="symmetric", dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    unary = torch.randn(b, k, h, w, generator=g, dtype=dtype)
    image = 255 * torch.rand(b, 3, h, w, generator=g, dtype=dtype)
    if kernels is None:
        kernels = (ck.GaussianKernel(sxy=2, weight=2), ck.BilateralKernel(sxy=3, srgb=60, weight=3))
    return ck.DenseCRF(unary, image, kernels=kernels, normalization=normalization)


# --------------------------------------------------------------------------------------------
# identities
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("filter", FILTERS)
@pytest.mark.parametrize("norm", NORMS)
def test_zero_weight_kernels_give_softmax_of_minus_unary(filter, norm):
    kernels = (ck.GaussianKernel(weight=0), ck.BilateralKernel(sxy=4, weight=0.0))
    crf = small_model(kernels=kernels, normalization=norm)
    q = mean_field(crf, iterations=4, filter=filter, window=5)
    torch.testing.assert_close(q, torch.softmax(-crf.unary, dim=1))


def test_no_kernels_and_zero_iterations_give_softmax():
    crf = small_model(kernels=())
    torch.testing.assert_close(mean_field(crf, 3), torch.softmax(-crf.unary, 1))
    crf = small_model()
    torch.testing.assert_close(mean_field(crf, 0), torch.softmax(-crf.unary, 1))


@pytest.mark.parametrize("filter", FILTERS)
def test_marginals_are_probabilities_and_shift_invariant(filter):
    crf = small_model()
    q = mean_field(crf, 3, filter=filter, window=5)
    assert q.shape == crf.shape and bool((q >= 0).all())
    torch.testing.assert_close(q.sum(1), torch.ones_like(q[:, 0]))
    shifted = ck.DenseCRF(crf.unary + 7.5, crf.image, crf.kernels)
    torch.testing.assert_close(mean_field(shifted, 3, filter=filter, window=5), q)


def test_potts_equals_explicit_matrix():
    k = 3
    potts = (ck.GaussianKernel(sxy=2, weight=2), ck.BilateralKernel(sxy=3, srgb=60, weight=3))
    explicit = (
        ck.GaussianKernel(sxy=2, weight=1, compat=ck.potts(k, 2.0, dtype=torch.float64)),
        ck.BilateralKernel(sxy=3, srgb=60, weight=3, compat=1 - torch.eye(k, dtype=torch.float64)),
    )
    a, b = small_model(kernels=potts), small_model(kernels=explicit)
    for filter in FILTERS:
        torch.testing.assert_close(mean_field(a, 4, filter=filter, window=5), mean_field(b, 4, filter=filter, window=5))


def test_compat_is_used_symmetrised():
    g = torch.Generator().manual_seed(3)
    table = torch.rand(3, 3, generator=g, dtype=torch.float64)
    a = small_model(kernels=(ck.BilateralKernel(sxy=3, srgb=60, weight=2, compat=table),))
    b = small_model(kernels=(ck.BilateralKernel(sxy=3, srgb=60, weight=2, compat=0.5 * (table + table.T)),))
    torch.testing.assert_close(mean_field(a, 3, filter="exact"), mean_field(b, 3, filter="exact"))


def test_one_iteration_by_hand_exact_symmetric():
    """Q^1 = softmax(-u - sum_m w_m mu_m applied to n^-1/2 K n^-1/2 Q^0), K including i = j."""
    crf = small_model(b=1)
    b, k, h, w = crf.shape
    u = crf.unary.reshape(k, h * w).T  # [N, K]
    q0 = torch.softmax(-u, 1)
    msg = torch.zeros_like(u)
    for m in range(len(crf.kernels)):
        f = crf.features(m)[0]  # [N, d]
        gram = torch.exp(-0.5 * ((f[:, None] - f[None]) ** 2).sum(-1))  # [N, N]
        nrm = gram.sum(1).rsqrt()
        filtered = nrm[:, None] * (gram @ (nrm[:, None] * q0))
        msg = msg + filtered @ crf.compat_matrix(m)
    expected = torch.softmax(-u - msg, 1).T.reshape(1, k, h, w)
    torch.testing.assert_close(mean_field(crf, 1, filter="exact"), expected)


# --------------------------------------------------------------------------------------------
# the filters: normalisation properties, exact vs permutohedral vs conv
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("filter", ("exact", "conv"))
def test_normalisation_properties(filter):
    """With K_ij the kernel and n_i = sum_j K_ij (the pixel itself included):
    symmetric S = n^-1/2 K n^-1/2 is a symmetric matrix with S n^1/2 = n^1/2; after
    (rows, n^-1 K) maps 1 to 1; before (K n^-1) preserves the sum; none is K."""
    crf = small_model(b=1, h=4, w=5)
    n_pix = 20
    eye = torch.eye(n_pix, dtype=torch.float64)[None]  # [1, N, N]: filter the basis
    mats = {}
    for norm in NORMS:
        model = ck.DenseCRF(crf.unary, crf.image, crf.kernels[1:], normalization=norm)
        mats[norm] = dense_filters(model, filter, window=9)[0](eye)[0]  # [N, N]: column j = S e_j
    kmat, sym = mats["none"], mats["symmetric"]
    n = kmat.sum(1)
    torch.testing.assert_close(sym, sym.T)
    torch.testing.assert_close(sym @ n.sqrt(), n.sqrt())
    torch.testing.assert_close(mats["after"].sum(1), torch.ones(n_pix, dtype=torch.float64))
    torch.testing.assert_close(mats["before"].sum(0), torch.ones(n_pix, dtype=torch.float64))
    torch.testing.assert_close(torch.diagonal(kmat), torch.ones(n_pix, dtype=torch.float64))  # self weight 1


def test_permutohedral_after_normalisation_maps_one_to_one():
    crf = ck.DenseCRF(smooth_unary(1, 3, 24, 24), crop(), normalization="after")
    for filt in dense_filters(crf, "permutohedral"):
        ones = torch.ones(1, 24 * 24, 2, dtype=torch.float64)
        torch.testing.assert_close(filt(ones), ones)


def test_conv_with_a_window_covering_the_image_equals_exact():
    crf = small_model(h=5, w=6)
    exact = mean_field(crf, 4, filter="exact")
    torch.testing.assert_close(mean_field(crf, 4, filter="conv", window=11), exact)


def test_conv_truncation_of_a_narrow_spatial_kernel_is_small():
    """sxy = 1, window 7: the dropped weight exp(-9/2) per tap is tiny."""
    crf = ck.DenseCRF(smooth_unary(1, 3, 16, 16), crop(16), kernels=(ck.GaussianKernel(sxy=1, weight=3),))
    diff = (mean_field(crf, 5, filter="conv", window=7) - mean_field(crf, 5, filter="exact")).abs().max()
    assert float(diff) < 1e-3


# Measured over crops and seeds (docs of crfkit.permutohedral: the normalised lattice filter
# is off by ~0.1-0.6 % on average, a few per cent (d = 2) to 20-30 % (d = 5) at worst).
# After ONE mean-field iteration that gives: spatial kernel only, mean |dQ| ~ 0.0025,
# max ~ 0.016; with a bilateral kernel, mean ~ 0.005-0.008, max ~ 0.06-0.14. Later
# iterations amplify near-ties, so only the first step is bounded pixelwise.
@pytest.mark.parametrize("norm", ("symmetric", "before", "after"))
@pytest.mark.parametrize(
    "kernels, mean_tol, max_tol",
    [
        ((ck.GaussianKernel(sxy=3, weight=3),), 0.005, 0.03),
        ((ck.GaussianKernel(sxy=3, weight=3), ck.BilateralKernel(sxy=10, srgb=13, weight=5)), 0.012, 0.2),
    ],
)
def test_exact_and_permutohedral_agree_within_stated_tolerance(norm, kernels, mean_tol, max_tol):
    crf = ck.DenseCRF(smooth_unary(1, 3, 24, 24, seed=1), crop(), kernels=kernels, normalization=norm)
    qe = mean_field(crf, 1, filter="exact")
    qp = mean_field(crf, 1, filter="permutohedral")
    diff = (qe - qp).abs()
    assert float(diff.mean()) < mean_tol
    assert float(diff.max()) < max_tol
    # after 5 iterations the labellings still mostly agree
    agree = (mean_field(crf, 5, filter="exact").argmax(1) == mean_field(crf, 5).argmax(1)).double().mean()
    assert float(agree) > 0.9


# --------------------------------------------------------------------------------------------
# damping, history, batching, init, gradients
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("filter", FILTERS)
def test_damping_and_history(filter):
    crf = small_model()
    q, trace = mean_field(crf, 4, history=True, filter=filter, window=5)
    assert len(trace) == 4 and trace[-1] is not None
    torch.testing.assert_close(trace[-1], q)
    torch.testing.assert_close(mean_field(crf, 2, filter=filter, window=5), trace[1])
    # one damped step = mix of the plain step and the start
    q1 = mean_field(crf, 1, filter=filter, window=5)
    damped = mean_field(crf, 1, damping=0.25, filter=filter, window=5)
    torch.testing.assert_close(damped, 0.75 * q1 + 0.25 * torch.softmax(-crf.unary, 1))
    # damped steps from a given init
    init = torch.softmax(-2 * crf.unary, 1)
    d2 = mean_field(crf, 2, damping=0.5, init=init, filter=filter, window=5)
    step = mean_field(crf, 1, damping=0.5, init=mean_field(crf, 1, damping=0.5, init=init, filter=filter, window=5),
                      filter=filter, window=5)
    torch.testing.assert_close(d2, step)


@pytest.mark.parametrize("filter", FILTERS)
def test_batched_equals_per_image(filter):
    crf = small_model(b=3, h=6, w=7)
    q = mean_field(crf, 3, filter=filter, window=5)
    for i in range(3):
        one = ck.DenseCRF(crf.unary[i : i + 1], crf.image[i : i + 1], crf.kernels)
        torch.testing.assert_close(q[i : i + 1], mean_field(one, 3, filter=filter, window=5))


def test_float32_runs_and_matches_float64():
    crf = small_model()
    crf32 = ck.DenseCRF(crf.unary.float(), crf.image.float(), crf.kernels)
    for filter in FILTERS:
        q32 = mean_field(crf32, 3, filter=filter, window=5)
        assert q32.dtype == torch.float32
        # the float32 lattice can place a point in a neighbouring simplex: a looser bound there
        atol = 0.05 if filter == "permutohedral" else 1e-4
        torch.testing.assert_close(q32.double(), mean_field(crf, 3, filter=filter, window=5), atol=atol, rtol=0)


def test_gradcheck_unary_and_compat_exact():
    g = torch.Generator().manual_seed(0)
    unary = torch.randn(1, 3, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    image = 255 * torch.rand(1, 3, 3, 4, generator=g, dtype=torch.float64)
    compat = torch.rand(3, 3, generator=g, dtype=torch.float64, requires_grad=True)

    def run(u, c):
        kernels = (ck.GaussianKernel(sxy=1.5, weight=2), ck.BilateralKernel(sxy=3, srgb=80, weight=1.5, compat=c))
        return mean_field(ck.DenseCRF(u, image, kernels), 3, filter="exact", damping=0.2)

    assert torch.autograd.gradcheck(run, (unary, compat))


@pytest.mark.parametrize("filter", ("permutohedral", "conv"))
def test_gradients_flow_for_fast_filters(filter):
    crf = small_model()
    unary = crf.unary.clone().requires_grad_(True)
    weight = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    kernels = (crf.kernels[0], ck.BilateralKernel(sxy=3, srgb=60, weight=weight))
    q = mean_field(ck.DenseCRF(unary, crf.image, kernels), 3, filter=filter, window=5)
    (q[:, 0] ** 2).sum().backward()
    assert unary.grad is not None and bool(torch.isfinite(unary.grad).all()) and float(unary.grad.abs().sum()) > 0
    assert weight.grad is not None and bool(torch.isfinite(weight.grad))


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("compat", (False, True))
def test_fused_inference_path_equals_the_autograd_path(norm, compat):
    """Without gradients mean field takes a fused path (normalisation folded into the lattice's
    sparse matrices, buffers reused); asking for a gradient takes the plain one. Same values."""
    g = torch.Generator().manual_seed(3)
    table = torch.rand(3, 3, generator=g, dtype=torch.float64) if compat else None
    kernels = (ck.GaussianKernel(sxy=2, weight=2), ck.BilateralKernel(sxy=3, srgb=60, weight=3, compat=table))
    crf = small_model(b=2, k=3, h=7, w=9, kernels=kernels, normalization=norm)
    unary = crf.unary.clone().requires_grad_(True)  # forces the autograd path
    plain = ck.DenseCRF(unary, crf.image, kernels, normalization=norm)
    init = torch.softmax(-0.5 * crf.unary, 1)
    for damping, start in ((0.0, None), (0.3, init)):
        q, trace = mean_field(crf, 4, history=True, damping=damping, init=start)
        q_ref, trace_ref = mean_field(plain, 4, history=True, damping=damping, init=start)
        assert not q.requires_grad and q_ref.requires_grad
        for a, b in zip(trace + [q], trace_ref + [q_ref]):
            torch.testing.assert_close(a, b.detach(), rtol=0, atol=1e-12)
    with torch.no_grad():  # no_grad also selects the fused path
        torch.testing.assert_close(mean_field(plain, 3), mean_field(crf, 3), rtol=0, atol=1e-12)
    assert torch.equal(unary.detach(), crf.unary)  # nothing mutated


@pytest.mark.parametrize("layout", ("contiguous", "labels innermost"))
def test_fused_inference_path_leaves_inputs_and_history_independent(layout):
    crf = small_model()
    if layout != "contiguous":  # a channels-last unary: [B, K, H, W] whose labels vary fastest
        unary_cl = crf.unary.contiguous(memory_format=torch.channels_last)
        crf = ck.DenseCRF(unary_cl, crf.image, crf.kernels)
        assert crf.unary.permute(0, 2, 3, 1).is_contiguous()
    unary, image = crf.unary.clone(), crf.image.clone()
    q, trace = mean_field(crf, 3, history=True)
    assert torch.equal(crf.unary, unary) and torch.equal(crf.image, image)  # after one call
    mean_field(crf, 3)
    assert torch.equal(crf.unary, unary)  # and after two (a sign flip twice would hide)
    assert len({t.data_ptr() for t in trace}) == 3  # each entry is its own tensor, not a buffer view
    assert not torch.equal(trace[0], trace[2])


# --------------------------------------------------------------------------------------------
# the free energy
# --------------------------------------------------------------------------------------------


def _labellings(k, n):
    return torch.tensor(list(itertools.product(range(k), repeat=n)))  # [K^N, N]


@pytest.mark.parametrize("seed", (0, 1))
def test_dense_free_energy_against_enumeration(seed):
    """With exact, unnormalised Potts kernels, F(Q) = E_Q[E] - H(Q) - sum_m w_m / 2 (sum_{i != j}
    k_m(i, j) + sum_i Q_i . Q_i), with E_Q[E] summed over every labelling of a 2 x 3 image."""
    kernels = (ck.GaussianKernel(sxy=1.5, weight=1.5), ck.BilateralKernel(sxy=2, srgb=90, weight=2.5))
    crf = small_model(b=1, k=2, h=2, w=3, seed=seed, kernels=kernels, normalization="none")
    g = torch.Generator().manual_seed(seed)
    q = torch.softmax(torch.randn(1, 2, 2, 3, generator=g, dtype=torch.float64), 1)
    ys = _labellings(2, 6)  # [64, 6]
    energies = torch.stack([crf.energy(y.reshape(1, 2, 3))[0] for y in ys])  # [64]
    qp = q.reshape(2, 6).T  # [N, K]
    prob = qp[torch.arange(6), ys].prod(1)  # [64]: Q(y)
    expected = (prob * energies).sum() + torch.xlogy(qp, qp).sum()  # E_Q[E] - H(Q)
    for m, kern in enumerate(kernels):
        feats = crf.features(m)[0]  # [N, d]
        gram = torch.exp(-0.5 * torch.cdist(feats, feats).square())
        expected = expected - kern.weight / 2 * ((gram.sum() - 6) + (qp * qp).sum())
    got = mean_field_free_energy(crf, q, filter="exact")
    torch.testing.assert_close(got, expected.reshape(1), rtol=0, atol=1e-10)


@pytest.mark.parametrize("norm", ("symmetric", "none"))
def test_dense_free_energy_is_stationary_at_the_mean_field_fixed_point(norm):
    """dF/dQ_i = unary_i + m_i + log Q_i + 1: at a fixed point of the update it is the same for
    every label (zero along the simplex)."""
    crf = small_model(b=2, k=3, h=5, w=6, normalization=norm)
    q = mean_field(crf, 200, damping=0.5, filter="exact")
    q = q.detach().contiguous().requires_grad_(True)
    (grad,) = torch.autograd.grad(mean_field_free_energy(crf, q, filter="exact").sum(), q)
    along_simplex = grad - grad.mean(1, keepdim=True)
    assert float(along_simplex.abs().max()) < 1e-8
    # away from the fixed point it is not
    q0 = torch.softmax(-crf.unary, 1).requires_grad_(True)
    (grad0,) = torch.autograd.grad(mean_field_free_energy(crf, q0, filter="exact").sum(), q0)
    assert float((grad0 - grad0.mean(1, keepdim=True)).abs().max()) > 1e-2


def test_dense_free_energy_of_a_history_and_its_descent():
    crf = small_model(b=2, k=3, h=8, w=9)
    q0 = torch.softmax(-crf.unary, 1)
    q, trace = mean_field(crf, 6, history=True, damping=0.5)
    curve = mean_field_free_energy(crf, [q0] + trace)  # [T + 1, B]
    assert curve.shape == (7, 2)
    for t, qt in enumerate([q0] + trace):
        torch.testing.assert_close(curve[t], mean_field_free_energy(crf, qt), rtol=0, atol=1e-12)
    assert bool((curve[1:] <= curve[:-1] + 1e-9).all())  # damped Potts mean field descends here
    # the filters agree on the value up to the lattice's approximation
    torch.testing.assert_close(
        mean_field_free_energy(crf, q, filter="exact"), mean_field_free_energy(crf, q), rtol=0.05, atol=0.5
    )


# --------------------------------------------------------------------------------------------
# energy
# --------------------------------------------------------------------------------------------


def test_energy_against_a_pair_loop():
    crf = small_model(b=2, h=3, w=3, kernels=(
        ck.GaussianKernel(sxy=2, weight=2),
        ck.BilateralKernel(sxy=3, srgb=60, weight=3, compat=torch.rand(3, 3, dtype=torch.float64)),
    ))
    g = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 3, (2, 3, 3), generator=g)
    b, k, h, w = crf.shape
    expected = torch.zeros(b, dtype=torch.float64)
    for bi in range(b):
        y = labels[bi].reshape(-1)
        expected[bi] = crf.unary[bi].reshape(k, -1)[y, torch.arange(h * w)].sum()
        for m in range(len(crf.kernels)):
            f = crf.features(m)[bi]
            table = crf.compat_matrix(m)
            for i, j in itertools.combinations(range(h * w), 2):
                expected[bi] += torch.exp(-0.5 * ((f[i] - f[j]) ** 2).sum()) * table[y[i], y[j]]
    torch.testing.assert_close(crf.energy(labels), expected)


def test_features_follow_pydensecrf():
    image = torch.arange(2 * 3 * 2 * 3, dtype=torch.float64).reshape(2, 3, 2, 3)
    crf = ck.DenseCRF(torch.zeros(2, 2, 2, 3, dtype=torch.float64), image,
                      kernels=(ck.GaussianKernel(sxy=2), ck.BilateralKernel(sxy=4, srgb=10)))
    f0, f1 = crf.features(0), crf.features(1)
    assert f0.shape == (2, 6, 2) and f1.shape == (2, 6, 5)
    # pixel n = y W + x, features (x / sxy, y / sxy, r / srgb, g / srgb, b / srgb)
    torch.testing.assert_close(f0[0, 4], torch.tensor([1 / 2, 1 / 2], dtype=torch.float64))
    torch.testing.assert_close(f1[1, 5, :2], torch.tensor([2 / 4, 1 / 4], dtype=torch.float64))
    torch.testing.assert_close(f1[1, 5, 2:], image[1, :, 1, 2] / 10)


# --------------------------------------------------------------------------------------------
# errors, by message
# --------------------------------------------------------------------------------------------


def test_construction_errors():
    u = torch.zeros(1, 3, 4, 5)
    img = torch.zeros(1, 3, 4, 5)
    with pytest.raises(ValueError, match=r"unary: expected a batched 4-D tensor of shape \[B, K, H, W\], got the unbatched"):
        ck.DenseCRF(u[0], img)
    with pytest.raises(ValueError, match=r"image: expected a batched 4-D tensor"):
        ck.DenseCRF(u, img[0])
    with pytest.raises(ValueError, match=r"image: expected shape \[B, C, H, W\] = \[1, C, 4, 5\] .*got \[1, 3, 4, 6\]"):
        ck.DenseCRF(u, torch.zeros(1, 3, 4, 6))
    with pytest.raises(ValueError, match=r"image: expected shape .*got \[2, 3, 4, 5\]"):
        ck.DenseCRF(u, torch.zeros(2, 3, 4, 5))
    with pytest.raises(TypeError, match="unary: expected a floating-point tensor, got dtype torch.int64"):
        ck.DenseCRF(torch.zeros(1, 3, 4, 5, dtype=torch.long), img)
    with pytest.raises(TypeError, match="image: expected a floating-point or uint8 tensor, got dtype torch.int64"):
        ck.DenseCRF(u, torch.zeros(1, 3, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="unary: expected finite values, got 1 NaN and 0 inf"):
        ck.DenseCRF(u.clone().index_put_((torch.tensor([0]),) * 4, torch.tensor(float("nan"))), img)
    with pytest.raises(ValueError, match="image: expected finite values, got 0 NaN and 1 inf"):
        ck.DenseCRF(u, img.clone().index_put_((torch.tensor([0]),) * 4, torch.tensor(float("inf"))))
    with pytest.raises(ValueError, match=r"kernels\[1\].compat: expected shape \[K, K\] = \[3, 3\] \(K of unary\), got \[2, 2\]"):
        ck.DenseCRF(u, img, kernels=(ck.GaussianKernel(), ck.BilateralKernel(compat=torch.eye(2))))
    with pytest.raises(TypeError, match=r"kernels\[0\]: expected a crfkit.GaussianKernel or crfkit.BilateralKernel, got tuple"):
        ck.DenseCRF(u, img, kernels=((3, 3),))
    with pytest.raises(ValueError, match=r"normalization: expected one of \['symmetric', 'before', 'after', 'none'\], got 'l2'"):
        ck.DenseCRF(u, img, normalization="l2")


def test_kernel_errors():
    with pytest.raises(ValueError, match="sxy: expected a finite number > 0, got 0"):
        ck.GaussianKernel(sxy=0)
    with pytest.raises(ValueError, match="srgb: expected a finite number > 0, got -1"):
        ck.BilateralKernel(srgb=-1)
    with pytest.raises(ValueError, match="weight: expected a finite number, got nan"):
        ck.GaussianKernel(weight=float("nan"))
    with pytest.raises(ValueError, match=r"compat: expected a square \[K, K\] table, got shape \[2, 3\]"):
        ck.GaussianKernel(compat=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="compat: expected finite values"):
        ck.BilateralKernel(compat=torch.full((2, 2), float("inf")))


def test_inference_errors():
    crf = small_model()
    with pytest.raises(ValueError, match=r"filter: expected one of \['permutohedral', 'exact', 'conv'\], got 'fft'"):
        mean_field(crf, filter="fft")
    with pytest.raises(ValueError, match="window: expected a positive odd int, got 4"):
        mean_field(crf, filter="conv", window=4)
    with pytest.raises(ValueError, match="schedule: expected 'parallel' for a DenseCRF"):
        mean_field(crf, schedule="checkerboard")
    with pytest.raises(ValueError, match="iterations: expected a non-negative int, got -1"):
        mean_field(crf, iterations=-1)
    with pytest.raises(ValueError, match=r"init: expected shape \[B, K, H, W\]"):
        mean_field(crf, init=torch.full((1, 3, 5, 6), 1 / 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"q: expected a tensor \[B, K, H, W\] or a non-empty list"):
        mean_field_free_energy(crf, [])
    with pytest.raises(ValueError, match=r"q\[1\]: expected shape \[B, K, H, W\]"):
        mean_field_free_energy(crf, [torch.softmax(-crf.unary, 1), torch.softmax(-crf.unary[:1], 1)])
    with pytest.raises(ValueError, match=r"labels: expected values in 0..2 \(K = 3\), got range \[3, 3\]"):
        crf.energy(torch.full((2, 5, 6), 3))


def test_an_image_in_0_1_with_a_bilateral_kernel_warns_naming_srgb():
    unary = torch.zeros(1, 2, 4, 5)
    with pytest.warns(UserWarning, match=r"image: every value lies in \[0.0221, 0.987\], but srgb = 13 is in the units of the image.*image \* 255"):
        ck.DenseCRF(unary, torch.rand(1, 3, 4, 5, generator=torch.Generator().manual_seed(0)) * 0.99)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ck.DenseCRF(unary, 255 * torch.rand(1, 3, 4, 5))  # the usual units
        ck.DenseCRF(unary, torch.rand(1, 3, 4, 5), kernels=(ck.GaussianKernel(),))  # no colour kernel
        ck.DenseCRF(unary, torch.full((1, 3, 4, 5), 0.8),
                    kernels=(ck.BilateralKernel(srgb=13 / 255),))  # srgb scaled to the image
        ck.DenseCRF(unary, torch.ones(1, 3, 4, 5, dtype=torch.uint8))  # uint8 is 0..255 by nature
