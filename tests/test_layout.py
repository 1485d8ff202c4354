"""The package's shape: no crfkit module reaches into another's private names.

A private name (``_x``) is an implementation detail of its module; a private *module*
(``_validate``, ``models/_common``) is shared on purpose by its package and the packages below it.
These tests read the source with ``ast``, so they also cover modules no test imports.
"""

import ast
import pathlib

import crfkit

ROOT = pathlib.Path(crfkit.__file__).parent


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, path.name == "__init__.py"


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _allowed_private_module(importer: str, target: str) -> bool:
    """``a.b._m`` may be imported by ``a.b`` and everything below it."""
    parts = target.split(".")
    private = [i for i, p in enumerate(parts) if p.startswith("_")]
    if not private:
        return True
    owner = ".".join(parts[: private[0]])
    return importer == owner or importer.startswith(owner + ".")


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for module, path, is_package in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _absolute(module, is_package, node)
                if not target.startswith("crfkit"):
                    continue
                if not _allowed_private_module(module, target):
                    offenders.append(f"{module} imports the private module {target}")
                shared = target.rsplit(".", 1)[-1].startswith("_")  # a package's private module is its own
                for alias in node.names:
                    if alias.name.startswith("_") and target != module and not shared:
                        offenders.append(f"{module} imports {target}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("crfkit") and not _allowed_private_module(module, alias.name):
                        offenders.append(f"{module} imports the private module {alias.name}")
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr == "import_module" and module not in ("crfkit", "crfkit.course")):
                offenders.append(f"{module} imports a module by name (importlib), line {node.lineno}")
    assert not offenders, "\n".join(offenders)


def test_the_rule_sees_a_violation():
    """The checker itself must be able to fail."""
    assert not _allowed_private_module("crfkit.inference.exact", "crfkit.models._common")
    assert _allowed_private_module("crfkit.models.fcn", "crfkit.models._common")
    assert _allowed_private_module("crfkit.models.fcn", "crfkit._validate")
    node = ast.parse("from ..crf import _secret").body[0]
    assert _absolute("crfkit.inference.exact", False, node) == "crfkit.crf"
    node = ast.parse("from . import exact").body[0]
    assert _absolute("crfkit.inference", True, node) == "crfkit.inference"
