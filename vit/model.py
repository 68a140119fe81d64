"""The Vision Transformer (Section 3.1, Figure 1): Eq. 1 -> L x (Eq. 2-3) -> Eq. 4."""

from __future__ import annotations

import math

import torch
from torch import nn

from vit.config import ViTConfig
from vit.data_config import evaluation_view
from vit.embedding import InterpolationMode, PatchEmbedding, resize_position_embedding
from vit.encoder import Encoder
from vit.head import ClassificationHead, classifier

TIMM_POOLS = {"token": "cls", "avg": "gap"}  # timm's global_pool -> ViTConfig.pool


class VisionTransformer(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self._architecture = config  # read through `config`, which the modules complete
        self.embedding = patch_embedding(config)  # Eq. 1
        self.encoder = Encoder(config)  # Eq. 2-3, L times
        self.head = ClassificationHead(config)  # Eq. 4 and the classifier
        init_weights(self)

    @property
    def config(self) -> ViTConfig:
        """The configuration as the model stands, one source of truth: the architecture it was
        built with, and the resolution and head read off the modules, which is what
        `resize_position_embedding`, `replace_head` and `reset_classifier` change."""
        return self._architecture.replace(
            image_size=self.embedding.image_size,
            num_classes=self.head.num_classes,
            representation_size=self.head.representation_size,
            pool=self.head.pool,
            class_token=self.embedding.has_class_token,
        )

    @property
    def pretrained_cfg(self) -> dict:
        """timm's description of the input: size, mean/std, resizing (`vit.data_config`)."""
        return evaluation_view(self, self.embedding.image_size)

    @property
    def num_classes(self) -> int:
        """K, the classifier's outputs (timm's attribute)."""
        return self.head.num_classes

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> z_L, (B, N + 1, D) ((B, N, D) without a class token)."""
        return self.encoder(self.embedding(images))

    def forward_head(self, z_L: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """z_L -> logits (B, K), or the classifier's input with `pre_logits` (timm's method)."""
        return self.head(z_L, pre_logits=pre_logits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> logits (B, K)."""
        return self.forward_head(self.forward_features(images))

    @torch.no_grad()
    def attention_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's attention weights (Eq. 6), each (B, heads, T, T): T = N + 1 tokens with
        the class token first, T = N without one (`config.has_class_token`)."""
        return self.encoder.attention_maps(self.embedding(images))

    @torch.no_grad()
    def resize_position_embedding(
        self, image_size: int, mode: InterpolationMode = "linear"
    ) -> None:
        """Section 3.2: adapt the model to a new resolution, same patch size, E_pos interpolated
        ("linear" as the official code, or timm's "bicubic": `vit.embedding`)."""
        grid_size = self.config.replace(image_size=image_size).grid_size  # checks divisibility
        pos = self.embedding.position_embedding
        new_pos = resize_position_embedding(
            pos.data, grid_size, class_token=self.embedding.has_class_token, mode=mode
        )
        self.embedding.position_embedding = nn.Parameter(new_pos, requires_grad=pos.requires_grad)

    def replace_head(self, num_classes: int) -> None:
        """Appendix B.1.1: "we remove the whole head (two linear layers) and replace it by a
        single, zero-initialized linear layer outputting the number of classes"."""
        self.head.pre_logits = nn.Identity()
        self.head.classifier = classifier(self._architecture.hidden_size, num_classes)
        reference = self.embedding.position_embedding  # the new layer lives where the model does
        self.head.classifier.to(device=reference.device, dtype=reference.dtype)
        zero_classifier(self)

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """timm's name for `replace_head`; global_pool "token" (class token) or "avg" (GAP).
        A head whose final LN normalises every token can switch between the two when there is
        a class token (timm's `global_pool` switch); a `gap_fc_norm` head stays as it is."""
        if global_pool is not None:
            if global_pool not in TIMM_POOLS:
                raise ValueError(f"global_pool must be 'token' or 'avg', not {global_pool!r}")
            pool = TIMM_POOLS[global_pool]
            if self.head.pool == "gap_fc_norm" and pool == "gap":
                pool = "gap_fc_norm"  # its LN follows the mean
            if pool == "cls" and self.head.pool != "cls":
                if self.head.pool == "gap_fc_norm" or not self.embedding.has_class_token:
                    raise ValueError(
                        f"this model's head ({self.head.pool!r}) has no class token or no "
                        "per-token LN to read one through: global_pool='token' needs both"
                    )
            self.head.pool = pool
        self.replace_head(num_classes)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each encoder block's activations in the backward pass instead of storing
        them (torch.utils.checkpoint, non-reentrant): for batches or resolutions that do not
        fit otherwise, e.g. ViT-H/14 at 518. The interface of timm's models."""
        self.encoder.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        """Parameter names that take no weight decay: E_pos and x_class (3-D tensors)."""
        names = {"embedding.position_embedding", "embedding.class_token"}
        return names & {name for name, _ in self.named_parameters()}


def patch_embedding(config: ViTConfig) -> PatchEmbedding:
    """Eq. 1 on the image's patches, or on a ResNet's feature map (a hybrid, Section 3.1)."""
    if not config.resnet_layers:
        return PatchEmbedding(config)
    from vit.hybrid import HybridEmbedding  # imports timm, for hybrids only

    return HybridEmbedding(config)


@torch.no_grad()
def init_weights(model: VisionTransformer) -> None:
    """The initialisation of the reference JAX implementation (google-research/vision_transformer):
    x_class zeros, E_pos normal(0.02), E LeCun-normal, dense layers Xavier-uniform (MLP biases
    normal(1e-6)), the classifier zeros. A hybrid's ResNet keeps its own (`vit.hybrid`).

    Flax's attention holds q, k and v as three (D, heads, D_h) kernels, each initialised as one
    D x D matrix (fan_in = fan_out = D: bound sqrt(3 / D)); Xavier over the fused (3D, D) qkv
    weight would draw them from a narrower range (sqrt(1.5 / D)), so each third is drawn alone."""
    embedding = model.embedding
    nn.init.normal_(embedding.position_embedding, std=0.02)
    if model.config.has_class_token:
        nn.init.zeros_(embedding.class_token)
    lecun_normal_(embedding.projection.weight)
    nn.init.zeros_(embedding.projection.bias)
    for name, module in model.encoder.named_modules():
        if isinstance(module, nn.Linear):
            parts = module.weight.chunk(3) if name.endswith("qkv") else (module.weight,)
            for weight in parts:  # views: each third is initialised in place
                nn.init.xavier_uniform_(weight)
            if name.endswith(("fc1", "fc2")):
                nn.init.normal_(module.bias, std=1e-6)
            else:
                nn.init.zeros_(module.bias)
    for module in model.head.pre_logits.modules():
        if isinstance(module, nn.Linear):
            lecun_normal_(module.weight)
            nn.init.zeros_(module.bias)
    zero_classifier(model)


def zero_classifier(model: VisionTransformer) -> None:
    """Appendix B.1.1's zero-initialised head (a no-op when num_classes=0 left no layer)."""
    for parameter in model.head.classifier.parameters():
        nn.init.zeros_(parameter)


def lecun_normal_(weight: torch.Tensor) -> None:
    """JAX's lecun_normal: a normal truncated at 2 std with variance 1 / fan_in (0.8796 is the
    standard deviation of a unit normal truncated at +-2, divided out so the variance is exact)."""
    std = math.sqrt(1 / math.prod(weight.shape[1:])) / 0.87962566
    nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std)
