"""Table 1: the model variants, plus the small Ti and S (DeiT's sizes) for experiments.

    Model      Layers  Hidden size D  MLP size  Heads  Params
    ViT-Base     12        768          3072      12     86M
    ViT-Large    24        1024         4096      16     307M
    ViT-Huge     32        1280         5120      16     632M

"ViT-L/16 means the 'Large' variant with 16 x 16 input patch size."
"""

from __future__ import annotations

from vit.config import ViTConfig
from vit.model import VisionTransformer
from vit.registry import register_model

TINY = dict(hidden_size=192, depth=12, num_heads=3, mlp_size=768)
SMALL = dict(hidden_size=384, depth=12, num_heads=6, mlp_size=1536)
BASE = dict(hidden_size=768, depth=12, num_heads=12, mlp_size=3072)
LARGE = dict(hidden_size=1024, depth=24, num_heads=16, mlp_size=4096)
HUGE = dict(hidden_size=1280, depth=32, num_heads=16, mlp_size=5120)

VARIANTS: dict[str, tuple[str, dict, int]] = {
    # name: (paper name, size, patch size)
    "vit_ti16": ("ViT-Ti/16", TINY, 16),
    "vit_s16": ("ViT-S/16", SMALL, 16),
    "vit_b16": ("ViT-B/16", BASE, 16),
    "vit_b32": ("ViT-B/32", BASE, 32),
    "vit_l16": ("ViT-L/16", LARGE, 16),
    "vit_l32": ("ViT-L/32", LARGE, 32),
    "vit_h14": ("ViT-H/14", HUGE, 14),
}


def variant_config(name: str, **fields) -> ViTConfig:
    """The ViTConfig of a variant, with `fields` (num_classes, image_size, ...) changed."""
    _, size, patch = VARIANTS[name]
    return ViTConfig(**{**size, "patch_size": patch, **fields})


def _register(name: str) -> None:
    paper_name, size, patch = VARIANTS[name]

    @register_model(
        name,
        family="vit",
        default_image_size=224,
        description=f"{paper_name}: {size['depth']} layers, D={size['hidden_size']}, "
        f"MLP {size['mlp_size']}, {size['num_heads']} heads, {patch}x{patch} patches",
    )
    def build(
        num_classes: int, image_size: int, pretrained: str | None, **overrides
    ) -> VisionTransformer:
        config = variant_config(name, num_classes=num_classes, image_size=image_size)
        config = config.replace(**overrides)
        if pretrained is None:
            return VisionTransformer(config)
        from vit.pretrained import load_pretrained  # imports timm/torchvision only when needed

        return load_pretrained(config, pretrained, variant=name)


for _name in VARIANTS:
    _register(_name)
