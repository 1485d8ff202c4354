"""The package as a whole: every submodule reachable from ``import crfkit``, no import circles.

The import graph is read from the source with ``ast`` (as tests/test_layout.py does), so it
covers modules no test imports and costs no imports; one fresh interpreter then checks that
every lazily loaded submodule really loads.
"""

from __future__ import annotations

import ast
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import crfkit

ROOT = pathlib.Path(crfkit.__file__).parent


# --------------------------------------------------------------------------- lazy submodules


def test_lazy_submodules_are_every_public_submodule():
    found = sorted(m.name for m in pkgutil.iter_modules(crfkit.__path__) if not m.name.startswith("_"))
    assert sorted(crfkit._SUBMODULES) == found, (
        "crfkit/__init__.py's _SUBMODULES must list every public submodule: "
        f"missing {sorted(set(found) - set(crfkit._SUBMODULES))}, "
        f"extra {sorted(set(crfkit._SUBMODULES) - set(found))}"
    )
    assert set(crfkit._SUBMODULES) <= set(dir(crfkit))


def test_every_submodule_loads_on_first_use_in_a_fresh_interpreter():
    # permutohedral used to work only after something had imported crfkit.inference
    code = (
        "import crfkit as ck\n"
        "ck.permutohedral.PermutohedralLattice\n"
        "for name in ck._SUBMODULES:\n"
        "    assert getattr(ck, name).__name__ == 'crfkit.' + name, name\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'crfkit' has no attribute 'widget'"):
        crfkit.widget  # noqa: B018


# --------------------------------------------------------------------------- import graph


def modules(root: pathlib.Path, package: str) -> dict[str, tuple[pathlib.Path, bool]]:
    """Every module of the package under ``root``: dotted name -> (file, is a package)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = (package, *path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _top_level_imports(body: list[ast.stmt]):
    """Import statements that run when the module is imported: module and class bodies,
    ``if``/``try``/``with`` blocks; not function bodies (lazy imports), not ``if TYPE_CHECKING``."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            test = node.test
            if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
                    isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
                yield from _top_level_imports(node.orelse)
            else:
                yield from _top_level_imports(node.body + node.orelse)
        elif isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            handlers = [stmt for handler in node.handlers for stmt in handler.body]
            yield from _top_level_imports(node.body + handlers + node.orelse + node.finalbody)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _top_level_imports(node.body)


def _ancestors_or_self(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


def import_graph(root: pathlib.Path, package: str) -> dict[str, set[str]]:
    """``graph[m]``: the modules whose top level must have run for ``m``'s import statements.

    ``import a.b.c`` and ``from a.b.c import name`` need the module ``a.b.c`` (``from a.b
    import c`` with ``c`` a submodule needs ``a.b.c``; with ``c`` a name, the package's
    ``__init__`` ``a.b``), and the ``__init__`` of every package on the way (``a.b``), except
    the packages that hold ``m`` itself: those are already being imported when ``m`` runs, so
    a package importing its own submodules is no circle. A submodule that takes a *name* from
    its own package's ``__init__`` while that ``__init__`` imports it is one.
    """
    known = modules(root, package)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for module, (path, is_package) in known.items():
        own = _ancestors_or_self(module)
        for node in _top_level_imports(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                required = [(alias.name, False) for alias in node.names]  # (module, takes a name from it)
            else:
                if node.level:  # relative: from the package holding the module (or the package itself)
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                submodules = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in known]
                takes_names = len(submodules) < len(node.names)
                required = [(sub, False) for sub in submodules] + [(source, takes_names)]
            for target, takes_names in required:
                if target not in known or target == module:
                    continue  # another package (torch, numpy ...), or itself
                graph[module] |= {a for a in _ancestors_or_self(target) if a in known and a not in own}
                if takes_names:
                    graph[module].add(target)  # even from an enclosing package: its __init__ must be done
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_crfkit_has_no_import_circle():
    found = cycles(import_graph(ROOT, "crfkit"))
    assert not found, "import circles among crfkit's modules:\n" + "\n".join(" <-> ".join(c) for c in found)


def _write(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_the_circle_check_can_fail(tmp_path):
    """The checker itself: a real circle is found, a package importing its submodules is not."""
    root = _write(tmp_path, {
        "__init__.py": "from pkg.a import f\nfrom pkg import sub\n",
        "a.py": "from pkg.b import g\ndef f():\n    from pkg.c import h  # lazy: no edge\n",
        "b.py": "import pkg.a\n",  # a <-> b
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import f\n",
        "sub/__init__.py": "from .one import x\nfrom . import two\n",  # package -> its submodules: fine
        "sub/one.py": "from pkg.sub.two import y\nx = 1\n",
        "sub/two.py": "from pkg.c import z\ny = 2\n",
        "loop/__init__.py": "from .child import x\ndef helper():\n    pass\n",
        "loop/child.py": "from pkg.loop import helper\nx = 1\n",  # a name from the parent that imports it
        "far.py": "from pkg.sub.one import x\n",  # runs pkg.sub's __init__ first
    })
    graph = import_graph(root, "pkg")
    assert graph["pkg.c"] == set() and graph["pkg.a"] == {"pkg.b"}
    assert graph["pkg.sub"] == {"pkg.sub.one", "pkg.sub.two"} and graph["pkg.sub.one"] == {"pkg.sub.two"}
    assert graph["pkg.loop.child"] == {"pkg.loop"}
    assert graph["pkg.far"] == {"pkg.sub", "pkg.sub.one"}
    assert cycles(graph) == [["pkg.a", "pkg.b"], ["pkg.loop", "pkg.loop.child"]]
