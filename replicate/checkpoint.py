"""Checkpoints in safe formats, written atomically.

    model.safetensors   the weights, the project's own keys (`model.state_dict()`), with metadata
                        (`CheckpointInfo`) that rebuilds the model and feeds it: so
                        `vit.create_model(variant, num_classes=K, image_size=S, pretrained=path)`
                        loads a ViT trained here, and evaluate/predict need nothing else
    state.pt            optimiser, scheduler, loss scaler, step, epoch and every
                        rank's RNG states: tensors, numbers and strings only, so it loads with
                        `torch.load(weights_only=True)` and no pickled code runs

Each file is written to a temporary file in the same folder, fsynced, then `os.replace`d over
the old one, so an interruption leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from replicate import models
from vit.layouts import OURS
from vit.pretrained import WeightsInfo

WEIGHTS = "model.safetensors"
STATE = "state.pt"


@dataclass(frozen=True)
class CheckpointInfo:
    """The safetensors metadata: every value JSON-encoded (safetensors stores strings)."""

    variant: str  # registry name
    num_classes: int
    image_size: int
    classes: list[str]
    mean: list[float]  # input normalisation the weights expect
    std: list[float]
    model_overrides: dict[str, Any]  # e.g. {"depth": 2}: create_model(variant, **overrides)
    pretrained: str | None  # the weights spec training started from
    dataset: str
    epoch: int  # epochs completed
    step: int

    def to_metadata(self) -> dict[str, str]:
        return {"format": "pt", **{k: json.dumps(v) for k, v in asdict(self).items()}}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], path: Path) -> CheckpointInfo:
        missing = [f.name for f in fields(cls) if f.name not in metadata]
        if missing:
            raise ValueError(
                f"{path} is not a checkpoint of replicate.train: its metadata lacks {missing}"
            )
        return cls(**{f.name: json.loads(metadata[f.name]) for f in fields(cls)})


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write; on success it replaces `path` in one step."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def save_weights(path: Path, model: nn.Module, info: CheckpointInfo) -> None:
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, tmp, metadata=info.to_metadata())


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], CheckpointInfo]:
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    with safe_open(path, framework="pt") as f:
        info = CheckpointInfo.from_metadata(f.metadata() or {}, path)
        return {k: f.get_tensor(k) for k in f.keys()}, info


def load_model(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, CheckpointInfo]:
    """The model a `model.safetensors` of this trainer holds, in eval mode, and its metadata."""
    state, info = read_weights(path)
    model = models.create_model(
        info.variant,
        num_classes=info.num_classes,
        image_size=info.image_size,
        **info.model_overrides,
    )
    load_state(model, state, f"{path} ({info.variant})")
    # What the weights expect, for `model.pretrained_cfg` (timm's data config) as for a spec.
    model.pretrained_info = WeightsInfo(
        str(path), OURS, info.image_size, tuple(info.mean), tuple(info.std)
    )
    return model.to(device).eval(), info


def load_state(model: nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """`model.load_state_dict`, strict, with a mismatch reported as bad input."""
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # missing/unexpected keys, shape mismatches
        first = str(error).splitlines()[1:2] or [str(error)]
        raise ValueError(f"{what} does not fit this model: {first[0].strip()}") from error


def save_state(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"no training state at {path}: nothing to resume")
    return torch.load(path, map_location="cpu", weights_only=True)


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's random number generators, as tensors and plain numbers."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
