"""torch.hub entry points: every registered model, by its registry name.

    model = torch.hub.load("path/to/vit-replicate", "vit_b16", source="local", pretrained=True)
    model = torch.hub.load(..., "vit_b16", source="local", pretrained="torchvision:IMAGENET1K_V1")

`pretrained`: False (random initialisation), True (the reference's default weights, e.g.
timm's `vit_base_patch16_224` for vit_b16), or any weights spec or file (`vit.pretrained`).
The other arguments are `vit.create_model`'s: num_classes, image_size, config fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from replicate import models

if TYPE_CHECKING:  # imported for the type hints only: torch.hub lists every public callable
    from collections.abc import Callable

    from torch import nn

# torch.hub checks these modules are importable: building a model, and loading its weights
dependencies = [
    "torch",
    "torchvision",
    "timm",
    "einops",
    "numpy",
    "tqdm",
    "safetensors",
    "huggingface_hub",
]


def _entrypoint(name: str) -> Callable[..., nn.Module]:
    def load(pretrained: bool | str = False, **kwargs) -> nn.Module:
        spec = models.default_weights(name) if pretrained is True else pretrained or None
        kwargs.setdefault("num_classes", None)  # the weights' own head, or 1000 without weights
        return models.create_model(name, pretrained=spec, **kwargs)

    load.__name__ = load.__qualname__ = name
    load.__doc__ = models.get_model_entry(name).description
    return load


globals().update({name: _entrypoint(name) for name in models.list_models()})
