"""The implementations timed side by side: this project's ViT, timm's and torchvision's, all
randomly initialised (no downloads) at the same variant, resolution and number of classes."""

from __future__ import annotations

from torch import nn

from vit.references import TIMM_NAMES, TORCHVISION_NAMES
from vit.registry import create_model

CONTENDERS = ("ours", "timm", "torchvision")


class Unavailable(Exception):
    """This implementation cannot be built here: not installed, or no equivalent variant."""


def label(kind: str, variant: str) -> str:
    """How a contender is named in the report, e.g. "timm vit_base_patch16_224"."""
    names = {"ours": {variant: variant}, "timm": TIMM_NAMES, "torchvision": TORCHVISION_NAMES}
    name = names[kind].get(variant)
    return f"{kind} {name}" if name else kind


def build_contender(kind: str, variant: str, image_size: int, num_classes: int) -> nn.Module:
    """Contender `kind` ("ours", "timm" or "torchvision") of our `variant` (e.g. "vit_b16")."""
    if kind == "ours":
        return create_model(variant, num_classes=num_classes, image_size=image_size)
    if kind == "timm":
        if variant not in TIMM_NAMES:
            raise Unavailable(f"timm has no equivalent of {variant}")
        try:
            import timm
        except ImportError as error:
            raise Unavailable("timm is not installed") from error
        return timm.create_model(
            TIMM_NAMES[variant], pretrained=False, img_size=image_size, num_classes=num_classes
        )
    if kind == "torchvision":
        if variant not in TORCHVISION_NAMES:
            raise Unavailable(f"torchvision has no equivalent of {variant}")
        try:
            import torchvision
        except ImportError as error:
            raise Unavailable("torchvision is not installed") from error
        return torchvision.models.get_model(
            TORCHVISION_NAMES[variant], weights=None, image_size=image_size, num_classes=num_classes
        )
    raise ValueError(f"unknown contender {kind!r}; choose from {', '.join(CONTENDERS)}")
