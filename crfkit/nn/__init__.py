"""From-scratch layers of lectures 02 and 03, and the arithmetic of stacked layers.

``crfkit.nn.functional`` re-implements transposed convolution, atrous (dilated)
convolution and unpooling without calling the torch operation each one replaces, so a
lecture can show how they work and a test can prove they equal torch's own.
``crfkit.nn.arithmetic`` computes output sizes, receptive fields and output strides of a
stack of (possibly dilated, strided or transposed) layers. ``crfkit.nn.crf_as_rnn`` holds the
layers that wrap an inference algorithm: :class:`MeanFieldCRF` (CRF-as-RNN on a dense CRF)
and :class:`GridMeanFieldCRF` (its grid twin).
"""

from crfkit.nn import arithmetic, functional
from crfkit.nn.crf_as_rnn import GridMeanFieldCRF, MeanFieldCRF

__all__ = ["arithmetic", "functional", "crf_as_rnn", "MeanFieldCRF", "GridMeanFieldCRF"]
