"""The course machinery: exercise sheets from solutions, notebook execution, JupyterLab.

One source
----------
``solutions/NN_*.ipynb`` are the only notebooks with exercise answers. Inside a code
cell the answer sits between two marker lines::

    def probs_from_unary(unary):
        ### BEGIN SOLUTION
        return torch.softmax(-unary, dim=1)
        ### END SOLUTION

:func:`generate_exercises` writes ``exercises/NN_*.ipynb`` from them: every marked
block becomes a stub that raises ``NotImplementedError("Exercise N.M is not done yet
...")`` at the block's indentation, and every output is dropped (outputs would give
the answers away). In a markdown cell, a marked block is a model answer to an open
question and becomes an invitation to write one's own. The exercise number ``N.M`` is read from the nearest markdown
heading above the cell that says ``Exercise N.M``, so the number in the error is the
number the student reads.

Put answers inside functions: the check cell after an exercise then calls the
student's function, and an unfinished exercise shows the same "not done yet" error
there instead of a ``NameError``. ``tests/test_course.py`` runs every exercise sheet
and fails on any other error (``test_exercise_sheet_runs_with_only_not_done_errors``);
``tests/test_checks.py`` tests the checkers those check cells call: crfkit's answer passes,
typical wrong ones get a hint, an unfinished exercise keeps its "not done yet" error.

Command line
------------
``python -m crfkit.course exercises``           regenerate ``exercises/``
``python -m crfkit.course exercises --check``   exit 1 if ``exercises/`` is stale
``python -m crfkit.course run NOTEBOOK ...``    execute in place, keeping outputs
``python -m crfkit.course lab [ARGS ...]``      JupyterLab on ``lectures/``; ``ARGS`` (say
                                                ``--no-browser --port 8899``) go to JupyterLab
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Sequence

#: The repository root (the folder holding ``lectures/``, ``solutions/``, ...).
REPO = Path(__file__).resolve().parent.parent

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_EXERCISE_HEADING = re.compile(r"^#+\s.*?\bExercise\s+(\d+\.\d+)\b", re.MULTILINE)

#: The Jupyter kernel ``make setup`` registers and the notebooks name.
KERNEL_NAME = "crfkit"
KERNEL_DISPLAY_NAME = "Python (crfkit)"


def not_done_message(exercise: str) -> str:
    """The text of the error an unfinished exercise raises."""
    return (
        f"Exercise {exercise} is not done yet: replace this `raise` line with your "
        "code, then run the check cell below it."
    )


def _replace_blocks(source: str, replace, where: str) -> str:
    """Replace every ``### BEGIN/END SOLUTION`` block (markers included) by
    ``replace(indent, lineno)``, a list of lines; check that the markers balance."""
    out: list[str] = []
    inside = False
    for lineno, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ValueError(f"{where}, line {lineno}: nested {BEGIN!r}")
            inside = True
            out.extend(replace(line[: len(line) - len(line.lstrip())], lineno))
        elif stripped.startswith(END):
            if not inside:
                raise ValueError(f"{where}, line {lineno}: {END!r} without {BEGIN!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN!r} without {END!r}")
    return "\n".join(out)


def stub_source(source: str, exercise: str | None, where: str = "cell") -> str:
    """Replace every ``### BEGIN/END SOLUTION`` block of a code cell by a stub.

    Parameters
    ----------
    source : str
        The source of one code cell.
    exercise : str or None
        The exercise number ``"N.M"`` the cell belongs to.
    where : str
        Where the cell is, for error messages.

    Returns
    -------
    str
        The source with each block (markers included) replaced by a comment and a
        line raising ``NotImplementedError`` (the "not done yet" stub), indented like the
        ``BEGIN`` marker.

    Raises
    ------
    ValueError
        If the markers are unbalanced or nested, or a block has no exercise number.
    """

    def stub(indent: str, lineno: int) -> list[str]:
        if exercise is None:
            raise ValueError(
                f"{where}, line {lineno}: a solution block needs a markdown heading "
                "'Exercise N.M' above its cell"
            )
        return [
            f"{indent}# YOUR CODE HERE (exercise {exercise})",
            f"{indent}raise NotImplementedError({not_done_message(exercise)!r})",
        ]

    return _replace_blocks(source, stub, where)


def stub_markdown(source: str, where: str = "cell") -> str:
    """Replace each ``### BEGIN/END SOLUTION`` block of a markdown cell (a model answer
    to an open question) by an invitation to write one's own."""
    return _replace_blocks(source, lambda indent, lineno: ["*Your answer here (double-click to edit).*"], where)


def exercise_notebook(solution):
    """Return the student's version of a solution notebook (an ``nbformat`` node).

    Solution blocks become stubs (:func:`stub_source`), outputs and execution counts
    are cleared, and a note at the top says where the sheet comes from. The input is
    not modified.
    """
    import nbformat

    nb = copy.deepcopy(solution)
    exercise: str | None = None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            found = _EXERCISE_HEADING.findall(cell.source)
            if found:
                exercise = found[-1]
            if BEGIN in cell.source or END in cell.source:
                cell.source = stub_markdown(cell.source, where=f"cell {index}")
            continue
        if cell.cell_type != "code":
            continue
        if BEGIN in cell.source or END in cell.source:
            cell.source = stub_source(cell.source, exercise, where=f"cell {index}")
        # nbval markers are for the solution's test run, not for students
        cell.source = "\n".join(
            line for line in cell.source.splitlines() if not line.startswith("# NBVAL_")
        )
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)  # saved widget state belongs to the solution run
    note = nbformat.v4.new_markdown_cell(
        "> **Exercise sheet.** Fill in every cell that raises *\"Exercise N.M is not done "
        "yet\"*, then run the check cell below it. Generated from the matching notebook "
        "in `solutions/` by `python -m crfkit.course exercises`: look there only when stuck."
    )
    note.metadata["tags"] = ["generated"]
    note.pop("id", None)
    nb.cells.insert(0, note)
    _stable_ids(nb)
    return nb


def _stable_ids(nb) -> None:
    """Give cells ids that depend only on their position, so regeneration is byte-stable."""
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"


def generate_exercises(
    solutions_dir: str | Path = REPO / "solutions",
    exercises_dir: str | Path = REPO / "exercises",
) -> list[Path]:
    """Write ``exercises_dir/NN_*.ipynb`` from every ``solutions_dir/NN_*.ipynb``.

    Returns the written paths. Exercise sheets whose solution no longer exists are
    removed, so ``exercises/`` mirrors ``solutions/`` exactly.
    """
    import nbformat

    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    if not solutions_dir.is_dir():
        raise FileNotFoundError(f"solutions_dir: no such folder: {solutions_dir}")
    exercises_dir.mkdir(parents=True, exist_ok=True)
    written = []
    sources = sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb"))
    for src in sources:
        nb = exercise_notebook(nbformat.read(src, as_version=4))
        dst = exercises_dir / src.name
        dst.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        written.append(dst)
    names = {p.name for p in sources}
    for old in exercises_dir.glob("[0-9][0-9]_*.ipynb"):
        if old.name not in names:
            old.unlink()
    return written


def stale_exercises(
    solutions_dir: str | Path = REPO / "solutions",
    exercises_dir: str | Path = REPO / "exercises",
) -> list[str]:
    """Names of exercise sheets that differ from what :func:`generate_exercises` writes."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p.read_bytes() for p in generate_exercises(solutions_dir, tmp)}
    current = {p.name: p.read_bytes() for p in Path(exercises_dir).glob("[0-9][0-9]_*.ipynb")}
    return sorted(
        name for name in fresh.keys() | current.keys() if fresh.get(name) != current.get(name)
    )


def execute_notebook(path: str | Path, timeout: int = 600, kernel_name: str | None = None) -> None:
    """Run a notebook top to bottom in its own folder and save it with its outputs.

    Widget state is stored, so saved widgets render before anyone runs the notebook.
    Uses the kernel of the current Python unless ``kernel_name`` is given.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name or "python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
    )
    client.execute()
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": KERNEL_DISPLAY_NAME,
        "language": "python",
    }
    path.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


def lab_command(
    root_dir: str | Path = REPO,
    open_path: str = "lectures",
    extra: Sequence[str] = (),
) -> list[str]:
    """The command line that serves the course in JupyterLab.

    ``make lab`` runs it with ``ARGS`` as ``extra`` (``python -m crfkit.course lab ARGS``);
    the browser test adds a port, a token and ``--no-browser``, so both start the same server.
    """
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={Path(root_dir)}",
        f"--LabApp.default_url=/lab/tree/{open_path}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines often run as root
    return cmd + list(extra)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crfkit.course", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("exercises", help="regenerate exercises/ from solutions/")
    ex.add_argument("--check", action="store_true", help="only report stale sheets; exit 1 if any")
    run = sub.add_parser("run", help="execute notebooks in place, keeping their outputs")
    run.add_argument("notebooks", nargs="+", type=Path)
    sub.add_parser(
        "lab", help="open JupyterLab on lectures/; every other argument goes to JupyterLab",
        usage="python -m crfkit.course lab [-h] [ARGS ...]",
        description="Open JupyterLab on lectures/. Every argument after `lab` (say --no-browser "
                    "--port 8899) is passed to JupyterLab; a leading `--` is dropped (`lab -- --help` "
                    "shows JupyterLab's help).",
    )
    args, extra = parser.parse_known_args(argv)
    if args.command != "lab" and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")

    if args.command == "exercises":
        if args.check:
            stale = stale_exercises()
            for name in stale:
                print(f"stale: exercises/{name} (run `python -m crfkit.course exercises`)")
            return 1 if stale else 0
        for path in generate_exercises():
            print(f"wrote {path.relative_to(REPO)}")
        return 0
    if args.command == "run":
        for path in args.notebooks:
            print(f"running {path} ...", flush=True)
            execute_notebook(path)
        return 0
    if args.command == "lab":
        if extra[:1] == ["--"]:
            extra = extra[1:]  # `lab -- ARGS`: the separator is ours, not JupyterLab's
        return subprocess.call(lab_command(extra=extra))
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
