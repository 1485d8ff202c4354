"""An exercise that rebuilds a crfkit function refuses every way of calling crfkit's own.

For each exercise that declares ``refuses=(...)``, and each function it refuses, an answer that
delegates to *any* public alias of that function (every attribute of a ``crfkit`` / ``crfkit.*``
module, or of a class found in one, that is the very object, found here by walking the modules
independently of the checkers' own walk) is rejected with :class:`CheckFailed`; and so are an
answer that imported the function into its own module and the function passed as the answer.
Everything is restored afterwards. ``test_the_delegates_pass_without_refusing`` shows that the
refusal, not some other check, is what rejects them.

The last tests read ``crfkit/checks/`` with ``ast``: no sheet imports another, and no checker
module uses a private name of a module outside ``crfkit.checks``.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import pathlib
import pkgutil
import sys
import types

import pytest
import torch

import crfkit as ck
from crfkit import checks
from crfkit.checks import CheckFailed, _common
from crfkit.inference import grid_messages as imported_grid_messages  # as a notebook would

REFUSALS = checks.refusals()
CASES = [(number, fn) for number, functions in sorted(REFUSALS.items()) for fn in functions]


def _ids(case):
    number, fn = case
    return f"{number}-{fn.__qualname__}"


@pytest.fixture(scope="module", autouse=True)
def every_crfkit_module():
    """Import every crfkit module, so that every alias exists when the aliases are counted."""
    for info in pkgutil.walk_packages(ck.__path__, "crfkit."):
        importlib.import_module(info.name)


def public_aliases(fn):
    """``(owner, name, dotted name)`` for every module or class attribute in crfkit that is ``fn``."""
    found, classes = [], {}
    for module_name, module in sorted(sys.modules.items()):
        if not (module_name == "crfkit" or module_name.startswith("crfkit.")) or not isinstance(module, types.ModuleType):
            continue
        for name, value in list(vars(module).items()):
            if value is fn:
                found.append((module, name, f"{module_name}.{name}"))
            elif isinstance(value, type):
                classes.setdefault(id(value), (value, f"{module_name}.{name}"))
    for cls, dotted in classes.values():
        for name, value in list(vars(cls).items()):
            if (value.__func__ if isinstance(value, (staticmethod, classmethod)) else value) is fn:
                found.append((cls, name, f"{dotted}.{name}"))
    return found


def delegate(owner, name):
    """An answer (of any signature) that hands its arguments to ``owner.name``, looked up when called."""

    def answer(*args):
        return getattr(owner, name)(*args)

    return answer


def _refused(number, answer, fn):
    with pytest.raises(CheckFailed) as info:
        checks.check(number, answer)
    message = str(info.value)
    assert message.startswith(f"Exercise {number}: "), message
    assert "calls" in message and fn.__name__ in message, message


def test_refusals_are_declared():
    assert {"2.2", "4.2", "4.3", "5.1", "6.1"} <= set(REFUSALS)
    assert ck.inference.grid_messages in REFUSALS["5.1"]
    assert {ck.inference.exact, ck.inference.labellings} <= set(REFUSALS["4.2"])
    assert {ck.inference.forward_backward, ck.inference.viterbi, ck.inference.exact} <= set(REFUSALS["4.3"])


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_refused_functions_have_a_public_name(case):
    """Refusals name public functions: the name resolves from ``crfkit`` to the very object."""
    number, fn = case
    name = _common.public_name(fn)
    assert name.startswith("crfkit.") and not any(part.startswith("_") for part in name.split("."))
    obj = ck
    for part in name.split(".")[1:]:
        obj = getattr(obj, part)
    assert obj is fn


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_every_alias_of_a_refused_function_is_refused(case):
    number, fn = case
    aliases = public_aliases(fn)
    assert aliases, f"{fn.__qualname__} is not exposed anywhere in crfkit"
    before = [(owner, name, vars(owner)[name]) for owner, name, _ in aliases]
    accepted = []
    for owner, name, dotted in aliases:
        try:
            _refused(number, delegate(owner, name), fn)
        except BaseException as err:  # noqa: BLE001 - collect every alias that got through
            accepted.append(f"{dotted}: {type(err).__name__}: {str(err)[:200]}")
    assert not accepted, "answers delegating to these aliases were not refused:\n" + "\n".join(accepted)
    assert all(vars(owner)[name] is original for owner, name, original in before), "an alias was not restored"


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_the_refused_function_itself_is_refused_as_the_answer(case):
    number, fn = case
    _refused(number, fn, fn)


def test_a_name_imported_into_the_answers_module_is_refused():
    def step(unary, pairwise, q):  # `from crfkit.inference import grid_messages` in a notebook
        return torch.softmax(-unary - imported_grid_messages(ck.GridCRF(unary, pairwise), q), dim=1)

    _refused("5.1", step, ck.inference.grid_messages)
    assert imported_grid_messages is ck.inference.grid_messages  # restored


def test_a_method_is_refused_through_the_class_and_an_instance():
    energy = ck.GridCRF.energy
    with _common.refusing(energy) as refusal:
        crf = ck.GridCRF(torch.zeros(1, 2, 2, 2), ck.potts(2))
        crf.energy(torch.zeros(1, 2, 2, dtype=torch.long))
        ck.crf.GridCRF.energy(crf, torch.zeros(1, 2, 2, dtype=torch.long))
    assert refusal.calls == ["crfkit.GridCRF.energy"] * 2
    assert ck.GridCRF.energy is energy


def test_calls_made_inside_a_refused_function_are_not_counted():
    crf = ck.GridCRF(torch.rand(1, 2, 3, 3), ck.potts(2))
    q = torch.full((1, 2, 3, 3), 0.5)
    with _common.refusing(ck.inference.grid_messages, ck.inference.mean_field) as refusal:
        ck.inference.mean_field(crf, iterations=2, init=q)  # calls grid_messages twice inside
    assert refusal.calls == ["crfkit.inference.mean_field"]


def test_refusing_restores_when_the_body_raises():
    fn = ck.inference.grid_messages
    with pytest.raises(RuntimeError), _common.refusing(fn):
        assert ck.inference.grid_messages is not fn
        raise RuntimeError
    assert ck.inference.grid_messages is fn and sys.modules["crfkit.inference.mean_field"].grid_messages is fn


# realistic answers that delegate to crfkit and are right, so only the refusal rejects them
def _step_by_grid_messages(unary, pairwise, q):
    return torch.softmax(-unary - ck.inference.grid_messages(ck.GridCRF(unary, pairwise), q), dim=1)


def _brute_force_by_exact(unary, pairwise):
    result = ck.inference.exact(ck.GridCRF(unary, pairwise))
    return result.marginals, result.log_z


def _chain_by_forward_backward(unary, pairwise):
    return ck.inference.forward_backward(ck.GridCRF(unary[:, :, None], pairwise)).log_z


def _receptive_field_by_arithmetic(layers):
    a = ck.nn.arithmetic
    return a.receptive_field([a.conv(k, s, dilation=d) for k, s, d in layers])


def _conv_transpose_by_crfkit(x, weight, stride=1, padding=0):
    return ck.nn.functional.conv_transpose2d(x, weight, stride=stride, padding=padding)


def _gaussian_filter_by_crfkit(image, values, sxy, srgb):
    b, c, h, w = values.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=image.dtype), torch.arange(w, dtype=image.dtype), indexing="ij")
    xy = torch.stack([xs, ys]).reshape(1, 2, h * w).expand(b, -1, -1) / sxy  # [B, 2, N]
    feats = torch.cat([xy, image.reshape(b, 3, h * w) / srgb], dim=1).transpose(1, 2)  # [B, N, 5]
    out = ck.permutohedral.gaussian_filter_exact(feats, values.reshape(b, c, h * w).transpose(1, 2))  # [B, N, C]
    return out.transpose(1, 2).reshape(b, c, h, w)


def _crf_as_rnn_step_by_mean_field(unary, q, filters, weights, compat):
    # the messages by hand, then crfkit's mean field (on a CRF without kernels) adds the unary and normalises
    sym = 0.5 * (compat + compat.transpose(1, 2))  # [M, K, K]
    m = sum(w * torch.einsum("kl,blhw->bkhw", mu, f(q)) for f, w, mu in zip(filters, weights, sym))
    crf = ck.DenseCRF(unary + m, torch.zeros_like(unary[:, :1]), kernels=())
    return ck.inference.mean_field(crf, iterations=1, init=q, filter="exact")


DELEGATES = {
    "1.1": lambda: ck.nn.arithmetic.conv_output_size,
    "2.2": lambda: _conv_transpose_by_crfkit,
    "3.1": lambda: _receptive_field_by_arithmetic,
    "4.2": lambda: _brute_force_by_exact,
    "4.3": lambda: _chain_by_forward_backward,
    "5.1": lambda: _step_by_grid_messages,
    "5.3": lambda: _gaussian_filter_by_crfkit,
    "6.1": lambda: _crf_as_rnn_step_by_mean_field,
}


def test_every_refusing_exercise_has_a_realistic_delegate():
    assert set(DELEGATES) == set(REFUSALS)


@pytest.mark.parametrize("number", sorted(DELEGATES))
def test_the_delegates_are_refused(number):
    with pytest.raises(CheckFailed, match=f"^Exercise {number}: your function calls crfkit"):
        checks.check(number, DELEGATES[number]())


@pytest.mark.parametrize("number", sorted(DELEGATES))
def test_the_delegates_pass_without_refusing(number, monkeypatch, capsys):
    """The refusal tests can fail: with ``refusing`` switched off, every delegate passes."""

    @contextlib.contextmanager
    def refusing_nothing(*functions, namespaces=()):
        yield _common.Refusal()

    monkeypatch.setattr(_common, "refusing", refusing_nothing)
    checks.check(number, DELEGATES[number]())
    assert "all checks passed" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# the package's shape

CHECKS = pathlib.Path(_common.__file__).parent


def _imports(path: pathlib.Path):
    """``(target module, imported names, line)`` of every import of ``path``, made absolute."""
    package = "crfkit.checks"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__"):
            yield "<by name>", [], node.lineno


def shape_offenders(path: pathlib.Path) -> list[str]:
    """What in checker module ``path`` breaks the layout rule."""
    offenders, own = [], path.stem
    crfkit_names = set()  # names bound to crfkit modules, e.g. `inference`, `arithmetic`
    for target, names, line in _imports(path):
        where = f"{path.name}:{line}"
        if target == "<by name>":
            offenders.append(f"{where} imports a module by name")
            continue
        if not target.startswith("crfkit"):
            continue
        parts = target.split(".")
        if target.startswith("crfkit.checks"):
            siblings = [n for n in names if n.startswith("sheet")] + ([parts[2]] if len(parts) > 2 else [])
            siblings = [s for s in siblings if s.startswith("sheet") and s != own]
            if own != "__init__" and siblings:
                offenders.append(f"{where} imports the sheet {', '.join(siblings)}")
            if own != "__init__" and target != "crfkit.checks._common":
                offenders.append(f"{where} imports {target} (a sheet imports only crfkit.checks._common)")
            continue
        private = [p for p in parts[1:] if p.startswith("_")]
        if private and private != ["_validate"]:
            offenders.append(f"{where} imports the private module {target}")
        offenders += [f"{where} imports the private name {target}.{n}" for n in names if n.startswith("_")]
        crfkit_names.update(names or [parts[-1]])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and isinstance(node.value, ast.Name) and node.value.id in crfkit_names):
            offenders.append(f"{path.name}:{node.lineno} reads the private {node.value.id}.{node.attr}")
    return offenders


def test_checker_modules_import_only_common_and_public_names():
    paths = sorted(CHECKS.glob("*.py"))
    assert {p.stem for p in paths} >= {"__init__", "_common", *(f"sheet0{i}" for i in range(7))}
    offenders = [o for p in paths for o in shape_offenders(p)]
    assert not offenders, "\n".join(offenders)


def test_the_shape_rule_sees_a_violation(tmp_path):
    """The rule itself must be able to fail."""
    bad = tmp_path / "sheet07.py"
    bad.write_text(
        "from crfkit.checks.sheet01 import build\n"
        "from crfkit.checks import sheet02\n"
        "from crfkit.inference.exact import _chain\n"
        "from crfkit.models import _common\n"
        "from crfkit.models._common import init_weights\n"
        "import importlib\n"
        "from crfkit import inference\n"
        "m = importlib.import_module('crfkit.inference.exact')\n"
        "x = inference._secret\n",
        encoding="utf-8",
    )
    found = "\n".join(shape_offenders(bad))
    for words in ("imports the sheet sheet01", "imports the sheet sheet02", "private name crfkit.inference.exact._chain",
                  "private name crfkit.models._common",
                  "private module crfkit.models._common", "by name", "private inference._secret"):
        assert words in found, found
    good = tmp_path / "sheet08.py"
    good.write_text("from crfkit.checks._common import call\nfrom crfkit._validate import check_int\n"
                    "from crfkit import inference\nx = inference.exact\n", encoding="utf-8")
    assert shape_offenders(good) == []
