"""From-scratch layers: transposed convolution, atrous convolution, unpooling.

Each function re-implements a torch operation **without calling it** (no
``F.conv_transpose2d``, no ``dilation=`` of ``F.conv2d``, no ``F.unfold``, no
``F.max_unpool2d``), from slicing, ``einsum`` and zero tensors, so a lecture can show how
the layer works and the tests can prove it equals torch's own (forward and gradients).
Everything is batched (``[B, C, H, W]``; unbatched inputs are rejected), runs on the
device and in the dtype of its inputs, never modifies them and is differentiable by
autograd.

Convolution
-----------
torch's ``conv2d`` is a cross-correlation. With stride ``s``, zero padding ``p``,
dilation ``d`` and ``G`` groups, weight ``w`` of shape ``[C_out, C_in / G, kH, kW]``:

.. math::

    y[b, o, i, j] = \\text{bias}[o] + \\sum_{c \\in g(o)} \\sum_{a, a'}
        w[o, c, a, a'] \\; x_{pad}[b, c, \\, i s + a d, \\; j s + a' d]

(``c`` runs over the input channels of the group of ``o``), and each spatial size becomes

.. math::

    n' = \\lfloor (n + 2p - d(k - 1) - 1) / s \\rfloor + 1 .

:func:`dilated_conv2d` computes it as a **sum over the kernel taps** ``(a, a')`` of strided
slices of the padded input, each multiplied by one tap of the kernel: the *algorithme à
trous* (Holschneider et al. 1989; Mallat 1999), DeepLab's atrous convolution (Chen et al.
2018). A dilated convolution equals an ordinary one with the kernel spread out by
:func:`dilate_kernel` (``d - 1`` zeros between taps): the same weights see a field of
``d(k - 1) + 1`` pixels at no extra cost.

Transposed convolution
----------------------
The transposed convolution (FCN's "backwards convolution", DeconvNet's "deconvolution",
Long et al. 2015; Noh et al. 2015) is the **adjoint** of the convolution: the gradient of
``conv2d`` with respect to its input. Weight ``[C_in, C_out / G, kH, kW]``; every input
pixel adds a scaled copy of the kernel to the output:

.. math::

    y[b, o, \\, i s - p + a d, \\; j s - p + a' d] \\mathrel{+}= x[b, c, i, j] \\; w[c, o, a, a'],

.. math::

    n' = (n - 1) s - 2p + d(k - 1) + \\text{output\\_padding} + 1 .

Three readable forms compute the same thing (Dumoulin & Visin 2016, Sec. 4):

1. :func:`conv_transpose2d_scatter`: scatter the kernel, one tap at a time;
2. :func:`conv_transpose2d_zero_insertion`: put ``s - 1`` zeros between the input pixels
   (:func:`insert_zeros`), pad by ``d(k - 1) - p``, then an *ordinary stride-1*
   convolution with the flipped kernel whose channel axes are swapped;
3. :func:`conv_transpose2d_matrix`: write the convolution as a matrix ``M``
   (:func:`conv_matrix`); the transposed convolution multiplies by ``M^T``, hence its name.

With ``k`` not a multiple of ``s``, output pixels receive different numbers of kernel
copies: the checkerboard artefacts of Odena et al. (2016).

Unpooling
---------
:func:`nearest_unpool2d` copies each value into its ``s x s`` cell; :func:`bed_of_nails_unpool2d`
puts it at the top-left corner of the cell and zeros elsewhere (a transposed convolution
with a one-hot kernel); :func:`max_unpool2d` puts it back where the max-pooling found it,
using the switches (indices) that pooling recorded (Zeiler & Fergus 2014; DeconvNet;
SegNet, Badrinarayanan et al. 2017).

References
----------
Dumoulin, V., Visin, F. (2016). A guide to convolution arithmetic for deep learning.
arXiv:1603.07285.
Long, J., Shelhamer, E., Darrell, T. (2015). Fully convolutional networks for semantic
segmentation. CVPR.
Noh, H., Hong, S., Han, B. (2015). Learning deconvolution network for semantic
segmentation. ICCV.
Badrinarayanan, V., Kendall, A., Cipolla, R. (2017). SegNet: a deep convolutional
encoder-decoder architecture for image segmentation. TPAMI 39(12).
Zeiler, M. D., Fergus, R. (2014). Visualizing and understanding convolutional networks. ECCV.
Chen, L.-C., Papandreou, G., Kokkinos, I., Murphy, K., Yuille, A. L. (2018). DeepLab:
semantic image segmentation with deep convolutional nets, atrous convolution, and fully
connected CRFs. TPAMI 40(4).
Holschneider, M., Kronland-Martinet, R., Morlet, J., Tchamitchian, P. (1989). A real-time
algorithm for signal analysis with the help of the wavelet transform. In Wavelets,
Time-Frequency Methods and Phase Space, Springer.
Mallat, S. (1999). A Wavelet Tour of Signal Processing, 2nd ed. Academic Press (algorithme à
trous).
Odena, A., Dumoulin, V., Olah, C. (2016). Deconvolution and checkerboard artifacts.
Distill. https://distill.pub/2016/deconv-checkerboard/
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from crfkit._validate import check_positive_int, check_tensor

__all__ = [
    "MAX_MATRIX_ENTRIES",
    "bed_of_nails_unpool2d",
    "bilinear_kernel",
    "bilinear_upsampling_weight",
    "conv_matrix",
    "conv_transpose2d",
    "conv_transpose2d_matrix",
    "conv_transpose2d_scatter",
    "conv_transpose2d_zero_insertion",
    "dilate_kernel",
    "dilated_conv2d",
    "insert_zeros",
    "max_unpool2d",
    "nearest_unpool2d",
]

MAX_MATRIX_ENTRIES = 2**26
"""Largest matrix :func:`conv_matrix` builds (64 Mi entries: 512 MiB in float64)."""

Pair = int | tuple[int, int]
_METHODS = ("zero_insertion", "scatter", "matrix")


# ---------------------------------------------------------------------------------------
# atrous (dilated) convolution


def dilated_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                   stride: Pair = 1, padding: Pair = 0, dilation: Pair = 1,
                   groups: int = 1) -> torch.Tensor:
    """Atrous (dilated) 2-D convolution, the *algorithme à trous*: ``F.conv2d`` from scratch.

    .. math::

        y[b, o, i, j] = \\text{bias}[o] + \\sum_{a, a'} \\sum_{c \\in g(o)}
            w[o, c, a, a'] \\; x_{pad}[b, c, \\, i s + a d, \\; j s + a' d]

    One term per kernel tap ``(a, a')``: the slice of the padded input that starts at
    ``(a d, a' d)`` and steps by ``s``, times the ``[C_out, C_in / G]`` matrix of that tap.
    The "holes" (*trous*) are the ``d - 1`` skipped pixels between taps.
    Cost: ``kH kW`` batched matrix products, ``O(B C_out (C_in / G) kH kW H' W')``.

    Parameters
    ----------
    x : Tensor of shape ``[B, C_in, H, W]``
    weight : Tensor of shape ``[C_out, C_in / groups, kH, kW]``
    bias : Tensor of shape ``[C_out]``, optional
    stride, padding, dilation : int or (int, int)
        Per axis ``(height, width)``; stride and dilation >= 1, padding >= 0 (zeros).
    groups : int
        Divides ``C_in`` and ``C_out``; channel group ``g`` of the output sees only group
        ``g`` of the input.

    Returns
    -------
    Tensor of shape ``[B, C_out, H', W']``
        ``H' = floor((H + 2 p - d (kH - 1) - 1) / s) + 1``, likewise ``W'``. Equal to
        ``F.conv2d(x, weight, bias, stride, padding, dilation, groups)``, and to
        ``F.conv2d(x, dilate_kernel(weight, dilation), bias, stride, padding, 1, groups)``.

    References
    ----------
    Chen, L.-C. et al. (2018). DeepLab. TPAMI 40(4), Sec. 3.1 (atrous convolution).
    Holschneider, M. et al. (1989). A real-time algorithm for signal analysis with the help
    of the wavelet transform.
    """
    stride, padding, dilation, groups, out_size = _check_conv(
        x, weight, bias, stride, padding, dilation, groups)
    return _dilated_conv2d(x, weight, bias, stride, padding, dilation, groups, out_size)


def _dilated_conv2d(x, weight, bias, stride, padding, dilation, groups, out_size):
    (sh, sw), (ph, pw), (dh, dw), (h_out, w_out) = stride, padding, dilation, out_size
    batch, c_in = x.shape[:2]
    c_out, c_group, kh, kw = weight.shape
    x_pad = F.pad(x, (pw, pw, ph, ph))  # [B, C_in, H + 2ph, W + 2pw]
    xg = x_pad.reshape(batch, groups, c_group, *x_pad.shape[-2:])  # [B, G, C_in/G, Hp, Wp]
    wg = weight.reshape(groups, c_out // groups, c_group, kh, kw)  # [G, C_out/G, C_in/G, kH, kW]
    out = None
    for a in range(kh):
        for b in range(kw):
            top, left = a * dh, b * dw  # the tap reads the input shifted by (a d, b d)
            tap = xg[..., top:top + sh * (h_out - 1) + 1:sh,
                     left:left + sw * (w_out - 1) + 1:sw]  # [B, G, C_in/G, H', W']
            term = torch.einsum("bgchw,goc->bgohw", tap, wg[..., a, b])  # [B, G, C_out/G, H', W']
            out = term if out is None else out + term
    out = out.reshape(batch, c_out, h_out, w_out)  # [B, C_out, H', W']
    if bias is not None:
        out = out + bias[:, None, None]
    return out


def dilate_kernel(weight: torch.Tensor, dilation: Pair) -> torch.Tensor:
    """Spread a kernel out: ``dilation - 1`` zeros between neighbouring taps.

    ``weight[..., a, a']`` moves to ``[..., a d, a' d]``; the kernel grows from ``k`` to
    ``d (k - 1) + 1`` per axis. An ordinary convolution with the dilated kernel equals the
    dilated convolution with the original one (with the same stride, padding, groups),
    at the cost of ``(d (k - 1) + 1)^2`` multiplications per output instead of ``k^2``::

        F.conv2d(x, dilate_kernel(w, d), None, s, p) == dilated_conv2d(x, w, None, s, p, d)

    Parameters
    ----------
    weight : Tensor of shape ``[..., kH, kW]``
    dilation : int or (int, int), >= 1

    Returns
    -------
    Tensor of shape ``[..., d (kH - 1) + 1, d (kW - 1) + 1]``
    """
    check_tensor("weight", weight, dims="[..., kH, kW]")
    if weight.dim() < 2:
        raise ValueError(f"weight: expected at least 2 dimensions [..., kH, kW], "
                         f"got shape {list(weight.shape)}")
    return _insert_zeros(weight, _pair("dilation", dilation, 1))


def insert_zeros(x: torch.Tensor, stride: Pair) -> torch.Tensor:
    """Put ``stride - 1`` zeros between neighbouring pixels (the first step of form 2).

    ``x[..., i, j]`` moves to ``[..., i s, j s]``; no zeros are added after the last pixel.

    Parameters
    ----------
    x : Tensor of shape ``[..., H, W]``
    stride : int or (int, int), >= 1

    Returns
    -------
    Tensor of shape ``[..., (H - 1) s + 1, (W - 1) s + 1]``
    """
    check_tensor("x", x, dims="[..., H, W]")
    if x.dim() < 2:
        raise ValueError(f"x: expected at least 2 dimensions [..., H, W], "
                         f"got shape {list(x.shape)}")
    return _insert_zeros(x, _pair("stride", stride, 1))


def _insert_zeros(x, stride):
    sh, sw = stride
    h, w = x.shape[-2:]
    out = x.new_zeros(*x.shape[:-2], (h - 1) * sh + 1, (w - 1) * sw + 1)  # [..., H_z, W_z]
    out[..., ::sh, ::sw] = x
    return out


# ---------------------------------------------------------------------------------------
# transposed convolution


def conv_transpose2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                     stride: Pair = 1, padding: Pair = 0, output_padding: Pair = 0,
                     groups: int = 1, dilation: Pair = 1, *,
                     method: str = "zero_insertion") -> torch.Tensor:
    """Transposed 2-D convolution: ``F.conv_transpose2d`` from scratch.

    .. math::

        y[b, o, \\, i s - p + a d, \\; j s - p + a' d] \\mathrel{+}=
            x[b, c, i, j] \\; w[c, o, a, a'] \\qquad
        n' = (n - 1) s - 2p + d(k - 1) + \\text{output\\_padding} + 1

    The adjoint of :func:`dilated_conv2d` with the same weight, stride, padding, dilation
    and groups: ``<conv_transpose2d(x, w), z> = <x, conv2d(z, w)>``. ``padding`` *removes*
    ``p`` rows and columns on each side of the full output; ``output_padding`` adds rows
    and columns at the bottom and right (they pick the output size when several input
    sizes convolve to the same ``n``).

    Parameters
    ----------
    x : Tensor of shape ``[B, C_in, H, W]``
    weight : Tensor of shape ``[C_in, C_out / groups, kH, kW]``
        torch's layout for transposed convolutions (input channels first).
    bias : Tensor of shape ``[C_out]``, optional
    stride, padding, output_padding, dilation : int or (int, int)
        ``output_padding`` must be smaller than the stride or the dilation (torch's rule).
    groups : int
        Divides ``C_in``.
    method : {"zero_insertion", "scatter", "matrix"}
        Which of the three forms computes it (see :func:`conv_transpose2d_zero_insertion`,
        :func:`conv_transpose2d_scatter`, :func:`conv_transpose2d_matrix`); all agree to
        rounding. ``"matrix"`` is for small inputs only.

    Returns
    -------
    Tensor of shape ``[B, C_out, H', W']``

    Examples
    --------
    Each input pixel adds a copy of the kernel, scaled by its value, at ``(i s, j s)``:

    >>> x = torch.tensor([[1.0, 3, 0], [2, 0, 1], [0, 3, 1]])[None, None]  # [1, 1, 3, 3]
    >>> k = torch.tensor([[1.0, 1], [2, 0]])[None, None]  # [1, 1, 2, 2]
    >>> conv_transpose2d(x, k).int()[0, 0].tolist()  # 4x4
    [[1, 4, 3, 0], [4, 8, 1, 1], [4, 3, 6, 1], [0, 6, 2, 0]]
    >>> conv_transpose2d(x, k, stride=2, method="scatter").int()[0, 0, :2].tolist()  # 6x6
    [[1, 1, 3, 3, 0, 0], [2, 0, 6, 0, 0, 0]]

    References
    ----------
    Dumoulin, V., Visin, F. (2016). A guide to convolution arithmetic for deep learning,
    Sec. 4 (relationships 8-14).
    """
    if method not in _METHODS:
        raise ValueError(f"method: expected one of {list(_METHODS)}, got {method!r}")
    args = _check_transposed(x, weight, bias, stride, padding, output_padding, groups, dilation)
    return _TRANSPOSED[method](x, weight, bias, *args)


def conv_transpose2d_scatter(x: torch.Tensor, weight: torch.Tensor,
                             bias: torch.Tensor | None = None, stride: Pair = 1,
                             padding: Pair = 0, output_padding: Pair = 0, groups: int = 1,
                             dilation: Pair = 1) -> torch.Tensor:
    """Transposed convolution, form 1: every input pixel scatters a scaled kernel.

    Input pixel ``(i, j)`` adds ``x[:, c, i, j] * w[c, :, a, a']`` to output pixel
    ``(i s + a d, j s + a' d)`` of the full (uncropped) output. Grouping the additions by
    kernel tap ``(a, a')``, each tap adds one ``[C_in, C_out]`` matrix product of the whole
    input into a strided slice (step ``s``, offset ``(a d, a' d)``) of the output; then
    ``p`` rows and columns are cropped on each side (``output_padding`` extra rows and
    columns at the bottom and right, zeros where no kernel reached).
    Cost: ``kH kW`` batched matrix products, ``O(B C_in (C_out / G) kH kW H W)``.

    Parameters and result as for :func:`conv_transpose2d`.
    """
    args = _check_transposed(x, weight, bias, stride, padding, output_padding, groups, dilation)
    return _conv_transpose2d_scatter(x, weight, bias, *args)


def _conv_transpose2d_scatter(x, weight, bias, stride, padding, output_padding, groups,
                              dilation, out_size):
    (sh, sw), (ph, pw), (dh, dw), (h_out, w_out) = stride, padding, dilation, out_size
    batch, c_in, h, w = x.shape
    _, c_group_out, kh, kw = weight.shape
    # the full output before cropping, and room for output_padding past its end
    h_full, w_full = (h - 1) * sh + dh * (kh - 1) + 1, (w - 1) * sw + dw * (kw - 1) + 1
    out = x.new_zeros(batch, groups, c_group_out,
                      max(h_full, ph + h_out), max(w_full, pw + w_out))  # [B, G, C_out/G, Hf, Wf]
    xg = x.reshape(batch, groups, c_in // groups, h, w)  # [B, G, C_in/G, H, W]
    wg = weight.reshape(groups, c_in // groups, c_group_out, kh, kw)  # [G, C_in/G, C_out/G, kH, kW]
    for a in range(kh):
        for b in range(kw):
            top, left = a * dh, b * dw  # where tap (a, b) of the kernel copy of pixel (0, 0) lands
            out[..., top:top + sh * (h - 1) + 1:sh, left:left + sw * (w - 1) + 1:sw] += \
                torch.einsum("bgchw,gco->bgohw", xg, wg[..., a, b])  # [B, G, C_out/G, H, W]
    out = out[..., ph:ph + h_out, pw:pw + w_out]  # crop the padding: [B, G, C_out/G, H', W']
    out = out.reshape(batch, groups * c_group_out, h_out, w_out)  # [B, C_out, H', W']
    if bias is not None:
        out = out + bias[:, None, None]
    return out


def conv_transpose2d_zero_insertion(x: torch.Tensor, weight: torch.Tensor,
                                    bias: torch.Tensor | None = None, stride: Pair = 1,
                                    padding: Pair = 0, output_padding: Pair = 0,
                                    groups: int = 1, dilation: Pair = 1) -> torch.Tensor:
    """Transposed convolution, form 2: insert zeros, pad, convolve with the flipped kernel.

    1. :func:`insert_zeros`: ``s - 1`` zeros between input pixels, ``(n - 1) s + 1`` per axis;
    2. pad ``q = d (k - 1) - p`` zeros on each side, plus ``output_padding`` at the bottom
       and right (a negative ``q``, when ``p > d (k - 1)``, crops instead);
    3. an ordinary **stride-1** :func:`dilated_conv2d` (dilation ``d``) with the kernel
       flipped in both spatial axes and its channel axes swapped within each group,
       ``[C_in, C_out / G, kH, kW] -> [C_out, C_in / G, kH, kW]``.

    Dumoulin & Visin (2016), relationship 14: a transposed convolution is a direct
    convolution of the zero-stretched input. Cost: that of a convolution on an input
    ``s^2`` times larger, most of it multiplications by zero.

    Parameters and result as for :func:`conv_transpose2d`.
    """
    args = _check_transposed(x, weight, bias, stride, padding, output_padding, groups, dilation)
    return _conv_transpose2d_zero_insertion(x, weight, bias, *args)


def _conv_transpose2d_zero_insertion(x, weight, bias, stride, padding, output_padding, groups,
                                     dilation, out_size):
    (ph, pw), (oph, opw), (dh, dw) = padding, output_padding, dilation
    c_in, c_group_out, kh, kw = weight.shape
    z = _insert_zeros(x, stride)  # [B, C_in, (H-1)s+1, (W-1)s+1]
    qh, qw = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    z = _pad_or_crop(z, qh, qh + oph, qw, qw + opw)  # [B, C_in, H' + d(kH-1), W' + d(kW-1)]
    w_conv = weight.reshape(groups, c_in // groups, c_group_out, kh, kw)  # [G, Ci/G, Co/G, kH, kW]
    w_conv = w_conv.transpose(1, 2).reshape(groups * c_group_out, c_in // groups, kh, kw)
    w_conv = w_conv.flip(-2, -1)  # [C_out, C_in/G, kH, kW], flipped in space
    return _dilated_conv2d(z, w_conv, bias, (1, 1), (0, 0), dilation, groups, out_size)


def _pad_or_crop(x, top, bottom, left, right):
    """Zero-pad the last two axes by the positive amounts, crop the negative ones."""
    x = F.pad(x, (max(left, 0), max(right, 0), max(top, 0), max(bottom, 0)))
    h, w = x.shape[-2:]
    return x[..., max(-top, 0):h - max(-bottom, 0), max(-left, 0):w - max(-right, 0)]


def conv_matrix(weight: torch.Tensor, input_size: Pair, stride: Pair = 1, padding: Pair = 0,
                dilation: Pair = 1, groups: int = 1) -> torch.Tensor:
    """The convolution as a dense matrix: ``conv2d(x, w).flatten(1) == x.flatten(1) @ M.T``.

    Row ``(o, i, j)`` of ``M`` (flattened in ``[C_out, H', W']`` order) holds the weights
    with which output pixel ``(o, i, j)`` reads every input pixel ``(c, h, w)`` (columns,
    flattened in ``[C_in, H, W]`` order):

    .. math::

        M[(o, i, j), (c, h, w)] = \\sum_{a, a'} w[o, c, a, a'] \\,
            [h = i s - p + a d] \\, [w = j s - p + a' d]

    (zero when ``c`` is outside the group of ``o``; a block-diagonal matrix over groups).
    Each axis contributes a 0/1 *selection* matrix per tap, and ``M`` is their outer
    product with the kernel, summed over taps. ``M`` is sparse (at most ``kH kW C_in / G``
    non-zeros per row) but stored dense, so this is for small examples: it has
    ``C_out H' W' x C_in H W`` entries, limited to :data:`MAX_MATRIX_ENTRIES` (``2**26``;
    a ``[16, 32, 32]`` input with 16 output channels already needs ``2**28``).

    Parameters
    ----------
    weight : Tensor of shape ``[C_out, C_in / groups, kH, kW]``
    input_size : int or (int, int)
        ``(H, W)`` of the input.
    stride, padding, dilation : int or (int, int)
    groups : int

    Returns
    -------
    Tensor of shape ``[C_out * H' * W', C_in * H * W]``
        In ``weight``'s dtype, on its device; differentiable with respect to ``weight``.

    Raises
    ------
    ValueError
        If the matrix would have more than ``MAX_MATRIX_ENTRIES`` entries, or the input is
        too small for the kernel.

    References
    ----------
    Dumoulin, V., Visin, F. (2016). A guide to convolution arithmetic for deep learning,
    Sec. 4.1 (convolution as a matrix operation).
    """
    check_tensor("weight", weight, ndim=4, floating=True, dims="[C_out, C_in / groups, kH, kW]")
    size = _pair("input_size", input_size, 1)
    stride, padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
    dilation, groups = _pair("dilation", dilation, 1), check_positive_int("groups", groups)
    if weight.shape[0] % groups:
        raise ValueError(f"groups: expected a divisor of C_out = {weight.shape[0]} "
                         f"(weight.shape[0]), got {groups}")
    _check_kernel(weight)
    out_size = tuple(_conv_size(n, k, s, p, d) for n, k, s, p, d
                     in zip(size, weight.shape[-2:], stride, padding, dilation))
    if min(out_size) < 1:
        raise ValueError(
            f"input_size: expected at least {_min_conv_input(weight.shape[-2:], padding, dilation)}"
            f" for kernel {tuple(weight.shape[-2:])}, padding {padding}, dilation {dilation}, "
            f"got {size}")
    _check_matrix_size("input_size", weight.shape[0] * out_size[0] * out_size[1],
                       weight.shape[1] * groups * size[0] * size[1])
    return _conv_matrix(weight, size, stride, padding, dilation, groups, out_size)


def _conv_matrix(weight, size, stride, padding, dilation, groups, out_size):
    c_out, c_group, kh, kw = weight.shape
    sel_h = _tap_selection(size[0], out_size[0], kh, stride[0], padding[0], dilation[0],
                           weight)  # [kH, H', H]
    sel_w = _tap_selection(size[1], out_size[1], kw, stride[1], padding[1], dilation[1],
                           weight)  # [kW, W', W]
    wg = weight.reshape(groups, c_out // groups, c_group, kh, kw)  # [G, C_out/G, C_in/G, kH, kW]
    rows = (c_out // groups) * out_size[0] * out_size[1]
    # block g: [C_out/G, H', W', C_in/G, H, W] -> [C_out/G H' W', C_in/G H W]
    blocks = [torch.einsum("ocab,aih,bjw->oijchw", wg[g], sel_h, sel_w)
              .reshape(rows, c_group * size[0] * size[1]) for g in range(groups)]
    return torch.block_diag(*blocks)  # [C_out H' W', C_in H W]


def _tap_selection(n, n_out, k, s, p, d, like):
    """``S[a, i, h] = 1`` iff output ``i`` reads input ``h`` through tap ``a``: ``[k, n', n]``."""
    reads = (torch.arange(n_out, device=like.device)[None, :] * s - p
             + torch.arange(k, device=like.device)[:, None] * d)  # [k, n']
    return (reads[..., None] == torch.arange(n, device=like.device)).to(like.dtype)  # [k, n', n]


def conv_transpose2d_matrix(x: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor | None = None, stride: Pair = 1,
                            padding: Pair = 0, output_padding: Pair = 0, groups: int = 1,
                            dilation: Pair = 1) -> torch.Tensor:
    """Transposed convolution, form 3: multiply by the transpose of the convolution's matrix.

    With ``M = conv_matrix(weight, (H', W'), stride, padding, dilation, groups)`` (the
    weight read as that of a convolution from ``C_out`` to ``C_in`` channels, applied to an
    image of the *output* size), ``y = M^T x``: the convolution maps ``[C_out, H', W']`` to
    ``[C_in, H, W]``, its transpose maps back. When ``output_padding`` makes the
    convolution's output larger than ``[H, W]`` (possible when the dilation exceeds the
    stride), ``x`` is zero-padded to it first.
    Cost: ``O(B C_in C_out H W H' W')`` time and a dense matrix of ``C_in H W x C_out H' W'``
    entries (at most :data:`MAX_MATRIX_ENTRIES`): small examples only.

    Parameters and result as for :func:`conv_transpose2d`.

    Raises
    ------
    ValueError
        If the matrix would have more than ``MAX_MATRIX_ENTRIES`` entries.
    """
    args = _check_transposed(x, weight, bias, stride, padding, output_padding, groups, dilation)
    return _conv_transpose2d_matrix(x, weight, bias, *args)


def _conv_transpose2d_matrix(x, weight, bias, stride, padding, output_padding, groups,
                             dilation, out_size):
    batch, c_in, h, w = x.shape
    c_out = weight.shape[1] * groups
    h_out, w_out = out_size
    # the convolution that this transposes: [C_out, H', W'] -> [C_in, H_c, W_c], H_c >= H
    h_c, w_c = (_conv_size(n, k, s, p, d) for n, k, s, p, d
                in zip(out_size, weight.shape[-2:], stride, padding, dilation))
    _check_matrix_size("x", c_in * h_c * w_c, c_out * h_out * w_out)
    m = _conv_matrix(weight, out_size, stride, padding, dilation, groups,
                     (h_c, w_c))  # [C_in H_c W_c, C_out H' W']
    x = F.pad(x, (0, w_c - w, 0, h_c - h))  # [B, C_in, H_c, W_c]
    out = x.reshape(batch, c_in * h_c * w_c) @ m  # [B, C_out H' W']
    out = out.reshape(batch, c_out, h_out, w_out)  # [B, C_out, H', W']
    if bias is not None:
        out = out + bias[:, None, None]
    return out


def _check_matrix_size(name, rows, cols):
    if rows * cols > MAX_MATRIX_ENTRIES:
        raise ValueError(
            f"{name}: expected a convolution matrix of at most {MAX_MATRIX_ENTRIES:,} entries "
            f"(MAX_MATRIX_ENTRIES), got {rows:,} x {cols:,} = {rows * cols:,}; the matrix "
            "view is for small examples, use another method for this size")


_TRANSPOSED = {
    "zero_insertion": _conv_transpose2d_zero_insertion,
    "scatter": _conv_transpose2d_scatter,
    "matrix": _conv_transpose2d_matrix,
}


# ---------------------------------------------------------------------------------------
# unpooling


def nearest_unpool2d(x: torch.Tensor, scale: Pair = 2) -> torch.Tensor:
    """Nearest-neighbour unpooling ("copy everywhere"): each pixel fills its ``s x s`` cell.

    ``y[b, c, i, j] = x[b, c, floor(i / s), floor(j / s)]``; equals
    ``F.interpolate(x, scale_factor=s, mode="nearest")`` for an integer scale.

    Parameters
    ----------
    x : Tensor of shape ``[B, C, H, W]``
    scale : int or (int, int), >= 1

    Returns
    -------
    Tensor of shape ``[B, C, H s, W s]``
    """
    check_tensor("x", x, ndim=4, dims="[B, C, H, W]")
    sh, sw = _pair("scale", scale, 1)
    b, c, h, w = x.shape
    cells = x[:, :, :, None, :, None].expand(b, c, h, sh, w, sw)  # [B, C, H, sh, W, sw]
    return cells.reshape(b, c, h * sh, w * sw)  # [B, C, H sh, W sw]


def bed_of_nails_unpool2d(x: torch.Tensor, scale: Pair = 2) -> torch.Tensor:
    """"Bed of nails" unpooling: each value at the top-left of its ``s x s`` cell, zeros elsewhere.

    ``y[b, c, i s, j s] = x[b, c, i, j]``, all other pixels 0. It is a stride-``s``
    transposed convolution with the one-hot ``s x s`` kernel ``e_{(0, 0)}`` per channel
    (``groups = C``), and :func:`insert_zeros` followed by ``s - 1`` zero rows and columns.

    Parameters
    ----------
    x : Tensor of shape ``[B, C, H, W]``
    scale : int or (int, int), >= 1

    Returns
    -------
    Tensor of shape ``[B, C, H s, W s]``
    """
    check_tensor("x", x, ndim=4, dims="[B, C, H, W]")
    sh, sw = _pair("scale", scale, 1)
    b, c, h, w = x.shape
    out = x.new_zeros(b, c, h * sh, w * sw)  # [B, C, H sh, W sw]
    out[:, :, ::sh, ::sw] = x
    return out


def max_unpool2d(x: torch.Tensor, indices: torch.Tensor, kernel_size: Pair,
                 stride: Pair | None = None, padding: Pair = 0,
                 output_size: Sequence[int] | None = None) -> torch.Tensor:
    """Max unpooling with the pooling switches: ``F.max_unpool2d`` from scratch.

    Every value goes back to the position its max-pooling took it from, zeros elsewhere:
    ``y[b, c].flatten()[indices[b, c, i, j]] = x[b, c, i, j]``. The indices are those of
    ``F.max_pool2d(..., return_indices=True)``: per channel, a flat index into the
    ``H_out x W_out`` output, i.e. into the image that was pooled: when its size is not
    the default below (an odd size pooled by 2, say), pass it as ``output_size``, or the
    flat indices are read on a grid of another width. Overlapping pooling windows can
    select one position twice;
    it then receives that (same) value once, and in the backward pass the gradient at a
    position goes to every input that points to it (as in torch).

    Parameters
    ----------
    x : Tensor of shape ``[B, C, H, W]``
        The pooled values.
    indices : int64 Tensor of shape ``[B, C, H, W]``
        Values in ``[0, H_out W_out)``.
    kernel_size, stride, padding : int or (int, int)
        Those of the pooling; ``stride`` defaults to ``kernel_size``.
    output_size : (H_out, W_out) or (B, C, H_out, W_out), optional
        Default ``((H - 1) s - 2 p + k, (W - 1) s - 2 p + k)``, the smallest size the
        pooling could have come from; each entry must lie strictly within ``s`` of it
        (torch's rule), as pooling with floor rounding maps ``s`` sizes to one.

    Returns
    -------
    Tensor of shape ``[B, C, H_out, W_out]``

    References
    ----------
    Zeiler, M. D., Fergus, R. (2014). Visualizing and understanding convolutional networks,
    Sec. 2.1 (switches). Badrinarayanan, V. et al. (2017). SegNet, Sec. 3.
    """
    check_tensor("x", x, ndim=4, dims="[B, C, H, W]")
    check_tensor("indices", indices, dtype=torch.int64, dims="[B, C, H, W]")
    if indices.shape != x.shape:
        raise ValueError(f"indices: expected the shape of x {list(x.shape)}, "
                         f"got {list(indices.shape)}")
    kernel_size = _pair("kernel_size", kernel_size, 1)
    stride = kernel_size if stride is None else _pair("stride", stride, 1)
    padding = _pair("padding", padding, 0)
    default = tuple((n - 1) * s - 2 * p + k for n, k, s, p
                    in zip(x.shape[-2:], kernel_size, stride, padding))
    if output_size is None:
        out_size = default
    else:
        out_size = _unpool_output_size(output_size, default, stride)
    if min(out_size) < 1:
        raise ValueError(f"x: expected an input that unpools to a non-empty output, got spatial "
                         f"size {tuple(x.shape[-2:])} giving {out_size}")
    b, c, h, w = x.shape
    n_out = out_size[0] * out_size[1]
    if indices.numel() and not (0 <= int(indices.min()) and int(indices.max()) < n_out):
        raise ValueError(f"indices: expected values in [0, {n_out}) (H_out W_out for output "
                         f"size {out_size}), got [{int(indices.min())}, {int(indices.max())}]")
    flat = x.new_zeros(b, c, n_out)  # [B, C, H_out W_out]
    flat = flat.scatter(2, indices.reshape(b, c, h * w), x.reshape(b, c, h * w))
    return flat.reshape(b, c, *out_size)  # [B, C, H_out, W_out]


def _unpool_output_size(output_size, default, stride):
    if (isinstance(output_size, (str, bytes)) or not isinstance(output_size, Sequence)
            or len(output_size) not in (2, 4) or not all(_is_int(n) for n in output_size)):
        raise ValueError(f"output_size: expected (H_out, W_out) or (B, C, H_out, W_out) ints, "
                         f"got {output_size!r}")
    size = tuple(int(n) for n in output_size[-2:])
    for n, n0, s in zip(size, default, stride):
        if not n0 - s < n < n0 + s:
            raise ValueError(
                f"output_size: expected each size strictly between default - stride and "
                f"default + stride, {tuple(d - s for d, s in zip(default, stride))} and "
                f"{tuple(d + s for d, s in zip(default, stride))}, got {size}")
    return size


# ---------------------------------------------------------------------------------------
# bilinear initialisation (FCN)


def bilinear_kernel(kernel_size: int, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``[k, k]`` bilinear-interpolation kernel FCN initialises its upsampling with.

    ``w[i, j] = (1 - |i - c| / f) (1 - |j - c| / f)`` with ``f = ceil(k / 2)`` and
    ``c = f - 1`` for odd ``k``, ``c = f - 0.5`` for even ``k`` (Long et al. 2015,
    ``upsample_filt``).

    What a transposed convolution with stride ``f`` computes with it, compared with
    ``F.interpolate(x, scale_factor=f, mode="bilinear", align_corners=False)``, away from
    the border (there the interpolation repeats the edge pixel, the convolution pads with
    zeros):

    * ``k = 2f``, padding ``f // 2``, **even** ``f``: equal (FCN's 2x, 8x, 16x, 32x layers);
    * ``k = 2f - 1``, padding ``(f - 1) // 2``, **odd** ``f``: equal;
    * ``k = 2f``, padding ``f // 2``, odd ``f``: the bilinear interpolation shifted by half
      an output pixel (it samples at ``i - 1/2`` instead of ``i``), and one pixel larger.

    Parameters
    ----------
    kernel_size : int
    dtype : torch.dtype

    Returns
    -------
    Tensor of shape ``[k, k]``
    """
    check_positive_int("kernel_size", kernel_size)
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=dtype)
    filt = 1 - (og - center).abs() / factor  # [k]
    return filt[:, None] * filt[None, :]  # [k, k]


def bilinear_upsampling_weight(channels: int, factor: int, *,
                               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Weight ``[C, C, k, k]``, ``k = 2f - (f mod 2)``, of a transposed convolution that
    upsamples each of ``channels`` channels by ``factor`` bilinearly (no mixing of channels).

    Use with ``stride=factor, padding=factor // 2``: the output is ``f`` times the input
    size and equals bilinear interpolation with ``align_corners=False`` except for the
    ``f // 2`` outermost pixels (where interpolation repeats the edge and the convolution
    pads with zeros). The kernel size is FCN's (Long et al. 2015): ``2f`` for an even
    factor (FCN uses 2, 8, 16, 32), ``2f - 1`` for an odd one.
    """
    check_positive_int("channels", channels)
    check_positive_int("factor", factor)
    k = 2 * factor - factor % 2
    weight = torch.zeros(channels, channels, k, k, dtype=dtype)  # [C_in, C_out, k, k]
    idx = torch.arange(channels)
    weight[idx, idx] = bilinear_kernel(k, dtype=dtype)
    return weight


# ---------------------------------------------------------------------------------------
# checks at the public edge


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``, as ``(height, width)``."""
    if _is_int(value):
        pair = (int(value), int(value))
    elif (isinstance(value, (tuple, list)) and len(value) == 2
          and all(_is_int(v) for v in value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name}: expected an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name}: expected {what} values, got {value!r}")
    return pair


def _conv_size(n, k, s, p, d):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def _min_conv_input(kernel, padding, dilation):
    return tuple(max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(kernel, padding, dilation))


def _check_kernel(weight):
    if min(weight.shape) < 1:
        raise ValueError(f"weight: expected a non-empty kernel, got shape {list(weight.shape)}")


def _check_common(x, weight, bias, groups, dims_w):
    check_tensor("x", x, ndim=4, floating=True, dims="[B, C_in, H, W]")
    check_tensor("weight", weight, ndim=4, floating=True, dims=dims_w)
    if weight.dtype != x.dtype:
        raise TypeError(f"weight: expected the dtype of x, {x.dtype}, got {weight.dtype}")
    _check_kernel(weight)
    groups = check_positive_int("groups", groups)
    if x.shape[1] % groups:
        raise ValueError(f"groups: expected a divisor of C_in = {x.shape[1]} (x.shape[1]), "
                         f"got {groups}")
    return groups


def _check_bias(bias, x, c_out):
    if bias is None:
        return
    check_tensor("bias", bias, ndim=1, dims="[C_out]")
    if bias.shape[0] != c_out:
        raise ValueError(f"bias: expected shape [C_out] = [{c_out}], got {list(bias.shape)}")
    if bias.dtype != x.dtype:
        raise TypeError(f"bias: expected the dtype of x, {x.dtype}, got {bias.dtype}")


def _check_conv(x, weight, bias, stride, padding, dilation, groups):
    groups = _check_common(x, weight, bias, groups, "[C_out, C_in / groups, kH, kW]")
    stride, padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
    dilation = _pair("dilation", dilation, 1)
    c_in, c_out = x.shape[1], weight.shape[0]
    if weight.shape[1] * groups != c_in:
        raise ValueError(f"weight: expected C_in / groups = {c_in // groups} input channels in "
                         f"dim 1 (x has {c_in}, groups = {groups}), got shape "
                         f"{list(weight.shape)}")
    if c_out % groups:
        raise ValueError(f"groups: expected a divisor of C_out = {c_out} (weight.shape[0]), "
                         f"got {groups}")
    _check_bias(bias, x, c_out)
    out_size = tuple(_conv_size(n, k, s, p, d) for n, k, s, p, d
                     in zip(x.shape[-2:], weight.shape[-2:], stride, padding, dilation))
    if min(out_size) < 1:
        raise ValueError(
            f"x: expected spatial size at least "
            f"{_min_conv_input(weight.shape[-2:], padding, dilation)} for kernel "
            f"{tuple(weight.shape[-2:])}, padding {padding}, dilation {dilation}, "
            f"got {tuple(x.shape[-2:])}")
    return stride, padding, dilation, groups, out_size


def _check_transposed(x, weight, bias, stride, padding, output_padding, groups, dilation):
    groups = _check_common(x, weight, bias, groups, "[C_in, C_out / groups, kH, kW]")
    stride, padding = _pair("stride", stride, 1), _pair("padding", padding, 0)
    output_padding = _pair("output_padding", output_padding, 0)
    dilation = _pair("dilation", dilation, 1)
    c_in = x.shape[1]
    if weight.shape[0] != c_in:
        raise ValueError(f"weight: expected C_in = {c_in} (x.shape[1]) in dim 0, got shape "
                         f"{list(weight.shape)}")
    _check_bias(bias, x, weight.shape[1] * groups)
    if not all(op < s or op < d for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"output_padding: expected smaller than stride or dilation (torch's "
                         f"rule), got output_padding={output_padding} with stride={stride}, "
                         f"dilation={dilation}")
    out_size = tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, k, s, p, op, d
                     in zip(x.shape[-2:], weight.shape[-2:], stride, padding, output_padding,
                            dilation))
    if min(out_size) < 1:
        raise ValueError(f"x: expected an input large enough for a non-empty output, got "
                         f"spatial size {tuple(x.shape[-2:])}, which gives {out_size} with "
                         f"padding {padding}")
    return stride, padding, output_padding, groups, dilation, out_size
