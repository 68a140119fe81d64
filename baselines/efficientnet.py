"""EfficientNet-B0 and -B2 (Tan & Le, 2019) from torchvision: the course's transfer-learning
baselines (B0 as a feature extractor scored 85.6% on pizza/steak/sushi in the course).

The classifier is torchvision's, Dropout + Linear, with num_classes outputs. ImageNet weights come
with `pretrained="torchvision:IMAGENET1K_V1"` (or "torchvision:DEFAULT", or a local state-dict
file, see `baselines.weights`); the default image size is the crop of those weights' transform.
Global average pooling makes any image size work.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from baselines.head import CNNClassifier
from baselines.weights import load_torchvision_weights
from vit.registry import register_model


@dataclass(frozen=True)
class EfficientNetVariant:
    torchvision_name: str  # builder and weights enum in torchvision.models
    dropout: float  # before the classifier, as torchvision and the course
    image_size: int  # crop size of torchvision's IMAGENET1K_V1 transform


VARIANTS = {
    "effnet_b0": EfficientNetVariant("efficientnet_b0", dropout=0.2, image_size=224),
    "effnet_b2": EfficientNetVariant("efficientnet_b2", dropout=0.3, image_size=288),
}


class EfficientNet(CNNClassifier):
    """torchvision's EfficientNet with the head contract; module names (and so the state dict's
    keys) are torchvision's."""

    def __init__(self, model: nn.Module, image_size: int) -> None:
        super().__init__()
        self.image_size = image_size  # any size works (global average pooling); evaluated at this
        self.features = model.features
        self.avgpool = model.avgpool
        self.classifier = model.classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> logits (B, K)."""
        return self.classifier(self.avgpool(self.features(images)).flatten(1))


def build_efficientnet(
    variant: EfficientNetVariant,
    num_classes: int | None,  # None: the weights' own head
    image_size: int,
    pretrained: str | None,
    dropout: float,
    stochastic_depth_prob: float = 0.2,  # torchvision's: blocks dropped per sample in training
) -> EfficientNet:
    from torchvision.models import get_model_builder  # lazy: create_model("vit_b16") skips it

    state, info = (
        load_torchvision_weights(variant.torchvision_name, pretrained, variant.image_size)
        if pretrained is not None
        else (None, None)
    )
    # Build with the weights' own head (ImageNet's 1000 classes, or a fine-tuned file's), load,
    # then resize the head: the loaded head is kept whenever it already fits.
    head_weight = state.get("classifier.1.weight") if state else None
    source_classes = num_classes if head_weight is None else head_weight.shape[0]
    num_classes = source_classes if num_classes is None else num_classes
    builder = get_model_builder(variant.torchvision_name)
    model = EfficientNet(
        builder(
            num_classes=source_classes,
            dropout=dropout,
            stochastic_depth_prob=stochastic_depth_prob,
        ),
        image_size,
    )
    if state is not None:
        model.load_state_dict(state)
        model.pretrained_info = info
    if source_classes != num_classes:
        model.replace_head(num_classes)
    return model


def _register(name: str, variant: EfficientNetVariant) -> None:
    @register_model(
        name,
        family="cnn",
        default_image_size=variant.image_size,
        description=f"torchvision {variant.torchvision_name}, classifier Dropout({variant.dropout})"
        " + Linear; ImageNet weights with pretrained='torchvision:IMAGENET1K_V1'",
    )
    def build(
        num_classes: int | None,
        image_size: int,
        pretrained: str | None,
        dropout: float = variant.dropout,
        stochastic_depth_prob: float = 0.2,
    ) -> EfficientNet:
        return build_efficientnet(
            variant, num_classes, image_size, pretrained, dropout, stochastic_depth_prob
        )


for _name, _variant in VARIANTS.items():
    _register(_name, _variant)
