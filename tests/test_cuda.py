"""The CUDA path of `replicate.train` and `replicate.evaluate`: mixed
precision, loss scaling, torch.compile, channels-last, images kept on the GPU or streamed to it,
resumption, evaluation, a diverging fp16 run, gradient checkpointing.

    PYTHONPATH=$PWD python3 -m pytest -m cuda -q        # on a machine with a GPU

A test runs on each device its `device` parameter names: "cuda" is marked `cuda` and skipped
without a GPU; "cpu" too where the same path runs on the CPU in seconds, so CI exercises the
logic (replicate.train picks the GPU when there is one: the "cpu" variant hides it). Runs are the
one-layer ViT of test_train on 16x16 digits, a few steps each.

Equal results: on the CPU two runs that should match are bit-identical. On the GPU some kernels
(attention's backward) add in a varying order, so they are compared to 1e-4 absolute after SGD
steps, where a difference in the last bits stays that small (Adam's normalised steps would
magnify it near zero gradients).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train import (  # noqa: F401  (one_thread: autouse)
    TINY_VIT,
    interrupt_after_the_first_epoch,
    metrics,
    one_thread,
)

from replicate import evaluate as evaluate_module
from replicate import train as train_module
from replicate.cli_errors import run_cli
from replicate.data.loader import ResidentImages, StreamedImages
from replicate.train import main
from replicate.training.checkpoint import WEIGHTS, latest_checkpoint, read_state

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = pytest.param("cuda", marks=[pytest.mark.cuda, needs_cuda])
CPU_AND_CUDA = ["cpu", CUDA]
SGD = ["--recipe", "finetune", "--lr", "0.05"]  # momentum SGD: see the module docstring


@pytest.fixture
def device(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The device replicate.train will pick: on "cpu", the GPU (if any) is hidden from it."""
    if request.param == "cpu":
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    return request.param


def run(out: Path, *options: str) -> torch.nn.Module:
    return main([*TINY_VIT, "--out", str(out), *options])


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module, device: str) -> None:
    for key, tensor in a.state_dict().items():
        if device == "cpu":
            assert torch.equal(b.state_dict()[key], tensor), key
        else:
            torch.testing.assert_close(b.state_dict()[key], tensor, rtol=0, atol=1e-4, msg=key)


@pytest.mark.parametrize("device", CPU_AND_CUDA, indirect=True)
@pytest.mark.parametrize(
    "precision, dtype",
    [("bf16", torch.bfloat16), ("fp16", torch.float16), ("fp32", torch.float32)],
)
def test_each_precision_trains_in_its_dtype(
    device: str, precision: str, dtype: torch.dtype, tmp_path: Path, monkeypatch
) -> None:
    """bf16 and fp16 autocast (fp16 with loss scaling), and fp32: the dense layers run in the
    dtype, the loss falls; the convolution weights train channels-last on the GPU and in fp32,
    and the trained model comes back in the contiguous layout that safetensors saves."""
    dtypes, layouts = [], []
    build_model = train_module.build_model

    def recording(config, num_classes):
        model = build_model(config, num_classes)
        model.head.classifier.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
        model.register_forward_pre_hook(
            lambda m, i: layouts.append(
                m.embedding.projection.weight.is_contiguous(memory_format=torch.channels_last)
            )
        )
        return model

    monkeypatch.setattr(train_module, "build_model", recording)
    model = run(tmp_path, "--precision", precision, "--epochs", "2", "--lr", "3e-3")
    lines = metrics(tmp_path)
    assert set(dtypes) == {dtype}  # training and evaluation forwards
    assert lines[-1]["train_loss"] < lines[0]["train_loss"] < math.log(10)
    scaler = read_state(latest_checkpoint(tmp_path).state)["scaler"]
    assert bool(scaler) == (precision == "fp16")  # a disabled GradScaler saves an empty state
    assert next(model.parameters()).device.type == device
    assert set(layouts) == {device == "cuda" or precision == "fp32"}
    assert model.embedding.projection.weight.is_contiguous()


@pytest.mark.cuda
@needs_cuda
def test_compiled_run_learns_and_saves_plain_weights(tmp_path: Path) -> None:
    """--compile: torch.compile'd training and evaluation; the checkpoint's keys are the
    model's own, without torch.compile's `_orig_mod.` prefix."""
    run(tmp_path, "--compile", "--epochs", "3", "--lr", "3e-3")
    lines = metrics(tmp_path)
    assert lines[-1]["train_loss"] < lines[0]["train_loss"] and lines[-1]["test_acc"] > 0.3
    assert not any(key.startswith("_orig_mod") for key in load_file(tmp_path / WEIGHTS))


@pytest.mark.parametrize("device", CPU_AND_CUDA, indirect=True)
def test_resident_and_streamed_images_train_alike(device: str, tmp_path: Path, monkeypatch) -> None:
    """Images decoded once into device memory, or streamed by DataLoader workers into pinned
    memory: the same crop boxes, resampled from different copies (replicate.data.loader), so runs
    that differ by little."""
    sources = []
    place = train_module.place

    def recording(*args):
        sources.append(place(*args))
        return sources[-1]

    monkeypatch.setattr(train_module, "place", recording)
    resident = run(tmp_path / "resident", *SGD, "--steps", "6", "--data-placement", "device")
    streamed = run(tmp_path / "streamed", *SGD, "--steps", "6", "--data-placement", "stream",
                   "--workers", "2")  # fmt: skip
    train_resident, _, train_streamed, _ = sources
    assert isinstance(train_resident, ResidentImages) and isinstance(train_streamed, StreamedImages)
    images = train_resident.images
    assert images.device.type == device and images.dtype == torch.uint8
    losses = [metrics(tmp_path / name)[-1]["train_loss"] for name in ("resident", "streamed")]
    assert losses[0] == pytest.approx(losses[1], rel=1e-2)
    assert all(p.device.type == device for p in (*resident.parameters(), *streamed.parameters()))


@pytest.mark.cuda
@needs_cuda
def test_resumed_gpu_run_ends_with_the_same_weights(tmp_path: Path, monkeypatch) -> None:
    """A bf16 run interrupted after its first epoch and resumed ends where an uninterrupted one
    does: the CUDA generator's state (dropout) travels in the checkpoint too."""
    options = [*SGD, "--epochs", "3", "--dropout", "0.1"]
    uninterrupted = run(tmp_path / "a", *options)
    interrupt_after_the_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", *options)
    monkeypatch.undo()
    assert read_state(latest_checkpoint(tmp_path / "b").state)["rng"][0]["cuda"] is not None
    resumed = main(["--resume", "--out", str(tmp_path / "b")])
    assert_same_weights(uninterrupted, resumed, "cuda")
    assert [m["epoch"] for m in metrics(tmp_path / "b")] == [1, 2, 3]


@pytest.mark.parametrize("device", CPU_AND_CUDA, indirect=True)
def test_evaluate_reproduces_the_runs_last_test_accuracy(
    device: str, tmp_path: Path, monkeypatch
) -> None:
    """python -m replicate.evaluate on the checkpoint, on the device, gives the accuracy the
    run logged for its last epoch."""
    run(tmp_path, "--precision", "fp32", "--steps", "6", "--lr", "3e-3")
    devices = []
    evaluate = evaluate_module.evaluate

    def recording(model, *args, **kwargs):
        devices.append(next(model.parameters()).device.type)
        return evaluate(model, *args, **kwargs)

    monkeypatch.setattr(evaluate_module, "evaluate", recording)
    result = evaluate_module.main(["--checkpoint", str(tmp_path / WEIGHTS)])
    logged = metrics(tmp_path)[-1]
    assert devices == [device]
    assert result.top1 == pytest.approx(logged["test_acc"], abs=1e-6)
    assert result.loss == pytest.approx(logged["test_loss"], rel=1e-3)


@pytest.mark.parametrize("device", CPU_AND_CUDA, indirect=True)
def test_a_diverging_fp16_run_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    device: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    """NaN images in the second epoch: the loss scaler skips the steps, the loss is NaN, the run
    exits with status 1 and one line, and the checkpoint of epoch 1 stays, finite."""
    step = train_module.Trainer.train_step

    def nan_in_epoch_two(trainer, images, labels):
        return step(trainer, images * math.nan if trainer.epoch == 1 else images, labels)

    monkeypatch.setattr(train_module.Trainer, "train_step", nan_in_epoch_two)
    argv = [*TINY_VIT, "--batch-size", "512", "--precision", "fp16", "--epochs", "2",
            "--log-every", "1", "--out", str(tmp_path)]  # fmt: skip
    capsys.readouterr()
    assert run_cli("replicate.train", main, argv) == 1
    err = capsys.readouterr().err.strip()  # the progress bar's, then the error's line
    assert "Traceback" not in err and err.count("replicate.train: error:") == 1, err
    message = err.splitlines()[-1]
    assert message.startswith("replicate.train: error: the training loss is nan"), message
    assert "last good checkpoint (step 3)" in message, message
    state = read_state(latest_checkpoint(tmp_path).state)
    assert (state["epoch"], state["step"]) == (1, 3)
    assert all(torch.isfinite(w).all() for w in load_file(tmp_path / WEIGHTS).values())


@pytest.mark.parametrize("device", CPU_AND_CUDA, indirect=True)
def test_gradient_checkpointing_trains_the_same_model(device: str, tmp_path: Path) -> None:
    plain = run(tmp_path / "plain", *SGD, "--steps", "4", "--dropout", "0.1")
    checkpointed = run(tmp_path / "checkpointed", *SGD, "--steps", "4", "--dropout", "0.1",
                       "--grad-checkpointing")  # fmt: skip
    assert checkpointed.encoder.grad_checkpointing and not plain.encoder.grad_checkpointing
    assert_same_weights(plain, checkpointed, device)


@pytest.mark.cuda
@needs_cuda
def test_gradient_checkpointing_saves_gpu_memory() -> None:
    """Eight blocks at 64x64 with 8x8 patches: the backward keeps one block's activations."""
    import vit

    device = torch.device("cuda")
    model = vit.create_model("vit_s16", num_classes=10, image_size=64, patch_size=8, depth=8)
    model.to(device)
    images = torch.randn(128, 3, 64, 64, device=device)
    peaks = []
    for checkpointing in (False, True):
        model.set_grad_checkpointing(checkpointing)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            model(images).float().sum().backward()
        torch.cuda.synchronize()
        peaks.append(torch.cuda.max_memory_allocated())
        model.zero_grad(set_to_none=True)
    assert peaks[1] < 0.6 * peaks[0], peaks
