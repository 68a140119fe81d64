"""Eq. 1: patch embedding, the [class] token and position embeddings.

    z_0 = [x_class; x_p^1 E; x_p^2 E; ...; x_p^N E] + E_pos,
    E in R^{(P^2 C) x D},  E_pos in R^{(N+1) x D}

"We reshape the image x in R^{H x W x C} into a sequence of flattened 2D patches
x_p in R^{N x (P^2 C)} ... and map to D dimensions with a trainable linear projection."
A linear map applied to non-overlapping P x P patches is exactly a convolution with kernel
and stride P, which is how E is stored here (and in every reference implementation, so that
their weights load as they are); it is computed as the paper writes it, flatten + linear, which
measured 2-20x faster than the convolution's kernels on a CPU (forward and backward, fp32 and
bf16). `tests/test_eq1_embedding.py` checks it equals the convolution.

Without a class token (`pool="gap"`, Appendix D.3: "only image-patch embeddings"), z_0 is
[x_p^1 E; ...; x_p^N E] + E_pos with E_pos in R^{N x D}, as in the official code and big_vision.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vit.config import ViTConfig
from vit.dropout import Dropout


class PatchEmbedding(nn.Module):
    """Eq. 1: z_0 = [x_class; x_p E] + E_pos, followed by dropout (Appendix B.1)."""

    def __init__(self, config: ViTConfig, in_channels: int | None = None) -> None:
        """in_channels: of what E's patches are cut from; the image's C unless a hybrid's
        feature map (`vit.hybrid`)."""
        super().__init__()
        self.patch_size, self.in_channels = config.patch_size, config.in_channels
        self.downsampling = config.downsampling  # input pixels per patch side
        self.has_class_token = config.has_class_token
        # E: (P^2 C) -> D on each patch, stored as a stride-P convolution's (D, C, P, P).
        self.projection = nn.Conv2d(
            in_channels or config.in_channels,
            config.hidden_size,
            config.patch_size,
            stride=config.patch_size,
        )
        if config.has_class_token:
            self.class_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))  # x_class
        self.position_embedding = nn.Parameter(  # E_pos, learnable and 1-D
            torch.zeros(1, config.num_tokens, config.hidden_size)
        )
        self.dropout = Dropout(config.dropout)

    @property
    def image_size(self) -> int:
        """H = W, read off E_pos: N (+ 1 with a class token) rows for N = (H / P)^2 patches, so
        resizing E_pos (Section 3.2) is all it takes to change the resolution."""
        positions = self.position_embedding.shape[1] - self.has_class_token
        return math.isqrt(positions) * self.downsampling

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
        """(B, C, H, W) -> (B, N + 1, D), or (B, N, D) without a class token."""
        return self.add_class_and_position(self.embed_patches(images))

    def embed_patches(self, images: torch.Tensor) -> torch.Tensor:
        """The patch embeddings x_p E: (B, C, H, W) -> (B, N, D), patches in row-major order."""
        self.check_input(images)
        p = self.patch_size
        x_p = rearrange(  # (B, N, P^2 C), flattened in E's (C, P, P) order
            self.feature_map(images), "b c (gh p1) (gw p2) -> b (gh gw) (c p1 p2)", p1=p, p2=p
        )
        return F.linear(x_p, self.projection.weight.flatten(1), self.projection.bias)

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """What E's patches are cut from: the image itself; a hybrid's CNN features instead."""
        return images

    def add_class_and_position(self, patches: torch.Tensor) -> torch.Tensor:
        """z_0 = [x_class; x_p E] + E_pos, then dropout: (B, N, D) -> (B, [1 +] N, D)."""
        tokens = patches
        if self.has_class_token:
            class_token = self.class_token.expand(patches.shape[0], -1, -1)  # (B, 1, D)
            tokens = torch.cat([class_token, patches], dim=1)
        return self.dropout(tokens + self.position_embedding)


InterpolationMode = Literal["linear", "bicubic"]


def resize_position_embedding(
    position_embedding: torch.Tensor,
    new_grid: int,
    *,
    class_token: bool,
    mode: InterpolationMode = "linear",
) -> torch.Tensor:
    """Section 3.2: "2D interpolation of the pre-trained position embeddings, according to
    their location in the original image".

    (1, [1 +] g^2, D) -> (1, [1 +] new_grid^2, D). The class token's embedding has no location
    and is kept as it is; the g x g grid is resampled.

    mode="linear" (the default) is what the paper's fine-tuning ran: the official code
    (`vit_jax/checkpoint.py`, `interpolate_posembed`) and big_vision (`resample_posemb`) call
    `scipy.ndimage.zoom(grid, zoom, order=1)`, bilinear interpolation that maps the corner
    patches onto the corner patches (scipy's `grid_mode=False`: `align_corners=True` here) and
    no anti-aliasing. mode="bicubic" is timm's `resample_abs_pos_embed`: bicubic, half-pixel
    centres, PyTorch's anti-aliased kernel (which differs from the plain bicubic one even when
    enlarging). Linear is the default because it is what produced the paper's numbers.
    """
    if mode not in ("linear", "bicubic"):
        raise ValueError(f"interpolation mode must be 'linear' or 'bicubic', not {mode!r}")
    prefix = int(class_token)
    class_pos, grid_pos = position_embedding[:, :prefix], position_embedding[:, prefix:]
    old_grid = math.isqrt(grid_pos.shape[1])
    if old_grid**2 != grid_pos.shape[1]:
        raise ValueError(
            f"position embedding has {grid_pos.shape[1]} patch positions, not a square grid"
        )
    if old_grid == new_grid:
        return position_embedding
    grid = rearrange(grid_pos, "1 (h w) d -> 1 d h w", h=old_grid)
    size = (new_grid, new_grid)
    if mode == "linear":  # scipy.ndimage.zoom(order=1)
        grid = F.interpolate(grid.float(), size, mode="bilinear", align_corners=True)
    else:  # timm: its anti-aliased bicubic kernel (a = -0.5) even when enlarging
        grid = F.interpolate(grid.float(), size, mode="bicubic", antialias=True)
    grid_pos = rearrange(grid.to(position_embedding.dtype), "1 d h w -> 1 (h w) d")
    return torch.cat([class_pos, grid_pos], dim=1)
