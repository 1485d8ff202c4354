"""crfkit.GridCRF and potts: energies against a pixel-by-pixel loop, views, gradients, errors.

The oracle ``brute_energy`` reads the pairwise table of every edge at its source pixel with
plain Python loops over the conventions' (:mod:`crfkit`) ``[B, E, K, K, H, W]`` layout (``torch.broadcast_to``),
independently of ``GridCRF.energy``. The inference tests import it (and ``random_model``).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import crfkit as ck

DT = torch.float64
#: right, down, left, up, both diagonals, and a long jump
OFFSET_POOL = ((0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (1, -1), (-1, 1), (0, 2))
KINDS = ("2d", "3d", "4d", "5d", "6d", "6d-broadcast")


pytestmark = pytest.mark.usefixtures("one_thread")


def full_tables(pairwise: torch.Tensor, shape, num_offsets: int) -> torch.Tensor:
    """The conventions' reading of a pairwise tensor as ``[B, E, K, K, H, W]``."""
    b, k, h, w = shape
    if pairwise.dim() == 2:
        pairwise = pairwise[None].expand(num_offsets, k, k)
    if pairwise.dim() == 3:
        pairwise = pairwise[:, :, :, None, None]
    return torch.broadcast_to(pairwise, (b, num_offsets, k, k, h, w))


def brute_energy(unary, pairwise, offsets, labels) -> torch.Tensor:
    """``E(y)`` by Python loops over images, pixels and edges: ``[B]``."""
    b, k, h, w = unary.shape
    tables = full_tables(pairwise, unary.shape, len(offsets))
    out = []
    for bi in range(b):
        total = unary.new_zeros(())
        for i in range(h):
            for j in range(w):
                total = total + unary[bi, labels[bi, i, j], i, j]
                for e, (dy, dx) in enumerate(offsets):
                    ii, jj = i + dy, j + dx
                    if 0 <= ii < h and 0 <= jj < w:
                        total = total + tables[bi, e, labels[bi, i, j], labels[bi, ii, jj], i, j]
        out.append(total)
    return torch.stack(out)


def make_pairwise(kind: str, b, e, k, h, w, gen, scale=1.0) -> torch.Tensor:
    shape = {
        "2d": (k, k),
        "3d": (e, k, k),
        "4d": (k, k, h, w),
        "5d": (e, k, k, h, w),
        "6d": (b, e, k, k, h, w),
        "6d-broadcast": (1, e, k, k, 1, w),
    }[kind]
    return scale * torch.randn(*shape, generator=gen, dtype=DT)


@st.composite
def random_model(draw, max_pixels=6, max_k=3, max_b=2, kinds=KINDS, scale=1.0, offset_pool=OFFSET_POOL):
    """A random GridCRF (float64) with at most ``max_pixels`` pixels."""
    b = draw(st.integers(1, max_b))
    k = draw(st.integers(2, max_k))
    h = draw(st.integers(1, 3))
    w = draw(st.integers(1, max(1, min(4, max_pixels // h))))
    offsets = draw(st.lists(st.sampled_from(offset_pool), min_size=1, max_size=3, unique=True))
    kind = draw(st.sampled_from(kinds))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    unary = 2 * torch.randn(b, k, h, w, generator=gen, dtype=DT)
    pairwise = make_pairwise(kind, b, len(offsets), k, h, w, gen, scale)
    return ck.GridCRF(unary, pairwise, offsets=offsets)


@settings(max_examples=60, deadline=None)
@given(crf=random_model(max_pixels=9), seed=st.integers(0, 10_000))
def test_energy_matches_pixel_loop(crf, seed):
    b, k, h, w = crf.shape
    labels = torch.randint(0, k, (b, h, w), generator=torch.Generator().manual_seed(seed))
    want = brute_energy(crf.unary, crf.pairwise, crf.offsets, labels)
    torch.testing.assert_close(crf.energy(labels), want)


def test_energy_by_hand_negative_and_diagonal_offsets():
    # 1 x 2 image, K = 2; offset (0, -1): source is the RIGHT pixel, target the left one
    unary = torch.tensor([[[[0.0, 1.0]], [[10.0, 20.0]]]], dtype=DT)  # [1, 2, 1, 2]
    table = torch.tensor([[0.0, 3.0], [5.0, 0.0]], dtype=DT)  # [k at source, k' at target]
    crf = ck.GridCRF(unary, table, offsets=((0, -1),))
    labels = torch.tensor([[[0, 1]]])  # left 0, right 1: source label 1, target label 0 -> table[1, 0]
    assert crf.energy(labels).item() == 0.0 + 20.0 + 5.0
    # 2 x 2, only the diagonal (1, 1): one edge (0,0) -> (1,1), read at (0,0)
    per_edge = torch.zeros(1, 1, 2, 2, 2, 2, dtype=DT)
    per_edge[0, 0, 0, 1, 0, 0] = 7.0  # the only existing edge
    per_edge[0, 0, 0, 1, 1, 1] = 100.0  # source (1,1): its partner is off the grid, unused
    crf = ck.GridCRF(torch.zeros(1, 2, 2, 2, dtype=DT), per_edge, offsets=((1, 1),))
    assert crf.energy(torch.tensor([[[0, 0], [0, 1]]])).item() == 7.0
    assert crf.energy(torch.tensor([[[0, 1], [1, 0]]])).item() == 0.0


def test_potts_table_and_classmethod():
    t = ck.potts(3, weight=2.5)
    assert torch.equal(t, torch.tensor([[0.0, 2.5, 2.5], [2.5, 0.0, 2.5], [2.5, 2.5, 0.0]]))
    w = torch.tensor(0.7, dtype=DT, requires_grad=True)
    tw = ck.potts(2, w)
    assert tw.dtype == DT and tw.requires_grad
    unary = torch.randn(2, 3, 2, 2, dtype=DT)
    crf = ck.GridCRF.potts(unary, 1.5, offsets=((0, 1),))
    assert isinstance(crf, ck.GridCRF) and crf.offsets == ((0, 1),)
    torch.testing.assert_close(crf.pairwise, ck.potts(3, 1.5, dtype=DT))
    labels = torch.tensor([[[0, 1], [2, 2]], [[1, 1], [1, 1]]])
    u = unary.gather(1, labels[:, None]).flatten(1).sum(1)
    torch.testing.assert_close(crf.energy(labels), u + torch.tensor([1.5, 0.0], dtype=DT))
    with pytest.raises(ValueError, match="num_labels"):
        ck.potts(0)
    with pytest.raises(ValueError, match="weight"):
        ck.potts(2, float("nan"))


@pytest.mark.parametrize("kind", KINDS)
def test_edge_tables_is_a_broadcast_view_with_the_contract_layout(kind):
    b, e, k, h, w = 2, 2, 3, 3, 4
    pairwise = make_pairwise(kind, b, e, k, h, w, torch.Generator().manual_seed(0))
    crf = ck.GridCRF(torch.zeros(b, k, h, w, dtype=DT), pairwise)
    tables = crf.edge_tables()
    assert tables.shape == (b, e, k, k, h, w)
    assert tables.untyped_storage().data_ptr() == pairwise.untyped_storage().data_ptr()  # no copy
    torch.testing.assert_close(tables, full_tables(pairwise, crf.shape, e))
    for ei in range(e):
        torch.testing.assert_close(torch.broadcast_to(crf.edge_table(ei), (b, k, k, h, w)), tables[:, ei])


def test_attributes_and_nothing_mutated():
    unary = torch.randn(1, 2, 3, 3, dtype=DT)
    pairwise = torch.randn(2, 2, 2, dtype=DT)
    u0, p0 = unary.clone(), pairwise.clone()
    crf = ck.GridCRF(unary, pairwise, offsets=[(0, 1), (1, 0)])
    assert crf.unary is unary and crf.pairwise is pairwise
    assert crf.offsets == ((0, 1), (1, 0)) and crf.num_labels == 2 and crf.shape == (1, 2, 3, 3)
    assert crf.num_edges() == 12
    crf.energy(torch.zeros(1, 3, 3, dtype=torch.long))
    ck.inference.exact(crf)
    ck.inference.mean_field(crf, 3)
    assert torch.equal(unary, u0) and torch.equal(pairwise, p0)
    assert "GridCRF" in repr(crf)


@pytest.mark.parametrize("kind", ["2d", "3d", "6d"])
def test_energy_gradients_count_labels_and_label_pairs(kind):
    b, k, h, w = 2, 3, 2, 3
    gen = torch.Generator().manual_seed(1)
    unary = torch.randn(b, k, h, w, dtype=DT, requires_grad=True)
    pairwise = make_pairwise(kind, b, 2, k, h, w, gen).requires_grad_(True)
    labels = torch.randint(0, k, (b, h, w), generator=gen)
    ck.GridCRF(unary, pairwise).energy(labels).sum().backward()
    # d E / d unary = one-hot of the labels
    torch.testing.assert_close(unary.grad, torch.nn.functional.one_hot(labels, k).permute(0, 3, 1, 2).to(DT))
    # d E / d pairwise: the oracle's gradient
    p2 = pairwise.detach().clone().requires_grad_(True)
    brute_energy(unary.detach(), p2, ((0, 1), (1, 0)), labels).sum().backward()
    torch.testing.assert_close(pairwise.grad, p2.grad)


def test_gradcheck_energy():
    gen = torch.Generator().manual_seed(2)
    unary = torch.randn(1, 2, 2, 2, dtype=DT, requires_grad=True)
    pairwise = torch.randn(1, 2, 2, 2, 2, 2, dtype=DT, generator=gen, requires_grad=True)
    labels = torch.tensor([[[0, 1], [1, 1]]])
    assert torch.autograd.gradcheck(lambda u, p: ck.GridCRF(u, p).energy(labels), (unary, pairwise))


U = torch.zeros(2, 3, 4, 5)
BAD = [
    (dict(unary=torch.zeros(3, 4, 5)), ValueError, r"unary: expected a batched 4-D.*\[3, 4, 5\]"),
    (dict(unary=torch.zeros(2, 3, 4)[None, None]), ValueError, r"unary: expected a 4-D tensor"),
    (dict(unary=torch.zeros(2, 3, 4, 5, dtype=torch.long)), TypeError, "unary: expected a floating-point"),
    (dict(unary=U.clone().index_fill_(0, torch.tensor([1]), float("nan"))), ValueError, "unary: expected finite values, got 60 NaN"),
    (dict(unary=[[1.0]]), TypeError, "unary: expected a torch.Tensor"),
    (dict(pairwise=torch.zeros(2, 2)), ValueError, r"pairwise: expected a 2-D table of shape \[K, K\] = \[3, 3\], got \[2, 2\]"),
    (dict(pairwise=torch.zeros(3, 3, 3)), ValueError, r"pairwise: expected E = len\(offsets\) = 2 tables.*got 3"),
    (dict(pairwise=torch.zeros(2, 2, 3)), ValueError, r"pairwise: expected a 3-D table.*K = 3"),
    (dict(pairwise=torch.zeros(3, 3, 4, 4)), ValueError, r"pairwise: expected a shape that broadcasts.*W is 4, expected 1 or 5"),
    (dict(pairwise=torch.zeros(3, 2, 3, 3, 4, 5)), ValueError, r"B is 3, expected 1 or 2"),
    (dict(pairwise=torch.zeros(1, 1, 1, 3, 3, 4, 5)), ValueError, r"pairwise: expected \[K, K\], \[E, K, K\] or a 4-D to 6-D"),
    (dict(pairwise=torch.zeros(3)), ValueError, "pairwise: expected"),
    (dict(pairwise=torch.zeros(3, 3, dtype=torch.long)), TypeError, "pairwise: expected a floating-point tensor, got dtype torch.int64"),
    (dict(pairwise=torch.zeros(3, 3, dtype=DT)), TypeError, r"pairwise: expected dtype torch.float32 \(that of unary\), got torch.float64"),
    (dict(pairwise=torch.full((3, 3), float("inf"))), ValueError, "pairwise: expected finite values, got 0 NaN and 9 inf"),
    (dict(pairwise="potts"), TypeError, "pairwise: expected a torch.Tensor"),
    (dict(offsets=((0, 0),)), ValueError, r"offsets: expected non-zero"),
    (dict(offsets=((0, 1), (0, 1))), ValueError, r"offsets: expected distinct offsets, got \(0, 1\) twice"),
    (dict(offsets=((0, 1.5),)), TypeError, "offsets: expected \\(dy, dx\\) pairs of integers"),
    (dict(offsets=((0, 1, 2),)), TypeError, "offsets: expected \\(dy, dx\\) pairs"),
    (dict(offsets=()), ValueError, "offsets: expected at least one"),
    (dict(offsets="right"), TypeError, "offsets: expected a sequence"),
]


@pytest.mark.parametrize("kwargs, exc, match", BAD)
def test_construction_errors_name_the_argument(kwargs, exc, match):
    args = dict(unary=U, pairwise=torch.zeros(3, 3))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ck.GridCRF(**args)


def test_energy_label_errors():
    crf = ck.GridCRF(U, ck.potts(3))
    with pytest.raises(ValueError, match=r"labels: expected values in 0..2 \(K = 3\), got range \[0, 255\].*ignore"):
        crf.energy(torch.zeros(2, 4, 5, dtype=torch.long).index_fill_(1, torch.tensor([2]), 255))
    with pytest.raises(ValueError, match=r"labels: expected values in 0..2.*\[-1, 0\]"):
        crf.energy(torch.zeros(2, 4, 5, dtype=torch.long).index_fill_(0, torch.tensor([0]), -1))
    with pytest.raises(ValueError, match=r"labels: expected shape \[B, H, W\] = \[2, 4, 5\], got \[2, 5, 4\]"):
        crf.energy(torch.zeros(2, 5, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="labels: expected dtype torch.int64, got torch.int32"):
        crf.energy(torch.zeros(2, 4, 5, dtype=torch.int32))
    with pytest.raises(ValueError, match="labels: expected a 3-D tensor"):
        crf.energy(torch.zeros(4, 5, dtype=torch.long))


@pytest.mark.parametrize("kind", ["2d", "3d", "6d"])
def test_energies_of_many_labellings_equal_the_energy_of_each(kind):
    gen = torch.Generator().manual_seed(7)
    b, k, h, w = 2, 3, 3, 4
    offsets = ((0, 1), (1, 0), (1, -1))
    shapes = {"2d": (k, k), "3d": (len(offsets), k, k), "6d": (b, len(offsets), k, k, h, w)}
    crf = ck.GridCRF(torch.randn(b, k, h, w, generator=gen, dtype=torch.float64),
                     torch.randn(*shapes[kind], generator=gen, dtype=torch.float64), offsets)
    ys = torch.randint(0, k, (5, h, w), generator=gen)  # [S, H, W]
    got = crf.energies(ys)  # [B, S]
    assert got.shape == (b, 5)
    for s in range(5):
        torch.testing.assert_close(got[:, s], crf.energy(ys[s].expand(b, h, w).contiguous()), rtol=0, atol=1e-12)


def test_energies_errors():
    crf = ck.GridCRF(torch.zeros(1, 3, 2, 2), ck.potts(3))
    with pytest.raises(ValueError, match=r"labellings: expected shape \[S, H, W\] = \[S, 2, 2\], got \[4, 2, 3\]"):
        crf.energies(torch.zeros(4, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labellings: expected values in 0..2 \(K = 3\), got range \[0, 3\]"):
        crf.energies(torch.tensor([[[0, 3], [0, 0]]]))
    with pytest.raises(TypeError, match="labellings: expected dtype torch.int64"):
        crf.energies(torch.zeros(1, 2, 2, dtype=torch.int32))


def test_source_tables_and_place_are_the_windows_of_each_edge_class():
    gen = torch.Generator().manual_seed(3)
    b, k, h, w = 1, 2, 3, 4
    offsets = ((0, 1), (1, -1))
    pairwise = torch.randn(b, len(offsets), k, k, h, w, generator=gen)
    crf = ck.GridCRF(torch.zeros(b, k, h, w), pairwise, offsets)
    for e, (dy, dx) in enumerate(offsets):
        (sr, sc), _ = crf.edge_slices(e)
        table = crf.source_tables(e)  # [1, K, K, h', w']
        for a in range(sr.stop - sr.start):
            for c in range(sc.stop - sc.start):
                torch.testing.assert_close(table[0, :, :, a, c], pairwise[0, e, :, :, sr.start + a, sc.start + c])
        window = torch.ones(b, 1, sr.stop - sr.start, sc.stop - sc.start)
        placed = crf.place(window, (sr, sc))  # [B, 1, H, W]
        assert placed.shape == (b, 1, h, w)
        assert placed.sum() == window.numel() and placed[0, 0, sr, sc].all()
    # a shared table keeps its broadcast axes
    assert ck.GridCRF(torch.zeros(b, k, h, w), ck.potts(k)).source_tables(0).shape == (1, k, k, 1, 1)


@pytest.mark.parametrize("offsets", [((0, 1), (1, 0)), ((0, 1), (1, 0), (1, 1), (1, -1)), ((0, 2), (3, 0))])
def test_colour_classes_partition_the_grid_without_an_edge_inside_a_class(offsets):
    crf = ck.GridCRF(torch.zeros(1, 2, 7, 8), ck.potts(2), offsets)
    masks = crf.colour_classes()
    total = torch.stack([m[0, 0] for m in masks]).sum(0)
    assert (total == 1).all()  # every pixel in exactly one class
    for m in masks:
        for e in range(len(offsets)):
            (sr, sc), (dr, dc) = crf.edge_slices(e)
            assert not (m[0, 0, sr, sc] & m[0, 0, dr, dc]).any()
    if offsets == ((0, 1), (1, 0)):
        assert len(masks) == 2
