"""Interactive widgets for the lectures (ipywidgets + matplotlib), one module per lecture.

==========================  =======  ======================================================
module                      lecture  widget
==========================  =======  ======================================================
:mod:`.temperature`         00       :func:`temperature_explorer`: ``softmax(-unary / T)``
                                     on a slider over ``T``
:mod:`.mean_field`          05       :class:`MeanFieldExplorer`: dense-CRF mean field,
                                     iteration by iteration, kernels on sliders
==========================  =======  ======================================================

Each widget returns (or is) an ``ipywidgets`` box; its drawing is a separate pure function
(``*_figure``, with a one-line ``*_summary``) so that tests and static figures use the same
code without a browser. The argument checks the widgets share live in ``_common``.
"""

from crfkit.widgets.mean_field import (
    MEAN_FIELD_DPI,
    MEAN_FIELD_FIGSIZE,
    MeanFieldExplorer,
    mean_field_figure,
    mean_field_summary,
)
from crfkit.widgets.temperature import temperature_explorer, temperature_figure, temperature_summary

__all__ = [
    "MEAN_FIELD_DPI",
    "MEAN_FIELD_FIGSIZE",
    "MeanFieldExplorer",
    "mean_field_figure",
    "mean_field_summary",
    "temperature_explorer",
    "temperature_figure",
    "temperature_summary",
]
