"""Which resolutions a ViT can take, and the fine-tuning resolution for a patch size.

"if not mentioned otherwise, all fine-tuning experiments run at 384 resolution" (Appendix B.1.1).
A ViT cuts the image into whole P x P patches, so the side must be a multiple of P. 384 is one
for P = 16 and 32, not for P = 14 (ViT-H/14). The rule here: the fine-tuning resolution is the
recipe's 384 rounded to the nearest multiple of P, which for /14 is 378 (27 x 27 patches; 392 is
8 pixels away, 378 only 6). That is the grid the official code computes at 384 too: its
stride-14 patch convolution has 'VALID' padding and drops the last 6 rows and columns. For its
ImageNet results in Table 2 the paper fine-tuned H/14 at 518 (37 x 37) and L/16 at 512: pass
`--image-size 518` for those.

An explicit `--image-size` that is not a multiple of P fails before any data is loaded.
"""

from __future__ import annotations

from typing import Any

from vit.variants import VARIANTS


def patch_size(variant: str, model_overrides: dict[str, Any]) -> int | None:
    """The patch size of a ViT variant (with a `patch_size` override), None for other models."""
    if variant not in VARIANTS:
        return None
    patch = model_overrides.get("patch_size", VARIANTS[variant].config.patch_size)
    if type(patch) is not int or patch < 1:
        raise ValueError(f"--model-arg patch_size must be a whole number >= 1, not {patch!r}")
    return patch


def nearest_multiple(size: int, patch: int) -> int:
    """`size` rounded to the nearest multiple of `patch` (down on a tie), at least one patch."""
    return max(patch, (size + (patch - 1) // 2) // patch * patch)


def check_resolution(size: int, patch: int | None, variant: str) -> int:
    """`size`, or a one-line error naming the nearest sizes that work."""
    if patch is not None and size % patch:
        below, above = size // patch * patch, (size // patch + 1) * patch
        nearest = f"{below} or {above}" if below else str(above)
        raise ValueError(
            f"--image-size {size} is not a multiple of {variant}'s patch size {patch}: "
            f"use {nearest}"
        )
    return size
