"""Real pretrained weights into this project's ViT: timm, torchvision, the official .npz.

A weights spec names the source:

    timm:vit_base_patch16_224.augreg2_in21k_ft_in1k   a timm model name with its tag (HF hub)
    torchvision:IMAGENET1K_V1                         a torchvision weights enum of the variant
    google:imagenet21k/ViT-B_16                       an official checkpoint (Google storage)
    path/to/file                                      .npz, .safetensors, .pt/.pth/.bin

A local file may hold a state dict from timm, torchvision or this project, an official .npz
(either block numbering) or a big_vision .npz; `vit.layouts` detects which. Downloads go to the
libraries' usual caches; offline, a missing file raises `WeightsUnavailableError` saying how to
pass a local file instead.

The weights are loaded into a model of their own geometry and head, read off the file: the
resolution, the classes, the pre-logits layer, whether there is a class token, and how the
output is pooled (a file without a class token is a GAP model; timm's `fc_norm` marks its
mean-then-LN GAP); GELU is flax's tanh form for the official and big_vision files, which were
trained with it. Only where the file cannot tell (a class-token file under pool "cls" or
"gap") does the requested config decide. Then (Section 3.2) the position embeddings are
interpolated to the requested resolution, and (Appendix B.1.1) when the number of classes
differs the head is replaced by a zero-initialised linear layer.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import socket
import urllib.parse
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from vit.config import ViTConfig
from vit.data_config import IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD
from vit.embedding import InterpolationMode
from vit.layouts import OURS, to_ours
from vit.model import VisionTransformer

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

# Input normalisation each layout's weights expect, when the file does not say.
_LAYOUT_NORMALISATION = {
    "npz": (INCEPTION_MEAN, INCEPTION_STD),
    "big_vision": (INCEPTION_MEAN, INCEPTION_STD),
    "timm": (INCEPTION_MEAN, INCEPTION_STD),  # timm's ViT weights keep the official [-1, 1]
    "torchvision": (IMAGENET_MEAN, IMAGENET_STD),
    OURS: (INCEPTION_MEAN, INCEPTION_STD),
}
GOOGLE_STORAGE = "https://storage.googleapis.com/vit_models/"
OFFLINE_HINT = (
    "Download it on a machine with network access, copy the file here and pass its path as "
    "the weights spec (pretrained='path/to/file' or --pretrained path/to/file)."
)


class WeightsUnavailableError(RuntimeError):
    """Weights could not be fetched (no network, unknown name, failed hash check)."""


@dataclass(frozen=True)
class WeightsInfo:
    """What a user must know about loaded weights, kept on the model as `pretrained_info`."""

    spec: str  # what the user asked for, e.g. "timm:vit_base_patch16_224.augreg2_in21k_ft_in1k"
    layout: str  # "timm", "torchvision", "npz", "big_vision" or "vit-replicate"
    image_size: int  # the resolution the weights were trained at
    mean: tuple[float, ...]  # input normalisation the weights expect
    std: tuple[float, ...]
    # What a ViT's file decided (None for the CNN baselines): its head ("cls", "gap",
    # "gap_fc_norm"), its class token, and GELU ("tanh" for official and big_vision weights).
    pool: str | None = None
    class_token: bool | None = None
    gelu: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def load_pretrained(
    config: ViTConfig,
    spec: str,
    variant: str,
    keep_head: bool = False,
    interpolation: InterpolationMode = "linear",
) -> VisionTransformer:
    """A `VisionTransformer` of `config` carrying the weights named by `spec`; with `keep_head`,
    the weights' own head whatever `config.num_classes` says; `interpolation` resizes E_pos
    when `config.image_size` differs from the weights' ("linear" as the official code, or
    timm's "bicubic": `vit.embedding.resize_position_embedding`)."""
    state, metadata = read_weights(spec, variant)
    state, layout = to_ours(state, config.num_heads)
    checkpoint_config = _checkpoint_config(config, state, _gelu(layout, metadata, config.gelu))
    model = VisionTransformer(checkpoint_config)
    _check_shapes(model, state, variant)
    model.load_state_dict(state)
    mean, std = _normalisation(layout, metadata)
    c = checkpoint_config
    model.pretrained_info = WeightsInfo(
        spec, layout, c.image_size, mean, std, c.pool, c.has_class_token, c.gelu
    )
    if config.image_size != checkpoint_config.image_size:
        model.resize_position_embedding(config.image_size, interpolation)  # Section 3.2
    if not keep_head and config.num_classes != checkpoint_config.num_classes:
        model.replace_head(config.num_classes)  # Appendix B.1.1
    return model


def read_weights(spec: str, variant: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The raw state dict (any layout) and string metadata named by `spec`."""
    source, _, name = spec.partition(":")
    if source == "timm" and name:
        return read_state_dict(_fetch_timm(name))
    if source == "torchvision" and name:
        return _fetch_torchvision(name, variant), {}
    if source == "google" and name:
        return read_state_dict(_fetch_url(GOOGLE_STORAGE + name.removesuffix(".npz") + ".npz"))
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ValueError(
            f"weights spec {spec!r} is neither a file nor a known source; use "
            "'timm:MODEL.TAG', 'torchvision:WEIGHTS' (e.g. IMAGENET1K_V1), "
            "'google:imagenet21k/ViT-B_16' or the path of a .npz/.safetensors/.pt file"
        )
    return read_state_dict(path)


def read_state_dict(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The state dict in a .npz, .safetensors or PyTorch file, and the file's string metadata."""
    if not path.is_file():
        raise ValueError(f"no weights file {path}")
    if path.suffix == ".npz":
        return read_npz(path), {}
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    state = read_torch_file(path)
    for wrapper in ("model", "state_dict", "model_state"):  # training checkpoints nest it
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return state, {}


def read_npz(path: Path) -> dict[str, Tensor]:
    """The arrays of an official .npz; pickled objects are refused (`allow_pickle=False`), and a
    file that cannot be read is a ValueError naming it."""
    _require_content(path)
    try:
        with np.load(path) as arrays:
            return {k: torch.from_numpy(arrays[k]) for k in arrays.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"cannot read {path}: not an .npz of arrays ({error})") from error


def read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors and string metadata of a .safetensors file; a file that is not one (empty,
    truncated, another format) is a ValueError naming it."""
    from safetensors import SafetensorError, safe_open

    _require_content(path)
    try:
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise ValueError(
            f"cannot read {path}: not a .safetensors file, or a truncated or corrupt one ({error})"
        ) from error


def read_torch_file(path: Path) -> Any:
    """`torch.load(weights_only=True)` onto the CPU: tensors, numbers and strings only, so no
    pickled code runs. A file it cannot read is a ValueError naming it; the advice of torch's own
    message, to load the file with `weights_only=False`, is not passed on."""
    _require_content(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # random bytes, or pickled objects
        reason = "it is not a PyTorch file, or holds objects other than tensors and numbers"
        raise ValueError(f"cannot read {path}: {reason}") from error
    except (RuntimeError, EOFError, OSError) as error:  # a truncated zip archive, say
        reason = str(error).split(". ")[0] or type(error).__name__
        raise ValueError(f"cannot read {path}: truncated or corrupt ({reason})") from error


def _require_content(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"cannot read {path}: the file is empty")


def _fetch_timm(name: str) -> Path:
    """The timm checkpoint file from the Hugging Face cache, downloaded when not cached. The hub
    client's own settings hold: its cache (HF_HOME), HF_HUB_OFFLINE, an HF_ENDPOINT mirror and
    the proxies of the environment."""
    import timm
    from huggingface_hub import constants, hf_hub_download

    try:
        repo = timm.models.get_pretrained_cfg(name).hf_hub_id
    except (RuntimeError, AttributeError) as error:  # unknown name, or a model with no weights
        raise WeightsUnavailableError(f"timm has no pretrained weights named {name!r}") from error
    files = ("model.safetensors", "pytorch_model.bin")
    for filename in files:
        try:
            return Path(hf_hub_download(repo, filename, local_files_only=True))
        except OSError:  # LocalEntryNotFoundError: not in the cache
            continue
    if constants.HF_HUB_OFFLINE:
        raise WeightsUnavailableError(
            f"timm:{name} is not in the Hugging Face cache, and HF_HUB_OFFLINE is set. "
            + OFFLINE_HINT
        )
    _require_network(constants.ENDPOINT, f"timm:{name}")
    for filename in files:
        try:
            return Path(hf_hub_download(repo, filename))
        except OSError as error:  # the hub's not-found and connection errors are OSErrors
            last_error = error
    raise WeightsUnavailableError(
        f"could not download timm:{name} from {constants.ENDPOINT}: {last_error}. {OFFLINE_HINT}"
    )


def _fetch_torchvision(name: str, variant: str) -> dict[str, Tensor]:
    from vit.references import TORCHVISION_NAMES

    if variant not in TORCHVISION_NAMES:
        raise ValueError(
            f"torchvision has no weights for {variant}; it has {sorted(TORCHVISION_NAMES)}"
        )
    return fetch_torchvision(TORCHVISION_NAMES[variant], name)[0]


def fetch_torchvision(builder: str, tag: str) -> tuple[dict[str, Tensor], WeightsEnum]:
    """The state dict of torchvision's weights `tag` for `builder` (e.g. "vit_b_16",
    "efficientnet_b0"), downloaded with its hash checked, and the weights enum member."""
    from torchvision.models import get_model_weights  # torchvision only when asked for

    enum = get_model_weights(builder)
    if tag not in enum.__members__:
        available = ", ".join(enum.__members__)
        raise ValueError(f"torchvision {builder} has no weights {tag!r}; available: {available}")
    weights = enum[tag]
    try:
        state = torch.hub.load_state_dict_from_url(
            weights.url, map_location="cpu", check_hash=True, weights_only=True
        )
        return state, weights
    except (OSError, RuntimeError) as error:  # URLError offline; "invalid hash value (...)"
        raise WeightsUnavailableError(_torchvision_fetch_error(weights, error)) from error


def _torchvision_fetch_error(weights: WeightsEnum, error: Exception) -> str:
    """What failed, why, and the way out (some torchvision versions list stale hashes)."""
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


def _fetch_url(url: str) -> Path:
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.removeprefix(GOOGLE_STORAGE)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(path), progress=True)
        except OSError as error:
            raise WeightsUnavailableError(
                f"could not download {url}: {error}. {OFFLINE_HINT}"
            ) from error
    return path


def _require_network(endpoint: str, what: str) -> None:
    """Fail at once where `endpoint` cannot be reached, instead of after the hub client's half
    minute of retries; behind a proxy (HTTPS_PROXY, ALL_PROXY) the client alone can tell."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    url = urllib.parse.urlsplit(endpoint)
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((url.hostname, port), timeout=5).close()
    except OSError as error:
        raise WeightsUnavailableError(
            f"cannot reach {url.hostname} to download {what} ({error}), and it is not in the "
            f"local cache. {OFFLINE_HINT}"
        ) from error


def _gelu(layout: str, metadata: dict[str, str], requested: str) -> str:
    """flax's tanh GELU for official and big_vision weights; a checkpoint of this project's
    trainer says which it was trained with; otherwise the requested one."""
    if layout in ("npz", "big_vision"):
        return "tanh"
    return json.loads(metadata.get("model_overrides", "{}")).get("gelu", requested)


def _checkpoint_config(config: ViTConfig, state: dict[str, Tensor], gelu: str) -> ViTConfig:
    """`config` with what the checkpoint was trained with, read off its tensors: resolution,
    classes, pre-logits layer, class token and pooling; and its GELU."""
    for key in (
        "embedding.position_embedding",
        "embedding.projection.weight",
        "head.classifier.weight",
    ):
        if key not in state:
            raise ValueError(f"the checkpoint lacks {key!r}: it is not a complete ViT state dict")
    class_token = "embedding.class_token" in state
    positions = state["embedding.position_embedding"].shape[1] - class_token
    grid = math.isqrt(positions)
    if grid**2 != positions:
        raise ValueError(
            f"the checkpoint's position embedding has {positions} patch positions "
            f"({'with' if class_token else 'without'} a class token), not a square grid"
        )
    patch = state["embedding.projection.weight"].shape[-1]
    resnet_stride = config.downsampling // config.patch_size  # 1 unless a hybrid
    pre_logits = state.get("head.pre_logits.0.weight")
    return config.replace(
        image_size=grid * patch * resnet_stride,
        num_classes=state["head.classifier.weight"].shape[0],
        representation_size=None if pre_logits is None else pre_logits.shape[0],
        pool=_pool(config.pool, state, class_token),
        class_token=class_token,
        gelu=gelu,
    )


def _pool(requested: str, state: dict[str, Tensor], class_token: bool) -> str:
    """The head the file holds: LN after the mean (timm's `fc_norm`) is "gap_fc_norm"; no class
    token and LN on every token is the paper's "gap"; with a class token and LN on every token
    the file cannot tell "cls" from "gap" over the patch tokens, and `requested` decides."""
    if "head.fc_norm.weight" in state:
        return "gap_fc_norm"
    if not class_token:
        return "gap"
    return "cls" if requested == "gap_fc_norm" else requested


def _check_shapes(model: VisionTransformer, state: dict[str, Tensor], variant: str) -> None:
    expected = model.state_dict()
    depth = sum(k.endswith("attention.qkv.weight") for k in state)
    if depth != model.config.depth:
        raise ValueError(
            f"the checkpoint has {depth} encoder layers but {variant} has {model.config.depth}: "
            "it is a checkpoint of another variant"
        )
    for key, tensor in expected.items():
        if key not in state:
            raise ValueError(f"the checkpoint lacks {key!r}, which {variant} needs")
        if state[key].shape != tensor.shape:
            raise ValueError(
                f"checkpoint tensor {key!r} has shape {tuple(state[key].shape)} but {variant} "
                f"expects {tuple(tensor.shape)}: it is a checkpoint of another variant"
            )
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise ValueError(f"the checkpoint has tensors {variant} does not: {unexpected[:3]}")


def _normalisation(layout: str, metadata: dict[str, str]) -> tuple[tuple, tuple]:
    """The input mean and std the weights expect: from the file when it says, else the
    layout's convention."""
    mean, std = _LAYOUT_NORMALISATION[layout]
    if "mean" in metadata and "std" in metadata:
        mean, std = json.loads(metadata["mean"]), json.loads(metadata["std"])
    return tuple(mean), tuple(std)
