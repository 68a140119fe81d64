"""Model configuration as data: one dataclass, one field per hyper-parameter of the paper.

Table 1 of the paper names the variants by size (Base / Large / Huge) and patch size:
"ViT-L/16 means the 'Large' variant with 16 x 16 input patch size".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

SIZES = ("image_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads", "mlp_size")


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
    # "cls": Eq. 4, LN of the class token's output. "gap": the paper's global average pooling
    # (Appendix D.3, Figure 9; `classifier="gap"` in the official code and big_vision): no class
    # token, LN on every token, then the mean. "gap_fc_norm": timm's `global_pool="avg"`, the
    # mean of the patch tokens, then LN ("fc_norm"), a different model (BEiT, MAE, EVA weights).
    pool: Literal["cls", "gap", "gap_fc_norm"] = "cls"
    # x_class in the sequence (Eq. 1). None: as `pool` implies, so with "cls" and "gap_fc_norm"
    # (timm's default), without with "gap". A class token under GAP takes part in attention but
    # not in the mean (timm's `class_token=True, global_pool="avg"`).
    class_token: bool | None = None
    # Eq. 3's GELU: "exact" (erf) as timm and torchvision compute it, or "tanh", the approximation
    # flax's `nn.gelu` computes by default, which the official JAX models were trained with
    # (selected automatically when an official .npz is loaded).
    gelu: Literal["exact", "tanh"] = "exact"
    layer_norm_eps: float = 1e-6  # as the reference JAX, timm and torchvision models
    # Hybrid (Section 3.1): E applied to the feature map of these ResNet (BiT) stages, e.g.
    # (3, 4, 9); () feeds E the image itself. `vit.hybrid` builds the ResNet.
    resnet_layers: tuple[int, ...] = ()
    resnet_width: int = 64  # stem channels; stage s outputs 4 * width * 2^s (R50x1: 64)

    def __post_init__(self) -> None:
        object.__setattr__(self, "resnet_layers", tuple(self.resnet_layers))  # JSON gives lists
        least = dict.fromkeys(SIZES, 1) | {"num_classes": 0}  # 0: no head, the features
        for name, minimum in least.items():
            value = getattr(self, name)
            if type(value) is not int or value < minimum:
                raise ValueError(f"{name} must be a whole number >= {minimum}, not {value!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout!r}")
        step = self.downsampling
        if self.image_size % step:
            what = f"the total downsampling {step}" if self.resnet_layers else "patch_size"
            raise ValueError(
                f"image_size {self.image_size} is not divisible by {what} {step}: "
                f"choose an image size that is a multiple of {step} "
                f"(e.g. {self.image_size // step * step or step})"
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        if self.pool not in ("cls", "gap", "gap_fc_norm"):
            raise ValueError(f"pool must be 'cls', 'gap' or 'gap_fc_norm', not {self.pool!r}")
        if self.pool == "cls" and self.class_token is False:
            raise ValueError("pool='cls' reads the class token: it cannot have class_token=False")
        if self.gelu not in ("exact", "tanh"):
            raise ValueError(f"gelu must be 'exact' or 'tanh', not {self.gelu!r}")

    @property
    def has_class_token(self) -> bool:
        """Whether x_class is prepended to the patch embeddings (Eq. 1)."""
        return self.pool != "gap" if self.class_token is None else self.class_token

    @property
    def downsampling(self) -> int:
        """Input pixels per token side: P, times the ResNet's stride in a hybrid (a stride-4
        stem, then 2 per stage after the first). As the paper names hybrids: "the number at the
        end of the model name stands not for the patch size, but for the total downsampling
        ratio in the ResNet backbone" (R50+ViT-B/16: patch size 1, 3 stages, stride 16)."""
        if not self.resnet_layers:
            return self.patch_size
        return self.patch_size * 2 ** (len(self.resnet_layers) + 1)

    @property
    def grid_size(self) -> int:
        """Patches per side, H / P (H / downsampling in a hybrid)."""
        return self.image_size // self.downsampling

    @property
    def num_patches(self) -> int:
        """N = HW / P^2, the sequence length without the class token."""
        return self.grid_size**2

    @property
    def num_tokens(self) -> int:
        """The sequence length through the encoder: N, plus one with a class token."""
        return self.num_patches + self.has_class_token

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
