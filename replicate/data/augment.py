"""The training crop of the reference code and the input normalisation.

google-research/vision_transformer (`vit_jax/input_pipeline.py`) trains on an inception crop:
`tf.image.sample_distorted_bounding_box(area_range=(0.05, 1.0), min_object_covered=0)` on the
decoded original image, `tf.slice`, then `tf.image.resize` to S x S (bilinear, no antialiasing)
and a horizontal flip with probability 1/2; it evaluates on the whole image resized to S x S.
`InceptionCrop.sample` draws the box by TensorFlow's rule from one seed per image, so a crop
depends on (seed, epoch, rank, position) only and a resumed run sees the same ones. The crop is
cut where the images are: from the original in the loader's workers (`crop_resize`), or, for
images kept on the device, from the stored copy in batches (`crop_resize_batch`). Then
(x / 255 - mean) / std, with the mean and std the weights expect, on the device.

For small images trained briefly, the CIFAR literature's crop (He et al. 2016) is the other
policy: the S x S image zero-padded by 4 pixels, an S x S window of it, mirrored half the time
(`pad_crop`), cut on the device from a batch of whole images.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

ASPECT_RATIOS = (0.75, 1.33)  # width / height: sample_distorted_bounding_box's default range
ATTEMPTS = 100  # its max_attempts; the whole image when every attempt fails


@dataclass(frozen=True)
class Crop:
    """A box in the original image's pixels, and whether to mirror it."""

    top: int
    left: int
    height: int
    width: int
    mirror: bool

    def relative(self, height: int, width: int) -> tuple[float, float, float, float]:
        """(top, left, height, width) as fractions of the image's sides."""
        return (self.top / height, self.left / width, self.height / height, self.width / width)


@dataclass(frozen=True)
class InceptionCrop:
    area: tuple[float, float] = (0.05, 1.0)  # fraction of the original image's area kept
    flip: bool = True

    def sample(self, height: int, width: int, seed: int) -> Crop:
        """TensorFlow's `sample_distorted_bounding_box` with no boxes given: an aspect ratio
        uniform in ASPECT_RATIOS, a height uniform over the integers that keep the area in
        `area`, an offset uniform over the positions inside, up to ATTEMPTS tries."""
        rng = random.Random(seed)
        box = None
        for _ in range(ATTEMPTS):
            aspect = ASPECT_RATIOS[0] + (ASPECT_RATIOS[1] - ASPECT_RATIOS[0]) * rng.random()
            box = self._try(height, width, aspect, rng)
            if box:
                break
        top, left, h, w = box or (0, 0, height, width)
        mirror = self.flip and rng.random() < 0.5
        return Crop(top, left, h, w, mirror)

    def _try(
        self, height: int, width: int, aspect: float, rng: random.Random
    ) -> tuple[int, int, int, int] | None:
        min_area, max_area = (a * height * width for a in self.area)
        h = round(math.sqrt(min_area / aspect))
        max_h = round(math.sqrt(max_area / aspect))
        if round(max_h * aspect) > width:  # the widest crop must still fit
            max_h = int((width + 0.5 - 1e-7) / aspect)
            max_h -= round(max_h * aspect) > width
        max_h = min(max_h, height)
        h = min(h, max_h)
        h += rng.randint(0, max_h - h)
        w = round(h * aspect)
        if w * h < min_area:  # rounding: one row more, or one fewer
            h += 1
            w = round(h * aspect)
        if w * h > max_area:
            h -= 1
            w = round(h * aspect)
        if not (min_area <= w * h <= max_area and 0 < w <= width and 0 < h <= height):
            return None
        top = rng.randrange(height - h) if h < height else 0  # TF's Uniform(n): 0..n-1
        left = rng.randrange(width - w) if w < width else 0
        return top, left, h, w


def crop_resize(image: Tensor, crop: Crop, size: int) -> Tensor:
    """uint8 (3, H, W) original -> uint8 (3, S, S): `tf.slice` then `tf.image.resize`
    (bilinear, half-pixel centres, no antialiasing), maybe mirrored."""
    box = image[:, crop.top : crop.top + crop.height, crop.left : crop.left + crop.width]
    # The resize commutes with the mirror: flip whichever of the box and the output is smaller.
    flip_box = crop.mirror and crop.height * crop.width < size * size
    out = resize(box.flip(-1) if flip_box else box, size, antialias=False)
    return out.flip(-1) if crop.mirror and not flip_box else out


def resize(image: Tensor, size: int, antialias: bool) -> Tensor:
    """uint8 (..., 3, H, W) -> uint8 (..., 3, S, S) in channels-last memory, bilinear with
    half-pixel centres. Channels-last, where PyTorch's uint8 kernel is vectorised (3x faster than
    on planar channels, same values), and kept so: the loaders stack crops as (B, S, S, 3)."""
    # Through (N, H, W, 3) memory: `image[None]` of a channels-last view (a decoded or flipped
    # box) has a batch stride of 3, which the kernel takes for planar memory and runs 3x slower.
    hwc = image.movedim(-3, -1).contiguous()
    pixels = hwc.view(-1, *hwc.shape[-3:]).permute(0, 3, 1, 2)
    out = F.interpolate(
        pixels, size=(size, size), mode="bilinear", align_corners=False, antialias=antialias
    )
    return out.view(*image.shape[:-2], size, size)


def crop_resize_batch(images: Tensor, crops: Sequence[Crop], sizes: Tensor, size: int) -> Tensor:
    """uint8 (B, 3, R, R) stored copies -> uint8 (B, 3, S, S): the same boxes as `crop_resize`
    takes from the originals, whose (H, W) are `sizes`, resampled from the stored R x R copy
    (bilinear, half-pixel centres, one `grid_sample` over the batch)."""
    theta = torch.zeros(len(crops), 2, 3)
    for i, (crop, (height, width)) in enumerate(zip(crops, sizes.tolist(), strict=True)):
        top, left, h, w = crop.relative(height, width)
        theta[i, 0] = torch.tensor([-w if crop.mirror else w, 0, 2 * left + w - 1])
        theta[i, 1] = torch.tensor([0, h, 2 * top + h - 1])
    theta = theta.to(images.device)
    grid = F.affine_grid(theta, [len(crops), images.shape[1], size, size], align_corners=False)
    out = F.grid_sample(
        images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return out.round_().clamp_(0, 255).to(torch.uint8)


def pad_crop(images: Tensor, generator: torch.Generator, pad: int = 4, flip: bool = True) -> Tensor:
    """uint8 (B, 3, S, S) -> (B, 3, S, S): each image zero-padded by `pad` pixels a side, an
    S x S window at a uniform offset cut from it, mirrored with probability 1/2; the offsets
    and mirrors drawn from `generator` (on the CPU), so a resumed run cuts the same windows."""
    n, _, size, _ = images.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, n, 1), generator=generator).to(images.device)
    mirror = (torch.rand(n, generator=generator) < 0.5) & flip
    span = torch.arange(size, device=images.device)
    columns = torch.where(mirror.to(images.device)[:, None], span.flip(0), span)
    rows, columns = offsets[0] + span, offsets[1] + columns  # (B, S) each, in padded pixels
    padded = F.pad(images, (pad, pad, pad, pad))
    batch = torch.arange(n, device=images.device)[:, None, None]
    windows = padded[batch, :, rows[:, :, None], columns[:, None, :]]  # (B, S, S, 3)
    return windows.permute(0, 3, 1, 2)


def crop_seeds(generator: torch.Generator, count: int) -> list[int]:
    """One seed per image of an epoch, from the run's (seed, epoch, rank) generator."""
    return torch.randint(0, 2**62, (count,), generator=generator).tolist()


@dataclass(frozen=True)
class Augmentation:
    """The normalisation a run applies, with the mean and std the weights expect, and whether
    its crops flip; the loaders cut the inception crop, the trainer the padded one and
    normalises on the device."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool = True

    def normalise(self, images: Tensor) -> Tensor:
        """uint8 (B, 3, S, S) -> (x / 255 - mean) / std, float."""
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1) * 255
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1) * 255
        return (images.float() - mean) / std

    eval = normalise  # the evaluation view is the whole image at S x S, as the loaders give it
