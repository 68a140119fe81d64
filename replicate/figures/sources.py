"""The model the figures are drawn from: a checkpoint of this project, pretrained weights by
spec, or (with a title that says so) a randomly initialised model."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from vit import VisionTransformer, create_model
from vit.pretrained import INCEPTION_MEAN, INCEPTION_STD
from vit.variants import VARIANTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Subject:
    """A model and what the figures' titles and inputs need to know about it."""

    model: VisionTransformer
    label: str  # for titles: "ViT-B/16, runs/b16/model.safetensors"
    mean: tuple[float, ...]  # the input normalisation the weights expect
    std: tuple[float, ...]
    class_names: tuple[str, ...] | None = None
    dataset: str | None = None  # what the weights were trained on, when known


def _paper_name(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown ViT variant {variant!r}; choose from {', '.join(VARIANTS)}")
    return VARIANTS[variant][0]


def checkpoint_metadata(path: Path) -> dict:
    """The safetensors metadata `replicate.train` writes, values JSON-decoded where they are
    JSON ("224" -> 224, "[0.5, 0.5, 0.5]" -> a list), else kept as strings ("vit_b16")."""
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
    decoded = {}
    for key, value in metadata.items():
        try:
            decoded[key] = json.loads(value)
        except json.JSONDecodeError:
            decoded[key] = value
    return decoded


def from_checkpoint(path: str | Path) -> Subject:
    """A checkpoint of `replicate.train`: its metadata (`replicate.checkpoint.CheckpointInfo`)
    names the variant, its config overrides, the classes, the resolution and the dataset."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} not found")
    if path.suffix != ".safetensors":
        raise ValueError(
            f"{path} is not a .safetensors checkpoint of this project; for other files use "
            "--pretrained PATH --variant NAME"
        )
    meta = checkpoint_metadata(path)
    if "variant" not in meta:
        raise ValueError(
            f"{path} has no 'variant' in its metadata; use --pretrained PATH --variant NAME"
        )
    variant = meta["variant"]
    label = f"{_paper_name(variant)}, {path.parent.name}/{path.name}"
    model = create_model(
        variant,
        num_classes=int(meta.get("num_classes", 1000)),
        image_size=meta.get("image_size"),
        pretrained=str(path),
        **meta.get("model_overrides", {}),  # e.g. {"depth": 2} for a smoke run
    )
    info = model.pretrained_info
    run_config = path.parent / "config.json"  # the run folder's, for the dataset's name
    dataset = meta.get("dataset") or (
        json.loads(run_config.read_text()).get("dataset") if run_config.is_file() else None
    )
    names = meta.get("classes")
    return Subject(
        model.eval(), label, info.mean, info.std, tuple(names) if names else None, dataset
    )


_TIMM_SIZES = {"tiny": "ti", "small": "s", "base": "b", "large": "l", "huge": "h"}


def variant_from_spec(spec: str) -> str | None:
    """The variant a weights spec names, if it names one: "timm:vit_base_patch16_384.orig..."
    -> "vit_b16", "google:imagenet21k/ViT-L_32" -> "vit_l32"."""
    if match := re.search(r"vit_(tiny|small|base|large|huge)_patch(\d+)", spec):
        return f"vit_{_TIMM_SIZES[match[1]]}{match[2]}"
    if match := re.search(r"ViT-(Ti|S|B|L|H)_(\d+)", spec):
        return f"vit_{match[1].lower()}{match[2]}"
    return None


def image_size_from_spec(spec: str) -> int | None:
    """The resolution a timm name carries ("vit_base_patch16_384" -> 384), if any."""
    match = re.search(r"_patch\d+_(\d+)", spec)
    return int(match[1]) if match else None


def from_pretrained(
    spec: str,
    variant: str | None = None,
    image_size: int | None = None,
    num_classes: int = 1000,
    **overrides,
) -> Subject:
    """Weights by spec (`vit.pretrained`): timm, torchvision, official .npz or a local file.
    overrides: config fields of the model the weights belong to, as `create_model` takes."""
    variant = variant or variant_from_spec(spec)
    if variant is None:
        raise ValueError(f"cannot tell the ViT variant from {spec!r}; pass --variant")
    image_size = image_size or image_size_from_spec(spec)
    model = create_model(
        variant, num_classes=num_classes, image_size=image_size, pretrained=spec, **overrides
    )
    info = model.pretrained_info
    return Subject(model.eval(), f"{_paper_name(variant)}, {spec}", info.mean, info.std)


def untrained(variant: str = "vit_b16", image_size: int | None = None) -> Subject:
    """A randomly initialised model (the reference JAX initialisation), labelled as such."""
    model = create_model(variant, image_size=image_size)
    label = f"{_paper_name(variant)}, untrained (random init)"
    return Subject(model.eval(), label, INCEPTION_MEAN, INCEPTION_STD)
