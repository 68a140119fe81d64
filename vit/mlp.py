"""The MLP block of Eq. 3: "The MLP contains two layers with a GELU non-linearity."

Dropout follows every dense layer (Appendix B.1). `config.gelu` picks the GELU: "exact" (erf), as
timm and torchvision compute it, or "tanh", 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), the
form flax's `nn.gelu` computes by default and so the form the official JAX models (2020 code,
Linen code, big_vision) were trained and evaluated with. The two differ by up to ~5e-4 per unit
(logits of official weights move by a few 1e-4), so official weights get "tanh".
"""

from __future__ import annotations

import torch
from torch import nn

from vit.config import ViTConfig
from vit.dropout import Dropout


class MLP(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.mlp_size)
        self.act = nn.GELU(approximate="none" if config.gelu == "exact" else "tanh")
        self.drop1 = Dropout(config.dropout)
        self.fc2 = nn.Linear(config.mlp_size, config.hidden_size)
        self.drop2 = Dropout(config.dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, N, D) -> (B, N, D)."""
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(z)))))
