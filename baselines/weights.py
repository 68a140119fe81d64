"""Pretrained weights for the torchvision baselines: a spec string -> state dict + WeightsInfo.

    "torchvision:IMAGENET1K_V1"   a tag of the model's torchvision weights enum ("DEFAULT" too)
    "/path/to/file.pth"           a local state dict in torchvision's layout

Downloads go through torch.hub (cached under `torch.hub.get_dir()`) with the hash check that
torchvision's own builders ask for. Every failure is a `WeightsUnavailableError` naming the
weights, the cause and the way out: EfficientNet downloads failing their hash check in some
torchvision versions are a known trap (GUIDE item 9), and these machines are offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from vit.pretrained import IMAGENET_MEAN, IMAGENET_STD, WeightsInfo, WeightsUnavailableError

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

PREFIX = "torchvision:"
StateDict = dict[str, torch.Tensor]


def load_torchvision_weights(
    model_name: str, spec: str, default_image_size: int
) -> tuple[StateDict, WeightsInfo]:
    """The state dict that `spec` names for torchvision model `model_name` (e.g. "efficientnet_b0"),
    and what a user must know about it; `default_image_size` stands in for a local file's."""
    if spec.startswith(PREFIX):
        return _download(model_name, spec.removeprefix(PREFIX))
    info = WeightsInfo(
        spec=spec,
        layout="torchvision",
        image_size=default_image_size,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
    )
    return _read_file(model_name, spec), info


def _download(model_name: str, tag: str) -> tuple[StateDict, WeightsInfo]:
    from torchvision.models import get_model_weights  # torchvision only when weights are asked for

    weights_enum = get_model_weights(model_name)
    if tag not in weights_enum.__members__:
        raise WeightsUnavailableError(
            f"unknown torchvision weights {tag!r} for {model_name}; "
            f"available: {', '.join(weights_enum.__members__)}"
        )
    weights = weights_enum[tag]
    try:
        state = torch.hub.load_state_dict_from_url(
            weights.url, map_location="cpu", check_hash=True, weights_only=True
        )
    except (OSError, RuntimeError) as error:  # URLError, HTTPError; "invalid hash value (...)"
        raise WeightsUnavailableError(_fetch_error(weights, error)) from error
    transform = weights.transforms()
    info = WeightsInfo(
        spec=f"{PREFIX}{weights}",  # e.g. "torchvision:EfficientNet_B0_Weights.IMAGENET1K_V1"
        layout="torchvision",
        image_size=transform.crop_size[0],
        mean=tuple(transform.mean),
        std=tuple(transform.std),
    )
    return state, info


def _fetch_error(weights: WeightsEnum, error: Exception) -> str:
    """What failed, why, and the way out."""
    filename = weights.url.rsplit("/", 1)[-1]
    if "hash" in str(error):
        way_out = (
            "the download is corrupt or the expected hash is stale; retry, or check a copy by hand "
            "(the name's suffix is the start of its sha256) and pass its path as pretrained="
        )
    else:
        way_out = (
            f"without network access, fetch {filename} elsewhere and pass its path as pretrained="
        )
    return (
        f"could not fetch the torchvision weights {weights} from {weights.url}: {error}; "
        f"{way_out}'/path/to/{filename}'"
    )


def _read_file(model_name: str, spec: str) -> StateDict:
    path = Path(spec).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(
            f"pretrained={spec!r} for {model_name} is neither '{PREFIX}<tag>' "
            f"(e.g. '{PREFIX}IMAGENET1K_V1') nor an existing state-dict file"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and torch errors alike mean "not a state dict"
        raise WeightsUnavailableError(
            f"could not read {model_name} weights from {path}: {error}"
        ) from error
