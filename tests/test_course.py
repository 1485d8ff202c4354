"""The exercise machinery: stubs, regeneration, staleness, and the sheets themselves."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

from crfkit import course
from crfkit.course import REPO

SOLUTIONS = sorted((REPO / "solutions").glob("[0-9][0-9]_*.ipynb"))
EXERCISES = sorted((REPO / "exercises").glob("[0-9][0-9]_*.ipynb"))


def test_stub_replaces_block_at_its_indentation():
    src = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    out = course.stub_source(src, "3.2")
    assert "return x + y" not in out
    assert "    raise NotImplementedError('Exercise 3.2 is not done yet" in out
    assert out.startswith("def f(x):\n    y = 1\n    # YOUR CODE HERE (exercise 3.2)\n")
    compile(out, "<stub>", "exec")  # the stub is valid Python


def test_stub_keeps_code_outside_blocks_and_handles_several_blocks():
    src = "a = 1\n### BEGIN SOLUTION\nb = 2\n### END SOLUTION\nc = 3\n### BEGIN SOLUTION\nd = 4\n### END SOLUTION"
    out = course.stub_source(src, "1.1")
    assert out.count("raise NotImplementedError") == 2
    assert "a = 1" in out and "c = 3" in out
    assert "b = 2" not in out and "d = 4" not in out


@pytest.mark.parametrize(
    "src, message",
    [
        ("### BEGIN SOLUTION\nx = 1\n", "without '### END SOLUTION'"),
        ("x = 1\n### END SOLUTION\n", "without '### BEGIN SOLUTION'"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "nested"),
    ],
)
def test_stub_rejects_unbalanced_markers(src, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        course.stub_source(src, "1.1")


def test_block_without_exercise_heading_is_an_error():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")]
    with pytest.raises(ValueError, match="needs a markdown heading 'Exercise N.M'"):
        course.exercise_notebook(nb)


def test_exercise_number_comes_from_nearest_heading_and_input_is_untouched():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("## Exercise 4.1 — first"),
        nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"),
        nbformat.v4.new_markdown_cell("## Exercise 4.2 — second"),
        nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\ndef g():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION"),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="secret answer")]
    before = nbformat.writes(nb)
    ex = course.exercise_notebook(nb)
    assert nbformat.writes(nb) == before  # the solution is not modified
    code = [c for c in ex.cells if c.cell_type == "code"]
    assert "Exercise 4.1 is not done yet" in code[0].source
    assert "Exercise 4.2 is not done yet" in code[1].source
    assert "NBVAL" not in code[1].source
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_markdown_model_answer_is_removed():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(
        "## Exercise 2.3 — open question\nWhy?\n\n### BEGIN SOLUTION\nBecause of the skips.\n### END SOLUTION")]
    ex = course.exercise_notebook(nb)
    text = ex.cells[-1].source
    assert "Because of the skips" not in text
    assert text.startswith("## Exercise 2.3") and "*Your answer here" in text
    with pytest.raises(ValueError, match="without '### END SOLUTION'"):
        course.stub_markdown("### BEGIN SOLUTION\nx")


def test_generate_mirrors_solutions_and_removes_orphans(tmp_path):
    sol, ex = tmp_path / "solutions", tmp_path / "exercises"
    sol.mkdir()
    ex.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Exercise 9.1"), nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx=1\n### END SOLUTION")]
    nbformat.write(nb, sol / "09_demo.ipynb")
    (ex / "08_old.ipynb").write_text("{}")
    written = course.generate_exercises(sol, ex)
    assert [p.name for p in written] == ["09_demo.ipynb"]
    assert sorted(p.name for p in ex.iterdir()) == ["09_demo.ipynb"]
    assert course.stale_exercises(sol, ex) == []
    (ex / "09_demo.ipynb").write_text("{}")
    assert course.stale_exercises(sol, ex) == ["09_demo.ipynb"]


def test_committed_exercises_are_fresh():
    stale = course.stale_exercises()
    assert not stale, f"exercises/ is stale, run `python -m crfkit.course exercises`: {stale}"


def test_every_solution_has_an_exercise_sheet():
    assert SOLUTIONS, "no solution notebooks found"
    assert [p.name for p in SOLUTIONS] == [p.name for p in EXERCISES]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_are_committed_with_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code and all(c.execution_count is not None for c in code), (
        f"{path.name} is not committed executed: run `python -m crfkit.course run {path.relative_to(REPO)}`"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.name)
def test_exercise_sheet_runs_with_only_not_done_errors(path):
    """Run the student's sheet top to bottom: every error must be an unfinished exercise."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    errors = [
        (i, out) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
        for out in cell.outputs if out.output_type == "error"
    ]
    bad = [
        f"cell {i}: {out.ename}: {out.evalue}" for i, out in errors
        if not (out.ename == "NotImplementedError" and "is not done yet" in out.evalue)
    ]
    assert not bad, "exercise sheet raised errors other than 'not done yet':\n" + "\n".join(bad)
    # every exercise in the sheet announces itself as not done, in its check cell too
    numbers = set(re.findall(r"Exercise (\d+\.\d+) is not done yet", "\n".join(c.source for c in nb.cells)))
    raised = set(re.findall(r"Exercise (\d+\.\d+) is not done yet", "\n".join(o.evalue for _, o in errors)))
    assert numbers and numbers == raised
    checks = [c for c in nb.cells if c.cell_type == "code" and "ck.checks.check(" in c.source]
    assert checks and all(any(o.output_type == "error" for o in c.outputs) for c in checks)


def test_command_line_check_reports_fresh(capsys):
    assert course.main(["exercises", "--check"]) == 0


def test_lab_command_serves_lectures():
    cmd = course.lab_command()
    assert cmd[1:3] == ["-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={REPO}" in cmd
    assert "--LabApp.default_url=/lab/tree/lectures" in cmd


@pytest.fixture
def lab_calls(monkeypatch):
    """The command lines ``course.main(["lab", ...])`` would start (no server is started)."""
    calls = []

    def call(cmd):
        calls.append(cmd)
        return 0

    monkeypatch.setattr(course.subprocess, "call", call)
    return calls


@pytest.mark.parametrize("argv", [
    ["lab", "--no-browser", "--port", "8899"],
    ["lab", "--", "--no-browser", "--port", "8899"],
])
def test_lab_passes_every_other_argument_to_jupyterlab(lab_calls, argv):
    assert course.main(argv) == 0
    (cmd,) = lab_calls
    assert cmd == course.lab_command() + ["--no-browser", "--port", "8899"]
    assert "--" not in cmd


def test_lab_keeps_the_order_of_its_arguments_and_a_later_separator(lab_calls):
    args = ["--ServerApp.token=abc", "--port=8899", "--", "notebook.ipynb"]
    assert course.main(["lab", *args]) == 0
    assert lab_calls == [course.lab_command() + args]
    assert course.main(["lab"]) == 0
    assert lab_calls[-1] == course.lab_command()


def test_other_commands_still_refuse_unknown_arguments(lab_calls, capsys):
    with pytest.raises(SystemExit) as exit_info:
        course.main(["exercises", "--no-browser"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --no-browser" in capsys.readouterr().err
    assert lab_calls == []


def test_make_lab_passes_args_through():
    import shutil
    import subprocess

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(["make", "-n", "-C", str(REPO), "lab", 'ARGS=--no-browser --port 8899'],
                         capture_output=True, text=True, check=True).stdout  # -n: print, run nothing
    lab = [line for line in dry.splitlines() if "-m crfkit.course lab" in line]
    assert len(lab) == 1, dry
    assert lab[0].split("-m crfkit.course lab", 1)[1].split() == ["--no-browser", "--port", "8899"]
    help_text = subprocess.run(["make", "-C", str(REPO), "help"], capture_output=True, text=True,
                               check=True).stdout
    assert "ARGS" in help_text
