"""What every sheet's checkers share: the registry, calling an answer, refusing crfkit's own
answer, and the helpers that two or more sheets use.

A sheet module (``sheet00`` ... ``sheet06``) imports only from here (and from crfkit's public
API and torch); no sheet imports another.

Refusals
--------
An exercise that rebuilds something crfkit already has declares the crfkit functions the
answer must not call, by object, obtained through their public names::

    @exercise("5.1", refuses=(inference.grid_messages, inference.mean_field),
              refused="your function calls crfkit's mean field ({called}), ...")

:func:`call` runs every answer inside :func:`refusing`, which replaces each such function,
wherever crfkit exposes it (every ``crfkit`` / ``crfkit.*`` module attribute and class
attribute that *is* the function), and wherever the answer's own module sees it (a notebook's
``from crfkit.inference import grid_messages``), by a spy that records the call and then runs
the original. Everything is restored on exit. If the answer called one of them, the check
fails with the exercise's ``refused`` hint, ``{called}`` replaced by the public name.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from torch import nn

from crfkit._validate import check_finite

Checker = Callable[[Any], None]

F64 = torch.float64


class CheckFailed(AssertionError):
    """An exercise answer is wrong; the message says what and gives a hint."""


@dataclass(frozen=True)
class Exercise:
    """A registered checker and what its answer must not call."""

    number: str
    checker: Checker
    refuses: tuple[Callable, ...] = ()
    refused: str = ""  # the hint when the answer calls one of ``refuses``; ``{called}`` = its name


_EXERCISES: dict[str, Exercise] = {}


def exercise(number: str, *, refuses: tuple[Callable, ...] = (), refused: str = ""
             ) -> Callable[[Checker], Checker]:
    """Register the decorated function as the checker of exercise ``number``.

    ``refuses``: crfkit functions (or methods, as ``crfkit.GridCRF.energy``) the answer must
    not call, each obtained through a public name; ``refused``: the hint given when it does,
    in which ``{called}`` names what was called.
    """
    refuses = tuple(refuses)
    if refuses and not refused:
        raise ValueError(f"exercise {number}: refuses=... needs a refused=... hint")
    for fn in refuses:
        if not callable(fn):
            raise TypeError(f"refuses: expected functions, got {type(fn).__name__}")

    def register(fn: Checker) -> Checker:
        if number in _EXERCISES:
            raise ValueError(f"exercise {number} already has a checker")
        _EXERCISES[number] = Exercise(number, fn, refuses, refused)
        fn.exercise = number  # type: ignore[attr-defined]
        return fn

    return register


def checkers() -> dict[str, Checker]:
    """All registered checkers, by exercise number (a copy)."""
    return {number: ex.checker for number, ex in _EXERCISES.items()}


def refusals() -> dict[str, tuple[Callable, ...]]:
    """The crfkit functions each exercise's answer must not call, by exercise number
    (only exercises that refuse something)."""
    return {number: ex.refuses for number, ex in _EXERCISES.items() if ex.refuses}


def check(number: str, answer: Any) -> None:
    """Check the answer to exercise ``number`` (e.g. ``"0.1"``).

    Raises
    ------
    KeyError
        If no exercise has that number.
    CheckFailed
        If the answer is wrong; the message explains what and why.
    """
    if number not in _EXERCISES:
        known = ", ".join(sorted(_EXERCISES)) or "none"
        raise KeyError(f"number: no exercise {number!r}; known exercises: {known}")
    with _aliases_cached():  # a checker calls the answer many times; crfkit's layout stays put
        _EXERCISES[number].checker(answer)
    print(f"Exercise {number}: all checks passed.")


# ---------------------------------------------------------------------------
# refusing crfkit's own answer


def _crfkit_modules() -> list[types.ModuleType]:
    return [m for name, m in list(sys.modules.items())
            if (name == "crfkit" or name.startswith("crfkit.")) and isinstance(m, types.ModuleType)]


def _is_method(fn: Callable) -> bool:
    qualname = getattr(fn, "__qualname__", "")
    return "." in qualname and "<locals>" not in qualname


def _unwrap(value: Any) -> Any:
    return value.__func__ if isinstance(value, (staticmethod, classmethod)) else value


_ALIAS_CACHE: dict[int, list[tuple[Any, str]]] | None = None  # id(fn) -> aliases, during a check


@contextlib.contextmanager
def _aliases_cached() -> Iterator[None]:
    """Within the block, :func:`aliases` looks each function up once."""
    global _ALIAS_CACHE
    outer = _ALIAS_CACHE
    if outer is None:
        _ALIAS_CACHE = {}
    try:
        yield
    finally:
        _ALIAS_CACHE = outer


def aliases(fn: Callable) -> list[tuple[Any, str]]:
    """Every place crfkit exposes ``fn``: ``(owner, name)`` with ``owner`` a ``crfkit`` /
    ``crfkit.*`` module, or a crfkit class found in one, whose attribute ``name`` is ``fn``
    (for a class: its own ``__dict__`` entry, a staticmethod/classmethod unwrapped;
    subclasses inherit the patched entry)."""
    if _ALIAS_CACHE is not None and id(fn) in _ALIAS_CACHE:
        return list(_ALIAS_CACHE[id(fn)])
    found: list[tuple[Any, str]] = []
    classes: dict[int, type] = {}
    method = _is_method(fn)
    for module in _crfkit_modules():
        for name, value in list(vars(module).items()):
            if value is fn:
                found.append((module, name))
            elif method and isinstance(value, type) and value.__module__.split(".")[0] == "crfkit":
                classes.setdefault(id(value), value)  # crfkit's classes: a crfkit method lives in one
    for cls in classes.values():
        for name, value in list(vars(cls).items()):
            if _unwrap(value) is fn:
                found.append((cls, name))
    if _ALIAS_CACHE is not None:
        _ALIAS_CACHE[id(fn)] = list(found)
    return found


def public_name(fn: Callable) -> str:
    """The shortest public dotted name under which crfkit exposes ``fn``
    (``crfkit.inference.grid_messages``, ``crfkit.GridCRF.energy``)."""
    names = []
    for owner, attr in aliases(fn):
        if isinstance(owner, types.ModuleType):
            names.append(f"{owner.__name__}.{attr}")
        else:  # a class: name it through a module that exposes the class
            names += [f"{module}.{attr}" for module in _module_names(owner)]
    public = [n for n in names if not any(p.startswith("_") for p in n.split("."))
              and not n.startswith("crfkit.checks")]
    if not public:
        return f"{fn.__module__}.{fn.__qualname__}"
    home = getattr(fn, "__module__", "")  # on a tie, the module that defines it
    return min(public, key=lambda n: (n.count("."), not n.startswith(home + "."), n))


def _module_names(cls: type) -> list[str]:
    return [f"{module.__name__}.{name}" for module in _crfkit_modules()
            for name, value in list(vars(module).items()) if value is cls]


@dataclass
class Refusal:
    """What :func:`refusing` yields: which refused functions were called, in call order
    (calls made from inside a refused function are not counted)."""

    called: list[Callable] = field(default_factory=list)
    spies: dict[int, Callable] = field(default_factory=dict)  # id(original) -> its spy
    depth: int = 0

    @property
    def calls(self) -> list[str]:
        """The public names of the refused functions called (see :func:`public_name`)."""
        return [public_name(fn) for fn in self.called]

    def swap(self, answer: Any) -> Any:
        """``answer`` itself, or its spy if the answer *is* a refused function."""
        if isinstance(answer, types.MethodType) and id(answer.__func__) in self.spies:
            return types.MethodType(self.spies[id(answer.__func__)], answer.__self__)
        return self.spies.get(id(answer), answer)


def _spy(fn: Callable, refusal: Refusal) -> Callable:
    @functools.wraps(fn)
    def spy(*args: Any, **kwargs: Any) -> Any:
        if refusal.depth == 0:
            refusal.called.append(fn)
        refusal.depth += 1
        try:
            return fn(*args, **kwargs)
        finally:
            refusal.depth -= 1

    return spy


def _rewrap(original: Any, spy: Callable) -> Any:
    return type(original)(spy) if isinstance(original, (staticmethod, classmethod)) else spy


@contextlib.contextmanager
def refusing(*functions: Callable, namespaces: tuple[dict, ...] = ()) -> Iterator[Refusal]:
    """Replace each of ``functions`` everywhere crfkit exposes it (:func:`aliases`), and in
    the dictionaries ``namespaces`` (an answer's globals), by a spy that records the call in
    the yielded :class:`Refusal` and runs the original; restore everything on exit, also when
    the body raises."""
    refusal = Refusal()
    patches: list[tuple[Any, str, Any, Any]] = []  # (owner, name, original, replacement)
    for fn in functions:
        spy = _spy(fn, refusal)
        refusal.spies[id(fn)] = spy
        for owner, name in aliases(fn):
            original = vars(owner)[name]
            patches.append((owner, name, original, _rewrap(original, spy)))
        for namespace in namespaces:
            for name, value in list(namespace.items()):
                if value is fn:
                    patches.append((namespace, name, value, spy))
    try:
        for owner, name, _, replacement in patches:
            _set(owner, name, replacement)
        yield refusal
    finally:
        for owner, name, original, _ in reversed(patches):
            _set(owner, name, original)


def _set(owner: Any, name: str, value: Any) -> None:
    if isinstance(owner, dict):
        owner[name] = value
    else:
        setattr(owner, name, value)


def _namespaces(answer: Any) -> tuple[dict, ...]:
    """The globals an answer looks names up in (its function's, or its class's module's)."""
    fn = answer.__func__ if isinstance(answer, types.MethodType) else answer
    if isinstance(fn, types.FunctionType):
        return (fn.__globals__,)
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    return (vars(module),) if module is not None else ()


# ---------------------------------------------------------------------------
# calling the student's answer


def call(number: str, fn: Any, *args: Any) -> Any:
    """Call the student's function; an unfinished exercise re-raises its own error.

    The call runs under :func:`refusing` of the functions exercise ``number`` refuses: an
    answer that called one fails with the exercise's hint, even if it then raised.
    """
    if not callable(fn):
        raise CheckFailed(
            f"Exercise {number}: expected a function, got {type(fn).__name__}. "
            "Pass the function itself (no parentheses)."
        )
    described = ", ".join(_describe(a) for a in args)
    ex = _EXERCISES.get(number)
    refused = ex.refuses if ex is not None else ()
    error: Exception | None = None
    with refusing(*refused, namespaces=_namespaces(fn) if refused else ()) as refusal:
        try:
            result = refusal.swap(fn)(*args)
        except NotImplementedError:
            raise  # "Exercise N.M is not done yet": the student's own stub
        except Exception as err:  # noqa: BLE001 - any error is a failed check
            error = err
    if refusal.called:
        called = ", ".join(dict.fromkeys(refusal.calls))
        raise CheckFailed(f"Exercise {number}: " + ex.refused.format(called=called)) from None
    if error is not None:
        raise CheckFailed(
            f"Exercise {number}: your function raised {type(error).__name__}: {error}\n"
            f"It was called with ({described})."
        ) from error
    return result


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {list(value.shape)}, dtype {value.dtype}"
    return repr(value)


# ---------------------------------------------------------------------------
# judging returned values


def expect_tensor(number: str, got: Any, shape: tuple[int, ...], what: str, *, extra: str = "",
                  finite: bool = True) -> torch.Tensor:
    """A floating-point tensor of ``shape`` (and, with ``finite``, no NaN or inf), else a hint.

    ``extra`` is appended to the message about a wrong shape.
    """
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(
            f"Exercise {number}: expected {what} as a torch.Tensor, got {type(got).__name__}."
        )
    if tuple(got.shape) != tuple(shape):
        raise CheckFailed(
            f"Exercise {number}: expected {what} of shape {list(shape)}, "
            f"got shape {list(got.shape)}.{extra}"
        )
    if not got.is_floating_point():
        raise CheckFailed(
            f"Exercise {number}: expected {what} to be floating point, got {got.dtype}."
        )
    if finite:
        try:
            check_finite(what, got)
        except ValueError:
            raise CheckFailed(
                f"Exercise {number}: {what} contains NaN or inf. Exponentials of large "
                "energies overflow: subtract the per-pixel minimum first, or use torch.softmax."
            ) from None
    return got


def expect_int(number: str, got: Any, what: str, *, float_hint: str = "",
               array_hint: str = "") -> int:
    """A plain ``int`` (not a bool, a float, a tensor or a NumPy number), else a hint:
    ``float_hint`` for a float, ``array_hint`` for a tensor or a NumPy scalar."""
    if isinstance(got, bool) or not isinstance(got, int):
        hint = ""
        if array_hint and (isinstance(got, torch.Tensor) or type(got).__module__ == "numpy"):
            hint = array_hint
        elif isinstance(got, float):
            hint = float_hint
        raise CheckFailed(
            f"Exercise {number}: expected {what} as an int, got {type(got).__name__} {got!r}."
            + (f" {hint}" if hint else "")
        )
    return got


def unchanged(number: str, before: torch.Tensor, after: torch.Tensor, name: str) -> None:
    """The answer must not have changed its input ``name`` in place."""
    if not torch.equal(before, after):
        raise CheckFailed(
            f"Exercise {number}: your function changed its input `{name}` in place. "
            "Compute a new tensor instead (avoid `-=`, `.exp_()`, `.sub_()` and friends)."
        )


def close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-8, rtol: float = 1e-8) -> bool:
    """Same shape and ``allclose`` in float64."""
    return tuple(a.shape) == tuple(b.shape) and bool(torch.allclose(a.to(F64), b.to(F64), atol=atol, rtol=rtol))


# ---------------------------------------------------------------------------
# random inputs


def generator(seed: int) -> torch.Generator:
    """A private generator, so a checker never touches the notebook's random state."""
    return torch.Generator().manual_seed(seed)


def asymmetric_table(k: int, gen: torch.Generator, scale: float = 2.0) -> torch.Tensor:
    """A random float64 ``[K, K]`` table that is clearly not symmetric (so a transpose shows)."""
    t = scale * torch.rand(k, k, generator=gen, dtype=F64)
    return t + scale * torch.triu(torch.ones(k, k, dtype=F64), diagonal=1)  # k < k' costs more


# ---------------------------------------------------------------------------
# blocks written as nn.Module classes (sheets 01 and 03)

#: outputs of a student's block and crfkit's, with the same parameters, agree to this (float64)
BLOCK_ATOL = 1e-5


def build(number: str, cls: Any, *args: Any) -> nn.Module:
    """Instantiate the student's block class (in float64); an unfinished one re-raises its own error."""
    if isinstance(cls, nn.Module):
        raise CheckFailed(
            f"Exercise {number}: expected the class itself, got an instance of "
            f"{type(cls).__name__}. Pass the class, `{type(cls).__name__}`, without calling it."
        )
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise CheckFailed(
            f"Exercise {number}: expected a subclass of nn.Module, got {type(cls).__name__}. "
            "Write `class ...(nn.Module):` and pass the class itself."
        )
    block = call(number, cls, *args)
    if not isinstance(block, nn.Module):  # pragma: no cover - a class that overrides __new__
        raise CheckFailed(f"Exercise {number}: constructing your class did not give an nn.Module.")
    return block.double()


def forward(number: str, block: nn.Module, x: torch.Tensor, shape: tuple[int, ...],
            what: str) -> torch.Tensor:
    """``block(x)`` without gradients, checked to leave ``x`` alone and to have ``shape``."""
    keep = x.clone()
    with torch.no_grad():
        got = call(number, block, x)
    unchanged(number, keep, x, "x")
    return expect_tensor(number, got, shape, what)


def num_params(block: nn.Module) -> int:
    return sum(p.numel() for p in block.parameters())


def randomise(block: nn.Module) -> nn.Module:
    """Give crfkit's block non-trivial batch-norm statistics and affine parameters."""
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
                m.running_mean.normal_(0.0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return block


def _squeezed_shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(d for d in t.shape if d != 1)  # a Linear weight [o, i] ~ a 1x1 conv [o, i, 1, 1]


def copy_state(number: str, ref: nn.Module, mine: nn.Module, order: str) -> None:
    """Copy ``ref``'s parameters, then its buffers, into ``mine`` in registration order."""
    for kind, ref_named, my_named in (
        ("parameter", list(ref.named_parameters()), list(mine.named_parameters())),
        ("buffer", list(ref.named_buffers()), list(mine.named_buffers())),
    ):
        if len(ref_named) != len(my_named):
            raise CheckFailed(
                f"Exercise {number}: crfkit's block has {len(ref_named)} {kind}s, yours has "
                f"{len(my_named)} ({', '.join(name for name, _ in my_named) or 'none'}). "
                f"Use exactly the layers asked for, created in the order {order}."
            )
        for i, ((ref_name, src), (my_name, dst)) in enumerate(zip(ref_named, my_named)):
            if _squeezed_shape(src) != _squeezed_shape(dst):
                raise CheckFailed(
                    f"Exercise {number}: to compare outputs, crfkit's {kind}s are copied into "
                    f"yours in the order they were created. {kind.capitalize()} {i} is "
                    f"`{ref_name}` of shape {list(src.shape)} in crfkit's block but `{my_name}` "
                    f"of shape {list(dst.shape)} in yours. Create the layers in __init__ in "
                    f"the order {order}, each with the sizes asked for."
                )
            with torch.no_grad():
                dst.copy_(src.reshape(dst.shape))


def check_outputs(number: str, got: torch.Tensor, want: torch.Tensor, config: str, hint: str) -> None:
    """Outputs of the student's block and crfkit's (same parameters, eval mode) must agree."""
    if not torch.allclose(got, want, atol=BLOCK_ATOL):
        worst = float((got - want).abs().max())
        raise CheckFailed(
            f"Exercise {number}: with crfkit's parameters copied into yours, the outputs of "
            f"{config} differ by up to {worst:.3g} (eval mode). {hint}"
        )
