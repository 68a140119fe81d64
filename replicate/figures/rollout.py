"""Figure 6 and Appendix D.8: attention from the output token to the input space.

"To compute maps of the attention from the output token to the input space (Figures 6 and
14), we used Attention Rollout (Abnar & Zuidema, 2020). Briefly, we averaged attention weights
of ViT-L/16 across all heads and then recursively multiplied the weight matrices of all layers.
This accounts for the mixing of attention across tokens through all layers."

Abnar & Zuidema also account for the residual connections: each layer's averaged weights get
the identity added and their rows renormalised, A' = (A + I) / 2, before the product.

The "output token" is the class token when the model has one. A GAP model (`pool="gap"`) has
none: its output is the mean of all tokens, so its map is the mean of every token's rollout row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def attention_rollout(attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-layer attention weights [(B, heads, T, T)] * L -> rollout (B, T, T), layer L's
    mixing on the left: R = A'_L ... A'_2 A'_1."""
    if not attentions:
        raise ValueError("attention rollout needs the attention weights of at least one layer")
    batch, _, tokens, _ = attentions[0].shape
    identity = torch.eye(tokens, dtype=torch.float64, device=attentions[0].device)
    rollout = identity.expand(batch, tokens, tokens)
    for attention in attentions:
        mixed = attention.double().mean(dim=1) + identity  # heads averaged, plus the residual
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed @ rollout
    return rollout.float()


def output_token_maps(rollout: torch.Tensor, *, class_token: bool) -> torch.Tensor:
    """Rollout (B, T, T) -> (B, g, g): the output's row over the patches, on the patch grid,
    scaled so each image's largest weight is 1. With a class token (T = N + 1) that is the class
    token's row; without one (GAP, T = N), the mean of all rows, as GAP averages the tokens."""
    prefix = int(class_token)
    grid_size = math.isqrt(rollout.shape[-1] - prefix)
    rows = rollout[:, 0] if class_token else rollout.mean(dim=1)
    maps = rows[:, prefix:].reshape(-1, grid_size, grid_size)  # row-major patch order
    return maps / maps.amax(dim=(1, 2), keepdim=True)


def upsample_maps(maps: torch.Tensor, image_size: int) -> torch.Tensor:
    """(B, g, g) -> (B, image_size, image_size), bilinear, to lay a map over its image."""
    return F.interpolate(maps[:, None], size=image_size, mode="bilinear")[:, 0]
