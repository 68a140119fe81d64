"""Dropout (Appendix B.1: "dropout ... after every dense layer except for the qkv-projections and
directly after adding positional- to patch embeddings"), with a mask that is cheap on a CPU.

`nn.Dropout` on a CPU draws one 32-bit random number per element and builds its mask in fp32:
in a ViT's training step on two cores that took as long as every matrix product together.
`Dropout` draws one 64-bit number per four elements (16 random bits each, so the rate is
exact to 1/65536), builds the mask in the activations' dtype, and scales by 1 / (1 - p) as
`nn.Dropout` does. On a GPU it is `nn.Dropout`. Both draw from torch's default generator, so
`torch.manual_seed` and a checkpoint's saved RNG state reproduce the masks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_LEVELS = 1 << 16  # 16 random bits per element


class Dropout(nn.Dropout):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.device.type != "cpu":
            return F.dropout(x, self.p, self.training, self.inplace)
        # The scale is a separate product, so that in bf16 it rounds as nn.Dropout's does.
        return x * keep_mask(x, self.p) * (1 / (1 - self.p))


def keep_mask(x: torch.Tensor, p: float) -> torch.Tensor:
    """0 with probability p, else 1: x's shape and dtype, from 16 random bits each."""
    words = torch.empty((x.numel() + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
    bits = words.view(torch.int16)[: x.numel()].view(x.shape)  # uniform over [-2^15, 2^15)
    keep = bits >= round(p * _LEVELS) - _LEVELS // 2
    return keep.view(torch.uint8).to(x.dtype)
