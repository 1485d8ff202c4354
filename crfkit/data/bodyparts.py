"""Synthetic depth images of articulated figures, labelled by body part.

A stand-in for the Kinect body-part data of Kirillov et al. (2016): each item is a depth
image of one figure (a stick-and-capsule body with random pose, size and position,
facing the camera, in front of a wall) and the body part of every pixel.

What makes it a CRF data set:

* a part is a rounded capsule whose depth profile is the same on the left and on the
  right of the body: **left and right parts look alike locally** (same depth statistics,
  same widths, same pose distributions mirrored), so a small receptive field cannot tell
  the left forearm from the right one; only where a part lies relative to the rest
  (left of the torso or right of it, below which upper arm) can;
* hence the pairwise terms of the lecture pay off: **direction-dependent** potentials
  (a left upper arm lies to the image right of the torso, a lower leg below its upper leg)
  and **repulsive** ones (the left and right arm are never neighbours, a head is never
  next to a leg).

The figure faces the camera, so the person's left is the image's right (as on a Kinect).
Flipping an image left-right and relabelling through :data:`MIRROR` gives another figure
from the same distribution.

Depth is in metres: the wall is 4 to 5 m away, the figure 2 to 3.5 m.

References
----------
.. [1] A. Kirillov, D. Schlesinger, S. Zheng, B. Savchynskyy, P. H. S. Torr, C. Rother,
   "Joint training of generic CNN-CRF models with stochastic optimization", ACCV 2016.
   https://arxiv.org/abs/1511.05067
.. [2] J. Shotton et al., "Real-time human pose recognition in parts from single depth
   images", CVPR 2011 (the Kinect body-part task).
"""

from __future__ import annotations

import math

import torch

from crfkit.data._common import (
    DEFAULT_LENGTHS,
    GeneratedDataset,
    uniform,
)

#: Part names; the label of a pixel is its index here. "left" is the person's left.
PARTS = (
    "background",  # 0
    "head",  # 1
    "torso",  # 2
    "left_upper_arm",  # 3
    "right_upper_arm",  # 4
    "left_lower_arm",  # 5
    "right_lower_arm",  # 6
    "left_upper_leg",  # 7
    "right_upper_leg",  # 8
    "left_lower_leg",  # 9
    "right_lower_leg",  # 10
)

#: ``MIRROR[k]`` is the part ``k`` becomes in the mirror image (left <-> right); an involution.
MIRROR = (0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9)

#: How many figures each split holds unless ``length`` says otherwise.

# Proportions, as fractions of the figure height h: (length, radius) of each limb.
_UPPER_ARM, _LOWER_ARM = (0.17, 0.035), (0.16, 0.03)
_UPPER_LEG, _LOWER_LEG = (0.23, 0.05), (0.22, 0.04)
_HEAD_RADIUS, _TORSO = 0.075, (0.30, 0.09)
_SHOULDER, _HIP = 0.10, 0.055  # half widths
_NOISE = 0.01  # depth sensor noise, metres


def mirror(depth: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip figures left-right and swap left and right part labels.

    Parameters
    ----------
    depth : float tensor of shape ``[..., H, W]``
    labels : int64 tensor of shape ``[..., H, W]``
        Part indices (see :data:`PARTS`); ``255`` (ignore) stays ``255``.

    Returns
    -------
    depth, labels : tensors of the same shapes, flipped along ``W``, labels mapped by :data:`MIRROR`.
    """
    table = torch.arange(256, device=labels.device)
    table[: len(MIRROR)] = torch.tensor(MIRROR, device=labels.device)
    return depth.flip(-1), table[labels.flip(-1).long()]


class SyntheticBodyParts(GeneratedDataset):
    """Depth images of articulated figures with eleven part labels (Kirillov et al. 2016).

    Item ``i`` is generated when asked for, from a seed that depends on
    ``(seed, split, i)`` only: same arguments, same bytes; the splits share no figure.

    Parameters
    ----------
    split : {"train", "val", "test"}
    size : int, default 64
        Image side in pixels, ``32 <= size <= 512``.
    length : int, optional
        Number of figures; default :data:`DEFAULT_LENGTHS` (1000 / 200 / 200).
    seed : int, default 0

    Attributes
    ----------
    parts : tuple of str
        :data:`PARTS`, ``num_classes = 11``; :data:`MIRROR` maps left to right parts.

    Notes
    -----
    ``dataset[i]`` returns ``(depth, labels)``:

    - depth : float32 tensor of shape ``[1, H, W]``, metres (wall 4..5 m, figure 2..3.5 m);
    - labels : int64 tensor of shape ``[H, W]``, values in ``0..10``.

    The figure is 55-90 % of the image height, the torso leans up to 10 degrees, each
    upper arm swings from 30 degrees across the body to 150 degrees out, elbows and knees
    bend, each limb sits up to 15 cm in front of or behind the torso plane; nearer parts
    hide farther ones. Left limbs are drawn from the mirror image of the right limbs'
    distribution.

    Examples
    --------
    >>> data = SyntheticBodyParts("train", size=64)
    >>> depth, labels = data[0]             # [1, 64, 64] float32, [64, 64] int64
    >>> depths, labels = data.batch(range(8))  # [8, 1, 64, 64], [8, 64, 64]
    """

    parts = PARTS
    classes = PARTS
    num_classes = len(PARTS)
    mirror_map = MIRROR

    kind = "bodyparts"

    @staticmethod
    def render(g: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Figure drawn from generator ``g`` at ``size`` x ``size`` pixels."""
        return render_figure(g, size)


# --------------------------------------------------------------------------- rendering


def render_figure(g: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one figure from generator ``g``: depth ``[1, S, S]`` (metres), labels ``[S, S]`` int64.

    The building block of :class:`SyntheticBodyParts`. Steps: skeleton (joint positions
    in pixels), one capsule per part with its depth, z-buffer, wall, noise.
    """
    S = size
    h = uniform(g, 0.55, 0.9) * S  # figure height, pixels
    metres_per_px = uniform(g, 1.6, 1.9) / h
    z_body = uniform(g, 2.0, 3.5)
    # Skeleton, image coordinates (x right, y down). The figure's extent around its
    # pelvis: head top about 0.48 h above, feet about 0.45 h below, arms out 0.45 h.
    pelvis = torch.tensor([uniform(g, 0.3 * h, S - 0.3 * h), uniform(g, 0.5 * h, S - 0.47 * h)])
    lean = math.radians(uniform(g, -10.0, 10.0))
    up = torch.tensor([math.sin(lean), -math.cos(lean)])  # torso axis, pelvis -> neck
    out = torch.tensor([-up[1], up[0]])  # perpendicular, towards the image right = person's left
    neck = pelvis + _TORSO[0] * h * up
    head = neck + (_HEAD_RADIUS + 0.02) * h * up
    # segments: (part, start [2], end [2], radius px, depth of the axis in metres)
    segments = [
        (1, head, head, _HEAD_RADIUS * h, z_body + uniform(g, -0.05, 0.05)),
        (2, pelvis, neck, _TORSO[1] * h, z_body),
    ]
    for side, (ua, la, ul, ll) in ((+1, (3, 5, 7, 9)), (-1, (4, 6, 8, 10))):
        # side +1: the person's left, drawn on the image right; -1: the right, drawn mirrored.
        out_s = side * out
        shoulder = neck - 0.03 * h * up + _SHOULDER * h * out_s
        hip = pelvis + _HIP * h * out_s
        # Arm: angle from "down the torso axis", positive away from the body. The upper
        # arm's range spans 180 degrees, so its slant (an undirected line) is uniform on
        # both sides, and so is the forearm's: the slant of an arm says nothing of its side.
        a1 = math.radians(uniform(g, -30.0, 150.0))
        a2 = a1 + math.radians(uniform(g, -20.0, 120.0))
        elbow = shoulder + _UPPER_ARM[0] * h * _direction(up, out_s, a1)
        hand = elbow + _LOWER_ARM[0] * h * _direction(up, out_s, a2)
        z_arm = z_body + uniform(g, -0.15, 0.15)
        segments += [
            (ua, shoulder, elbow, _UPPER_ARM[1] * h, z_arm),
            (la, elbow, hand, _LOWER_ARM[1] * h, z_arm + uniform(g, -0.1, 0.1)),
        ]
        # Leg: a narrow range, symmetric about the torso axis, so that a leg's slant
        # says nothing about its side; the knee bends either way (seen from the front).
        b1 = math.radians(uniform(g, -15.0, 15.0))
        b2 = b1 + math.radians(uniform(g, -20.0, 20.0))
        knee = hip + _UPPER_LEG[0] * h * _direction(up, out_s, b1)
        foot = knee + _LOWER_LEG[0] * h * _direction(up, out_s, b2)
        z_leg = z_body + uniform(g, -0.1, 0.1)
        segments += [
            (ul, hip, knee, _UPPER_LEG[1] * h, z_leg),
            (ll, knee, foot, _LOWER_LEG[1] * h, z_leg + uniform(g, -0.1, 0.1)),
        ]
    # Wall: a slightly tilted plane.
    yy, xx = torch.meshgrid(
        torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32), indexing="ij"
    )  # [S, S] each
    tilt = (uniform(g, -0.3, 0.3) * (xx - S / 2) + uniform(g, -0.3, 0.3) * (yy - S / 2)) / S
    wall = uniform(g, 4.0, 5.0) + tilt  # [S, S]
    depth, labels = _zbuffer(segments, yy, xx, metres_per_px, wall)
    depth = depth + _NOISE * torch.randn(S, S, generator=g)
    return depth[None].float(), labels


def _direction(up: torch.Tensor, out: torch.Tensor, angle: float) -> torch.Tensor:
    """Unit vector at ``angle`` from "down the torso" (``-up``), turning towards ``out``."""
    return -math.cos(angle) * up + math.sin(angle) * out


def _zbuffer(segments, yy, xx, metres_per_px, wall):
    """Render capsules ``[(part, a, b, radius, z)]`` over ``wall`` ``[S, S]``; nearest wins.

    A capsule is the set of pixels within ``radius`` of segment ``a``-``b``; its surface
    bulges towards the camera like a cylinder: ``z - sqrt(r^2 - d^2)`` metres at distance
    ``d`` from the axis. Returns depth ``[S, S]`` and labels ``[S, S]`` int64.
    """
    parts = torch.tensor([s[0] for s in segments])  # [P]
    a = torch.stack([s[1] for s in segments])  # [P, 2] (x, y)
    b = torch.stack([s[2] for s in segments])  # [P, 2]
    radius = torch.tensor([max(s[3], 0.75) for s in segments])  # [P]
    z = torch.tensor([s[4] for s in segments])  # [P]
    p = torch.stack([xx, yy], dim=-1)  # [S, S, 2]
    ab = b - a  # [P, 2]
    length2 = (ab**2).sum(-1).clamp_min(1e-6)  # [P]
    ap = p[None] - a[:, None, None]  # [P, S, S, 2]
    t = ((ap * ab[:, None, None]).sum(-1) / length2[:, None, None]).clamp(0, 1)  # [P, S, S]
    d2 = ((ap - t[..., None] * ab[:, None, None]) ** 2).sum(-1)  # [P, S, S] squared distance to axis
    r2 = (radius**2)[:, None, None]  # [P, 1, 1]
    inside = d2 < r2  # [P, S, S]
    surface = z[:, None, None] - (r2 - d2).clamp_min(0).sqrt() * metres_per_px  # [P, S, S]
    surface = torch.where(inside, surface, torch.full_like(surface, math.inf))
    nearest, which = surface.min(0)  # [S, S] each
    hit = torch.isfinite(nearest)
    depth = torch.where(hit, nearest, wall)
    labels = torch.where(hit, parts[which], torch.zeros_like(which))
    return depth, labels
