"""The application's models: `vit`'s registry with the CNN baselines registered in it.

`vit` holds the paper's model and the registry and imports neither `baselines` nor `replicate`;
`baselines` registers its CNNs with `vit.registry.register_model`; the commands of `replicate`
name models through this module, which imports both.
"""

from __future__ import annotations

from baselines import bit, efficientnet  # importing `baselines` registers every CNN baseline
from vit.references import TIMM_NAMES
from vit.registry import ModelEntry, create_model, get_model_entry, list_models

__all__ = ["ModelEntry", "create_model", "default_weights", "get_model_entry", "list_models"]


def default_weights(name: str, tag: str | None = None) -> str:
    """The weights spec that `pretrained=True` means (torch.hub, timm): the reference model's
    default weights, or its weights `tag` as timm and torchvision name them."""
    get_model_entry(name)  # an unknown name fails here, with the closest match
    if name in TIMM_NAMES:
        return f"timm:{TIMM_NAMES[name]}" + (f".{tag}" if tag else "")
    if name in efficientnet.VARIANTS:
        return f"torchvision:{tag or 'DEFAULT'}"
    if name in bit.VARIANTS:  # BiT-M, pre-trained on ImageNet-21k
        return f"timm:{bit.VARIANTS[name].timm_name}.{tag or 'goog_in21k'}"
    raise ValueError(f"{name} has no pretrained weights to default to; pass a weights spec")
