"""Every checker of sheet 06 accepts a right answer and rejects the typical wrong ones, with a hint.

``CASES`` (right answer, wrong answers with the words their hint must contain) is run by
``tests/test_checks.py`` with every other sheet's; the tests here cover the rest.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import crfkit as ck
from crfkit import checks
from crfkit.checks import sheet06  # exercises 6.1, 6.2
from crfkit.checks._common import asymmetric_table

pytestmark = pytest.mark.usefixtures("one_thread")


# --- 6.1: one step of CRF-as-RNN, right and with typical slips


def crf_as_rnn_step(unary, q, filters, weights, compat, *, sign=-1.0, table=None, scale=None, first=0,
                    last=None, overwrite=False, filtered=True, source=None):
    """Written from the exercise text: filter, weight + compatibility transform, unary, softmax."""
    tables = 0.5 * (compat + compat.transpose(1, 2)) if table is None else table(compat)  # [M, K, K]
    ws = weights if scale is None else scale(weights)
    src = q if source is None else source
    m = torch.zeros_like(q)
    for f, w, mu in list(zip(filters, ws, tables))[first:last]:
        qm = f(src) if filtered else src  # [B, K, H, W]
        term = w * torch.einsum("kl,blhw->bkhw", mu, qm)
        m = term if overwrite else m + term
    return torch.softmax(-unary + sign * m, dim=1)


def step_by_labels(unary, q, filters, weights, compat):
    """A loop over kernels and labels; the table applied BEFORE filtering (the filter is linear)."""
    k = compat.shape[-1]
    m = torch.zeros_like(q)
    for f, w, mu in zip(filters, weights, compat):
        sym = (mu + mu.T) / 2
        mixed = torch.stack([sum(sym[a, b] * q[:, b] for b in range(k)) for a in range(k)], dim=1)
        m = m + w * f(mixed)
    a = -unary - m
    e = torch.exp(a - a.max(dim=1, keepdim=True).values)
    return e / e.sum(dim=1, keepdim=True)


def step_channels_last(unary, q, filters, weights, compat):
    sym = (compat + compat.transpose(-1, -2)) / 2
    m = sum(w * (f(q).permute(0, 2, 3, 1) @ mu).permute(0, 3, 1, 2) for f, w, mu in zip(filters, weights, sym))
    return torch.softmax(-unary - m, dim=1)


def step_exp_not_divided(unary, q, filters, weights, compat):
    return torch.exp(torch.log(crf_as_rnn_step(unary, q, filters, weights, compat)) - 0.7)


def step_wrong_dim(dim):
    def step(unary, q, filters, weights, compat):
        return torch.softmax(torch.log(crf_as_rnn_step(unary, q, filters, weights, compat)), dim=dim)

    return step


def step_detached(unary, q, filters, weights, compat):
    return crf_as_rnn_step(unary, q, filters, weights, compat).detach()


def step_no_grad(unary, q, filters, weights, compat):
    with torch.no_grad():
        return crf_as_rnn_step(unary, q, filters, weights, compat)


def step_weights_as_floats(unary, q, filters, weights, compat):
    return crf_as_rnn_step(unary, q, filters, weights.tolist(), compat)


def step_compat_detached(unary, q, filters, weights, compat):
    return crf_as_rnn_step(unary, q, filters, weights, compat.detach())


def step_half_detached(unary, q, filters, weights, compat):
    return crf_as_rnn_step(unary, q, filters, weights, compat,
                           table=lambda c: 0.5 * (c + c.transpose(1, 2).detach()))


def step_in_place_softmax(unary, q, filters, weights, compat):
    out = crf_as_rnn_step(unary, q, filters, weights, compat)
    return out.mul_(1.0)  # softmax's backward needs its output unchanged


def step_in_place_unary(unary, q, filters, weights, compat):
    unary.neg_()
    return crf_as_rnn_step(-unary, q, filters, weights, compat)


def step_by_mean_field(unary, q, filters, weights, compat):
    """Right, but lets crfkit's mean field (with no kernels) do the unary addition and softmax."""
    sym = 0.5 * (compat + compat.transpose(1, 2))
    m = sum(w * torch.einsum("kl,blhw->bkhw", mu, f(q)) for f, w, mu in zip(filters, weights, sym))
    crf = ck.DenseCRF(unary + m, torch.zeros_like(unary[:, :1]), kernels=())
    return ck.inference.mean_field(crf, iterations=1, init=q, filter="exact")


# --- 6.2: central finite differences


def compat_gradient_fd(loss_fn, compat, eps):
    grad = torch.zeros_like(compat)
    for i in range(compat.shape[0]):
        for j in range(compat.shape[1]):
            step = torch.zeros_like(compat)
            step[i, j] = eps
            grad[i, j] = (loss_fn(compat + step) - loss_fn(compat - step)) / (2 * eps)
    return grad


def fd_float32(loss_fn, compat, eps):
    """Stored in a float32 tensor, perturbed with float32 steps: still within the tolerance."""
    k = compat.shape[0]
    grad = torch.zeros(k, k, dtype=torch.float32)
    for i in range(k):
        for j in range(k):
            e = torch.zeros(k, k, dtype=torch.float32)
            e[i, j] = eps
            grad[i, j] = float(loss_fn(compat + e) - loss_fn(compat - e)) / (2 * eps)
    return grad


def fd_comprehension(loss_fn, compat, eps):
    k = compat.shape[0]
    eye = torch.eye(k * k, dtype=compat.dtype).view(k * k, k, k)
    diffs = [float(loss_fn(compat + eps * e)) - float(loss_fn(compat - eps * e)) for e in eye]
    return torch.tensor(diffs, dtype=compat.dtype).view(k, k) / (2 * eps)


def fd_slip(kind):
    def answer(loss_fn, compat, eps):
        k = compat.shape[0]
        grad = torch.zeros_like(compat)
        for i in range(k):
            for j in range(k):
                step = torch.zeros_like(compat)
                step[i, j] = eps
                fp, fm, f0 = loss_fn(compat + step), loss_fn(compat - step), loss_fn(compat)
                grad[i, j] = {
                    "forward": lambda: (fp - f0) / eps,
                    "backward": lambda: (f0 - fm) / eps,
                    "no half": lambda: (fp - fm) / eps,
                    "precedence": lambda: (fp - fm) / 2 * eps,
                    "sign": lambda: (fm - fp) / (2 * eps),
                }[kind]()
        return grad

    return answer


def fd_transposed(loss_fn, compat, eps):
    return compat_gradient_fd(loss_fn, compat, eps).T


def fd_all_at_once(loss_fn, compat, eps):
    d = (loss_fn(compat + eps) - loss_fn(compat - eps)) / (2 * eps)
    return torch.full_like(compat, float(d))


def fd_mutating(loss_fn, compat, eps):
    grad = torch.zeros_like(compat)
    c = compat  # not a copy
    for i in range(c.shape[0]):
        for j in range(c.shape[1]):
            c[i, j] += eps
            fp = loss_fn(c)
            c[i, j] -= 2 * eps
            fm = loss_fn(c)  # ... and compat[i, j] is never put back
            grad[i, j] = (fp - fm) / (2 * eps)
    return grad


def fd_by_autograd(loss_fn, compat, eps):  # loss_fn is a black box: no graph to differentiate
    c = compat.clone().requires_grad_()
    return torch.autograd.grad(loss_fn(c), c)[0]


def fd_per_entry(loss_fn, compat, eps):  # hands loss_fn one number instead of the table
    return torch.stack([torch.stack([(loss_fn(c + eps) - loss_fn(c - eps)) / (2 * eps) for c in row])
                        for row in compat])


# exercise -> (right answer, [(wrong answer, words the hint must contain), ...])
CASES = {
    "6.1": (
        crf_as_rnn_step,
        [
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c, sign=1.0), "messages have the wrong sign"),
            (lambda u, q, f, w, c: crf_as_rnn_step(-u, q, f, w, c), "unary has the wrong sign"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c, table=lambda t: t), "as it is"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c, table=lambda t: t.transpose(1, 2)),
             "transposed (mu^T)"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c, table=lambda t: t + t.transpose(1, 2)),
             "twice too large"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c, scale=torch.ones_like),
             "left out the kernel weights"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c, scale=torch.exp), "exp(weights)"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c, filtered=False), "skipped the message passing"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c, source=torch.softmax(-u, dim=1)), "CURRENT Q"),
            (lambda u, q, f, w, c: crf_as_rnn_step(torch.zeros_like(u), q, f, w, c), "left out the unary"),
            (lambda u, q, f, w, c: torch.softmax(-u, dim=1), "left out the messages"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c, last=1), "only the first kernel"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c, overwrite=True), "only the last kernel"),
            (step_exp_not_divided, "without dividing"),
            (step_wrong_dim(0), "over dimension 0"),
            (step_wrong_dim(2), "over dimension 2"),
            (lambda u, q, f, w, c: step_exp_not_divided(u, q, f, w, c) ** 2, "does not sum to 1"),
            (step_detached, "carries no gradient"),
            (step_no_grad, "carries no gradient"),
            (step_weights_as_floats, "no gradient with respect to `weights`"),
            (step_compat_detached, "no gradient with respect to `compat`"),
            (step_half_detached, "gradient with respect to `compat` differs"),
            (step_in_place_softmax, "backpropagating through your Q failed"),
            (step_in_place_unary, "changed its input `unary` in place"),
            (step_by_mean_field, "calls crfkit's mean field"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, 1.1 * w, c), "off by"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c)[:, :, :-1], "shape"),
            (lambda u, q, f, w, c: crf_as_rnn_step(u, q, f, w, c).tolist(), "torch.Tensor"),
        ],
    ),
    "6.2": (
        compat_gradient_fd,
        [
            (fd_slip("forward"), "one-sided (forward)"),
            (fd_slip("backward"), "one-sided (backward)"),
            (fd_slip("no half"), "twice too large"),
            (fd_slip("precedence"), "eps^2 times too small"),
            (fd_slip("sign"), "wrong sign"),
            (fd_transposed, "returned the transpose"),
            (fd_all_at_once, "every entry at once"),
            (fd_mutating, "changed its input `compat` in place"),
            (lambda f, c, eps: torch.zeros_like(c), "never called loss_fn"),
            (fd_by_autograd, "black box"),
            (fd_per_entry, "loss_fn takes the whole table"),
            (lambda f, c, eps: compat_gradient_fd(f, c, 0.5), "off by"),
            (lambda f, c, eps: compat_gradient_fd(f, c, eps)[0], "shape"),
            (lambda f, c, eps: compat_gradient_fd(f, c, eps).tolist(), "torch.Tensor"),
        ],
    ),
}


@pytest.mark.parametrize("answer", [step_by_labels, step_channels_last])
def test_6_1_accepts_other_right_answers(answer, capsys):
    checks.check("6.1", answer)
    assert "Exercise 6.1: all checks passed." in capsys.readouterr().out


@pytest.mark.parametrize("answer", [fd_float32, fd_comprehension])
def test_6_2_accepts_other_right_answers(answer, capsys):
    checks.check("6.2", answer)
    assert "Exercise 6.2: all checks passed." in capsys.readouterr().out


def test_6_1_refuses_crfkits_mean_field_and_restores_it():
    assert {ck.inference.mean_field, ck.inference.dense_mean_field, ck.nn.MeanFieldCRF.forward} == set(
        checks.refusals()["6.1"])
    before = ck.inference.mean_field, ck.inference.dense_mean_field, ck.nn.MeanFieldCRF.forward
    with pytest.raises(checks.CheckFailed, match="calls crfkit's mean field \\(crfkit.inference.mean_field\\)"):
        checks.check("6.1", step_by_mean_field)
    assert (ck.inference.mean_field, ck.inference.dense_mean_field, ck.nn.MeanFieldCRF.forward) == before


def test_6_2_uses_crfkits_layer_without_refusing_it(capsys):
    """6.2's loss runs ck.nn.MeanFieldCRF: nothing is refused there, so the right answer passes."""
    assert "6.2" not in checks.refusals()
    checks.check("6.2", compat_gradient_fd)
    assert "all checks passed" in capsys.readouterr().out


def test_unrolled_steps_equal_the_layer():
    """What the notebook claims: T steps from softmax(-U) are ck.nn.MeanFieldCRF with T iterations."""
    gen = torch.Generator().manual_seed(0)
    unary = torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64)
    image = 255 * torch.rand(2, 3, 5, 6, generator=gen, dtype=torch.float64)
    compat = torch.stack([asymmetric_table(3, gen), asymmetric_table(3, gen)])
    kernels = (ck.GaussianKernel(sxy=1.5, weight=2.0, compat=compat[0]),
               ck.BilateralKernel(sxy=3.0, srgb=40.0, weight=3.0, compat=compat[1]))
    layer = ck.nn.MeanFieldCRF(3, kernels, iterations=4, filter="exact", dtype=torch.float64)
    filters = sheet06.grid_filters(ck.DenseCRF(unary, image, kernels))
    q = torch.softmax(-unary, dim=1)
    for _ in range(4):
        q = crf_as_rnn_step(unary, q, filters, layer.weights, layer.compat)
    assert torch.allclose(q, layer(unary, image), atol=1e-12, rtol=0)


def test_slips_of_6_1_are_told_apart():
    """The slips the checker names differ from each other and from the right answer, in every case."""
    for b, k, h, w, widths in sheet06.CASES_61:
        gen = torch.Generator().manual_seed(b * 100 + k)
        unary = 2 * torch.rand(b, k, h, w, generator=gen, dtype=torch.float64)
        image = 255 * torch.rand(b, 3, h, w, generator=gen, dtype=torch.float64)
        q = torch.softmax(3 * torch.randn(b, k, h, w, generator=gen, dtype=torch.float64), dim=1)
        weights = 0.5 + 2 * torch.rand(len(widths), generator=gen, dtype=torch.float64)
        compat = torch.stack([asymmetric_table(k, gen) for _ in widths])
        filters = sheet06.grid_filters(ck.DenseCRF(unary, image, sheet06._kernels(weights, compat, widths)))
        args = unary, q, filters, weights, compat
        variants = [crf_as_rnn_step(*args)] + [
            crf_as_rnn_step(*args, **knobs) for knobs in (
                dict(sign=1.0), dict(table=lambda t: t), dict(table=lambda t: t.transpose(1, 2)),
                dict(table=lambda t: t + t.transpose(1, 2)), dict(scale=torch.ones_like), dict(scale=torch.exp),
                dict(filtered=False), dict(source=torch.softmax(-unary, dim=1)),
            ) + ((dict(last=1), dict(overwrite=True)) if len(widths) > 1 else ())
        ]
        for i, x in enumerate(variants):
            for y in variants[i + 1:]:
                assert not torch.allclose(x, y, atol=1e-4), (b, k, h, w, i)


def test_slips_of_6_2_are_told_apart_from_the_right_answer():
    """At the checker's eps the one-sided error is far outside its tolerance, the central one far inside."""
    gen = torch.Generator().manual_seed(5)
    f, gradient = sheet06._mean_field_nll(3, gen)
    compat = asymmetric_table(3, gen, scale=1.0)
    want = gradient(compat)
    central = compat_gradient_fd(f, compat, 1e-3)
    forward = fd_slip("forward")(f, compat, 1e-3)
    assert (central - want).abs().max() < 1e-7 < 1e-5 < (forward - want).abs().max()


def test_sheet06_can_be_imported_first():
    code = ("import crfkit.checks.sheet06, crfkit.checks as c; "
            "assert {'0.1', '5.1', '6.1', '6.2'} <= set(c.checkers())")
    subprocess.run([sys.executable, "-c", code], check=True)
