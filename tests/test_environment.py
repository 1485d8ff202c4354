"""The set-up files agree with each other: requirements, environment.yml, pyproject, Makefile, CI."""

from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from crfkit.course import REPO


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line:
            continue
        req = Requirement(line)
        spec = list(req.specifier)
        assert len(spec) == 1 and spec[0].operator == "==", f"not pinned exactly: {line}"
        pins[canonicalize_name(req.name)] = spec[0].version
    return pins


def _requirements():
    return _pins((REPO / "requirements.txt").read_text().splitlines())


def _environment():
    return yaml.safe_load((REPO / "environment.yml").read_text())


def test_requirements_pin_torch_2_13():
    assert _requirements()["torch"] == "2.13.0"


def test_environment_yml_parses_and_agrees_with_requirements():
    env = _environment()
    assert env["name"] == "crfkit"
    deps = env["dependencies"]
    assert any(isinstance(d, str) and d.startswith("python=") for d in deps)
    pip_lists = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "environment.yml needs exactly one pip: section"
    env_pins = _pins(pip_lists[0])
    req = _requirements()
    for name, version in env_pins.items():
        assert req.get(name) == version, f"{name}: environment.yml {version} vs requirements.txt {req.get(name)}"
    core = {"torch", "jupyterlab", "matplotlib", "ipywidgets", "numpy", "scikit-image", "nbval"}
    assert core <= set(env_pins), f"environment.yml lacks {core - set(env_pins)}"


def test_pyproject_ranges_admit_the_pinned_versions():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for name, extra in project["optional-dependencies"].items():
        if name != "reference":  # the C++ reference, installed on demand and never pinned
            reqs += extra
    pins = _requirements()
    for line in reqs:
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is a dependency of crfkit but not pinned in requirements.txt"
        assert Version(pins[name]) in req.specifier, f"{name}=={pins[name]} is outside {req.specifier}"


def test_reference_extra_is_not_needed_by_the_default_environment():
    pins = _requirements()
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["reference"]
    assert [canonicalize_name(Requirement(line).name) for line in extra] == ["pydensecrf2"]
    assert "pydensecrf2" not in pins


def test_make_targets_and_ci_call_make_test():
    makefile = (REPO / "Makefile").read_text()
    for target in ("setup:", "lab: setup", "test: setup"):
        assert re.search(rf"^{re.escape(target)}", makefile, re.MULTILINE), target
    ci = (REPO / ".ci" / "run").read_text()
    commands = [l.strip() for l in ci.splitlines() if l.strip() and not l.strip().startswith("#")]
    assert commands[-1] == "make test"


def test_readme_starts_with_the_two_commands():
    head = "\n".join((REPO / "README.md").read_text().splitlines()[:8])
    assert "make lab" in head and "make test" in head
