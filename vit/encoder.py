"""Eq. 2-3: the Transformer encoder block, pre-LayerNorm with residual connections.

    z'_l = MSA(LN(z_{l-1})) + z_{l-1},    l = 1...L     (2)
    z_l  = MLP(LN(z'_l)) + z'_l,          l = 1...L     (3)

"Layernorm (LN) is applied before every block, and residual connections after every block."
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from vit.attention import MultiHeadSelfAttention
from vit.config import ViTConfig
from vit.mlp import MLP


class EncoderBlock(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = MultiHeadSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, N + 1, D) -> (B, N + 1, D)."""
        z = self.attention(self.norm1(z)) + z  # Eq. 2
        return self.mlp(self.norm2(z)) + z  # Eq. 3


class Encoder(nn.Module):
    """L encoder blocks applied in sequence: z_0 -> z_L."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderBlock(config) for _ in range(config.depth))
        # Keep only each block's input for the backward pass and recompute the rest there:
        # activation memory of one block instead of L, for about a third more compute.
        self.grad_checkpointing = False

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            if self.grad_checkpointing and torch.is_grad_enabled():
                z = checkpoint(layer, z, use_reentrant=False)  # same dropout masks when redone
            else:
                z = layer(z)
        return z

    def attention_maps(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's attention weights A (Eq. 6), (B, k, N + 1, N + 1), for the figures."""
        maps = []
        for layer in self.layers:
            maps.append(layer.attention.attention_weights(layer.norm1(z)))
            z = layer(z)
        return maps
