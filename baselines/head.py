"""The head contract of the baselines: `model.head` and `model.replace_head(num_classes)`."""

from __future__ import annotations

from torch import nn


class CNNClassifier(nn.Module):
    """A CNN whose `classifier` is an `nn.Sequential` ending in the final `nn.Linear`."""

    classifier: nn.Sequential

    @property
    def head(self) -> nn.Sequential:
        """The block a feature-extraction recipe trains (the rest is frozen)."""
        return self.classifier

    def replace_head(self, num_classes: int) -> None:
        """Swap the final linear layer for a freshly initialised `num_classes` one."""
        old = self.classifier[-1]
        self.classifier[-1] = nn.Linear(
            old.in_features, num_classes, device=old.weight.device, dtype=old.weight.dtype
        )
