"""The BiT ResNets as models of the registry (`bit_r50x1`, `bit_r101x1`, `bit_r50x3`,
`bit_r152x2`): the network from `baselines.bit_network`, pretrained weights through
`baselines.bit_weights`."""

from __future__ import annotations

from baselines.bit_network import (
    IMAGE_SIZE,
    VARIANTS,
    BiT,
    BiTVariant,
    Norm,
    Stem,
    build_network,
)
from baselines.bit_weights import load_bit_weights
from vit.registry import register_model


def build_bit(
    variant: BiTVariant,
    num_classes: int,
    image_size: int,
    pretrained: str | None,
    stem: Stem,
    layers: tuple[int, ...] | None = None,
    width: float = 1.0,
    norm: Norm = "group",
) -> BiT:
    if pretrained is None:
        return BiT(build_network(variant, num_classes, stem, layers, width, norm), image_size)
    network, info = load_bit_weights(variant, pretrained, stem, IMAGE_SIZE, layers, width, norm)
    model = BiT(network, image_size)
    model.pretrained_info = info
    if model.num_classes != num_classes:
        model.replace_head(num_classes)
    return model


def _register(name: str, variant: BiTVariant) -> None:
    @register_model(
        name,
        family="cnn",
        default_image_size=IMAGE_SIZE,
        description=f"BiT ResNetV2 (timm {variant.timm_name}), GroupNorm + weight standardisation;"
        " stem='imagenet' or 'small' (3x3 stride 1, no pool, for 32x32); norm='group' or 'batch'"
        " (BatchNorm, plain convolutions); weights "
        f"pretrained='timm:{variant.timm_name}.goog_in21k' or {variant.bit_name}.npz",
    )
    def build(
        num_classes: int,
        image_size: int,
        pretrained: str | None,
        stem: Stem = "imagenet",
        layers: tuple[int, ...] | None = None,
        width: float = 1.0,
        norm: Norm = "group",
    ) -> BiT:
        return build_bit(variant, num_classes, image_size, pretrained, stem, layers, width, norm)


for _name, _variant in VARIANTS.items():
    _register(_name, _variant)
