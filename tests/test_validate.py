"""crfkit._validate: one message and one exception type per mistake, tested on its text.

A wrong *kind* of value (a bool or a float where an int belongs, a string where a number
belongs) is a ``TypeError``; a value of the right kind that is out of range is a ``ValueError``.
Every message names the argument, what was expected and what came.
"""

import math

import numpy as np
import pytest
import torch

from crfkit import _validate as v


@pytest.mark.parametrize("value, exc, message", [
    (True, TypeError, "n: expected a positive int, got bool True"),
    (1.5, TypeError, "n: expected a positive int, got float 1.5"),
    ("3", TypeError, "n: expected a positive int, got str '3'"),
    (0, ValueError, "n: expected a positive int, got 0"),
    (-2, ValueError, "n: expected a positive int, got -2"),
])
def test_check_positive_int(value, exc, message):
    with pytest.raises(exc, match=f"^{message}$"):
        v.check_positive_int("n", value)


def test_check_int_accepts_numpy_integers_and_returns_python_ints():
    got = v.check_int("n", np.int64(4), minimum=0)
    assert got == 4 and type(got) is int
    assert v.check_positive_int("n", 7) == 7


@pytest.mark.parametrize("kwargs, value, message", [
    (dict(minimum=0), -1, "n: expected a non-negative int, got -1"),
    (dict(minimum=8, maximum=128), 4, "n: expected an int in 8..128, got 4"),
    (dict(minimum=8, maximum=128), 129, "n: expected an int in 8..128, got 129"),
    (dict(maximum=3), 4, "n: expected an int <= 3, got 4"),
    (dict(minimum=1, odd=True), 4, "n: expected a positive odd int, got 4"),
    (dict(minimum=3, odd=True), 4, "n: expected an odd int >= 3, got 4"),
])
def test_check_int_bounds(kwargs, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        v.check_int("n", value, **kwargs)


def test_check_int_without_bounds_names_the_kind():
    with pytest.raises(TypeError, match="^seed: expected an int, got str '0'$"):
        v.check_int("seed", "0")
    assert v.check_int("seed", -5) == -5


@pytest.mark.parametrize("value, exc, message", [
    (True, TypeError, r"damping: expected a finite number in \[0, 1\), got bool True"),
    ("0.5", TypeError, r"damping: expected a finite number in \[0, 1\), got str '0.5'"),
    (1.0, ValueError, r"damping: expected a finite number in \[0, 1\), got 1.0"),
    (-0.1, ValueError, r"damping: expected a finite number in \[0, 1\), got -0.1"),
    (math.nan, ValueError, r"damping: expected a finite number in \[0, 1\), got nan"),
])
def test_check_probability(value, exc, message):
    with pytest.raises(exc, match=f"^{message}$"):
        v.check_probability("damping", value)


def test_check_probability_closed_and_check_real_intervals():
    assert v.check_probability("alpha", 1, below_one=False) == 1.0
    assert v.check_probability("alpha", np.float32(0.25)) == 0.25
    with pytest.raises(ValueError, match=r"^sxy: expected a finite number > 0, got 0$"):
        v.check_real("sxy", 0, minimum=0.0, open_minimum=True)
    with pytest.raises(ValueError, match=r"^weight: expected a finite number, got inf$"):
        v.check_real("weight", math.inf)
    with pytest.raises(ValueError, match=r"^t: expected a finite number <= 2, got 3$"):
        v.check_real("t", 3, maximum=2)
    with pytest.raises(TypeError, match=r"^t: expected a finite number, got Tensor"):
        v.check_real("t", torch.tensor(1.0))


def test_check_choice():
    assert v.check_choice("mode", "sum", ("sum", "max")) == "sum"
    with pytest.raises(ValueError, match=r"^mode: expected one of \['sum', 'max'\], got 'mean'$"):
        v.check_choice("mode", "mean", ("sum", "max"))
    with pytest.raises(ValueError, match=r"^mode: expected one of \['sum', 'max'\], got \['sum'\]$"):
        v.check_choice("mode", ["sum"], ("sum", "max"))  # unhashable: refused, not a crash


def test_check_instance_names_the_function_and_the_types():
    import crfkit as ck

    with pytest.raises(TypeError, match="^crf: exact expects a crfkit.GridCRF, got dict$"):
        v.check_instance("crf", {}, ck.GridCRF, "exact")
    with pytest.raises(TypeError, match="^model: expected a crfkit.GridCRF or crfkit.DenseCRF, got int$"):
        v.check_instance("model", 3, (ck.GridCRF, ck.DenseCRF))


def test_check_label_range():
    labels = torch.tensor([[0, 1], [2, 255]])
    v.check_label_range("labels", labels, 3, ignore_index=255)
    with pytest.raises(ValueError, match=r"^labels: expected values in 0..2 \(K = 3\), got range \[0, 255\] "
                                         r"\(1 pixel\(s\) out of range\) \(the ignore label 255 has no energy"):
        v.check_label_range("labels", labels, 3)
    with pytest.raises(ValueError, match=r"^pred: expected values in 0..1 \(K = 2\) where target is not ignored, "
                                         r"got range \[0, 2\] \(1 pixel\(s\) out of range\)$"):
        v.check_label_range("pred", labels, 2, valid=labels != 255, where="where target is not ignored")
    v.check_label_range("labels", labels, 2, valid=labels < 2)  # out-of-range pixels outside the mask


def test_check_simplex():
    q = torch.full((1, 4, 2, 2), 0.25)
    assert v.check_simplex("q", q) is q
    with pytest.raises(ValueError, match=r"^q: expected probabilities that sum to 1 over dimension 1, off by 1$"):
        v.check_simplex("q", 2 * q)
    bad = q.clone()
    bad[0, 0, 0, 0], bad[0, 1, 0, 0] = -0.25, 0.75
    with pytest.raises(ValueError, match=r"^q: expected probabilities >= 0, got a minimum of -0.25$"):
        v.check_simplex("q", bad)
    bad[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match=r"^q: expected finite values, got 1 NaN and 0 inf$"):
        v.check_simplex("q", bad)


def test_no_copies_of_the_generic_checks_remain_in_crfkit():
    """The positive-int check used to be written seven times: nothing in crfkit may spell it out again."""
    import pathlib
    import re

    root = pathlib.Path(v.__file__).parent
    pattern = re.compile(r"isinstance\((\w+), bool\) or not isinstance\(\1, (int|numbers\.Integral|\(int, np\.integer\))\)")
    offenders = [
        f"{path.relative_to(root)}:{i}"
        for path in root.rglob("*.py")
        if path.name != "_validate.py" and "checks" not in path.relative_to(root).parts[0]  # checkers judge answers
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, f"hand-written int checks; use crfkit._validate: {offenders}"
