"""Convolution arithmetic of a stack of layers: output sizes, receptive fields, output strides.

Each layer acts on one spatial axis at a time (kernels are square here: the same numbers for
height and width; a non-square layer is described axis by axis, one ``Layer`` per axis).
With kernel ``k``, stride ``s``, zero padding ``p``, dilation ``d`` and input size ``n``:

.. math::

    \\text{conv, pool:}\\quad
    n' = \\left\\lfloor \\frac{n + 2p - d(k - 1) - 1}{s} \\right\\rfloor + 1
    \\qquad
    \\text{transposed:}\\quad n' = (n - 1)s - 2p + d(k - 1) + \\text{output\\_padding} + 1

(pooling with ``ceil_mode`` rounds up, but never starts a window in the right padding).

Receptive field and jump
------------------------
The **receptive field** ``r`` of a layer's output is the extent, in input-image pixels, of
the input region that influences one output pixel: ``last - first + 1`` (holes left by
dilation inside count), maximised over the output pixels, measured on an unbounded image
(borders do not clip it; padding does not change it). The **jump** ``j`` is the distance
in input pixels between neighbouring output pixels; the output stride of the network is
the jump of its last layer. A convolution or pooling layer updates them as

.. math::

    r_{out} = r_{in} + d (k - 1) \\, j_{in}, \\qquad j_{out} = j_{in} \\, s,

starting from ``r = j = 1`` at the input (Araujo et al. 2019, Eq. 1-2). This is exact, and
every output pixel has the same field: ``first(o) = o j + first(0)``.

A **transposed** layer divides the jump, ``j_out = j_in / s`` (a fraction: after a stride-2
transposed convolution on the input, neighbouring outputs are half a pixel apart). Output
pixel ``o`` receives input pixel ``i`` when ``o + p - i s`` is one of the taps
``0, d, ..., (k - 1) d``: the ``i`` whose ``i s`` falls in a window of ``d (k - 1) + 1``
consecutive positions, of which at most ``ceil((d (k - 1) + 1) / s)`` are multiples of
``s``. Hence the recurrence

.. math::

    r_{out} = r_{in}
        + \\left(\\left\\lceil \\frac{d(k - 1) + 1}{s} \\right\\rceil - 1\\right) j_{in},
    \\qquad j_{out} = j_{in} / s .

It is exact for one transposed layer when ``d`` divides ``s`` or ``s`` divides ``d``
(``d = 1`` included); in general one layer sees ``floor((k - 1) g / s) d / g + 1`` pixels,
``g = gcd(d, s)`` (``k = 2, s = 2, d = 3``: the taps 0 and 3 never both meet a multiple of
2, so every output sees one input pixel, not 2). In a stack the recurrence is only an
estimate, off by a pixel or more either way: after an upsampling by ``s`` the outputs come
in ``s`` phases whose fields differ, and a later kernel spans a fractional number of input
pixels (a 6/2 transposed layer then a 2/1 one: 4 pixels, where the recurrence gives 3.5).
What always holds is the bound

.. math::

    r \\le \\Big\\lfloor 1 + \\sum_\\ell d_\\ell (k_\\ell - 1) \\, j_\\ell \\Big\\rfloor

with ``j`` the jump at the input of a conv/pool layer and at the output of a transposed
one (the span of each kernel in input pixels).

crfkit therefore computes ``r`` **exactly**: it follows ``first(o)`` and ``last(o)`` (the
first and last influencing input pixel, or "none") for one period of output pixels, layer
by layer. The pattern repeats with period ``T`` (at most the product of the transposed
strides): ``first(o + T) = first(o) + T j``. A conv/pool layer takes the min/max over its
taps ``o s - p + a d`` of the previous layer's values; a transposed one over the ``i`` with
``o + p - a d = i s``. Cost ``O(T k)`` per layer. For stacks of convolutions and pools it
reduces to the recurrence above (``T = 1``). The tests check sizes, ``r``, ``first``/``last``
and ``j`` against gradients of real torch layer stacks.

References
----------
Dumoulin, V., Visin, F. (2016). A guide to convolution arithmetic for deep learning.
arXiv:1603.07285 (relationships 1-15: output sizes of convolutions, pooling, transposed
and dilated convolutions).
Araujo, A., Norris, W., Sim, J. (2019). Computing receptive fields of convolutional neural
networks. Distill. https://distill.pub/2019/computing-receptive-fields/
Long, J., Shelhamer, E., Darrell, T. (2015). Fully convolutional networks for semantic
segmentation. CVPR (output stride 32, 16, 8 of FCN-32s/16s/8s).
Chen, L.-C. et al. (2018). DeepLab. TPAMI 40(4) (output stride 8 with atrous convolution).
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

from torch import nn

from crfkit._validate import check_int

__all__ = [
    "ArithmeticRow",
    "ArithmeticTable",
    "Layer",
    "conv",
    "conv_output_size",
    "conv_transpose_output_size",
    "describe",
    "input_region",
    "layers_of",
    "output_stride",
    "pool",
    "pool_output_size",
    "receptive_field",
    "transposed",
]

KINDS = ("conv", "pool", "transposed")


# ---------------------------------------------------------------------------------------
# output sizes


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output size of a convolution: ``floor((n + 2p - d (k - 1) - 1) / s) + 1``.

    Dumoulin & Visin (2016), relationship 6 with dilation (relationship 15).

    Raises
    ------
    ValueError
        If the kernel does not fit in the padded input (torch raises then too).

    Examples
    --------
    >>> conv_output_size(224, 11, stride=4, padding=2)  # AlexNet's first layer
    55
    """
    _ints(size=(size, 1), kernel_size=(kernel_size, 1), stride=(stride, 1),
          padding=(padding, 0), dilation=(dilation, 1))
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(f"size: expected at least {dilation * (kernel_size - 1) + 1 - 2 * padding}"
                         f" for kernel_size={kernel_size}, padding={padding}, "
                         f"dilation={dilation}, got {size}")
    return out


def conv_transpose_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1) -> int:
    """Output size of a transposed convolution: ``(n - 1) s - 2p + d (k - 1) + op + 1``.

    Dumoulin & Visin (2016), relationships 13-14. ``output_padding`` must be smaller than
    the stride or the dilation (torch's rule).

    Examples
    --------
    >>> conv_transpose_output_size(7, 4, stride=2, padding=1)  # FCN-style 2x upsampling
    14
    """
    _ints(size=(size, 1), kernel_size=(kernel_size, 1), stride=(stride, 1),
          padding=(padding, 0), output_padding=(output_padding, 0), dilation=(dilation, 1))
    _check_output_padding(output_padding, stride, dilation)
    out = (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
    if out < 1:
        raise ValueError(f"size: expected a size giving a non-empty output with "
                         f"padding={padding}, got {size} (output {out})")
    return out


def pool_output_size(size: int, kernel_size: int, stride: int | None = None, padding: int = 0,
                     ceil_mode: bool = False, *, dilation: int = 1) -> int:
    """Output size of max or average pooling (torch's ``pooling_output_shape``).

    Dumoulin & Visin (2016), relationship 7, with torch's padding, dilation and ceil mode.

    ``floor((n + 2p - d (k - 1) - 1) / s) + 1``; with ``ceil_mode`` rounded up instead,
    minus one if the last window would start in the right padding (a last, partial window
    may then overhang the input: torch pools ``n = 1`` with ``k = 3, s = 3`` to one pixel).
    ``stride`` defaults to ``kernel_size``; ``padding`` is at most ``kernel_size // 2``
    (torch's rule).

    Examples
    --------
    >>> pool_output_size(7, 2), pool_output_size(7, 2, ceil_mode=True)
    (3, 4)
    """
    stride = kernel_size if stride is None else stride
    _ints(size=(size, 1), kernel_size=(kernel_size, 1), stride=(stride, 1),
          padding=(padding, 0), dilation=(dilation, 1))
    if padding > kernel_size // 2:
        raise ValueError(f"padding: expected at most kernel_size // 2 = {kernel_size // 2} "
                         f"(torch's rule for pooling), got {padding}")
    span = size + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window would start in the right padding
    if out < 1:
        least = dilation * (kernel_size - 1) + 1 - 2 * padding - (stride - 1 if ceil_mode else 0)
        raise ValueError(f"size: expected at least {least} for kernel_size={kernel_size}, "
                         f"stride={stride}, padding={padding}, dilation={dilation}, "
                         f"ceil_mode={ceil_mode}, got {size}")
    return out


# ---------------------------------------------------------------------------------------
# layers


@dataclass(frozen=True)
class Layer:
    """One layer of a stack, as far as sizes and receptive fields are concerned.

    Attributes
    ----------
    kind : {"conv", "pool", "transposed"}
    kernel_size, stride, padding, dilation, output_padding : int
        The same for height and width. ``output_padding`` only for ``"transposed"``
        (smaller than the stride or the dilation).
    name : str or None
    ceil_mode : bool
        Pooling only.
    """

    kind: str
    kernel_size: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    output_padding: int = 0
    name: str | None = None
    ceil_mode: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {list(KINDS)}, got {self.kind!r}")
        _ints(kernel_size=(self.kernel_size, 1), stride=(self.stride, 1),
              padding=(self.padding, 0), dilation=(self.dilation, 1),
              output_padding=(self.output_padding, 0))
        if self.kind == "transposed":
            _check_output_padding(self.output_padding, self.stride, self.dilation)
        elif self.output_padding:
            raise ValueError(f"output_padding: expected 0 for a {self.kind} layer, "
                             f"got {self.output_padding}")
        if self.kind == "pool" and self.padding > self.kernel_size // 2:
            raise ValueError(f"padding: expected at most kernel_size // 2 = "
                             f"{self.kernel_size // 2} (torch's rule for pooling), "
                             f"got {self.padding}")
        if self.ceil_mode and self.kind != "pool":
            raise ValueError(f"ceil_mode: expected False for a {self.kind} layer, got True")
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name: expected a str or None, got {type(self.name).__name__}")

    def output_size(self, size: int) -> int:
        """Output size for input size ``size`` (see the module docstring)."""
        if self.kind == "conv":
            return conv_output_size(size, self.kernel_size, self.stride, self.padding,
                                    self.dilation)
        if self.kind == "pool":
            return pool_output_size(size, self.kernel_size, self.stride, self.padding,
                                    self.ceil_mode, dilation=self.dilation)
        return conv_transpose_output_size(size, self.kernel_size, self.stride, self.padding,
                                          self.output_padding, self.dilation)


def conv(kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1,
         name: str | None = None) -> Layer:
    """A (possibly strided, dilated) convolution layer."""
    return Layer("conv", kernel_size, stride, padding, dilation, 0, name)


def pool(kernel_size: int, stride: int | None = None, padding: int = 0,
         name: str | None = None, *, dilation: int = 1, ceil_mode: bool = False) -> Layer:
    """A max or average pooling layer; ``stride`` defaults to ``kernel_size``."""
    return Layer("pool", kernel_size, kernel_size if stride is None else stride, padding,
                 dilation, 0, name, ceil_mode)


def transposed(kernel_size: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
               dilation: int = 1, name: str | None = None) -> Layer:
    """A transposed convolution layer."""
    return Layer("transposed", kernel_size, stride, padding, dilation, output_padding, name)


_MODULES = (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d)


def layers_of(module: nn.Module) -> list[Layer]:
    """The ``Conv2d``, ``ConvTranspose2d``, ``MaxPool2d`` and ``AvgPool2d`` layers of ``module``.

    In registration order (``module.modules()``), which is the forward order of an
    ``nn.Sequential`` and of most hand-written chains; other modules (activations, norms)
    do not change sizes or receptive fields and are skipped. Each layer is named by its
    dotted path. A chain is assumed: for branching networks use :func:`crfkit.summary.summary`.

    Raises
    ------
    TypeError
        If ``module`` is not an ``nn.Module``.
    ValueError
        If a layer differs between height and width (kernel, stride, padding, ...), or has
        ``padding="same"`` with an odd total padding (uneven sides).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
    layers = []
    for name, m in module.named_modules():
        if not isinstance(m, _MODULES):
            continue
        label = name or type(m).__name__
        kernel = _square(label, "kernel_size", m.kernel_size)
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            stride = _square(label, "stride", m.stride if m.stride is not None else kernel)
            layers.append(Layer("pool", kernel, stride, _square(label, "padding", m.padding),
                                _square(label, "dilation", getattr(m, "dilation", 1)), 0,
                                label, bool(m.ceil_mode)))
            continue
        dilation = _square(label, "dilation", m.dilation)
        padding = m.padding
        if isinstance(padding, str):  # Conv2d's "valid" / "same"
            total = dilation * (kernel - 1) if padding == "same" else 0
            if total % 2:
                raise ValueError(f"{label}: expected even total padding for padding='same', "
                                 f"got {total} (uneven sides)")
            padding = total // 2
        padding = _square(label, "padding", padding)
        stride = _square(label, "stride", m.stride)
        if isinstance(m, nn.ConvTranspose2d):
            layers.append(Layer("transposed", kernel, stride, padding, dilation,
                                _square(label, "output_padding", m.output_padding), label))
        else:
            layers.append(Layer("conv", kernel, stride, padding, dilation, 0, label))
    return layers


# ---------------------------------------------------------------------------------------
# receptive field, jump, region


@dataclass(frozen=True)
class _Field:
    """``first(o)``, ``last(o)`` for ``o`` in one period ``[0, T)``; ``None`` = no input."""

    period: int
    first: tuple[int | None, ...]
    last: tuple[int | None, ...]
    jump: Fraction

    def at(self, o: int) -> tuple[int, int] | None:
        q, r = divmod(o, self.period)
        if self.first[r] is None:
            return None
        shift = q * self.period * self.jump  # an integer: the pattern repeats every period
        return self.first[r] + int(shift), self.last[r] + int(shift)

    @property
    def extent(self) -> int:
        return max((hi - lo + 1 for lo, hi in zip(self.first, self.last) if lo is not None),
                   default=0)


_INPUT = _Field(1, (0,), (0,), Fraction(1))


def _step(field: _Field, layer: Layer) -> _Field:
    """The field of the layer's output from that of its input (see the module docstring)."""
    k, s, p, d = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    if layer.kind == "transposed":
        period, jump = field.period * s, field.jump / s
        # output o receives input i when o + p - a d = i s for a tap a
        reads = [[(o + p - a * d) // s for a in range(k) if (o + p - a * d) % s == 0]
                 for o in range(period)]
    else:
        period, jump = field.period // math.gcd(field.period, s), field.jump * s
        reads = [[o * s - p + a * d for a in range(k)] for o in range(period)]  # the taps of o
    first, last = [], []
    for inputs in reads:
        regions = [r for r in (field.at(i) for i in inputs) if r is not None]
        first.append(min((lo for lo, _ in regions), default=None))
        last.append(max((hi for _, hi in regions), default=None))
    return _Field(period, tuple(first), tuple(last), jump)


def _fields(layers: Sequence[Layer]) -> list[_Field]:
    out, field = [], _INPUT
    for layer in layers:
        field = _step(field, layer)
        out.append(field)
    return out


def _as_number(value: Fraction) -> int | Fraction:
    return int(value) if value.denominator == 1 else value


def receptive_field(layers: Sequence[Layer] | nn.Module) -> int:
    """Receptive field of the last layer of the stack, in input pixels (exact).

    The largest ``last - first + 1`` over output pixels, on an unbounded input (see the
    module docstring); 1 for an empty stack; 0 if no output pixel depends on any input
    pixel (a degenerate stack, e.g. a 1x1 stride-2 transposed convolution followed by a
    1x1 stride-2 convolution with padding 1, which reads only the inserted zeros).

    Examples
    --------
    >>> receptive_field([conv(3), conv(3), conv(3)])  # VGG: three 3x3 see 7x7
    7
    >>> receptive_field([transposed(4, stride=2)])  # each output gets ceil(4 / 2) inputs
    2
    """
    layers = _layers(layers)
    return _fields(layers)[-1].extent if layers else 1


def output_stride(layers: Sequence[Layer] | nn.Module) -> int | Fraction:
    """Jump of the last layer: the distance in input pixels between neighbouring outputs.

    The product of the strides of the convolutions and pools divided by those of the
    transposed layers: an ``int`` when that is whole, else a ``fractions.Fraction``.

    Examples
    --------
    >>> output_stride([conv(3, stride=2), pool(2), conv(3)])
    4
    >>> output_stride([transposed(4, stride=2, padding=1)])
    Fraction(1, 2)
    """
    jump = Fraction(1)
    for layer in _layers(layers):
        jump = jump / layer.stride if layer.kind == "transposed" else jump * layer.stride
    return _as_number(jump)


def input_region(layers: Sequence[Layer] | nn.Module, index: int) -> tuple[int, int] | None:
    """First and last input pixel that influence output pixel ``index`` (one axis).

    On an unbounded input, in the input's pixel coordinates (negative = in the padding, or
    beyond it); ``None`` if no input pixel reaches that output (it only holds the bias).
    For a finite image the region is clipped at the borders.

    Examples
    --------
    >>> input_region([conv(3, padding=1), conv(3, stride=2)], 4)
    (7, 11)
    """
    layers = _layers(layers)
    if not _is_int(index):
        raise TypeError(f"index: expected an int, got {type(index).__name__}")
    return (_fields(layers)[-1] if layers else _INPUT).at(int(index))


# ---------------------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class ArithmeticRow:
    """One layer of :func:`describe`.

    Attributes
    ----------
    name, kind : str
    kernel_size, stride, padding, dilation : int
    output_size : int or None
        Spatial size after the layer (``None`` without an ``input_size``).
    receptive_field : int
        In input pixels (exact; see the module docstring).
    jump : int or Fraction
        Distance in input pixels between neighbouring outputs of the layer.
    """

    name: str
    kind: str
    kernel_size: int
    stride: int
    padding: int
    dilation: int
    output_size: int | None
    receptive_field: int
    jump: int | Fraction


@dataclass(frozen=True)
class ArithmeticTable:
    """Result of :func:`describe`: one row per layer and the totals.

    Attributes
    ----------
    rows : list of ArithmeticRow
    input_size : int or None
    receptive_field : int
        That of the last layer (1 for an empty stack).
    output_stride : int or Fraction
        Jump of the last layer.
    """

    rows: list[ArithmeticRow]
    input_size: int | None
    receptive_field: int
    output_stride: int | Fraction

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[ArithmeticRow]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> ArithmeticRow:
        return self.rows[index]

    def _cells(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        header = ("#", "layer", "kind", "k", "s", "p", "d", "size", "RF", "jump")
        body = [(str(i), r.name, r.kind, str(r.kernel_size), str(r.stride), str(r.padding),
                 str(r.dilation), "-" if r.output_size is None else str(r.output_size),
                 str(r.receptive_field), str(r.jump)) for i, r in enumerate(self.rows)]
        return header, body

    def _footer(self) -> str:
        size = "" if self.input_size is None else f"input {self.input_size}   "
        return (f"{size}receptive field {self.receptive_field}   "
                f"output stride {self.output_stride}")

    def __str__(self) -> str:
        header, body = self._cells()
        widths = [max(len(row[c]) for row in [header, *body]) for c in range(len(header))]
        left = {1, 2}

        def fmt(row: Sequence[str]) -> str:
            return "  ".join(s.ljust(w) if c in left else s.rjust(w)
                             for c, (s, w) in enumerate(zip(row, widths))).rstrip()

        rule = "-" * len(fmt(header))
        return "\n".join([fmt(header), rule, *(fmt(r) for r in body), rule, self._footer()])

    def _repr_html_(self) -> str:
        header, body = self._cells()
        th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                      for row in body)
        return (f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"
                f"<p>{html.escape(self._footer())}</p>")


def describe(layers: Sequence[Layer] | nn.Module, input_size: int | None = None) -> ArithmeticTable:
    """Tabulate a stack: per layer its kernel, stride, output size, receptive field and jump.

    Parameters
    ----------
    layers : list of Layer, or nn.Module
        A module is read with :func:`layers_of`.
    input_size : int, optional
        Height (= width) of the input image; without it the output sizes are ``None``.

    Returns
    -------
    ArithmeticTable
        ``.rows``, ``.receptive_field``, ``.output_stride``; ``print`` it for a text table
        (a notebook shows it as HTML).

    Raises
    ------
    ValueError
        If a layer's input is too small for it (naming the layer).

    Examples
    --------
    >>> t = describe([conv(3, padding=1), pool(2), conv(3, padding=2, dilation=2),
    ...               transposed(4, stride=2, padding=1)], input_size=32)
    >>> [(r.output_size, r.receptive_field, r.jump) for r in t]
    [(32, 3, 1), (16, 4, 2), (16, 12, 2), (32, 14, 1)]
    """
    layers = _layers(layers)
    if input_size is not None:
        _ints(input_size=(input_size, 1))
    rows, size = [], input_size
    for i, (layer, field) in enumerate(zip(layers, _fields(layers))):
        name = layer.name if layer.name is not None else str(i)
        if size is not None:
            try:
                size = layer.output_size(size)
            except ValueError as err:
                raise ValueError(f"input_size: expected a size that reaches every layer, got "
                                 f"{input_size}, which fails at layer {i} ({name!r}): "
                                 f"{err}") from None
        rows.append(ArithmeticRow(name, layer.kind, layer.kernel_size, layer.stride,
                                  layer.padding, layer.dilation, size, field.extent,
                                  _as_number(field.jump)))
    return ArithmeticTable(rows, input_size, receptive_field(layers), output_stride(layers))


# ---------------------------------------------------------------------------------------
# checks


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _ints(**values: tuple[object, int]) -> None:
    """Raise unless each ``name=(value, minimum)`` is an int >= minimum."""
    for name, (value, minimum) in values.items():
        check_int(name, value, minimum=minimum)


def _check_output_padding(output_padding: int, stride: int, dilation: int) -> None:
    if not (output_padding < stride or output_padding < dilation):
        raise ValueError(f"output_padding: expected smaller than stride or dilation (torch's "
                         f"rule), got output_padding={output_padding} with stride={stride}, "
                         f"dilation={dilation}")


def _square(label: str, attribute: str, value: object) -> int:
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ValueError(f"{label}: expected the same {attribute} for height and width, "
                             f"got {tuple(value)}; describe each axis with its own Layer")
        value = value[0]
    return int(value)


def _layers(layers: object) -> list[Layer]:
    if isinstance(layers, nn.Module):
        return layers_of(layers)
    if (isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence)
            or not all(isinstance(layer, Layer) for layer in layers)):
        raise TypeError(f"layers: expected a list of Layer or an nn.Module, "
                        f"got {type(layers).__name__}")
    return list(layers)
