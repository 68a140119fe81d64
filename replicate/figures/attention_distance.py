"""Figure 7 (right) and Figure 11: mean attention distance of every head, by network depth, and
beside it each head's attention entropy (how spread its weights are, whatever the distance).

Appendix D.7: "we analyzed the average distance spanned by attention weights at different
layers (Figure 11). This 'attention distance' is analogous to receptive field size in CNNs."
Figure 11: "Attention distance was computed for 128 example images by averaging the distance
between the query pixel and all other pixels, weighted by the attention weight. Each dot shows
the mean attention distance across images for one of 16 heads at one layer."

ViT attends between patches, so distances here are between patch centres, in input pixels.
The class token, when there is one, has no place in the image: it is dropped from the queries
and the keys, and each query's weights over the N patches are renormalised to sum to 1
(otherwise attention to the class token would silently count as distance 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from tqdm.auto import tqdm

from vit import VisionTransformer


def patch_distances(grid_size: int, patch_size: int) -> torch.Tensor:
    """(N, N) Euclidean distances in pixels between patch centres, patches in row-major order."""
    rows, cols = torch.meshgrid(torch.arange(grid_size), torch.arange(grid_size), indexing="ij")
    centres = torch.stack([rows.flatten(), cols.flatten()], dim=1).double() * patch_size
    return torch.cdist(centres, centres)


def patch_attention(attention: torch.Tensor, *, class_token: bool) -> torch.Tensor:
    """Attention weights (B, heads, T, T) -> (B, heads, N, N) between patches alone, each
    query's weights renormalised to sum to 1. T = N + 1 with the class token first, or N."""
    if attention.ndim != 4 or attention.shape[-1] != attention.shape[-2]:
        raise ValueError(
            f"expected attention weights (B, heads, T, T), got {tuple(attention.shape)}"
        )
    prefix = int(class_token)
    grid_size = math.isqrt(attention.shape[-1] - prefix)
    if grid_size**2 != attention.shape[-1] - prefix:
        raise ValueError(f"{attention.shape[-1] - prefix} patches do not form a square grid")
    patches = attention[..., prefix:, prefix:].double()  # no class token as query or key
    return patches / patches.sum(dim=-1, keepdim=True)


def mean_attention_distance(
    attention: torch.Tensor, patch_size: int, *, class_token: bool
) -> torch.Tensor:
    """Attention weights (B, heads, T, T) -> (B, heads): per image and head, the
    attention-weighted distance from each query patch to the key patches, averaged over queries.
    """
    patches = patch_attention(attention, class_token=class_token)
    distances = patch_distances(math.isqrt(patches.shape[-1]), patch_size).to(patches.device)
    return (patches * distances).sum(dim=-1).mean(dim=-1)


def mean_attention_entropy(attention: torch.Tensor, *, class_token: bool) -> torch.Tensor:
    """Attention weights (B, heads, T, T) -> (B, heads): per image and head, the entropy in nats
    of each query patch's weights over the key patches, averaged over queries: log N for
    uniform attention, 0 for attention to one patch."""
    patches = patch_attention(attention, class_token=class_token)
    return -(patches * patches.clamp_min(1e-30).log()).sum(dim=-1).mean(dim=-1)


def attention_measures(
    model: VisionTransformer, batches: Iterable[torch.Tensor], num_images: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance in pixels, entropy in nats), each (images, L, heads): every head's, for every
    image. Figure 11 draws the distance's mean over the images; the spread across images gives
    the intervals.

    batches: normalised images (B, C, H, W); num_images sizes the progress bar.
    """
    distances, entropies = [], []  # one (B, L, heads) tensor per batch
    pixels = model.config.downsampling  # per token: the patch size, or a hybrid's stride
    tokens = model.config.has_class_token
    with tqdm(total=num_images, unit="img", desc="attention distance") as progress:
        for images in batches:
            maps = model.attention_maps(images)
            distances.append(
                torch.stack(
                    [mean_attention_distance(a, pixels, class_token=tokens) for a in maps], dim=1
                )
            )
            entropies.append(torch.stack(
                [mean_attention_entropy(a, class_token=tokens) for a in maps], dim=1))  # fmt: skip
            progress.update(len(images))
    return torch.cat(distances).float(), torch.cat(entropies).float()
