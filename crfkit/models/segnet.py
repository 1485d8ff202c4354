"""An encoder-decoder with max-unpooling: SegNet / DeconvNet style.

The encoder is a VGG-like stack of conv-BN-ReLU stages, each followed by a 2x2 max pool
that **remembers where each maximum came from** (its "switches", Zeiler & Fergus 2014).
The decoder mirrors it: each stage first max-unpools with the switches of the matching
encoder pool (the value goes back to the position of the maximum, zeros elsewhere: a
sparse map, "deconvolution" in the sense of Noh et al. 2015, Fig. 3), then densifies it
with conv-BN-ReLU layers (Badrinarayanan et al. 2017, Sec. 3)::

    image [B, C, H, W]
    encoder s = 1..S:  conv3x3-BN-ReLU x n_s;  maxpool 2/2, indices i_s -> [B, C_s, H_s, W_s]
    decoder s = S..1:  maxunpool(i_s) to the size before pool s;  conv3x3-BN-ReLU x n_s
                       (the last convolution of stage s outputs C_{s-1} channels)
    classifier: conv3x3 -> scores [B, K, H, W]

Unlike FCN, no learnt upsampling and no copy of encoder features: only the pooling
indices travel from encoder to decoder (2 bits per pooled value instead of a feature
map), and boundaries come back where the maxima were.

Any input size: the pools round down (``H_s = floor(H_{s-1} / 2)``), and
``nn.MaxUnpool2d`` is given ``output_size`` (the size before the pool), so odd sizes come
back exactly; the last row/column an odd size drops gets only what the decoder
convolutions spread into it. The input needs ``H, W >= 2^S`` (32 for 5 stages).

Small configuration (C=3, K=10): ``segnet_small()``, 5 stages of widths 16, 32, 64, 64, 96
and 1, 2, 2, 2, 2 convolutions (the backbone of the small FCNs): 568,314 parameters, 87.6M
multiply-accumulates per 64x64 image.

References
----------
V. Badrinarayanan, A. Kendall, R. Cipolla. SegNet: A deep convolutional encoder-decoder
architecture for image segmentation. TPAMI 39(12), 2017. https://arxiv.org/abs/1511.00561
H. Noh, S. Hong, B. Han. Learning deconvolution network for semantic segmentation.
ICCV 2015. https://arxiv.org/abs/1505.04366
M. D. Zeiler, R. Fergus. Visualizing and understanding convolutional networks. ECCV 2014.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from crfkit._validate import check_positive_int
from crfkit.models._common import init_weights
from crfkit.models.backbone import SMALL_DEPTHS, SMALL_WIDTHS, check_widths_depths, vgg_stage

__all__ = ["SegNet", "segnet_small"]


class SegNet(nn.Module):
    """Encoder-decoder with max-unpooling (Badrinarayanan et al. 2017; Noh et al. 2015).

    Parameters
    ----------
    num_classes : int
        ``K``.
    in_channels : int
        ``C`` of the image.
    widths, depths : sequence of ints, same length ``S``
        Channels and 3x3 convolutions per encoder stage; the decoder mirrors them.

    Attributes
    ----------
    encoder, decoder : nn.ModuleList
        ``S`` stages each; ``decoder[s]`` undoes ``encoder[s]`` (applied in reverse order).
    pool : nn.MaxPool2d
        2x2/2, ``return_indices=True``.
    unpool : nn.MaxUnpool2d
        2x2/2.
    classifier : nn.Conv2d
        3x3, ``C_1 -> K``.

    Shapes
    ------
    ``[B, C, H, W] -> [B, K, H, W]`` for ``H, W >= 2^S``.

    References
    ----------
    V. Badrinarayanan, A. Kendall, R. Cipolla. SegNet. TPAMI 2017.
    H. Noh, S. Hong, B. Han. Learning deconvolution network for semantic segmentation.
    ICCV 2015.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, *,
                 widths: Sequence[int] = SMALL_WIDTHS, depths: Sequence[int] = SMALL_DEPTHS) -> None:
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        if isinstance(widths, Sequence) and not isinstance(widths, (str, bytes)):
            n_stages = max(len(widths), 1)
        else:
            n_stages = 1
        widths, depths = check_widths_depths(widths, depths, stages=n_stages)
        self.num_classes = num_classes
        self.min_size = 2 ** len(widths)
        channels = (in_channels,) + widths
        self.encoder = nn.ModuleList(
            vgg_stage(channels[s], channels[s + 1], depths[s]) for s in range(len(widths))
        )
        # Decoder stage s: n_s - 1 convs at C_s, then one conv C_s -> C_{s-1} (C_0 := C_1 for s = 1).
        self.decoder = nn.ModuleList()
        for s in range(len(widths)):
            out = channels[s] if s > 0 else widths[0]
            layers = vgg_stage(widths[s], widths[s], depths[s] - 1) if depths[s] > 1 else nn.Sequential()
            layers.extend(vgg_stage(widths[s], out, 1))
            self.decoder.append(layers)
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.classifier = nn.Conv2d(widths[0], num_classes, 3, padding=1)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h < self.min_size or w < self.min_size:
            raise ValueError(
                f"x: expected H, W >= {self.min_size} for {len(self.encoder)} pooling stages, "
                f"got shape {list(x.shape)}"
            )
        switches = []
        for stage in self.encoder:
            x = stage(x)  # [B, C_s, H_{s-1}, W_{s-1}]
            size = x.shape[-2:]
            x, indices = self.pool(x)  # [B, C_s, H_s, W_s], indices into the H_{s-1} x W_{s-1} map
            switches.append((indices, size))
        for stage, (indices, size) in zip(reversed(self.decoder), reversed(switches)):
            x = self.unpool(x, indices, output_size=size)  # [B, C_s, H_{s-1}, W_{s-1}], sparse
            x = stage(x)  # [B, C_{s-1}, H_{s-1}, W_{s-1}]
        return self.classifier(x)  # [B, K, H, W]


def segnet_small(num_classes: int = 10, in_channels: int = 3) -> SegNet:
    """SegNet on the small backbone (widths 16, 32, 64, 64, 96; 1, 2, 2, 2, 2 convs).

    ``[B, C, H, W] -> [B, K, H, W]`` for ``H, W >= 32``; 568,314 parameters (C=3, K=10).
    """
    return SegNet(num_classes, in_channels)
