"""Eq. 4: the classification head on the class token's final state.

    y = LN(z_L^0)                                                            (4)

"The classification head is implemented by a MLP with one hidden layer at pre-training time
and by a single linear layer at fine-tuning time." The hidden layer (tanh, `representation_size`)
is the "pre-logits" layer of the released ImageNet-21k checkpoints. `pool="gap"` averages the
patch tokens instead of reading the class token (the Figure 9 ablation).
"""

from __future__ import annotations

import torch
from torch import nn

from vit.config import ViTConfig


class ClassificationHead(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.pool = config.pool
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # LN of Eq. 4
        width = config.representation_size or config.hidden_size
        self.pre_logits = (
            nn.Sequential(nn.Linear(config.hidden_size, width), nn.Tanh())
            if config.representation_size
            else nn.Identity()
        )
        self.classifier = classifier(width, config.num_classes)

    @property
    def num_classes(self) -> int:
        """K, read off the classifier (0: the head outputs the features, timm's convention)."""
        return getattr(self.classifier, "out_features", 0)

    @property
    def representation_size(self) -> int | None:
        """Width of the pre-logits layer, None without one."""
        return None if isinstance(self.pre_logits, nn.Identity) else self.pre_logits[0].out_features

    def features(self, z_L: torch.Tensor) -> torch.Tensor:
        """y of Eq. 4: (B, N + 1, D) -> (B, D)."""
        pooled = z_L[:, 0] if self.pool == "cls" else z_L[:, 1:].mean(dim=1)
        # LN is per token, so for the class token LN-then-pool equals pool-then-LN; for GAP,
        # normalising the pooled vector is what timm (fc_norm) and big_vision do.
        return self.norm(pooled)

    def forward(self, z_L: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, N + 1, D) -> logits (B, K), or with `pre_logits` the classifier's input."""
        x = self.pre_logits(self.features(z_L))
        return x if pre_logits else self.classifier(x)


def classifier(width: int, num_classes: int) -> nn.Module:
    """The final linear layer; num_classes=0 leaves the features as they are (as in timm)."""
    return nn.Linear(width, num_classes) if num_classes else nn.Identity()
