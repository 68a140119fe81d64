"""The reference implementations' names for each registered ViT variant.

Shared by the weight loader (`vit.pretrained`), the benchmark, the figures, the commands and the
equivalence tests; a weights spec's variant and resolution are read off these names.
"""

from __future__ import annotations

import re

TIMM_NAMES: dict[str, str] = {
    "vit_ti16": "vit_tiny_patch16_224",
    "vit_s16": "vit_small_patch16_224",
    "vit_b16": "vit_base_patch16_224",
    "vit_b32": "vit_base_patch32_224",
    "vit_l16": "vit_large_patch16_224",
    "vit_l32": "vit_large_patch32_224",
    "vit_h14": "vit_huge_patch14_224",
    "vit_r50_b16": "vit_base_r50_s16_224",  # hybrids (Section 3.1)
    "vit_r50_l32": "vit_large_r50_s32_224",
}

TORCHVISION_NAMES: dict[str, str] = {  # torchvision has no Ti or S
    "vit_b16": "vit_b_16",
    "vit_b32": "vit_b_32",
    "vit_l16": "vit_l_16",
    "vit_l32": "vit_l_32",
    "vit_h14": "vit_h_14",
}

OFFICIAL_NAMES: dict[str, str] = {  # the official checkpoints: imagenet21k/ViT-B_16.npz, ...
    "vit_b16": "ViT-B_16",
    "vit_b32": "ViT-B_32",
    "vit_l16": "ViT-L_16",
    "vit_l32": "ViT-L_32",
    "vit_h14": "ViT-H_14",
}


def variant_from_spec(spec: str) -> str | None:
    """The variant a weights spec names, if it names one: timm's name at any resolution
    ("timm:vit_large_patch32_384.orig_in21k_ft_in1k" -> "vit_l32") or an official file's
    ("google:imagenet21k/ViT-H_14" -> "vit_h14")."""
    for variant, timm_name in TIMM_NAMES.items():
        if re.search(rf"{timm_name.removesuffix('_224')}_\d+(?!\d)", spec):
            return variant
    for variant, official_name in OFFICIAL_NAMES.items():
        if re.search(rf"{official_name}(?!\d)", spec):
            return variant
    return None


def image_size_from_spec(spec: str) -> int | None:
    """The resolution a timm name carries ("vit_base_patch16_384" -> 384), if any."""
    match = re.search(r"_patch\d+_(\d+)", spec)
    return int(match[1]) if match else None
