"""Augmentation and normalisation of whole uint8 batches on the training device.

Training: a random resized crop (inception style, as big_vision's `inception_crop`) and an
optional horizontal flip, both one `affine_grid` + `grid_sample` over the batch; evaluation:
the S x S image as it is (big_vision's `resize`). Then (x / 255 - mean) / std with the mean and
std the weights expect. The random numbers come from a generator the caller seeds, so a batch
depends on (seed, epoch) only and a resumed run sees the same crops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

ASPECT_RATIOS = (3 / 4, 4 / 3)  # the inception crop's range, as torchvision's RandomResizedCrop


@dataclass(frozen=True)
class Augmentation:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    flip: bool = True
    crop_scale: tuple[float, float] = (0.08, 1.0)  # fraction of the image's area kept

    def train(self, images: Tensor, generator: torch.Generator) -> Tensor:
        """uint8 (B, 3, S, S) -> a normalised float batch of random crops, (B, 3, S, S)."""
        theta = self.crop_transforms(images.shape[0], generator).to(images.device)
        return self._normalise(resample(images, theta))

    def eval(self, images: Tensor) -> Tensor:
        """uint8 (B, 3, S, S) -> the normalised float batch."""
        return self._normalise(images.float())

    def crop_transforms(self, batch: int, generator: torch.Generator) -> Tensor:
        """(B, 2, 3) affine maps from output to input coordinates, in [-1, 1] units: a crop of
        area `crop_scale` and aspect `ASPECT_RATIOS` (clipped to the image), maybe mirrored."""
        u = torch.rand(batch, 5, generator=generator)
        area = self.crop_scale[0] + (self.crop_scale[1] - self.crop_scale[0]) * u[:, 0]
        log_lo, log_hi = (math.log(r) for r in ASPECT_RATIOS)
        aspect = torch.exp(log_lo + (log_hi - log_lo) * u[:, 1])
        width = torch.sqrt(area * aspect).clamp(max=1)  # as fractions of the side
        height = torch.sqrt(area / aspect).clamp(max=1)
        centre_x = (1 - width) * (2 * u[:, 2] - 1)  # anywhere the crop stays inside
        centre_y = (1 - height) * (2 * u[:, 3] - 1)
        mirror = torch.where((u[:, 4] < 0.5) & self.flip, -1.0, 1.0)
        zero = torch.zeros(batch)
        return torch.stack(
            [
                torch.stack([width * mirror, zero, centre_x], dim=1),
                torch.stack([zero, height, centre_y], dim=1),
            ],
            dim=1,
        )

    def _normalise(self, images: Tensor) -> Tensor:
        mean = torch.tensor(self.mean, device=images.device).view(1, -1, 1, 1) * 255
        std = torch.tensor(self.std, device=images.device).view(1, -1, 1, 1) * 255
        return (images - mean) / std


def resample(images: Tensor, theta: Tensor) -> Tensor:
    """uint8 (B, C, H, W) -> float (B, C, H, W), bilinear, through the (B, 2, 3) affine maps."""
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", align_corners=False)
