"""The contract of the baselines: `model.head`, `model.replace_head(num_classes)`, and timm's
`pretrained_cfg` (the input the model expects), shared with `vit.VisionTransformer`."""

from __future__ import annotations

from torch import nn

from vit.data_config import evaluation_view


class CNNClassifier(nn.Module):
    """A CNN whose `classifier` is an `nn.Sequential` ending in the final `nn.Linear`."""

    classifier: nn.Sequential
    image_size: int  # the side of the images it is evaluated on

    @property
    def pretrained_cfg(self) -> dict:
        """timm's description of the input: size, mean/std, resizing (`vit.data_config`)."""
        return evaluation_view(self, self.image_size)

    @property
    def num_classes(self) -> int:
        """K, the final linear layer's outputs (timm's attribute)."""
        return self.classifier[-1].out_features

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
