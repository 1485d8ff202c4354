"""Classification networks of lecture 01 and segmentation networks of lecture 03.

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

==============================================  ==========  =====  =================================
model                                  parameters  MACs   to full resolution
=====================================  ==========  =====  =================================
``fcn32s_small()``                     452,314     37.7M  stride 32, bilinear x32
``fcn16s_small()``                     423,844     37.7M  + pool4 skip, learnt x2, fixed x16
``fcn8s_small()``                      418,414     37.8M  + pool3 skip, learnt x2, fixed x8
``segnet_small()``                     568,314     87.6M  max-unpooling with the switches
``deeplab_small()``                    482,650     56.0M  atrous, stride 8, ASPP, bilinear
``deeplab_small(output_stride=16)``    482,650     40.1M  stride 16, ASPP, bilinear
=====================================  ==========  =====  =================================

Papers: FCN, Long et al. 2015; SegNet, Badrinarayanan et al. 2017 (and DeconvNet, Noh et
al. 2015); DeepLab, Chen et al. 2018 and 2017 (v3, ASPP with image pooling).

``pretrained(name)`` (names in ``PRETRAINED``: fcn32s, fcn16s, fcn8s, segnet, deeplab)
returns one trained on the 64x64 synthetic scenes; :mod:`crfkit.models.checkpoints`
states their test scores and bars, ``python -m crfkit.train segmentation`` remakes them.
``pretrained("deeplab_crf")`` (names in ``JOINT``) is that DeepLab with a CRF-as-RNN layer
on top (:class:`CNNCRF`, lecture 06), trained jointly by ``python -m crfkit.train crf-as-rnn``.
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
from crfkit.models.crf_as_rnn import CNNCRF, deeplab_crf_small
from crfkit.models.deeplab import ASPP, DeepLab, deeplab_small
from crfkit.models.densenet import DenseNet, densenet121, densenet169, densenet201, densenet_small
from crfkit.models.fcn import FCN, fcn8s_small, fcn16s_small, fcn32s_small
from crfkit.models.googlenet import (
    GoogLeNet,
    GoogLeNetOutputs,
    GoogLeNetSmall,
    InceptionAux,
    googlenet,
    googlenet_small,
)
from crfkit.models.checkpoints import JOINT, PRETRAINED, pretrained, pretrained_info
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
from crfkit.models.segnet import SegNet, segnet_small
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
    # segmentation (lecture 03)
    "FCN", "fcn32s_small", "fcn16s_small", "fcn8s_small", "SegNet", "segnet_small", "DeepLab",
    "deeplab_small", "PRETRAINED", "pretrained", "pretrained_info",
    # a CNN with a CRF-as-RNN layer on top (lecture 06)
    "CNNCRF", "deeplab_crf_small", "JOINT",
]
