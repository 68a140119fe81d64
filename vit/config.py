"""Model configuration as data: one dataclass, one field per hyper-parameter of the paper.

Table 1 of the paper names the variants by size (Base / Large / Huge) and patch size:
"ViT-L/16 means the 'Large' variant with 16 x 16 input patch size".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal


@dataclass(frozen=True)
class ViTConfig:
    image_size: int = 224  # H = W, the training resolution (Appendix B.1: 224)
    patch_size: int = 16  # P; N = HW / P^2 patches
    in_channels: int = 3  # C
    num_classes: int = 1000  # K, size of the classification head
    hidden_size: int = 768  # D, the latent vector size through all layers
    depth: int = 12  # L, number of encoder blocks (Eq. 2-3)
    num_heads: int = 12  # k heads; D_h = D / k (Appendix A)
    mlp_size: int = 3072  # hidden width of the MLP block
    dropout: float = 0.0  # after every dense layer but qkv, and after E_pos (Appendix B.1)
    representation_size: int | None = None  # pre-logits tanh layer, used at pre-training time
    pool: Literal["cls", "gap"] = "cls"  # class token (Eq. 4) or global average pool (Fig. 9)
    layer_norm_eps: float = 1e-6  # as the reference JAX, timm and torchvision models

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by patch_size {self.patch_size}: "
                f"choose an image size that is a multiple of {self.patch_size} "
                f"(e.g. {self.image_size // self.patch_size * self.patch_size or self.patch_size})"
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        if self.pool not in ("cls", "gap"):
            raise ValueError(f"pool must be 'cls' or 'gap', not {self.pool!r}")

    @property
    def grid_size(self) -> int:
        """Patches per side, H / P."""
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        """N = HW / P^2, the sequence length without the class token."""
        return self.grid_size**2

    def replace(self, **changes) -> ViTConfig:
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise ValueError(
                f"unknown ViT config field(s) {sorted(unknown)}; "
                f"valid fields: {sorted(asdict(self))}"
            )
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)
