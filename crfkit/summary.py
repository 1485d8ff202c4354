"""A layer-by-layer table of a network: output shapes, parameters, receptive field, MACs.

``summary(model, input_size)`` runs one forward pass on a random input with forward hooks on
every leaf module (a module without children: convolution, linear, pooling, norm,
activation, dropout, ...) and records, in execution order, for each call:

* the output shape and the module's own parameter count;
* the **multiply-accumulates** (MACs) of the call, for the whole batch given:

  - convolution ``ConvNd``: ``out_elements * (C_in / groups) * prod(kernel)``;
  - transposed convolution: ``in_elements * (C_out / groups) * prod(kernel)``;
  - ``Linear``: ``in_features * out_features`` per input row;
  - everything else (norms, activations, pooling, dropout): counted as 0. They do
    ``O(elements)`` work, small next to the convolutions; a bias add is not counted either.

* the **receptive field** ``r`` and the effective stride ("jump") ``j`` of one output
  element, per spatial dimension, with respect to the network input. They are computed by
  :mod:`crfkit.nn.arithmetic` (one implementation of the convolution arithmetic): each
  convolution, pooling or transposed-convolution call adds its :class:`~crfkit.nn.arithmetic.Layer`
  (kernel ``k``, stride ``s``, padding ``p``, dilation ``d``, one per spatial axis) to the chain
  of layers behind its input, and the row shows
  :func:`~crfkit.nn.arithmetic.receptive_field` and :func:`~crfkit.nn.arithmetic.output_stride`
  of that chain. For convolutions and pools this is the recurrence

  .. math::

      r_{out} = r_{in} + (d (k - 1)) \\, j_{in}, \\qquad j_{out} = j_{in} s,

  starting from ``r = j = 1`` at the input (Araujo et al. 2019, Eq. 1-2); a stack of ``n``
  3x3 convolutions has ``r = 2n + 1``. After a transposed convolution the values are exact
  too (arithmetic follows the first and last input pixel of each output phase): the jump is
  divided by ``s`` (a ``fractions.Fraction`` below one pixel, e.g. ``1/2`` after a stride-2
  upsampling of the input), and a 4x4 stride-2 transposed layer gives each output
  ``ceil(4 / 2) = 2`` input pixels. An adaptive pool counts as a pool with
  ``s = floor(in / out)``, ``k = in - (out - 1) s`` (at least 1). Layers that mix all positions
  (``Linear``, a global pool to 1x1 and what follows them) are marked ``global``
  (receptive field: the whole input). Any other leaf with an int ``stride`` attribute
  (such as :class:`crfkit.models.PadShortcut`) counts as a convolution with ``k = 1``; the
  rest pass ``r, j`` through.

  The chain is carried **per tensor**: a layer extends the chain of the tensor it was
  called on. When that tensor came out of an operation that is not a module (``torch.cat``,
  ``x + y``, ``flatten``), the chain with the largest finite receptive field recorded so far
  is used (so the global gate of an SE block does not make the rest of the network global).
  This is exact for chains, for residual additions (the residual branch is the larger) and
  for concatenations of branches that just ran (Inception, DenseNet); for other multi-branch
  graphs it follows execution order and gives the main path's value, an approximation.
  Padding does not change ``r`` of a convolution (the field is measured on the padded grid
  and can exceed the image).

Cost: one forward pass (under ``torch.no_grad``, in eval mode) plus a hook per leaf call; each
new chain is measured once by :mod:`crfkit.nn.arithmetic`, ``O(L)`` for ``L`` layers (``O(L^2)``
in all).

References
----------
Araujo, A., Norris, W., Sim, J. (2019). Computing receptive fields of convolutional neural
networks. Distill. https://distill.pub/2019/computing-receptive-fields/
Simonyan, K., Zisserman, A. (2015). Very deep convolutional networks for large-scale image
recognition. ICLR (Sec. 2.3: three 3x3 layers see 7x7 with 27C² instead of 49C² weights).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import torch
from torch import nn

from crfkit.nn.arithmetic import Layer, output_stride, receptive_field

__all__ = ["LayerRow", "LayerTable", "summary"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_T = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
         nn.LPPool1d, nn.LPPool2d)
_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
             nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


@dataclass(frozen=True)
class LayerRow:
    """One leaf-module call of :func:`summary`.

    Attributes
    ----------
    name : str
        Dotted module name (``"features.0"``); ``""`` for the model itself.
    type : str
        Class name (``"Conv2d"``).
    output_shape : tuple of int
        Shape of the output (the first tensor if it returns several).
    params : int
        Parameters of this module (all of them, trainable or not).
    macs : int
        Multiply-accumulates of this call for the whole batch (see the module docstring).
    receptive_field : tuple of int, or None
        Receptive field per spatial dimension of one output element; ``None`` = global.
    jump : tuple of int or Fraction, or None
        Effective stride per spatial dimension (distance in input pixels between adjacent
        outputs; a ``Fraction`` after upsampling below one input pixel); ``None`` = global.
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    receptive_field: tuple[int, ...] | None
    jump: tuple[int | Fraction, ...] | None


@dataclass
class LayerTable:
    """The result of :func:`summary`: rows in execution order and totals.

    Attributes
    ----------
    rows : list of LayerRow
    input_size : tuple of int
    total_params : int
        Parameters of the model (each counted once, including any that sit on non-leaf
        modules).
    trainable_params : int
        Those with ``requires_grad``.
    total_macs : int
        Sum of the rows' MACs.
    """

    rows: list[LayerRow]
    input_size: tuple[int, ...]
    total_params: int
    trainable_params: int
    total_macs: int = field(init=False)

    def __post_init__(self) -> None:
        self.total_macs = sum(r.macs for r in self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[LayerRow]:
        return iter(self.rows)

    def __getitem__(self, index: int) -> LayerRow:
        return self.rows[index]

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """Output shape of the last leaf call (``None`` for an empty table)."""
        return self.rows[-1].output_shape if self.rows else None

    def __str__(self) -> str:
        header = ("#", "layer", "type", "output shape", "params", "MACs", "RF", "jump")
        lines = [header]
        for i, r in enumerate(self.rows):
            lines.append((str(i), r.name or "(model)", r.type, str(list(r.output_shape)),
                          f"{r.params:,}", _human(r.macs) if r.macs else "-",
                          _fmt_dims(r.receptive_field), _fmt_dims(r.jump)))
        widths = [max(len(row[c]) for row in lines) for c in range(len(header))]
        right = {0, 4, 5, 6, 7}

        def fmt(row: Sequence[str]) -> str:
            return "  ".join(s.rjust(w) if c in right else s.ljust(w)
                             for c, (s, w) in enumerate(zip(row, widths))).rstrip()

        rule = "-" * len(fmt(header))
        out = [fmt(header), rule] + [fmt(row) for row in lines[1:]] + [rule]
        out.append(f"input {list(self.input_size)}   params {self.total_params:,} "
                   f"(trainable {self.trainable_params:,})   MACs {self.total_macs:,} "
                   f"({_human(self.total_macs)})")
        return "\n".join(out)

    def __repr__(self) -> str:
        return (f"LayerTable({len(self.rows)} rows, total_params={self.total_params:,}, "
                f"total_macs={self.total_macs:,})")


def summary(model: nn.Module, input_size: Sequence[int],
            device: torch.device | str | None = None,
            dtype: torch.dtype | None = None) -> LayerTable:
    """Tabulate every leaf layer of ``model``: output shape, parameters, receptive field, MACs.

    Parameters
    ----------
    model : nn.Module
        Any module; it is run once in eval mode under ``torch.no_grad`` and its training
        flag is restored afterwards.
    input_size : sequence of int
        Full input shape **including the batch**, e.g. ``(1, 3, 224, 224)``
        (``[B, C, H, W]``); the spatial dimensions are those after ``[B, C]``.
    device : torch.device or str, optional
        Where to run; default: the device of the model's first parameter (CPU if none).
    dtype : torch.dtype, optional
        Input dtype; default: that of the first floating parameter (float32 if none).

    Returns
    -------
    LayerTable
        ``.rows`` (one :class:`LayerRow` per leaf call, in execution order),
        ``.total_params``, ``.trainable_params``, ``.total_macs``; ``print`` it for a table.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module``.
    ValueError
        If ``input_size`` is not a sequence of at least two positive ints.

    Examples
    --------
    The first layer of the original AlexNet (Krizhevsky et al. 2012): 96 filters
    11x11x3, stride 4, on a 227x227 image.

    >>> t = summary(nn.Conv2d(3, 96, 11, stride=4), (1, 3, 227, 227))
    >>> t.total_params, t.rows[0].output_shape, t.rows[0].receptive_field, t.total_macs
    (34944, (1, 96, 55, 55), (11, 11), 105415200)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if (isinstance(input_size, (str, bytes)) or not isinstance(input_size, Sequence)
            or len(input_size) < 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1
                       for s in input_size)):
        raise ValueError(
            "input_size: expected a sequence of at least two positive ints including the "
            f"batch, e.g. (1, 3, 224, 224), got {input_size!r}"
        )
    params = list(model.parameters())
    if device is None:
        device = params[0].device if params else torch.device("cpu")
    if dtype is None:
        floats = [p.dtype for p in params if p.is_floating_point()]
        dtype = floats[0] if floats else torch.float32
    x = torch.randn(tuple(input_size), generator=torch.Generator().manual_seed(0),
                    dtype=dtype).to(device)

    spatial = len(input_size) - 2
    start: tuple[tuple[Layer, ...], ...] = ((),) * spatial  # per axis, the layers behind a tensor
    # chain per tensor: id -> (tensor kept alive, chains); chains None = global
    state: dict[int, tuple[torch.Tensor, tuple[tuple[Layer, ...], ...] | None]] = {id(x): (x, start)}
    widest: list = [start, (1,) * spatial]  # the chains of the largest finite field so far, and that field
    fields: dict = {}  # chain -> (receptive field, jump), computed once per chain
    rows: list[LayerRow] = []
    names = {m: n for n, m in model.named_modules()}

    def measure(chains):
        if chains is None:
            return None, None
        for chain in chains:
            if chain not in fields:
                fields[chain] = (receptive_field(list(chain)), output_stride(list(chain)))
        return tuple(fields[c][0] for c in chains), tuple(fields[c][1] for c in chains)

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        inp = inputs[0] if inputs else None
        out = output
        if isinstance(out, (tuple, list)):
            out = out[0]
        out_shape = tuple(out.shape) if isinstance(out, torch.Tensor) else ()
        if isinstance(inp, torch.Tensor) and id(inp) in state:
            chains = state[id(inp)][1]
        else:
            chains = widest[0]  # from an untracked op: the main path's chain
        if chains is not None:
            layers = _layers(module, inp, out, spatial)
            if layers is None:
                chains = None
            elif layers:
                chains = tuple(c + (layer,) for c, layer in zip(chains, layers))
        rf, jump = measure(chains)
        if isinstance(out, torch.Tensor):
            state[id(out)] = (out, chains)
        if rf is not None and math.prod(rf) >= math.prod(widest[1]):
            widest[0], widest[1] = chains, rf
        own = sum(p.numel() for p in module.parameters(recurse=False))
        rows.append(LayerRow(names.get(module, "?"), type(module).__name__, out_shape, own,
                             _macs(module, inp, out), rf, jump))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return LayerTable(rows, tuple(input_size), sum(p.numel() for p in params),
                      sum(p.numel() for p in params if p.requires_grad))


def _tuple(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * n


def _layers(module: nn.Module, inp: object, out: object, n: int):
    """The module as one :class:`~crfkit.nn.arithmetic.Layer` per spatial axis; ``()`` for a
    layer that leaves ``r, j`` alone, ``None`` for one that mixes all positions (global).
    See the module docstring."""
    if isinstance(module, nn.Linear):
        return None
    if n == 0:
        return ()
    if isinstance(module, _CONV + _CONV_T):
        k, s, d = _tuple(module.kernel_size, n), _tuple(module.stride, n), _tuple(module.dilation, n)
        if isinstance(module.padding, str):  # "valid" / "same": torch pads total // 2 on the left
            p = tuple(dd * (kk - 1) // 2 if module.padding == "same" else 0 for kk, dd in zip(k, d))
        else:
            p = _tuple(module.padding, n)
        if isinstance(module, _CONV_T):
            op = _tuple(module.output_padding, n)
            return tuple(Layer("transposed", *dims) for dims in zip(k, s, p, d, op))
        return tuple(Layer("conv", *dims) for dims in zip(k, s, p, d))
    if isinstance(module, _POOL):
        k = _tuple(module.kernel_size, n)
        s = _tuple(module.stride if module.stride is not None else module.kernel_size, n)
        p = _tuple(getattr(module, "padding", 0), n)
        d = _tuple(getattr(module, "dilation", 1), n)
        return tuple(Layer("pool", *dims) for dims in zip(k, s, p, d))
    if isinstance(module, _ADAPTIVE) and isinstance(inp, torch.Tensor) and isinstance(out, torch.Tensor):
        size_in, size_out = inp.shape[-n:], out.shape[-n:]
        if all(o == 1 for o in size_out):
            return None  # global pooling
        s = tuple(max(1, i // o) for i, o in zip(size_in, size_out))
        k = tuple(max(1, i - (o - 1) * ss) for i, o, ss in zip(size_in, size_out, s))
        return tuple(Layer("pool", kk, ss) for kk, ss in zip(k, s))
    stride = getattr(module, "stride", None)
    if isinstance(stride, int) and not isinstance(stride, bool) and stride > 1:
        return (Layer("conv", 1, stride),) * n  # e.g. a subsampling shortcut: k = 1, s = stride
    return ()


def _macs(module: nn.Module, inp: object, out: object) -> int:
    """Multiply-accumulates of one call (see the module docstring)."""
    if isinstance(module, _CONV) and isinstance(out, torch.Tensor):
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return out.numel() * per_output
    if isinstance(module, _CONV_T) and isinstance(inp, torch.Tensor):
        per_input = (module.out_channels // module.groups) * math.prod(module.kernel_size)
        return inp.numel() * per_input
    if isinstance(module, nn.Linear) and isinstance(out, torch.Tensor):
        return (out.numel() // module.out_features) * module.in_features * module.out_features
    return 0


def _fmt_dims(value: tuple[int, ...] | None) -> str:
    if value is None:
        return "global"
    if len(set(value)) == 1:
        return str(value[0])
    return "x".join(str(v) for v in value)


def _human(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)
