"""Pretrained weights for the BiT ResNets: a spec string -> a loaded timm network + WeightsInfo.

    timm:resnetv2_50x1_bit.goog_in21k   timm's copy of BiT-M (Hugging Face hub, `vit.pretrained`)
    path/to/BiT-M-R50x1.npz             Google's original BiT checkpoint (download it from
                                        https://storage.googleapis.com/bit_models/BiT-M-R50x1.npz),
                                        read by timm's own loader, `ResNetV2.load_pretrained`
    path/to/file                        a state dict in timm's layout (.safetensors, .pt, .pth,
                                        .bin), e.g. the model.safetensors of a `replicate.train` run

The network is built with the head the weights carry (21,843 ImageNet-21k classes, 1000, or a
run's own); `baselines.bit` then swaps it for a zero-initialised one when the task has another
number of classes. BiT's weights take pixels scaled to [-1, 1].
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from torch import nn

from baselines.bit_network import BiTVariant, Norm, Stem, build_network
from vit.data_config import INCEPTION_MEAN, INCEPTION_STD
from vit.pretrained import WeightsInfo, read_weights

TIMM = "timm:"
NPZ_PREFIX = "resnet/"  # the key prefix of Google's BiT .npz files
NPZ_HEAD = NPZ_PREFIX + "head/conv2d/kernel"  # (1, 1, features, classes), HWIO


def load_bit_weights(
    variant: BiTVariant,
    spec: str,
    stem: Stem,
    default_image_size: int,
    layers: tuple[int, ...] | None = None,
    width: float = 1.0,
    norm: Norm = "group",
) -> tuple[nn.Module, WeightsInfo]:
    """timm's network for `variant` (`layers`, `width` and `norm` as `build_network`'s),
    carrying the weights `spec` names, and what they expect."""
    path = Path(spec).expanduser()
    custom = layers is not None or width != 1.0 or norm != "group"
    if custom and (spec.startswith(TIMM) or path.suffix == ".npz"):
        raise ValueError(
            f"{spec} holds a full-size {variant.bit_name} (GroupNorm): drop layers, width and norm"
        )
    if not spec.startswith(TIMM) and path.suffix == ".npz":
        return _load_npz(variant, path, stem, default_image_size)
    if not spec.startswith(TIMM) and ":" in spec and not path.exists():  # torchvision:, google:
        raise ValueError(
            f"BiT weights come as 'timm:MODEL.TAG' (e.g. 'timm:{variant.timm_name}.goog_in21k'), "
            f"a BiT .npz file or a state-dict file; got {spec!r}"
        )
    state, metadata = read_weights(spec, variant.timm_name)
    if "head.fc.weight" not in state:
        raise ValueError(f"{spec} is not a BiT/ResNetV2 state dict in timm's layout (no head.fc)")
    network = build_network(variant, state["head.fc.weight"].shape[0], stem, layers, width, norm)
    _load(network.load_state_dict, state, spec, variant, stem)
    return network, _info(spec, metadata, default_image_size)


def _load_npz(
    variant: BiTVariant, path: Path, stem: Stem, default_image_size: int
) -> tuple[nn.Module, WeightsInfo]:
    if not path.is_file():
        raise ValueError(f"no weights file {path}")
    with np.load(path) as arrays:
        if NPZ_HEAD not in arrays.files:
            raise ValueError(f"{path} is not a BiT checkpoint: it has no {NPZ_HEAD!r}")
        num_classes = arrays[NPZ_HEAD].shape[-1]
    network = build_network(variant, num_classes, stem)
    _load(network.load_pretrained, str(path), str(path), variant, stem)
    info = WeightsInfo(str(path), "npz", default_image_size, INCEPTION_MEAN, INCEPTION_STD)
    return network, info


def _load(load, source, spec: str, variant: BiTVariant, stem: Stem) -> None:
    """`load(source)`, with a shape or key mismatch reported as the wrong model for the file."""
    try:
        load(source)
    except (RuntimeError, KeyError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(
            f"{spec} does not fit {variant.timm_name} with stem={stem!r} ({first_line}): it holds "
            "another model's weights (another depth, width, stem or norm)"
        ) from error


def _info(spec: str, metadata: dict[str, str], default_image_size: int) -> WeightsInfo:
    """The weights' resolution and normalisation: timm's configuration for a timm name, the
    file's metadata for a run of `replicate.train`, else BiT's [-1, 1]."""
    if spec.startswith(TIMM):
        import timm

        config = timm.models.get_pretrained_cfg(spec.removeprefix(TIMM))
        return WeightsInfo(spec, "timm", config.input_size[-1], config.mean, config.std)
    mean, std = INCEPTION_MEAN, INCEPTION_STD
    if "mean" in metadata and "std" in metadata:
        mean, std = tuple(json.loads(metadata["mean"])), tuple(json.loads(metadata["std"]))
    return WeightsInfo(spec, "timm", default_image_size, mean, std)
