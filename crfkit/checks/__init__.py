"""Check cells for the exercise sheets.

Every exercise in ``exercises/`` is followed by a check cell such as::

    ck.checks.check("0.1", probs_from_unary)

The checker calls the student's answer on inputs it makes itself, compares with
crfkit's own implementation, and either prints one line saying the exercise passed
or raises :class:`CheckFailed` whose message says *what* is wrong and gives a hint
about the usual cause (a sign, a dimension, numerical overflow). An unfinished
exercise keeps raising its own "not done yet" error.

An exercise that rebuilds a crfkit function declares it with ``@exercise(...,
refuses=(...))``: while the answer runs, that function is replaced, everywhere crfkit
exposes it, by a spy, and an answer that calls it fails (:func:`refusals` lists them).

Layout: ``_common.py`` holds the registry (:func:`exercise`, :func:`check`,
:func:`checkers`, :class:`CheckFailed`), :func:`refusing` and the helpers that several
sheets share; ``sheet00.py`` ... ``sheet06.py`` hold one sheet's checkers each, import
only from ``_common`` and register on import. ``tests/test_checks.py`` feeds every
registered checker a typical wrong answer and fails if one is accepted.
"""

from crfkit.checks._common import CheckFailed, check, checkers, exercise, refusals, refusing

# Each sheet's checkers register themselves on import.
from crfkit.checks import sheet00, sheet01, sheet02, sheet03, sheet04, sheet05, sheet06  # noqa: E402,F401  isort: skip

__all__ = ["CheckFailed", "check", "checkers", "exercise", "refusals", "refusing"]
