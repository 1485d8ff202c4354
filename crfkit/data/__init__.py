"""Data for the course: synthetic scenes and body parts, real photographs, PASCAL VOC.

==============================  ==========================================================
name                            what
==============================  ==========================================================
:class:`SyntheticScenes`        outdoor scenes, 10 classes; car/boat and person/rider look
                                alike and only context tells them apart (Lin et al. 2016)
:class:`SyntheticBodyParts`     depth images of figures, 11 body parts; left and right
                                look alike (the Kinect task of Kirillov et al. 2016)
:func:`photo`, :func:`photos`   colour photographs bundled with scikit-image (offline)
:class:`VOCSegmentation`        PASCAL VOC 2012 from a local copy (Everingham et al. 2010)
:func:`tags`                    image-level multi-hot tags, for weak supervision
:func:`load_digits`             real 8×8 handwritten digits (scikit-learn's copy), lecture 01
==============================  ==========================================================

Every data set returns ``(image [C, H, W] float32, labels [H, W] int64)`` per item, with
``255`` = ignore; ``.batch(indices)`` on the synthetic sets stacks items into crfkit's
``[B, C, H, W]`` / ``[B, H, W]``. The synthetic sets are generated on the fly and are
deterministic in ``(seed, split, index)``.
"""

from crfkit.data.bodyparts import MIRROR, PARTS, SyntheticBodyParts, mirror
from crfkit.data.digits import load_digits
from crfkit.data.photos import PHOTOS, photo, photos
from crfkit.data.scenes import CLASSES, LOOKALIKES, SyntheticScenes, tags
from crfkit.data.voc import VOC_CLASSES, VOCSegmentation

__all__ = [
    "CLASSES",
    "LOOKALIKES",
    "MIRROR",
    "PARTS",
    "PHOTOS",
    "VOC_CLASSES",
    "SyntheticBodyParts",
    "SyntheticScenes",
    "VOCSegmentation",
    "load_digits",
    "mirror",
    "photo",
    "photos",
    "tags",
]
