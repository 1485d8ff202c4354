"""Synthetic outdoor scenes whose labels need context: a car and a boat look the same.

Each scene is generated on the fly from a seed, so the data set costs no disk and no
download, yet behaves like a small semantic-segmentation benchmark:

* **stuff** (sky above a wavy horizon; background, grass, road and water below it) fills
  the image in irregular regions cut from a smoothed random field;
* **things** sit on the stuff: cars on roads, boats on water, horses on grass, a rider
  on a horse's back, a person standing on the ground;
* every class has a colour and a texture (smoothed noise at a class-specific scale),
  region boundaries are blurred and every pixel gets sensor noise, so a small CNN's
  per-pixel guess is good inside regions and unsure at boundaries: the gap a CRF's
  pairwise term closes;
* two pairs of classes are **identical locally**: ``car`` and ``boat`` share colour,
  texture and shape distributions, and so do ``person`` and ``rider``. Only what lies
  around them tells them apart (road or water around, horse or ground below), which is
  what the contextual pairwise potentials of Lin et al. (2016) learn, "patch-surrounding"
  and "above/below" relations that no unary can see through a small receptive field.

Every scene also yields image-level tags (:func:`tags`), the supervision of the weakly
supervised lecture.

References
----------
.. [1] G. Lin, C. Shen, A. van den Hengel, I. Reid, "Efficient piecewise training of deep
   structured models for semantic segmentation", CVPR 2016. https://arxiv.org/abs/1504.01013
.. [2] A. Kirillov, D. Schlesinger, S. Zheng, B. Savchynskyy, P. H. S. Torr, C. Rother,
   "Joint training of generic CNN-CRF models with stochastic optimization", ACCV 2016.
   https://arxiv.org/abs/1511.05067
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from crfkit._validate import check_positive_int
from crfkit.data._common import (
    DEFAULT_LENGTHS,
    GeneratedDataset,
    smooth_noise,
    uniform,
)

#: Class names; the label of a pixel is its index here. ``255`` is "ignore" (never produced).
CLASSES = (
    "background",  # 0: rocks and buildings, the ground that is none of the below
    "sky",  # 1
    "grass",  # 2
    "road",  # 3
    "water",  # 4
    "car",  # 5: looks exactly like a boat; always on a road
    "boat",  # 6: looks exactly like a car; always on water
    "person",  # 7: looks exactly like a rider; stands on the ground
    "rider",  # 8: looks exactly like a person; sits on a horse
    "horse",  # 9: stands on grass
)
BACKGROUND, SKY, GRASS, ROAD, WATER, CAR, BOAT, PERSON, RIDER, HORSE = range(len(CLASSES))

#: The pairs of classes that only context tells apart.
LOOKALIKES = ((CAR, BOAT), (PERSON, RIDER))

#: How many scenes each split holds unless ``length`` says otherwise.

IGNORE_INDEX = 255

# Appearance of each class: base colour (RGB in 0..1), texture amplitude and texture
# grid (cells across the image, rows x columns; independent of the image size, so a
# 256-pixel scene is the 64-pixel one seen sharper). Look-alike pairs share one entry.
_RED = ((0.78, 0.22, 0.18), 0.10, (14, 14))
_OCHRE = ((0.85, 0.62, 0.25), 0.08, (14, 14))
_APPEARANCE = {
    BACKGROUND: ((0.55, 0.47, 0.42), 0.10, (10, 10)),
    SKY: ((0.58, 0.76, 0.95), 0.03, (3, 3)),
    GRASS: ((0.30, 0.58, 0.24), 0.10, (24, 24)),
    ROAD: ((0.42, 0.42, 0.45), 0.06, (20, 20)),
    WATER: ((0.16, 0.35, 0.66), 0.08, (32, 6)),  # horizontal ripples
    CAR: _RED,
    BOAT: _RED,
    PERSON: _OCHRE,
    RIDER: _OCHRE,
    HORSE: ((0.42, 0.26, 0.14), 0.08, (14, 14)),
}
_COLOUR_JITTER = 0.05  # per scene and class, per channel, uniform +-
_PIXEL_NOISE = 0.04  # standard deviation of the i.i.d. sensor noise
_SEAT = 0.25  # how far (in semi-axes) a person or rider reaches into what carries it


class SyntheticScenes(GeneratedDataset):
    """Synthetic outdoor scenes with ten classes, two pairs of them told apart only by context.

    Item ``i`` is generated when asked for, from a seed that depends on ``(seed, split, i)``
    only: the same arguments give the same bytes in every process, and the three splits
    share no scene. See the module docstring for what a scene holds.

    Parameters
    ----------
    split : {"train", "val", "test"}
        Which split. Splits are disjoint (different per-item seeds).
    size : int, default 64
        Image side in pixels, ``32 <= size <= 512``. The layout scales with the size.
    length : int, optional
        Number of scenes; default :data:`DEFAULT_LENGTHS` (1000 / 200 / 200).
    seed : int, default 0
        Seed of the whole data set.

    Attributes
    ----------
    classes : tuple of str
        :data:`CLASSES`; ``num_classes = len(classes) = 10``.

    Notes
    -----
    ``dataset[i]`` returns ``(image, labels)``:

    - image : float32 tensor of shape ``[3, H, W]``, values in 0..1;
    - labels : int64 tensor of shape ``[H, W]``, values in ``0..9``.

    Generating one scene takes a few milliseconds at 64 x 64 on one CPU core.
    Class frequencies measured over the first 200 training scenes at 64 x 64
    (share of scenes in which the class appears / mean share of pixels): sky 100% / 29%;
    background, grass, road, water 100% / 16-18% each (never under 7%); car, boat
    100% / 1.3%; person 79% / 0.6%; rider 61% / 0.5%; horse 69% / 1.4%.
    ``tests/test_data_scenes.py`` holds the bounds.

    References
    ----------
    Lin et al. (2016), "Efficient piecewise training of deep structured models for
    semantic segmentation": contextual pairwise potentials over neighbouring regions.

    Examples
    --------
    >>> data = SyntheticScenes("train", size=64)
    >>> image, labels = data[0]            # [3, 64, 64] float32, [64, 64] int64
    >>> images, labels = data.batch(range(8))  # [8, 3, 64, 64], [8, 64, 64]
    """

    classes = CLASSES
    num_classes = len(CLASSES)
    ignore_index = IGNORE_INDEX

    kind = "scenes"

    @staticmethod
    def render(g: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scene drawn from generator ``g`` at ``size`` x ``size`` pixels."""
        return render_scene(g, size)

    def tags(self, labels: torch.Tensor) -> torch.Tensor:
        """Image-level tags of ``labels`` (see :func:`tags`) with ``num_classes = 10``."""
        return tags(labels, self.num_classes)


def tags(labels: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Image-level multi-hot tags: which classes occur in each labelling.

    The supervision of weakly supervised segmentation: "this image contains a horse
    and grass", with no say about where.

    Parameters
    ----------
    labels : int64 tensor of shape ``[H, W]`` or ``[B, H, W]``
        Class indices in ``0..num_classes-1``; pixels equal to ``ignore_index`` are skipped.
    num_classes : int
        ``K``, the number of classes.
    ignore_index : int, default 255

    Returns
    -------
    float32 tensor of shape ``[K]`` or ``[B, K]``
        1.0 where the class occurs, 0.0 elsewhere (float, ready for a BCE loss).

    Raises
    ------
    TypeError, ValueError
        If ``labels`` is not an integer tensor of 2 or 3 dimensions, or holds a value
        outside ``0..num_classes-1`` other than ``ignore_index``.
    """
    num_classes = check_positive_int("num_classes", num_classes)
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels: expected a torch.Tensor of shape [B, H, W], got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise TypeError(f"labels: expected an integer tensor (int64), got dtype {labels.dtype}")
    if labels.dim() not in (2, 3):
        raise ValueError(
            f"labels: expected a tensor of shape [H, W] or [B, H, W], got shape {list(labels.shape)}"
        )
    batched = labels.dim() == 3
    flat = labels.reshape(labels.shape[0] if batched else 1, -1).long()  # [B, N]
    valid = flat != ignore_index
    bad = valid & ((flat < 0) | (flat >= num_classes))
    if bool(bad.any()):
        raise ValueError(
            f"labels: expected values in 0..{num_classes - 1} or {ignore_index} (ignore), "
            f"got {int(flat[bad][0])}"
        )
    slot = torch.where(valid, flat, torch.full_like(flat, num_classes))  # ignored -> extra slot
    hot = torch.zeros(flat.shape[0], num_classes + 1, device=labels.device)  # [B, K + 1]
    hot.scatter_(1, slot, 1.0)
    hot = hot[:, :num_classes]  # [B, K]
    return hot if batched else hot[0]


# --------------------------------------------------------------------------- rendering


def render_scene(g: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one scene from generator ``g``: image ``[3, S, S]`` in 0..1, labels ``[S, S]`` int64.

    The building block of :class:`SyntheticScenes`; call that instead unless you want
    scenes from your own generator. Steps: stuff layout, things, appearance, blur, noise.
    """
    S = size
    yy, xx = torch.meshgrid(torch.arange(S, dtype=torch.float32), torch.arange(S, dtype=torch.float32), indexing="ij")  # [S, S] each
    labels = _stuff_layout(g, S, yy, xx)  # [S, S]
    labels = _place_things(g, S, yy, xx, labels)  # [S, S]
    image = _paint(g, S, yy, labels)  # [3, S, S]
    return image, labels


def _stuff_layout(g: torch.Generator, S: int, yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
    """Sky above a wavy horizon; below it four irregular bands of background, grass, road, water."""
    # Horizon: a smooth random curve between 20% and 40% of the height.
    horizon = uniform(g, 0.20, 0.38) * S + 0.04 * S * smooth_noise(g, 1, (3, 5), (S, S))[0]  # [S, S]
    sky = yy < horizon  # [S, S]
    # Ground: cut a warped, randomly tilted coordinate at the quantiles of random area shares,
    # so that each of the four ground classes gets 14..43% of the ground, in a random order.
    angle = uniform(g, -1.0, 1.0)
    u = (math.cos(angle) * xx + math.sin(angle) * yy) / S + 0.15 * smooth_noise(g, 1, (4, 4), (S, S))[0]  # [S, S]
    share = 0.5 + torch.rand(4, generator=g)
    cuts = torch.quantile(u[~sky], (share.cumsum(0) / share.sum())[:3])  # [3]
    order = torch.tensor([BACKGROUND, GRASS, ROAD, WATER])[torch.randperm(4, generator=g)]
    labels = order[torch.bucketize(u, cuts)]  # [S, S]
    labels[sky] = SKY
    return labels


def _place_things(
    g: torch.Generator, S: int, yy: torch.Tensor, xx: torch.Tensor, stuff: torch.Tensor
) -> torch.Tensor:
    """Cars on roads, boats on water, horses (most with a rider) on grass, a person on the ground."""
    labels = stuff.clone()
    # Cars and boats: 1 or 2 each, a blob clipped to its host region so that what
    # surrounds it is pure road or pure water. Both share one shape distribution.
    for thing, host in ((CAR, ROAD), (BOAT, WATER)):
        for _ in range(1 + int(torch.rand(1, generator=g) < 0.4)):
            ry, rx = uniform(g, 0.035, 0.055) * S, uniform(g, 0.07, 0.11) * S
            centre = _random_pixel(g, _interior(stuff == host, round(rx)))  # room all round
            if centre is None:
                continue
            blob = _blob(g, S, yy, xx, centre, ry, rx)
            labels[blob & _interior(stuff == host, 1, fallback=False)] = thing  # never touches other stuff
    # Horses on grass (70%), 85% of them ridden; a person on the ground (80%).
    # Rider and person share one shape distribution and are drawn the same way: a blob
    # whose lower part overlaps what it stands on (horse back or ground) by _SEAT of a
    # semi-axis, with an outline wobbly enough to vary, too little to lift it off its horse.
    if float(torch.rand(1, generator=g)) < 0.7:
        foot = _random_pixel(g, _interior(stuff == GRASS, 1))
        if foot is not None:
            ry, rx = uniform(g, 0.045, 0.06) * S, uniform(g, 0.08, 0.11) * S
            leg = 0.06 * S
            cy, cx = foot[0] - leg - ry, foot[1]
            side = 1.0 if float(torch.rand(1, generator=g)) < 0.5 else -1.0
            body = _blob(g, S, yy, xx, (cy, cx), ry, rx)
            head = _blob(g, S, yy, xx, (cy - ry, cx + side * rx), 0.45 * ry, 0.35 * rx)
            half = max(0.6, 0.1 * rx)
            legs = (yy >= cy) & (yy <= cy + ry + leg) & (
                ((xx - (cx - 0.6 * rx)).abs() <= half) | ((xx - (cx + 0.6 * rx)).abs() <= half)
            )
            labels[body | head | legs] = HORSE
            if float(torch.rand(1, generator=g)) < 0.85:
                pry, prx = uniform(g, 0.06, 0.08) * S, uniform(g, 0.03, 0.04) * S
                seat_x = min(max(cx + uniform(g, -0.3, 0.3) * rx, 0.0), S - 1.0)
                column = (labels[:, round(seat_x)] == HORSE).nonzero()  # rows of horse in that column
                seat_y = float(column[0, 0]) if len(column) else cy - ry  # the horse's back
                centre = (seat_y + _SEAT * pry - pry, seat_x)
                labels[_blob(g, S, yy, xx, centre, pry, prx, wobble=0.15)] = RIDER
    if float(torch.rand(1, generator=g)) < 0.8:
        ground = (labels == BACKGROUND) | (labels == GRASS) | (labels == ROAD)
        foot = _random_pixel(g, _interior(ground, 1))
        if foot is not None:
            pry, prx = uniform(g, 0.06, 0.08) * S, uniform(g, 0.03, 0.04) * S
            centre = (foot[0] + _SEAT * pry - pry, foot[1])
            blob = _blob(g, S, yy, xx, centre, pry, prx, wobble=0.15)
            labels[blob & (labels != HORSE) & (labels != RIDER)] = PERSON
    return labels


def _paint(g: torch.Generator, S: int, yy: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Image ``[3, S, S]`` in 0..1: class textures, blended across blurred boundaries, plus noise."""
    present = torch.unique(labels).tolist()
    brightness = uniform(g, 0.85, 1.1)
    textures = []
    for k in present:
        colour, amplitude, grid = _APPEARANCE[k]
        colour = torch.tensor(colour) + _COLOUR_JITTER * (2 * torch.rand(3, generator=g) - 1)  # [3]
        noise = smooth_noise(g, 4, grid, (S, S))  # [4, S, S]: luminance, then 3 chroma fields
        texture = colour[:, None, None] + amplitude * (noise[:1] + 0.3 * noise[1:])  # [3, S, S]
        if k == SKY:
            texture = texture + 0.12 * (yy / S)  # paler towards the horizon
        textures.append(texture)
    textures = torch.stack(textures)  # [K', 3, S, S], K' = classes present
    # Soft boundaries: each pixel mixes the textures of the classes in a small window.
    onehot = (labels[None] == torch.tensor(present)[:, None, None]).float()  # [K', S, S]
    k = 2 * max(1, round(S / 64)) + 1  # 3 px at 64, 9 px at 256
    weights = F.avg_pool2d(onehot[None], (k, 1), stride=1, padding=(k // 2, 0), count_include_pad=False)
    weights = F.avg_pool2d(weights, (1, k), stride=1, padding=(0, k // 2), count_include_pad=False)[0]  # [K', S, S]
    image = torch.einsum("khw,kchw->chw", weights, textures)  # [3, S, S]
    image = brightness * image + _PIXEL_NOISE * torch.randn(3, S, S, generator=g)
    return image.clamp_(0.0, 1.0)


def _interior(mask: torch.Tensor, radius: int, fallback: bool = True) -> torch.Tensor:
    """Pixels of ``mask`` ``[S, S]`` whose ``(2r+1)``-square neighbourhood lies in ``mask``.

    If there are none and ``fallback`` is true, ``mask`` itself (so that a thing still
    finds a place on a thin region).
    """
    if radius < 1:
        return mask
    outside = (~mask).float()[None, None]  # [1, 1, S, S]
    k = 2 * radius + 1  # a square max is a row max of a column max: O(k) not O(k^2) per pixel
    near = F.max_pool2d(outside, (k, 1), stride=1, padding=(radius, 0))
    near = F.max_pool2d(near, (1, k), stride=1, padding=(0, radius))[0, 0]  # [S, S]
    inner = near == 0
    return inner if (inner.any() or not fallback) else mask


def _random_pixel(g: torch.Generator, mask: torch.Tensor) -> tuple[float, float] | None:
    """A uniformly random ``(y, x)`` of the pixels in ``mask``, or ``None`` if it is empty."""
    where = mask.nonzero()  # [M, 2]
    if where.shape[0] == 0:
        return None
    y, x = where[int(torch.randint(where.shape[0], (1,), generator=g))].tolist()
    return float(y), float(x)


def _blob(
    g: torch.Generator,
    S: int,
    yy: torch.Tensor,
    xx: torch.Tensor,
    centre: tuple[float, float],
    ry: float,
    rx: float,
    wobble: float = 0.35,
) -> torch.Tensor:
    """An ellipse with a wobbly outline: ``[S, S]`` bool, semi-axes ``ry`` by ``rx`` pixels.

    The outline is the level set ``q = 1 + wobble * n`` of the normalised radius ``q``
    perturbed by smooth noise ``n`` (unit variance, 16 cells across the image).
    """
    q = ((yy - centre[0]) / max(ry, 0.75)) ** 2 + ((xx - centre[1]) / max(rx, 0.75)) ** 2  # [S, S]
    return q < 1.0 + wobble * smooth_noise(g, 1, (16, 16), (S, S))[0]
