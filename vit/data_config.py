"""The input a model expects, in timm's words: a `pretrained_cfg` every model carries.

This project evaluates on the whole image squashed to S x S (big_vision's `resize`, no centre
crop), resampled bilinearly with antialiasing, then normalised, (x - mean) / std, with the
statistics the weights were trained with: mean = std = 0.5 (pixels in [-1, 1]) for the official
weights, timm's copies of them and runs from scratch; ImageNet's for torchvision's weights.
With that dict as `model.pretrained_cfg`, `timm.data.resolve_model_data_config(model)` and
`timm.data.create_transform(**config)` build the same view (`tests/test_timm_interface.py`).
"""

from __future__ import annotations

from typing import Any

from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = INCEPTION_STD = (0.5, 0.5, 0.5)  # official weights: inputs scaled to [-1, 1]


def input_normalisation(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and std the model's weights expect (`model.pretrained_info`, set when weights
    were loaded); from scratch, pixels to [-1, 1] as the official weights take them."""
    info = getattr(model, "pretrained_info", None)
    return (tuple(info.mean), tuple(info.std)) if info else (INCEPTION_MEAN, INCEPTION_STD)


def evaluation_view(model: nn.Module, image_size: int) -> dict[str, Any]:
    """timm's pretrained_cfg of `model` at `image_size`: the test images this project feeds it."""
    mean, std = input_normalisation(model)
    return {
        "input_size": (3, image_size, image_size),
        "interpolation": "bilinear",
        "crop_pct": 1.0,
        "crop_mode": "squash",  # resize H x W to S x S, aspect not kept, nothing cropped
        "mean": mean,
        "std": std,
    }
