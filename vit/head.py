"""Eq. 4: the classification head on the class token's final state.

    y = LN(z_L^0)                                                            (4)

"The classification head is implemented by a MLP with one hidden layer at pre-training time
and by a single linear layer at fine-tuning time." The hidden layer (tanh, `representation_size`)
is the "pre-logits" layer of the released ImageNet-21k checkpoints.

`pool` chooses y (see `ViTConfig.pool`):
    "cls"           y = LN(z_L^0)                                  Eq. 4
    "gap"           y = mean_i LN(z_L^i), no class token           Appendix D.3 ("only
                    image-patch embeddings"), `classifier="gap"` in the official code and big_vision
    "gap_fc_norm"   y = LN(mean_i z_L^i) over the patch tokens     timm's `global_pool="avg"`
The final LN is `head.norm` when it normalises tokens and `head.fc_norm` when it normalises the
pooled vector, as in timm, so a state dict says which model it belongs to.
"""

from __future__ import annotations

import torch
from torch import nn

from vit.config import ViTConfig


class ClassificationHead(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.pool = config.pool
        self.num_prefix_tokens = int(config.has_class_token)
        layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        if self.pool == "gap_fc_norm":
            self.fc_norm = layer_norm  # on the pooled vector
        else:
            self.norm = layer_norm  # on every token: the encoder's final LN (Eq. 4's LN)
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
        """y of Eq. 4: (B, [1 +] N, D) -> (B, D)."""
        if self.pool == "cls":
            return self.norm(z_L[:, 0])  # LN is per token: LN of z_L^0 alone is the same
        patches = z_L[:, self.num_prefix_tokens :]  # a class token is not averaged
        if self.pool == "gap":
            return self.norm(patches).mean(dim=1)
        return self.fc_norm(patches.mean(dim=1))

    def forward(self, z_L: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, [1 +] N, D) -> logits (B, K), or with `pre_logits` the classifier's input."""
        x = self.pre_logits(self.features(z_L))
        return x if pre_logits else self.classifier(x)


def classifier(width: int, num_classes: int) -> nn.Module:
    """The final linear layer; num_classes=0 leaves the features as they are (as in timm)."""
    return nn.Linear(width, num_classes) if num_classes else nn.Identity()
