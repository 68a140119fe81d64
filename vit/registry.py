"""One registry of models shared by the CLI, the tests, the benchmarks and the figures.

The ViT variants register in `vit.variants` (imported on first use). Other models register
from outside with `register_model`: the application (`replicate.models`) imports `baselines`,
whose CNNs register themselves, so `vit` itself never imports the application.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str  # "vit" or "cnn"
    build: Callable[..., nn.Module]  # build(num_classes, image_size, pretrained, **overrides)
    # num_classes None: the weights' own head (only with pretrained weights)
    default_image_size: int
    description: str


_REGISTRY: dict[str, ModelEntry] = {}
_PLUGINS = ("vit.variants",)  # vit's modules whose import registers models


def register_model(
    name: str,
    *,
    family: str,
    default_image_size: int,
    description: str,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def decorator(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, family, build, default_image_size, description)
        return build

    return decorator


def _load_plugins() -> None:
    for module in _PLUGINS:
        importlib.import_module(module)


def list_models(family: str | None = None) -> list[str]:
    _load_plugins()
    return sorted(n for n, e in _REGISTRY.items() if family is None or e.family == family)


def get_model_entry(name: str) -> ModelEntry:
    _load_plugins()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Available: {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(
    name: str,
    num_classes: int | None = 1000,
    image_size: int | None = None,
    pretrained: str | None = None,
    **overrides,
) -> nn.Module:
    """Build a registered model.

    name: a registry name (`list_models()`), e.g. "vit_b16", "tinyvgg", "effnet_b0".
    num_classes: size of the head; None keeps the pretrained weights' own head (1000 classes
        without weights).
    image_size: input resolution; None takes the model's default (224 for the ViTs).
    pretrained: a weights spec, e.g. "timm:vit_base_patch16_224.augreg2_in21k_ft_in1k",
        "torchvision:IMAGENET1K_V1", or a local file (see `vit.pretrained`).
    overrides: config fields to change, e.g. dropout=0.1 or pool="gap"; for a ViT with
        `pretrained`, also interpolation="linear" (official) or "bicubic" (timm) for E_pos.
    """
    entry = get_model_entry(name)
    image_size = entry.default_image_size if image_size is None else image_size
    if num_classes is None and pretrained is None:
        num_classes = 1000  # builders see None only with weights whose head they keep
    return entry.build(
        num_classes=num_classes, image_size=image_size, pretrained=pretrained, **overrides
    )
