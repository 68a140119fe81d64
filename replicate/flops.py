"""Model FLOPs, counted by `torch.utils.flop_counter` rather than by hand.

Counting runs on the meta device: no weights are allocated (ViT-H/14 costs nothing), and
`scaled_dot_product_attention` dispatches to a kernel the counter knows, so the attention
matrix products (q k^T and A v) are included.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from replicate.models import create_model, get_model_entry

# A training step: the forward, and a backward that costs two (d/dinput and d/dweight).
TRAIN_FLOPS_PER_FORWARD = 3


def forward_flops(
    name: str, image_size: int | None = None, num_classes: int = 1000, **overrides
) -> int:
    """FLOPs (2 per multiply-add) of one forward pass of one image through model `name`
    (built with `overrides`, e.g. patch_size=4)."""
    size = image_size or get_model_entry(name).default_image_size
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes, image_size=size, **overrides).eval()
        images = torch.empty(1, 3, size, size)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(images)
    return counter.get_total_flops()
