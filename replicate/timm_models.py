"""The project's models in timm's registry, as `replicate_<name>`, for timm's own tools.

    import timm
    import replicate.timm_models  # registers replicate_vit_b16, ..., replicate_tinyvgg

    model = timm.create_model("replicate_vit_b16", num_classes=10, img_size=384)
    model = timm.create_model("replicate_vit_b16.orig_in21k_ft_in1k", pretrained=True)
    model = timm.create_model(
        "replicate_vit_b16", pretrained=True, pretrained_cfg_overlay={"file": "model.safetensors"}
    )

The prefix ends in "_", not "." ("vit_replicate.vit_b16"): timm reads "a.b" as architecture `a`
with pretrained tag `b`, and the tag keeps that meaning here, the reference's weights
(`replicate_vit_b16.orig_in21k_ft_in1k` loads `timm:vit_base_patch16_224.orig_in21k_ft_in1k`).
timm's scripts (`validate.py`, `benchmark.py` of pytorch-image-models) import only timm, so run
them with this module imported first:

    python -c "import runpy, sys, replicate.timm_models; sys.argv.pop(0); \\
        runpy.run_path(sys.argv[0], run_name='__main__')" benchmark.py --model replicate_vit_b16
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from timm.models import register_model
from torch import nn

from replicate import models
from vit.model import TIMM_POOLS

PREFIX = "replicate_"


def timm_arguments(
    family: str,
    num_classes: int | None = None,  # None: the weights' own head, or 1000 without weights
    img_size: int | None = None,
    in_chans: int = 3,
    global_pool: str | None = None,
    drop_rate: float = 0.0,
    **overrides: Any,
) -> dict[str, Any]:
    """timm's model arguments as `models.create_model` takes them."""
    if in_chans != 3:
        overrides["in_channels"] = in_chans
    if global_pool:
        if family != "vit" or global_pool not in TIMM_POOLS:
            raise ValueError(f"global_pool {global_pool!r}: the ViTs take 'token' or 'avg'")
        overrides["pool"] = TIMM_POOLS[global_pool]
    if drop_rate:
        overrides["dropout"] = drop_rate
    return dict(num_classes=num_classes, image_size=img_size, **overrides)


def entrypoint(name: str) -> Callable[..., nn.Module]:
    """timm's model function for the registry's model `name`."""
    entry = models.get_model_entry(name)

    def create(
        pretrained: bool = False,
        pretrained_cfg: str | dict | None = None,
        pretrained_cfg_overlay: dict | None = None,
        cache_dir: str | None = None,  # the libraries' usual caches are used (vit.pretrained)
        **kwargs: Any,
    ) -> nn.Module:
        tag = pretrained_cfg if isinstance(pretrained_cfg, str) else None
        file = (pretrained_cfg_overlay or {}).get("file")
        spec = (file or models.default_weights(name, tag)) if pretrained else None
        return models.create_model(name, pretrained=spec, **timm_arguments(entry.family, **kwargs))

    create.__name__ = create.__qualname__ = PREFIX + name
    create.__module__ = __name__
    create.__doc__ = entry.description
    return create


for _name in models.list_models():
    register_model(entrypoint(_name))
