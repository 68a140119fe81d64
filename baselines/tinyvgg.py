"""TinyVGG: the CNN Explainer network (poloclub.github.io/cnn-explainer) as built in the course
(mrdbourke/pytorch-deep-learning, section 04), the from-scratch baseline of the ViT notebooks.

    (conv3x3 -> ReLU -> conv3x3 -> ReLU -> maxpool2) x 2 -> flatten -> linear

Convolutions are unpadded, so each block maps a side s to (s - 4) // 2: 64 -> 30 -> 13, and the
classifier sees hidden_units * 13 * 13 features at the course's 64 x 64.
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.head import CNNClassifier
from vit.registry import register_model


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Conv-ReLU-Conv-ReLU-MaxPool: side s -> (s - 4) // 2."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=0),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=0),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=2, stride=2),
    )


def feature_side(image_size: int) -> int:
    """Side of the feature map after both blocks."""
    return ((image_size - 4) // 2 - 4) // 2


class TinyVGG(CNNClassifier):
    def __init__(
        self,
        *,
        num_classes: int,
        image_size: int = 64,
        hidden_units: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        side = feature_side(image_size)
        if side < 1:
            raise ValueError(f"TinyVGG needs images of at least 16x16, got {image_size}")
        self.image_size = image_size
        self.conv_block_1 = conv_block(in_channels, hidden_units)
        self.conv_block_2 = conv_block(hidden_units, hidden_units)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(hidden_units * side * side, num_classes)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> logits (B, K)."""
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"this TinyVGG was built for {self.image_size}x{self.image_size} images, got "
                f"{images.shape[-2]}x{images.shape[-1]}; resize the input or build it with "
                f"image_size={images.shape[-1]}"
            )
        return self.classifier(self.conv_block_2(self.conv_block_1(images)))


@register_model(
    "tinyvgg",
    family="cnn",
    default_image_size=64,
    description="TinyVGG (CNN Explainer), the course's from-scratch CNN: "
    "2 x (conv-ReLU-conv-ReLU-maxpool), linear",
)
def build(
    num_classes: int, image_size: int, pretrained: str | None, hidden_units: int = 10
) -> TinyVGG:
    if pretrained is not None:
        raise ValueError(
            f"TinyVGG has no pretrained weights (got pretrained={pretrained!r}); "
            "it is trained from scratch: pass pretrained=None"
        )
    return TinyVGG(num_classes=num_classes, image_size=image_size, hidden_units=hidden_units)
