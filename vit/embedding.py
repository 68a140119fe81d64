"""Eq. 1: patch embedding, the [class] token and position embeddings.

    z_0 = [x_class; x_p^1 E; x_p^2 E; ...; x_p^N E] + E_pos,
    E in R^{(P^2 C) x D},  E_pos in R^{(N+1) x D}

"We reshape the image x in R^{H x W x C} into a sequence of flattened 2D patches
x_p in R^{N x (P^2 C)} ... and map to D dimensions with a trainable linear projection."
A linear map applied to non-overlapping P x P patches is exactly a convolution with kernel
and stride P, which is how E is stored here (and in every reference implementation);
`tests/test_eq1_embedding.py` checks it equals flatten + Linear.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vit.config import ViTConfig


class PatchEmbedding(nn.Module):
    """Eq. 1: z_0 = [x_class; x_p E] + E_pos, followed by dropout (Appendix B.1)."""

    def __init__(self, config: ViTConfig, in_channels: int | None = None) -> None:
        """in_channels: of what E's patches are cut from; the image's C unless a hybrid's
        feature map (`vit.hybrid`)."""
        super().__init__()
        self.patch_size, self.in_channels = config.patch_size, config.in_channels
        self.downsampling = config.downsampling  # input pixels per patch side
        # E: (P^2 C) -> D on each patch, stored as a stride-P convolution.
        self.projection = nn.Conv2d(
            in_channels or config.in_channels,
            config.hidden_size,
            config.patch_size,
            stride=config.patch_size,
        )
        self.class_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))  # x_class
        self.position_embedding = nn.Parameter(  # E_pos, learnable and 1-D
            torch.zeros(1, config.num_patches + 1, config.hidden_size)
        )
        self.dropout = nn.Dropout(config.dropout)

    @property
    def image_size(self) -> int:
        """H = W, read off E_pos: (N + 1) rows for N = (H / P)^2 patches, so resizing E_pos
        (Section 3.2) is all it takes to change the resolution."""
        return math.isqrt(self.position_embedding.shape[1] - 1) * self.downsampling

    def check_input(self, images: torch.Tensor) -> None:
        size = self.image_size
        if images.ndim != 4:
            raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
        if images.shape[1] != self.in_channels:
            raise ValueError(
                f"expected {self.in_channels} channels, got {images.shape[1]} "
                f"(input shape {tuple(images.shape)}); convert grayscale images to RGB"
            )
        if images.shape[-2:] != (size, size):
            raise ValueError(
                f"expected {size}x{size} images, got "
                f"{images.shape[-2]}x{images.shape[-1]}; resize the input, or call "
                f"model.resize_position_embedding(image_size) to change the model's resolution "
                f"(Section 3.2)"
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, N + 1, D)."""
        return self.add_class_and_position(self.embed_patches(images))

    def embed_patches(self, images: torch.Tensor) -> torch.Tensor:
        """The patch embeddings x_p E: (B, C, H, W) -> (B, N, D), patches in row-major order."""
        self.check_input(images)
        patches = self.projection(self.feature_map(images))  # (B, D, grid, grid)
        return rearrange(patches, "b d gh gw -> b (gh gw) d")

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """What E's patches are cut from: the image itself; a hybrid's CNN features instead."""
        return images

    def add_class_and_position(self, patches: torch.Tensor) -> torch.Tensor:
        """z_0 = [x_class; x_p E] + E_pos, then dropout: (B, N, D) -> (B, N + 1, D)."""
        class_token = self.class_token.expand(patches.shape[0], -1, -1)  # (B, 1, D)
        z0 = torch.cat([class_token, patches], dim=1) + self.position_embedding
        return self.dropout(z0)


def resize_position_embedding(
    position_embedding: torch.Tensor, new_grid: int, mode: str = "bicubic"
) -> torch.Tensor:
    """Section 3.2: "2D interpolation of the pre-trained position embeddings, according to
    their location in the original image".

    (1, 1 + g^2, D) -> (1, 1 + new_grid^2, D). The class token's embedding has no location and
    is kept as it is; the g x g grid is resampled (bicubic by default: bilinear shrinks norms).
    """
    class_pos, grid_pos = position_embedding[:, :1], position_embedding[:, 1:]
    old_grid = math.isqrt(grid_pos.shape[1])
    if old_grid**2 != grid_pos.shape[1]:
        raise ValueError(
            f"position embedding has {grid_pos.shape[1]} patch positions, not a square grid"
        )
    if old_grid == new_grid:
        return position_embedding
    grid = rearrange(grid_pos, "1 (h w) d -> 1 d h w", h=old_grid)
    grid = F.interpolate(
        grid.float(),
        size=(new_grid, new_grid),
        mode=mode,
        align_corners=False,
        antialias=new_grid < old_grid,
    ).to(position_embedding.dtype)
    grid_pos = rearrange(grid, "1 d h w -> 1 (h w) d")
    return torch.cat([class_pos, grid_pos], dim=1)
