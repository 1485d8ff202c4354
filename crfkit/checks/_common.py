"""Check cells for the exercise sheets.

Every exercise in ``exercises/`` is followed by a check cell such as::

    ck.checks.check("0.1", probs_from_unary)

The checker calls the student's answer on inputs it makes itself, compares with
crfkit's own implementation, and either prints one line saying the exercise passed
or raises :class:`CheckFailed` whose message says *what* is wrong and gives a hint
about the usual cause (a sign, a dimension, numerical overflow). An unfinished
exercise keeps raising its own "not done yet" error.

Checkers register themselves with :func:`exercise`; ``tests/test_checks.py`` feeds
every registered checker a typical wrong answer and fails if one is accepted.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import torch

from crfkit.potentials import probs_from_unary as _probs_from_unary
from crfkit.potentials import unary_energy as _unary_energy

Checker = Callable[[Any], None]
_CHECKERS: dict[str, Checker] = {}


class CheckFailed(AssertionError):
    """An exercise answer is wrong; the message says what and gives a hint."""


def exercise(number: str) -> Callable[[Checker], Checker]:
    """Register the decorated function as the checker of exercise ``number``."""

    def register(fn: Checker) -> Checker:
        if number in _CHECKERS:
            raise ValueError(f"exercise {number} already has a checker")
        _CHECKERS[number] = fn
        fn.exercise = number  # type: ignore[attr-defined]
        return fn

    return register


def checkers() -> dict[str, Checker]:
    """All registered checkers, by exercise number (a copy)."""
    return dict(_CHECKERS)


def check(number: str, answer: Any) -> None:
    """Check the answer to exercise ``number`` (e.g. ``"0.1"``).

    Raises
    ------
    KeyError
        If no exercise has that number.
    CheckFailed
        If the answer is wrong; the message explains what and why.
    """
    if number not in _CHECKERS:
        known = ", ".join(sorted(_CHECKERS)) or "none"
        raise KeyError(f"number: no exercise {number!r}; known exercises: {known}")
    _CHECKERS[number](answer)
    print(f"Exercise {number}: all checks passed.")


# ---------------------------------------------------------------------------
# helpers shared by the checkers


def _call(number: str, fn: Any, *args: Any) -> Any:
    """Call the student's function; an unfinished exercise re-raises its own error."""
    if not callable(fn):
        raise CheckFailed(
            f"Exercise {number}: expected a function, got {type(fn).__name__}. "
            "Pass the function itself (no parentheses)."
        )
    described = ", ".join(_describe(a) for a in args)
    try:
        return fn(*args)
    except NotImplementedError:
        raise  # "Exercise N.M is not done yet": the student's own stub
    except Exception as err:  # noqa: BLE001 - any error is a failed check
        raise CheckFailed(
            f"Exercise {number}: your function raised {type(err).__name__}: {err}\n"
            f"It was called with ({described})."
        ) from err


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {list(value.shape)}, dtype {value.dtype}"
    return repr(value)


def _expect_tensor(number: str, got: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(
            f"Exercise {number}: expected {what} as a torch.Tensor, got {type(got).__name__}."
        )
    if tuple(got.shape) != tuple(shape):
        raise CheckFailed(
            f"Exercise {number}: expected {what} of shape {list(shape)}, "
            f"got shape {list(got.shape)}."
        )
    if not got.is_floating_point():
        raise CheckFailed(
            f"Exercise {number}: expected {what} to be floating point, got {got.dtype}."
        )
    if not bool(torch.isfinite(got).all()):
        raise CheckFailed(
            f"Exercise {number}: {what} contains NaN or inf. Exponentials of large "
            "energies overflow: subtract the per-pixel minimum first, or use torch.softmax."
        )
    return got


def _gen(seed: int) -> torch.Generator:
    """A private generator, so a checker never touches the notebook's random state."""
    return torch.Generator().manual_seed(seed)


def _asymmetric_table(k: int, gen: torch.Generator, scale: float = 2.0) -> torch.Tensor:
    """A random float64 ``[K, K]`` table that is clearly not symmetric (so a transpose shows)."""
    t = scale * torch.rand(k, k, generator=gen, dtype=torch.float64)
    return t + scale * torch.triu(torch.ones(k, k, dtype=torch.float64), diagonal=1)  # k < k' costs more


@contextlib.contextmanager
def _forbid(module: Any, name: str, used: list[bool]) -> Iterator[None]:
    """Replace ``module.name`` by a wrapper that records being called (crfkit's own answer)."""
    original = getattr(module, name)

    def spy(*args: Any, **kwargs: Any) -> Any:
        used.append(True)
        return original(*args, **kwargs)

    setattr(module, name, spy)
    try:
        yield
    finally:
        setattr(module, name, original)


def _unchanged(number: str, before: torch.Tensor, after: torch.Tensor, name: str) -> None:
    if not torch.equal(before, after):
        raise CheckFailed(
            f"Exercise {number}: your function changed its input `{name}` in place. "
            "Compute a new tensor instead (avoid `-=`, `.exp_()`, `.sub_()` and friends)."
        )


# ---------------------------------------------------------------------------
# lecture 00


@exercise("0.1")
def check_probs_from_unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Exercise 0.1: probabilities from unary energies, ``p = softmax(-unary)`` over K."""
    n = "0.1"
    gen = torch.Generator().manual_seed(1)
    unary = 3 * torch.rand(2, 3, 4, 5, generator=gen, dtype=torch.float64)  # [B, K, H, W]
    keep = unary.clone()
    got = _expect_tensor(n, _call(n, fn, unary), (2, 3, 4, 5), "probabilities")
    _unchanged(n, keep, unary, "unary")
    want = _probs_from_unary(unary)
    sums = got.sum(dim=1)  # [B, H, W]
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
        other = [d for d in (0, 2, 3) if torch.allclose(got.sum(dim=d), torch.ones(1, dtype=got.dtype), atol=1e-5)]
        hint = f" Yours sum to 1 over dimension {other[0]} instead." if other else ""
        raise CheckFailed(
            f"Exercise {n}: the probabilities of a pixel must sum to 1 over the labels, "
            f"dimension 1 (K) of [B, K, H, W].{hint} Normalise with dim=1."
        )
    if torch.allclose(got, torch.softmax(unary, dim=1), atol=1e-6):
        raise CheckFailed(
            f"Exercise {n}: the most likely label must be the one with the LOWEST energy, "
            "but yours gives the highest energy the highest probability. Energies are "
            "negative log-probabilities: p is proportional to exp(-unary), mind the minus sign."
        )
    if not torch.allclose(got, want, atol=1e-6, rtol=1e-5):
        worst = float((got - want).abs().max())
        raise CheckFailed(
            f"Exercise {n}: the probabilities are off by up to {worst:.3g}. Expected "
            "p[b, k, i, j] = exp(-unary[b, k, i, j]) / sum_k' exp(-unary[b, k', i, j])."
        )
    big = unary * 400 + 1000  # energies around 1000..2200: exp(-u) underflows to 0
    got_big = _expect_tensor(n, _call(n, fn, big), (2, 3, 4, 5), "probabilities for large energies")
    if not torch.allclose(got_big, _probs_from_unary(big), atol=1e-6):
        raise CheckFailed(
            f"Exercise {n}: correct for small energies but wrong for large ones "
            "(around 1000). exp(-1000) underflows to 0: subtract each pixel's minimum "
            "energy before exponentiating (the result does not change), or use torch.softmax."
        )


@exercise("0.2")
def check_unary_energy(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Exercise 0.2: the unary energy of a labelling, ``sum_p unary[y_p]`` per image."""
    n = "0.2"
    gen = torch.Generator().manual_seed(2)
    unary = torch.rand(3, 4, 5, 6, generator=gen, dtype=torch.float64)  # [B, K, H, W]
    labels = torch.randint(0, 4, (3, 5, 6), generator=gen)  # [B, H, W]
    keep_u, keep_l = unary.clone(), labels.clone()
    got = _call(n, fn, unary, labels)
    _unchanged(n, keep_u, unary, "unary")
    _unchanged(n, keep_l, labels, "labels")
    if isinstance(got, torch.Tensor) and tuple(got.shape) == (3, 5, 6):
        raise CheckFailed(
            f"Exercise {n}: you return one energy per pixel, shape [B, H, W]. The energy "
            "of a labelling is one number per image: sum over the pixels too, giving [B]."
        )
    if isinstance(got, torch.Tensor) and got.dim() == 0:
        raise CheckFailed(
            f"Exercise {n}: you return a single number for the whole batch. Sum over the "
            "pixels of each image separately, giving shape [B]."
        )
    got = _expect_tensor(n, got, (3,), "energies")
    want = _unary_energy(unary, labels)
    if torch.allclose(got, unary.sum(dim=(1, 2, 3))):
        raise CheckFailed(
            f"Exercise {n}: you summed the energies of all labels. Each pixel contributes "
            "only the energy of ITS label: pick unary[b, labels[b, i, j], i, j] "
            "(torch.gather along dimension 1), then sum."
        )
    if torch.allclose(got, want / (5 * 6)):
        raise CheckFailed(
            f"Exercise {n}: you averaged over the pixels; the energy is their sum."
        )
    if not torch.allclose(got, want, atol=1e-8):
        raise CheckFailed(
            f"Exercise {n}: energies {[round(v, 4) for v in got.tolist()]} differ from the "
            f"expected {[round(v, 4) for v in want.tolist()]}. Each pixel (i, j) of image b adds "
            "unary[b, labels[b, i, j], i, j]."
        )


# Checkers of later sheets live in their own modules and register on import.
from crfkit import checks_01  # noqa: E402,F401  (lecture 01)
from crfkit import checks_02  # noqa: E402,F401  (lecture 02)
from crfkit import checks_03  # noqa: E402,F401  (lecture 03)
from crfkit import checks_04  # noqa: E402,F401  (lecture 04)
from crfkit import checks_05  # noqa: E402,F401  (lecture 05)
