"""Checkpoints in safe formats: the weights and the training state of one step, published whole.

A run folder holds

    checkpoints/step-00001200/model.safetensors   the weights, the project's own keys
                                                  (`model.state_dict()`), with metadata
                                                  (`CheckpointInfo`) that rebuilds the model
    checkpoints/step-00001200/state.pt            optimiser, scheduler, loss scaler, step, epoch,
                                                  every rank's RNG states: tensors,
                                                  numbers and strings only, so it loads with
                                                  `torch.load(weights_only=True)`
    latest.json                                   {"step": 1200, "folder": "checkpoints/..."}:
                                                  the checkpoint a resume continues from
    model.safetensors                             the latest weights (a hard link to them), for
                                                  `--pretrained RUN/model.safetensors`

A checkpoint is written into a temporary folder, its files fsynced, the folder renamed to its
step-stamped name, and only then published by an atomic replace of `latest.json`; the previous
checkpoint is deleted after that. An interruption at any moment leaves a whole checkpoint that
`latest.json` names: weights and state always of the same step. Paths inside the run folder are
relative, so a run folder can be moved, copied or renamed and still resumes.

`resolve_weights` turns a run folder or a weights file into the weights file: every command that
reads a checkpoint (`evaluate`, `predict`, `figures`, `train --pretrained`) accepts either.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from replicate import models
from replicate.errors import NoSpaceError
from replicate.runs.files import atomic_path, fsync, fsync_folder
from vit.layouts import OURS
from vit.pretrained import WeightsInfo, read_safetensors, read_torch_file

WEIGHTS = "model.safetensors"
STATE = "state.pt"
LATEST = "latest.json"
CHECKPOINTS = "checkpoints"


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
        values = {}
        for f in fields(cls):
            try:
                values[f.name] = json.loads(metadata[f.name])
            except json.JSONDecodeError:
                raise ValueError(f"{path}: its metadata's {f.name} is not JSON") from None
            kind = METADATA_TYPES.get(f.name)
            if kind and not isinstance(values[f.name], kind):
                raise ValueError(
                    f"{path}: its metadata's {f.name} is {values[f.name]!r}, not of type "
                    f"{kind.__name__}; the file was edited, or is not this trainer's"
                )
        return cls(**values)


METADATA_TYPES = {"variant": str, "num_classes": int, "image_size": int, "classes": list,
                  "mean": list, "std": list, "model_overrides": dict, "dataset": str,
                  "epoch": int, "step": int}  # fmt: skip


@dataclass(frozen=True)
class Checkpoint:
    """The two files of one published checkpoint, and its step."""

    weights: Path
    state: Path
    step: int


def check_writable(run: Path) -> None:
    """Fail now, not after the data and the model are built, if the run folder cannot be made
    or written; leaves nothing behind (a bad-input run leaves no empty run folder)."""
    existing = next(folder for folder in (run, *run.parents) if folder.exists())
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        with tempfile.TemporaryDirectory(dir=existing):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        message = f"cannot write the run folder {run}: {reason}; choose another --out"
        raise ValueError(message) from error


LOCK = ".lock"


@contextmanager
def run_folder_lock(run: Path) -> Iterator[None]:
    """Hold `run` for this process: a second process given the same --out exits with a
    one-line error naming the holder, instead of mixing two runs' logs and weights. An OS
    lock (flock), so the kernel releases it when the holder dies: a killed run leaves no stale
    lock. A folder made only for the lock is removed again if the run leaves nothing in it."""
    created = not run.exists()
    run.mkdir(parents=True, exist_ok=True)
    path = run / LOCK
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ValueError(
                f"{run} is in use by {holder}; wait for it to end or choose another --out"
            ) from None
        handle.truncate(0)
        handle.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        try:
            yield
        finally:
            if created and [p.name for p in run.iterdir()] == [LOCK]:
                shutil.rmtree(run)  # bad input found before anything was written


def latest_checkpoint(run: Path) -> Checkpoint | None:
    """The checkpoint `run/latest.json` publishes; None when the run has none yet."""
    manifest = run / LATEST
    if not manifest.is_file():
        return None
    try:
        published = json.loads(manifest.read_text())
        folder, step = run / published["folder"], int(published["step"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"cannot read {manifest}: {error}; it is not this trainer's") from error
    return Checkpoint(folder / WEIGHTS, folder / STATE, step)


def resolve_weights(path: str | Path) -> Path:
    """The weights file a run folder publishes (its latest checkpoint), or `path` itself."""
    path = Path(path).expanduser()
    if not path.is_dir():
        if not path.exists():
            raise FileNotFoundError(f"no checkpoint at {path}")
        return path
    checkpoint = latest_checkpoint(path)
    if checkpoint is not None:
        return checkpoint.weights
    if (path / WEIGHTS).is_file():
        return path / WEIGHTS
    raise FileNotFoundError(f"no checkpoint in {path}: it has no {LATEST} nor {WEIGHTS}")


def save_checkpoint(
    run: Path, model: nn.Module, info: CheckpointInfo, state: dict[str, Any]
) -> Checkpoint:
    """Write the weights and state of step `info.step` and publish them (module docstring); a
    full disk is a one-line `NoSpaceError`, the previous checkpoint kept."""
    try:
        return _save_checkpoint(run, model, info, state)
    except Exception as error:  # OSError; torch.save's RuntimeError; safetensors' own error
        if not out_of_space(error):
            raise
        previous = latest_checkpoint(run)
        needed = _folder_bytes(previous.state.parent) if previous else _checkpoint_bytes(model)
        raise NoSpaceError(
            f"no space left on the disk of {run} for the checkpoint of step {info.step}: it "
            f"needs about {needed / 1e6:.1f} MB, {shutil.disk_usage(run).free / 1e6:.0f} MB are "
            f"free; free some space, {then_what(previous)}"
        ) from error


def no_space_left(run: Path, error: BaseException) -> NoSpaceError:
    """A full disk met by any other write of a run (its lock, config.json, metrics.jsonl,
    TensorBoard's events): one line that says what to do next, from what the folder holds."""
    return NoSpaceError(
        f"no space left on the disk of {run} ({error}); free some space, "
        f"{then_what(latest_checkpoint(run))}"
    )


def then_what(checkpoint: Checkpoint | None) -> str:
    """How a run stopped by a full disk goes on: from its last checkpoint, or from the start."""
    if checkpoint is None:
        return "then start the run again (it wrote no checkpoint)"
    return f"then --resume (the last checkpoint, step {checkpoint.step}, is kept)"


def out_of_space(error: BaseException | None) -> bool:
    """Whether `error`, or one it was raised from, is a write that found the disk full."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left" in str(error) or "unexpected pos" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _checkpoint_bytes(model: nn.Module) -> int:
    """The weights and the optimiser state (two moments for Adam): a checkpoint's bulk."""
    return 3 * sum(p.numel() * p.element_size() for p in model.parameters())


def _save_checkpoint(
    run: Path, model: nn.Module, info: CheckpointInfo, state: dict[str, Any]
) -> Checkpoint:
    folder = run / CHECKPOINTS / f"step-{info.step:08d}"
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # what an interrupted save left
    tmp.mkdir(parents=True)
    try:
        save_weights(tmp / WEIGHTS, model, info)
        torch.save(state, tmp / STATE)
        fsync(tmp / STATE)
        shutil.rmtree(folder, ignore_errors=True)  # an unpublished folder of an earlier try
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fsync_folder(folder.parent)
    with atomic_path(run / LATEST) as manifest:
        relative = folder.relative_to(run).as_posix()
        manifest.write_text(json.dumps({"step": info.step, "folder": relative}) + "\n")
    with atomic_path(run / WEIGHTS) as link:
        _link_or_copy(folder / WEIGHTS, link)
    for old in (run / CHECKPOINTS).glob("step-*"):  # the previous checkpoint, now superseded
        if old != folder:
            shutil.rmtree(old, ignore_errors=True)
    return Checkpoint(folder / WEIGHTS, folder / STATE, info.step)


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)  # no second copy on disk
    except OSError:  # a file system without hard links
        shutil.copyfile(source, target)


def save_weights(path: Path, model: nn.Module, info: CheckpointInfo) -> None:
    """A weights file alone, atomically (what `save_checkpoint` writes into a checkpoint)."""
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, tmp, metadata=info.to_metadata())


def run_checkpoint_info(spec: str) -> CheckpointInfo | None:
    """The metadata of the `replicate.train` checkpoint a --pretrained spec names (its file or
    its run folder), without reading the tensors; None for any other weights."""
    from safetensors import SafetensorError, safe_open

    path = Path(spec).expanduser()
    if not path.exists():
        return None
    path = resolve_weights(path)
    if path.suffix != ".safetensors":
        return None
    try:
        with safe_open(path, framework="pt") as file:
            metadata = file.metadata() or {}
    except (SafetensorError, OSError):  # unreadable: the weights' loader names the fault
        return None
    return CheckpointInfo.from_metadata(metadata, path) if "variant" in metadata else None


def read_weights(path: Path) -> tuple[dict[str, torch.Tensor], CheckpointInfo]:
    """The tensors and metadata of a weights file of this trainer, or of a run folder's latest."""
    path = resolve_weights(path)
    if path.suffix != ".safetensors":
        raise ValueError(
            f"{path} is not a {WEIGHTS} of replicate.train; pass the run folder or its {WEIGHTS}"
        )
    state, metadata = read_safetensors(path)
    return state, CheckpointInfo.from_metadata(metadata, path)


def load_model(path: Path, device: torch.device | str = "cpu") -> tuple[nn.Module, CheckpointInfo]:
    """The model a checkpoint of this trainer holds (a weights file or a run folder), in eval
    mode, and its metadata."""
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


def read_state(path: Path) -> dict[str, Any]:
    """A checkpoint's training state, onto the CPU (a run saved on a GPU resumes anywhere)."""
    state = read_torch_file(path)
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError(f"{path} is not a training state of replicate.train")
    return state


def non_finite_weights(model: nn.Module) -> list[str]:
    """The names of the parameters and buffers holding a NaN or an infinity."""
    tensors = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    finite = torch.stack([v.isfinite().all() for v in tensors.values()]).tolist()  # one sync
    return [name for name, ok in zip(tensors, finite, strict=True) if not ok]


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's random number generators, as tensors and plain numbers."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> bool:
    """Restore `rng_state`'s generators; False when a GPU's state had nowhere to go (a run
    saved on a GPU resumed on the CPU)."""
    random.setstate(state["python"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] is None:
        return True
    if device.type != "cuda":
        return False
    torch.cuda.set_rng_state(state["cuda"], device)
    return True


def lay_out_as_parameters(optimizer: torch.optim.Optimizer) -> None:
    """Each optimiser state tensor of its parameter's shape given that parameter's memory
    layout: the fused kernels walk the two as flat memory, so moments saved contiguous (by a
    run in bf16 on the CPU) beside channels-last weights would pair the wrong elements."""
    for param, state in optimizer.state.items():
        for key, value in state.items():
            if torch.is_tensor(value) and value.shape == param.shape:
                if value.stride() != param.stride():
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)
