"""Table 1: the model variants, plus the small Ti and S (DeiT's sizes) for experiments.

    Model      Layers  Hidden size D  MLP size  Heads  Params
    ViT-Base     12        768          3072      12     86M
    ViT-Large    24        1024         4096      16     307M
    ViT-Huge     32        1280         5120      16     632M

"ViT-L/16 means the 'Large' variant with 16 x 16 input patch size." One function per variant,
as the official `get_b16_config` and timm's `vit_base_patch16_224`: its name is the registry
name, its body the ViTConfig (at 224 px and 1000 classes; `create_model` changes those).

The hybrids (Section 3.1, Appendix D.2; `vit.hybrid`) feed a ResNet-50's feature map to E with
patch size 1: "for hybrids, the number at the end of the model name stands not for the patch
size, but for the total dowsampling ratio in the ResNet backbone".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from vit.config import ViTConfig
from vit.embedding import InterpolationMode
from vit.model import VisionTransformer
from vit.registry import register_model


@dataclass(frozen=True)
class Variant:
    name: str  # registry name, e.g. "vit_b16"
    paper_name: str  # e.g. "ViT-B/16"
    config: ViTConfig  # 224 x 224 inputs, 1000 classes


VARIANTS: dict[str, Variant] = {}


def build_variant(
    name: str,
    num_classes: int | None,
    image_size: int,
    pretrained: str | None,
    interpolation: InterpolationMode = "linear",
    **overrides,
) -> VisionTransformer:
    """The registry's builder for every variant: its config, changed, with weights on request
    (num_classes None: the weights' own head); `interpolation` resizes pretrained E_pos to
    `image_size` (`vit.embedding`)."""
    config = VARIANTS[name].config.replace(image_size=image_size, **overrides)
    if num_classes is not None:
        config = config.replace(num_classes=num_classes)
    if pretrained is None:
        return VisionTransformer(config)
    from vit.pretrained import load_pretrained  # imports timm/torchvision only when needed

    return load_pretrained(
        config,
        pretrained,
        variant=name,
        keep_head=num_classes is None,
        interpolation=interpolation,
    )


def variant(paper_name: str) -> Callable[[Callable[[], ViTConfig]], Callable[[], ViTConfig]]:
    """Register the decorated config function as a model named after the function."""

    def decorator(make_config: Callable[[], ViTConfig]) -> Callable[[], ViTConfig]:
        entry = Variant(make_config.__name__, paper_name, make_config())
        VARIANTS[entry.name] = entry
        c = entry.config
        patches = f"{c.patch_size}x{c.patch_size} patches"
        if c.resnet_layers:
            patches += f" of a ResNet-50 (BiT) feature map, stages {c.resnet_layers}"
        register_model(
            entry.name,
            family="vit",
            default_image_size=c.image_size,
            description=f"{paper_name}: {c.depth} layers, D={c.hidden_size}, MLP {c.mlp_size}, "
            f"{c.num_heads} heads, {patches}",
        )(partial(build_variant, entry.name))
        return make_config

    return decorator


@variant("ViT-Ti/16")
def vit_ti16() -> ViTConfig:
    """DeiT's Tiny size: 12 layers, D = 192, MLP 768, 3 heads (5.7M parameters)."""
    return ViTConfig(patch_size=16, hidden_size=192, depth=12, num_heads=3, mlp_size=768)


@variant("ViT-S/16")
def vit_s16() -> ViTConfig:
    """DeiT's Small size: 12 layers, D = 384, MLP 1536, 6 heads (22M parameters)."""
    return ViTConfig(patch_size=16, hidden_size=384, depth=12, num_heads=6, mlp_size=1536)


@variant("ViT-B/16")
def vit_b16() -> ViTConfig:
    """ViT-Base (Table 1): 12 layers, D = 768, MLP 3072, 12 heads (86M parameters)."""
    return ViTConfig(patch_size=16, hidden_size=768, depth=12, num_heads=12, mlp_size=3072)


@variant("ViT-B/32")
def vit_b32() -> ViTConfig:
    """ViT-Base with 32 x 32 patches."""
    return vit_b16().replace(patch_size=32)


@variant("ViT-L/16")
def vit_l16() -> ViTConfig:
    """ViT-Large (Table 1): 24 layers, D = 1024, MLP 4096, 16 heads (307M parameters)."""
    return ViTConfig(patch_size=16, hidden_size=1024, depth=24, num_heads=16, mlp_size=4096)


@variant("ViT-L/32")
def vit_l32() -> ViTConfig:
    """ViT-Large with 32 x 32 patches."""
    return vit_l16().replace(patch_size=32)


@variant("ViT-H/14")
def vit_h14() -> ViTConfig:
    """ViT-Huge (Table 1): 32 layers, D = 1280, MLP 5120, 16 heads (632M parameters)."""
    return ViTConfig(patch_size=14, hidden_size=1280, depth=32, num_heads=16, mlp_size=5120)


@variant("R50+ViT-B/16")
def vit_r50_b16() -> ViTConfig:
    """Hybrid, option (ii): ResNet-50 with stage 4 removed and its layers placed in stage 3,
    (3, 4, 9), stride 16; ViT-Base on 1x1 patches of its 1024-channel feature map (timm's
    `vit_base_r50_s16_*`, the official `R50+ViT-B_16`)."""
    return vit_b16().replace(patch_size=1, resnet_layers=(3, 4, 9))


@variant("R50+ViT-L/32")
def vit_r50_l32() -> ViTConfig:
    """Hybrid, option (i): the output of stage 4 of a ResNet-50, (3, 4, 6, 3), stride 32;
    ViT-Large on 1x1 patches of its 2048-channel feature map (timm's `vit_large_r50_s32_*`)."""
    return vit_l16().replace(patch_size=1, resnet_layers=(3, 4, 6, 3))
