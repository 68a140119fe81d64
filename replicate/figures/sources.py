"""The model the figures are drawn from: a checkpoint of this project, pretrained weights by
spec, or (with a title that says so) a randomly initialised model."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from replicate.runs.read import portable_name
from replicate.sources import from_weights
from replicate.training.checkpoint import load_model, resolve_weights
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
    trained: bool = True  # False: random weights, drawn apart from a trained model's figures


def _paper_name(variant: str, model: VisionTransformer | None = None) -> str:
    """Table 1's name ("ViT-Ti/16"), with the patch size and depth the model has where they
    differ from the variant's ("ViT-Ti/4 (5 layers)")."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ViT variant {variant!r}; choose from {', '.join(VARIANTS)}")
    base = VARIANTS[variant]
    if model is None:
        return base.paper_name
    config = model.config
    name = f"{base.paper_name.split('/')[0]}/{config.patch_size}"
    return name + (f" ({config.depth} layers)" if config.depth != base.config.depth else "")


def from_checkpoint(path: str | Path) -> Subject:
    """A checkpoint of `replicate.train`, rebuilt from its metadata
    (`replicate.training.checkpoint.CheckpointInfo`: variant, overrides, classes, resolution,
    dataset);
    `path` is a weights file or a run folder (its latest weights)."""
    given = Path(path)
    if not given.exists():
        raise ValueError(f"checkpoint {str(given)!r} not found")
    path = resolve_weights(given)
    if path.suffix != ".safetensors":
        raise ValueError(
            f"{path} is not a .safetensors checkpoint of this project; for other files use "
            "--pretrained PATH --variant NAME"
        )
    model, info = load_model(path)
    if not isinstance(model, VisionTransformer):
        raise ValueError(f"{path} holds a {info.variant}, not a ViT: the figures need one")
    name = given.name if given.is_dir() else f"{given.parent.name}/{given.name}"
    trained_on = f" trained on {portable_name(info.dataset)}" if info.dataset else ""
    label = f"{_paper_name(info.variant, model)}{trained_on}, {name}"
    return Subject(
        model, label, tuple(info.mean), tuple(info.std), tuple(info.classes), info.dataset
    )


def from_pretrained(
    spec: str,
    variant: str | None = None,
    image_size: int | None = None,
    num_classes: int | None = None,
    **overrides,
) -> Subject:
    """Weights by spec (`replicate.sources.from_weights`): timm, torchvision, official .npz or a
    local file; the variant and resolution read off the spec's name unless given."""
    source = from_weights(spec, variant, image_size, num_classes=num_classes, **overrides)
    label = f"{_paper_name(source.variant)}, {spec}"
    return Subject(source.model, label, source.mean, source.std, source.classes)


def untrained(variant: str = "vit_b16", image_size: int | None = None) -> Subject:
    """A randomly initialised model (the reference JAX initialisation), labelled as such."""
    model = create_model(variant, image_size=image_size)
    label = f"{_paper_name(variant)}, untrained (random init)"
    return Subject(model.eval(), label, INCEPTION_MEAN, INCEPTION_STD, trained=False)
