"""From-scratch layers of lectures 02 and 03, and the arithmetic of stacked layers.

``crfkit.nn.functional`` re-implements transposed convolution, atrous (dilated)
convolution and unpooling without calling the torch operation each one replaces, so a
lecture can show how they work and a test can prove they equal torch's own.
``crfkit.nn.arithmetic`` computes output sizes, receptive fields and output strides of a
stack of (possibly dilated, strided or transposed) layers.
"""

from crfkit.nn import arithmetic, functional

__all__ = ["arithmetic", "functional"]
