"""Appendix B.1.2 (Section 4.6): masked patch prediction, the paper's self-supervision.

"we corrupt 50% of patch embeddings by either replacing their embeddings with a learnable
[mask] embedding (80%), a random other patch embedding (10%) or just keeping them as is (10%).
This setup is very similar to the one used for language by Devlin et al. (2019). Finally, we
predict the 3-bit, mean color (i.e., 512 colors in total) of every corrupted patch using their
respective patch representations."

The ViT is used part by part, with the corruption between Eq. 1's two steps:

    x_p E                              the patch embeddings        embedding.embed_patches
    corrupt(x_p E)                     50%: 80/10/10               PatchCorruption
    z_0 = [x_class; ...] + E_pos       Eq. 1                       embedding.add_class_and_position
    z_L                                Eq. 2-3                     encoder
    colour logits of z_L^i, i >= 1     LN, then a linear head      head.norm, colour_head

Only the ViT is kept for fine-tuning: loading a checkpoint of this model with `pretrained=`
drops the [mask] embedding and the colour head (`vit.layouts`), and Appendix B.1.1's
zero-initialised classifier takes their place.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import reduce
from torch import Tensor, nn

from vit.model import VisionTransformer

COLOUR_BITS = 3  # per channel: 2^(3 x 3) = 512 colours
MASK, RANDOM, KEEP = 0, 1, 2  # what became of a corrupted patch embedding


class Corruption(NamedTuple):
    patches: Tensor  # (B, N, D), the patch embeddings with M of each image's corrupted
    positions: Tensor  # (B, M), which patches were corrupted
    kinds: Tensor  # (B, M), MASK, RANDOM or KEEP for each


class PatchCorruption(nn.Module):
    """BERT's corruption, on patch embeddings: of round(rate N) patches per image, chosen
    uniformly, each becomes the [mask] embedding (80%), another patch's embedding from
    anywhere in the batch (10%), or stays as it is (10%)."""

    def __init__(
        self, hidden_size: int, rate: float = 0.5, mask: float = 0.8, random: float = 0.1
    ) -> None:
        super().__init__()
        self.rate, self.mask, self.random = rate, mask, random
        self.mask_embedding = nn.Parameter(torch.zeros(1, 1, hidden_size))  # learnable [mask]
        nn.init.normal_(self.mask_embedding, std=0.02)  # as E_pos: an embedding, like BERT's

    def forward(self, patches: Tensor, generator: torch.Generator | None = None) -> Corruption:
        b, n, d = patches.shape
        m = max(1, round(self.rate * n))
        draw = dict(device=patches.device, generator=generator)
        positions = torch.rand(b, n, **draw).argsort(dim=1)[:, :m]  # (B, M), uniform, distinct
        u = torch.rand(b, m, **draw)
        kinds = (u >= self.mask).long() + (u >= self.mask + self.random).long()
        # Another patch: any of the batch's B N but this one (draw from B N - 1, skip over it).
        own = positions + n * torch.arange(b, device=patches.device)[:, None]
        other = torch.randint(0, max(1, b * n - 1), (b, m), **draw)
        other = other + (other >= own).long()
        flat = patches.reshape(b * n, d)
        replacement = torch.where(
            (kinds == MASK)[..., None],
            self.mask_embedding.to(patches.dtype).expand(b, m, d),
            torch.where((kinds == RANDOM)[..., None], flat[other], flat[own]),
        )
        corrupted = patches.scatter(1, positions[..., None].expand(b, m, d), replacement)
        return Corruption(corrupted, positions, kinds)


def mean_colour_classes(pixels: Tensor, patch_pixels: int, bits: int = COLOUR_BITS) -> Tensor:
    """The target: each patch's mean colour, each channel quantised to `bits` bits.

    pixels: (B, 3, H, W) in [0, 1] -> (B, N) classes in [0, 2^(3 bits)), patches in row-major
    order, class = r * 2^(2 bits) + g * 2^bits + b with r, g, b = floor(mean * 2^bits).
    """
    means = reduce(
        pixels, "b c (h p1) (w p2) -> b (h w) c", "mean", p1=patch_pixels, p2=patch_pixels
    )
    levels = 2**bits
    quantised = (means * levels).floor().clamp(0, levels - 1).long()  # (B, N, 3)
    place = levels ** torch.arange(quantised.shape[-1] - 1, -1, -1, device=pixels.device)
    return (quantised * place).sum(dim=-1)


def corrupted_only(logits: Tensor, targets: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
    """The logits (B, N, K) and targets (B, N) of the corrupted patches alone, flattened to
    (B M, K) and (B M,): the loss sees no other patch."""
    picked = logits.gather(1, positions[..., None].expand(-1, -1, logits.shape[-1]))
    return picked.flatten(0, 1), targets.gather(1, positions).flatten()


class MaskedPatchPredictor(nn.Module):
    """A ViT pre-trained by masked patch prediction: corrupt x_p E, encode, predict every
    patch's colour class from its output token (the loss keeps the corrupted ones)."""

    def __init__(self, vit: VisionTransformer, colour_bits: int = COLOUR_BITS) -> None:
        super().__init__()
        self.vit = vit
        self.corruption = PatchCorruption(vit.config.hidden_size)
        self.colour_head = nn.Linear(vit.config.hidden_size, 2 ** (3 * colour_bits))
        nn.init.zeros_(self.colour_head.weight)  # as the classifier (Eq. 4) starts
        nn.init.zeros_(self.colour_head.bias)
        # The classifier takes no part (and DistributedDataParallel wants a gradient for every
        # trainable parameter); fine-tuning replaces it anyway.
        vit.head.pre_logits.requires_grad_(False)
        vit.head.classifier.requires_grad_(False)

    def forward(
        self, images: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) -> colour logits of every patch (B, N, 2^(3 bits)) and the positions
        of the corrupted ones (B, M)."""
        embedding = self.vit.embedding
        corruption = self.corruption(embedding.embed_patches(images), generator)
        z_L = self.vit.encoder(embedding.add_class_and_position(corruption.patches))
        patch_tokens = z_L[:, 1:] if self.vit.config.has_class_token else z_L  # GAP: none
        patch_outputs = self.vit.head.norm(patch_tokens)  # the final LN, on every patch token
        return self.colour_head(patch_outputs), corruption.positions

    def no_weight_decay(self) -> set[str]:
        return {f"vit.{name}" for name in self.vit.no_weight_decay()} | {
            "corruption.mask_embedding"
        }
