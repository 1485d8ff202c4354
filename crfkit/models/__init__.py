"""Classification networks of lecture 01, full size and small, built from shared blocks.

Full-size networks match the published parameter counts exactly (torchvision's documented
counts, and Hu et al. 2018 for SE-ResNet-50); small configurations use the same blocks
with fewer channels and stages, take ``in_channels`` (1 for greyscale digits, 3 for RGB)
and ``num_classes``, and run a batch of 64 32x32 images in milliseconds on a CPU.

===========  ==============================  ===================  =========================
family       full size                       small                paper
===========  ==============================  ===================  =========================
AlexNet      ``alexnet``                     ``alexnet_small``    Krizhevsky et al. 2012
VGG          ``vgg11`` ... ``vgg19_bn``      ``vgg_small``        Simonyan & Zisserman 2015
GoogLeNet    ``googlenet``                   ``googlenet_small``  Szegedy et al. 2015
ResNet       ``resnet18`` ... ``resnet152``  ``resnet_small``     He et al. 2016
DenseNet-BC  ``densenet121/169/201``         ``densenet_small``   Huang et al. 2017
SE-ResNet    ``se_resnet50`` (18 ... 152)    ``se_resnet_small``  Hu et al. 2018
===========  ==============================  ===================  =========================

Blocks (:mod:`crfkit.models.blocks`): ``ConvBNReLU``, ``ResidualBlock``, ``Bottleneck``,
``SEBlock``, ``DenseLayer``, ``DenseBlock``, ``Transition``, ``InceptionBlock``,
``PadShortcut``. ``crfkit.summary.summary(model, input_size)`` tabulates any of them layer
by layer (shapes, parameters, receptive field, multiply-accumulates).

Small configurations (C=3, K=10; MACs per 32x32 image from ``crfkit.summary``; forward
time of a batch of 64 32x32 images in eval mode, median of 10, 2 CPU threads, torch 2.13):

===================================  ==========  =====  ========
model                                parameters  MACs   batch 64
===================================  ==========  =====  ========
``alexnet_small()``                  335,530     21.3M  15 ms
``vgg_small()`` (depth 11)           679,882     10.0M  7 ms
``googlenet_small()``                78,754      8.7M   28 ms
``resnet_small(8)``                  75,290      12.2M  8 ms
``resnet_small(8, residual=False)``  75,290      12.2M  7 ms
``resnet_small(20)``                 269,722     40.6M  19 ms
``se_resnet_small(8)``               78,118      12.2M  8 ms
``densenet_small()``                 46,682      5.2M   9 ms
===================================  ==========  =====  ========

(GoogLeNet's time is dominated by the stride-1 3x3 max pool of every Inception module.)

Every network maps ``[B, C, H, W]`` images to ``[B, K]`` logits and is initialised with
Kaiming-normal convolutions, unit batch-norm weights and ``N(0, 0.01^2)`` linear weights.
"""

from crfkit.models import blocks
from crfkit.models.alexnet import AlexNet, alexnet, alexnet_small
from crfkit.models.blocks import (
    Bottleneck,
    ConvBNReLU,
    DenseBlock,
    DenseLayer,
    InceptionBlock,
    PadShortcut,
    ResidualBlock,
    SEBlock,
    Transition,
)
from crfkit.models.deeplab import ASPP
from crfkit.models.densenet import DenseNet, densenet121, densenet169, densenet201, densenet_small
from crfkit.models.googlenet import (
    GoogLeNet,
    GoogLeNetOutputs,
    GoogLeNetSmall,
    InceptionAux,
    googlenet,
    googlenet_small,
)
from crfkit.models.resnet import (
    ResNet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
    resnet_small,
)
from crfkit.models.senet import (
    se_resnet18,
    se_resnet34,
    se_resnet50,
    se_resnet101,
    se_resnet152,
    se_resnet_small,
)
from crfkit.models.vgg import (
    VGG,
    VGG_CONFIGS,
    vgg11,
    vgg11_bn,
    vgg13,
    vgg13_bn,
    vgg16,
    vgg16_bn,
    vgg19,
    vgg19_bn,
    vgg_small,
)

__all__ = [
    "ASPP", "VGG", "VGG_CONFIGS", "AlexNet", "Bottleneck", "ConvBNReLU", "DenseBlock", "DenseLayer",
    "DenseNet", "GoogLeNet", "GoogLeNetOutputs", "GoogLeNetSmall", "InceptionAux",
    "InceptionBlock", "PadShortcut", "ResNet", "ResidualBlock", "SEBlock", "Transition",
    "alexnet", "alexnet_small", "blocks", "densenet121", "densenet169", "densenet201",
    "densenet_small", "googlenet", "googlenet_small", "resnet18", "resnet34", "resnet50",
    "resnet101", "resnet152", "resnet_small", "se_resnet18", "se_resnet34", "se_resnet50",
    "se_resnet101", "se_resnet152", "se_resnet_small", "vgg11", "vgg11_bn", "vgg13",
    "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "vgg_small",
]
