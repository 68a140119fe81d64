"""MixUp (Zhang et al., 2018) on a device batch, as BiT fine-tunes with it (BiT-HyperRule).

One λ ~ Beta(α, α) per batch and a random pairing of the batch with itself, as BiT's
`mixup_data`: x = λ x + (1 - λ) x[perm]. The targets become the same mixture of one-hot labels,
so `F.cross_entropy(logits, targets)` is BiT's λ CE(y) + (1 - λ) CE(y[perm]) in one call.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def mixup(
    images: Tensor, labels: Tensor, num_classes: int, alpha: float, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """(B, C, H, W) images and (B,) labels -> mixed images and (B, K) target probabilities; with
    alpha = 0 the batch and the class-index labels pass through unchanged. The randomness comes
    from `generator` (on the CPU): seeded by the step, a resumed run mixes the same pairs."""
    if alpha <= 0:
        return images, labels
    seed = int(torch.randint(2**62, (1,), generator=generator))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))  # torch's Beta takes no generator
    perm = torch.randperm(len(labels), generator=generator).to(images.device)
    one_hot = F.one_hot(labels, num_classes).to(images.dtype)
    return lam * images + (1 - lam) * images[perm], lam * one_hot + (1 - lam) * one_hot[perm]
