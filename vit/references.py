"""The reference implementations' names for each registered ViT variant.

Shared by the weight loader (`vit.pretrained`), the benchmark and the equivalence tests.
"""

TIMM_NAMES: dict[str, str] = {
    "vit_ti16": "vit_tiny_patch16_224",
    "vit_s16": "vit_small_patch16_224",
    "vit_b16": "vit_base_patch16_224",
    "vit_b32": "vit_base_patch32_224",
    "vit_l16": "vit_large_patch16_224",
    "vit_l32": "vit_large_patch32_224",
    "vit_h14": "vit_huge_patch14_224",
}

TORCHVISION_NAMES: dict[str, str] = {  # torchvision has no Ti or S
    "vit_b16": "vit_b_16",
    "vit_b32": "vit_b_32",
    "vit_l16": "vit_l_16",
    "vit_l32": "vit_l_32",
    "vit_h14": "vit_h_14",
}
