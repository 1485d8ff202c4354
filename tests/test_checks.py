"""Every checker accepts crfkit's answer and rejects the typical wrong ones, with a useful hint."""

from __future__ import annotations

import pytest
import torch

import crfkit as ck
from crfkit import checks
from crfkit.checks import CheckFailed


def _naive_softmax(unary):  # overflows/underflows for large energies
    e = torch.exp(-unary)
    return e / e.sum(dim=1, keepdim=True)


def _in_place_softmax(unary):
    unary.neg_()
    return torch.softmax(unary, dim=1)


# exercise -> (right answer, [(wrong answer, words the hint must contain), ...])
CASES = {
    "0.1": (
        ck.probs_from_unary,
        [
            (lambda u: torch.softmax(u, dim=1), "minus sign"),
            (lambda u: torch.softmax(-u, dim=0), "dimension 0"),
            (lambda u: torch.exp(-u), "sum to 1"),
            (_naive_softmax, "large"),
            (_in_place_softmax, "in place"),
            (lambda u: torch.softmax(-u, dim=1)[:, :, :2], "shape"),
            (lambda u: torch.softmax(-2 * u, dim=1), "off by"),
            ("not a function", "expected a function"),
        ],
    ),
    "0.2": (
        ck.unary_energy,
        [
            (lambda u, y: u.sum(dim=(1, 2, 3)), "all labels"),
            (lambda u, y: u.gather(1, y[:, None])[:, 0], "one energy per pixel"),
            (lambda u, y: u.gather(1, y[:, None]).sum(), "single number"),
            (lambda u, y: u.gather(1, y[:, None]).mean(dim=(1, 2, 3)), "averaged"),
            (lambda u, y: u.gather(1, (y[:, None] + 1) % u.shape[1]).sum(dim=(1, 2, 3)), "differ"),
            (lambda u, y: u.gather(2, y[:, None]).sum(dim=(1, 2, 3)), "differ"),
            (lambda u, y: u[y], "raised IndexError"),
        ],
    ),
}


from test_checks_01 import CASES as CASES_01  # noqa: E402  (tests/ is on sys.path under pytest)
from test_checks_02 import CASES as CASES_02  # noqa: E402
from test_checks_03 import CASES as CASES_03  # noqa: E402
from test_checks_04 import CASES as CASES_04  # noqa: E402
from test_checks_05 import CASES as CASES_05  # noqa: E402
from test_checks_06 import CASES as CASES_06  # noqa: E402

#: every sheet's cases; the right/wrong-answer tests below run over all of them
ALL_CASES = {**CASES, **CASES_01, **CASES_02, **CASES_03, **CASES_04, **CASES_05, **CASES_06}


def test_every_checker_has_cases():
    assert set(checks.checkers()) == set(ALL_CASES), "add right and wrong answers for every new checker"


@pytest.mark.parametrize("number", sorted(ALL_CASES))
def test_right_answer_passes(number, capsys):
    checks.check(number, ALL_CASES[number][0])
    assert f"Exercise {number}: all checks passed." in capsys.readouterr().out


@pytest.mark.parametrize("number", sorted(ALL_CASES))
def test_checks_leave_the_global_random_state_alone(number, capsys):
    torch.manual_seed(0)
    before = torch.get_rng_state()
    checks.check(number, ALL_CASES[number][0])
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize(
    "number, wrong, hint",
    [(n, w, h) for n, (_, wrongs) in sorted(ALL_CASES.items()) for w, h in wrongs],
)
def test_wrong_answer_is_rejected_with_hint(number, wrong, hint):
    with pytest.raises(CheckFailed) as info:
        checks.check(number, wrong)
    message = str(info.value)
    assert message.startswith(f"Exercise {number}:")
    assert hint in message, message


@pytest.mark.parametrize("number", sorted(ALL_CASES))
def test_unfinished_exercise_keeps_its_not_done_error(number):
    message = ck.course.not_done_message(number)

    def stub(*args):  # a generated function stub
        raise NotImplementedError(message)

    class Stub(torch.nn.Module):  # a generated class stub raises in __init__
        def __init__(self, *args):
            super().__init__()
            raise NotImplementedError(message)

    answer = Stub if isinstance(ALL_CASES[number][0], type) else stub  # the kind the right answer is
    with pytest.raises(NotImplementedError, match=f"Exercise {number} is not done yet"):
        checks.check(number, answer)


def test_unknown_exercise_lists_known_ones():
    with pytest.raises(KeyError, match="no exercise '9.9'; known exercises: 0.1, 0.2, 1.1"):
        checks.check("9.9", ck.probs_from_unary)


def test_checker_numbers_are_unique():
    with pytest.raises(ValueError, match="already has a checker"):
        checks.exercise("0.1")(lambda answer: None)
