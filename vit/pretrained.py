"""Real pretrained weights into this project's ViT: timm, torchvision, the official .npz.

(work in progress: the loaders land in the next commit)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INCEPTION_MEAN = INCEPTION_STD = (0.5, 0.5, 0.5)  # official weights: inputs scaled to [-1, 1]


class WeightsUnavailableError(RuntimeError):
    """Weights could not be fetched (no network, bad name, failed hash check)."""


@dataclass(frozen=True)
class WeightsInfo:
    """What a user must know about loaded weights, kept on the model as `pretrained_info`."""

    spec: str  # what the user asked for, e.g. "timm:vit_base_patch16_224.augreg2_in21k_ft_in1k"
    layout: str  # "timm", "torchvision", "npz" or "vit-replicate"
    image_size: int  # the resolution the weights were trained at
    mean: tuple[float, float, float]  # input normalisation the weights expect
    std: tuple[float, float, float]

    def to_dict(self) -> dict:
        return asdict(self)
