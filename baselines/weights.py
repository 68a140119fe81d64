"""Pretrained weights for the torchvision baselines: a spec string -> state dict + WeightsInfo.

    "torchvision:IMAGENET1K_V1"   a tag of the model's torchvision weights enum ("DEFAULT" too)
    "/path/to/file.pth"           a local state dict in torchvision's layout

Downloads go through `vit.pretrained.fetch_torchvision` (torch.hub's cache, torchvision's hash
check); a failed fetch is a `WeightsUnavailableError` naming the weights, the cause and the way
out, and a bad tag or file a `ValueError`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vit.pretrained import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    WeightsInfo,
    fetch_torchvision,
    read_state_dict,
)

PREFIX = "torchvision:"
StateDict = dict[str, torch.Tensor]


def load_torchvision_weights(
    model_name: str, spec: str, default_image_size: int
) -> tuple[StateDict, WeightsInfo]:
    """The state dict that `spec` names for torchvision model `model_name` (e.g. "efficientnet_b0"),
    and what a user must know about it; `default_image_size` stands in for a local file's."""
    if spec.startswith(PREFIX):
        state, weights = fetch_torchvision(model_name, spec.removeprefix(PREFIX))
        transform = weights.transforms()
        info = WeightsInfo(
            spec=f"{PREFIX}{weights}",  # e.g. "torchvision:EfficientNet_B0_Weights.IMAGENET1K_V1"
            layout="torchvision",
            image_size=transform.crop_size[0],
            mean=tuple(transform.mean),
            std=tuple(transform.std),
        )
        return state, info
    state, _ = read_state_dict(Path(spec).expanduser())
    info = WeightsInfo(spec, "torchvision", default_image_size, IMAGENET_MEAN, IMAGENET_STD)
    return state, info
