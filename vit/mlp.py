"""The MLP block of Eq. 3: "The MLP contains two layers with a GELU non-linearity."

Dropout follows every dense layer (Appendix B.1). GELU is the exact (erf) form, as in the
reference implementations; the tanh approximation changes outputs of pretrained weights.
"""

from __future__ import annotations

import torch
from torch import nn

from vit.config import ViTConfig


class MLP(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.mlp_size)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(config.dropout)
        self.fc2 = nn.Linear(config.mlp_size, config.hidden_size)
        self.drop2 = nn.Dropout(config.dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(z)))))
