"""Every checker of sheet 03 accepts a right answer and rejects the typical wrong ones, with a hint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import crfkit as ck
from crfkit import checks
from crfkit.checks import sheet03  # noqa: F401 - exercises 3.1-3.2
from crfkit.models import ASPP


# --- 3.1: receptive field, right and with typical slips


def receptive_field(layers):
    r, j = 1, 1
    for k, s, d in layers:
        r += d * (k - 1) * j
        j *= s
    return r


def rf_from_zero(layers):
    return receptive_field(layers) - 1


def rf_no_dilation(layers):
    return receptive_field([(k, s, 1) for k, s, d in layers])


def rf_no_jump(layers):
    return receptive_field([(k, 1, d) for k, s, d in layers])


def rf_stride_first(layers):
    r, j = 1, 1
    for k, s, d in layers:
        j *= s
        r += d * (k - 1) * j
    return r


def rf_extents(layers):
    r, j = 0, 1
    for k, s, d in layers:
        r += (d * (k - 1) + 1) * j
        j *= s
    return r


def rf_in_place(layers):
    r = receptive_field(layers)
    layers.clear()
    return r


def measured_receptive_field(layers):
    """Backpropagate from output pixel 0 of a real stack of ``nn.Conv2d`` (weights 1, no
    padding) and measure how many input rows the gradient reaches."""
    size = sheet03.expected_receptive_field(layers) + 7  # room to spare
    convs = []
    for k, s, d in layers:
        conv = nn.Conv2d(1, 1, (k, 1), stride=(s, 1), dilation=(d, 1), bias=False).double()
        nn.init.ones_(conv.weight)
        convs.append(conv)
    x = torch.zeros(1, 1, size, 1, dtype=torch.float64, requires_grad=True)  # [B, C, H, W=1]
    out = nn.Sequential(*convs)(x + 1)
    out[0, 0, 0, 0].backward()
    rows = (x.grad[0, 0, :, 0] != 0).nonzero()[:, 0]
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("stack", sheet03._RF_STACKS, ids=str)
def test_oracle_matches_the_gradient_of_a_real_stack(stack):
    assert sheet03.expected_receptive_field(stack) == measured_receptive_field(stack)


def test_checker_stacks_tell_every_slip_apart():
    want = [sheet03.expected_receptive_field(s) for s in sheet03._RF_STACKS]
    for mistake, _ in sheet03._RF_MISTAKES:
        assert [mistake(s) for s in sheet03._RF_STACKS] != want


# --- 3.2: ASPP, right and with typical slips


def _cbr(c_in, c_out, k, d=1, bias=False, bn=True):
    layers = [nn.Conv2d(c_in, c_out, k, padding=d * (k - 1) // 2, dilation=d, bias=bias)]
    layers += [nn.BatchNorm2d(c_out)] if bn else []
    return nn.Sequential(*layers, nn.ReLU())


class SimpleASPP(nn.Module):
    """ASPP written from the exercise text, with knobs for the usual slips."""

    def __init__(self, in_channels, out_channels, rates, *, one_by_one=True, pool=True,
                 bias=False, bn=True, pool_bn=True, project=True, kernel=3, pad_one=False,
                 pool_first=False, project_short=False):
        super().__init__()
        cbr = lambda c_in, k, d=1, b=bn: _cbr(c_in, out_channels, k, d, bias, b)  # noqa: E731
        self.branches = nn.ModuleList([cbr(in_channels, 1)] if one_by_one else [])
        for r in rates:
            branch = cbr(in_channels, kernel, r)
            if pad_one:
                branch[0].padding = (1, 1)
            self.branches.append(branch)
        self.pool_first, self.has_pool = pool_first, pool
        if pool:
            self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), cbr(in_channels, 1, b=bn and pool_bn))
        n = len(self.branches) + pool - project_short
        self.project = cbr(n * out_channels, 1) if project else nn.Identity()

    def forward(self, x):
        outs = [b(x) for b in self.branches]
        if self.has_pool:
            pooled = self.image_pool(x).expand(-1, -1, *x.shape[-2:])
            outs = [pooled] + outs if self.pool_first else outs + [pooled]
        return self.project(torch.cat(outs, dim=1))


def aspp(**knobs):
    return type("MyASPP", (SimpleASPP,), {
        "__init__": lambda self, i, o, r: SimpleASPP.__init__(self, i, o, r, **knobs)})


class NoPoolReLU(SimpleASPP):
    def __init__(self, in_channels, out_channels, rates):
        super().__init__(in_channels, out_channels, rates)
        self.image_pool[1][2] = nn.Identity()


class MeanPoolNoOneByOne(nn.Module):  # image pooling with x.mean in forward, no 1x1 branch
    def __init__(self, in_channels, out_channels, rates):
        super().__init__()
        self.inner = SimpleASPP(in_channels, out_channels, rates, one_by_one=False)
        self.inner.image_pool = self.inner.image_pool[1]

    def forward(self, x):
        pooled = self.inner.image_pool(x.mean(dim=(2, 3), keepdim=True))
        outs = [b(x) for b in self.inner.branches] + [pooled.expand(-1, -1, *x.shape[-2:])]
        return self.inner.project(torch.cat(outs, dim=1))


class InPlaceReLU(SimpleASPP):
    def forward(self, x):
        return super().forward(torch.relu_(x))


def test_simple_aspp_is_crfkits():
    assert sum(p.numel() for p in SimpleASPP(7, 5, (1, 2)).parameters()) == sum(
        p.numel() for p in ASPP(7, 5, (1, 2)).parameters())


# exercise -> (right answer, [(wrong answer, words the hint must contain), ...])
CASES = {
    "3.1": (
        receptive_field,
        [
            (rf_from_zero, "r starts at 1"),
            (rf_no_dilation, "ignored the dilation"),
            (rf_no_jump, "ignored the strides"),
            (rf_stride_first, "before its kernel"),
            (rf_extents, "whole extent"),
            (lambda layers: float(receptive_field(layers)), "as an int"),
            (lambda layers: np.int64(receptive_field(layers)), "int(...)"),
            (lambda layers: receptive_field(layers) + len(layers) // 4, "expected"),
            (rf_in_place, "changed its input list"),
            ("not a function", "expected a function"),
        ],
    ),
    "3.2": (
        SimpleASPP,
        [
            (ASPP(4, 2), "the class itself"),
            (receptive_field, "subclass of nn.Module"),
            (aspp(pool=False), "probably the image-pooling branch"),
            (aspp(one_by_one=False), "probably the 1x1 branch"),
            (MeanPoolNoOneByOne, "the 1x1 branch or the image-pooling branch"),
            (aspp(bias=True), "bias=False"),
            (aspp(bn=False), "Batch norm is missing"),
            (aspp(bias=True, bn=False), "replaced the batch norms"),
            (aspp(pool_bn=False), "One batch norm is missing"),
            (aspp(project=False), "projection is missing"),
            (aspp(kernel=1), "1x1 kernels"),
            (aspp(project_short=True), "one branch too few"),
            (aspp(pad_one=True), "padding=r"),
            (aspp(pool_first=True), "in that order"),
            (NoPoolReLU, "differ by up to"),
            (InPlaceReLU, "in place"),
        ],
    ),
}


# right and wrong answers are run by tests/test_checks.py, which merges CASES


def test_crfkits_aspp_passes(capsys):
    checks.check("3.2", ASPP)
    assert "all checks passed" in capsys.readouterr().out


def test_forward_stub_keeps_its_not_done_error():
    class HalfDone(SimpleASPP):  # __init__ written, forward still a stub
        def forward(self, x):
            raise NotImplementedError(ck.course.not_done_message("3.2"))

    with pytest.raises(NotImplementedError, match="Exercise 3.2 is not done yet"):
        checks.check("3.2", HalfDone)


def test_parameter_formula_of_the_docstring():
    for c_in, c_out, rates in ((5, 4, (2, 3)), (2048, 256, (6, 12, 18))):
        r = len(rates)
        formula = c_in * c_out * (2 + 9 * r) + c_out**2 * (r + 2) + 2 * c_out * (r + 3)
        assert sum(p.numel() for p in ASPP(c_in, c_out, rates).parameters()) == formula


@pytest.mark.parametrize("module", ["crfkit.checks._common", "crfkit.checks.sheet03", "crfkit.checks.sheet05"])
def test_each_sheet_module_can_be_imported_first(module):
    """Importing any one checker module first loads them all; no circular-import error."""
    import subprocess
    import sys

    code = (f"import {module}, crfkit.checks as c; "
            "assert {'0.1', '1.3', '2.2', '3.2', '4.2', '5.1'} <= set(c.checkers())")
    subprocess.run([sys.executable, "-c", code], check=True)
