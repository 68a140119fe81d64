"""What `evaluate`, `predict` and `figures` run: a checkpoint of `replicate.train`, or any
weights spec, or (for the figures, titled as such) a randomly initialised ViT.

runs/vit_b16-digits-.../model.safetensors       a run's checkpoint: model, classes, resolution
                                                and normalisation from its metadata
timm:vit_base_patch16_224.orig_in21k_ft_in1k    weights by spec (`vit.pretrained`), or a file;
torchvision:IMAGENET1K_V1 --variant vit_b16     the variant read off the spec's name or given,
google:imagenet21k/ViT-B_16                     the head the weights' own, the input as the
path/to/weights.npz --variant vit_b16           model's `pretrained_cfg` says; ImageNet heads
                                                get ImageNet's class names (timm's lists)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from replicate import models
from replicate.runs.read import portable_name
from replicate.training.checkpoint import load_model
from vit.pretrained import INCEPTION_MEAN, INCEPTION_STD, read_safetensors
from vit.references import image_size_from_spec, variant_from_spec
from vit.variants import VARIANTS

SPEC_SOURCES = ("timm", "torchvision", "google")  # "timm:NAME", ...; anything else is a path


@dataclass(frozen=True)
class Source:
    """A model ready to run, and what its inputs and outputs are."""

    model: nn.Module  # in eval mode
    variant: str  # its registry name
    image_size: int  # S: images are squashed to S x S
    mean: tuple[float, ...]  # input normalisation the weights expect
    std: tuple[float, ...]
    classes: tuple[str, ...]  # one name per output
    dataset: str | None  # the dataset a run trained on; None for weights by spec
    label: str  # for titles: "ViT-Ti/4 (5 layers) trained on digits, run/model.safetensors"
    trained: bool = True  # False: random weights, drawn apart from a trained model's figures


def load_source(
    source: str | Path,
    variant: str | None = None,
    image_size: int | None = None,
    device: torch.device | str = "cpu",
) -> Source:
    """A run's checkpoint (its file or folder) if `source` is one, else the weights it names."""
    path = Path(source).expanduser()
    if str(source).partition(":")[0] not in SPEC_SOURCES and not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if path.is_dir() or is_run_checkpoint(path):
        model, info = load_model(path, device)
        refuse_other_model(path, info.variant, info.image_size, variant, image_size)
        name = path.name if path.is_dir() else f"{path.parent.name}/{path.name}"
        trained_on = f" trained on {portable_name(info.dataset)}" if info.dataset else ""
        label = f"{paper_name(info.variant, model)}{trained_on}, {name}"
        return Source(
            model, info.variant, info.image_size, tuple(info.mean), tuple(info.std),
            tuple(info.classes), info.dataset, label,
        )  # fmt: skip
    return from_weights(str(source), variant, image_size, device)


def untrained(variant: str = "vit_b16", image_size: int | None = None) -> Source:
    """A randomly initialised model (the reference JAX initialisation), labelled as such."""
    model = models.create_model(variant, image_size=image_size).eval()
    label = f"{paper_name(variant)}, untrained (random init)"
    return Source(
        model,
        variant,
        model.config.image_size,
        INCEPTION_MEAN,
        INCEPTION_STD,
        (),
        None,
        label,
        trained=False,
    )  # fmt: skip  (no classes: it predicts nothing)


@cache
def untrained_twin(source: Source, seed: int = 0) -> Source:
    """The same architecture randomly initialised (seeded, the global RNG left as it was): the
    control for what training put in the weights, since an untrained ViT's attention already
    has a distance and an entropy. Built once per source."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = type(source.model)(source.model.config).eval()
    label = f"{paper_name(source.variant, model)}, untrained (random init, seed {seed})"
    return replace(source, model=model, classes=(), label=label, trained=False)


def paper_name(variant: str, model: nn.Module | None = None) -> str:
    """Table 1's name ("ViT-Ti/16"), with the patch size and depth the model has where they
    differ from the variant's ("ViT-Ti/4 (5 layers)"); another model's registry name."""
    if variant not in VARIANTS:
        return variant
    base = VARIANTS[variant]
    if model is None:
        return base.paper_name
    config = model.config
    name = f"{base.paper_name.split('/')[0]}/{config.patch_size}"
    return name + (f" ({config.depth} layers)" if config.depth != base.config.depth else "")


def refuse_other_model(
    path: Path, own_variant: str, own_size: int, variant: str | None, image_size: int | None
) -> None:
    """A run's checkpoint fixes its model and resolution: a --variant or --image-size that
    differs is refused, not silently ignored."""
    given = {"--variant": (variant, own_variant), "--image-size": (image_size, own_size)}
    clashes = [f"{option} {value} (it has {own})" for option, (value, own) in given.items()
               if value not in (None, own)]  # fmt: skip
    if clashes:
        raise ValueError(
            f"{path} is a run's checkpoint, which fixes its model and resolution: drop "
            + " and ".join(clashes)
        )


def is_run_checkpoint(path: Path) -> bool:
    """Whether `path` is a `model.safetensors` with `replicate.train`'s metadata."""
    if path.suffix != ".safetensors" or not path.is_file():
        return False
    try:
        with safe_open(path, framework="pt") as f:
            return "variant" in (f.metadata() or {})
    except (SafetensorError, OSError):
        read_safetensors(path)  # raises the one-line error that names the file and the fault
        raise


def from_weights(
    spec: str,
    variant: str | None = None,
    image_size: int | None = None,
    device: torch.device | str = "cpu",
    num_classes: int | None = None,
    **overrides,
) -> Source:
    """The model of weights spec `spec`, with the weights' own head unless `num_classes` says;
    overrides: config fields of the model the weights belong to, as `create_model` takes."""
    variant = variant or variant_from_spec(spec)
    if variant is None:
        raise ValueError(
            f"cannot tell which model {spec!r} holds: it is not a checkpoint of replicate.train "
            f"and names no variant; pass --variant NAME ({', '.join(models.list_models())})"
        )
    image_size = image_size or image_size_from_spec(spec)
    model = models.create_model(
        variant, num_classes=num_classes, image_size=image_size, pretrained=spec, **overrides
    )
    view = model.pretrained_cfg
    return Source(
        model.to(device).eval(), variant, view["input_size"][-1], tuple(view["mean"]),
        tuple(view["std"]), class_names(model.num_classes), None, f"{paper_name(variant)}, {spec}",
    )  # fmt: skip


def class_names(num_classes: int) -> tuple[str, ...]:
    """ImageNet-1k's or -21k's class names for a head of their size, else "class 0", ..."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset({"num_classes": num_classes})
    if subset is None:
        return tuple(f"class {i}" for i in range(num_classes))
    info = ImageNetInfo(subset)
    return tuple(info.index_to_description(i).split(",")[0] for i in range(num_classes))


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that name what `load_source` loads."""
    parser.add_argument(
        "--checkpoint",
        "--weights",
        dest="checkpoint",
        required=True,
        metavar="SOURCE",
        help="a model.safetensors of replicate.train (or its run folder), or weights by spec: "
        "timm:NAME.TAG, torchvision:WEIGHTS, google:imagenet21k/ViT-B_16, or a "
        ".npz/.safetensors/.pth file",
    )
    parser.add_argument(
        "--variant",
        help="the model of weights whose name does not say it (e.g. vit_b16 for "
        "torchvision:IMAGENET1K_V1)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        metavar="S",
        help="resolution for weights by spec (default: the name's, e.g. 384, else the model's)",
    )
