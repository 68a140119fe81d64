"""Checkpoints (`replicate.training.checkpoint`): one consistent step, published whole; resumed
wherever the run folder is now; never overwritten by a diverged run; unreadable files named in
one line."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from test_train import REPO, TINY_VIT, metrics, one_thread, run  # noqa: F401  (autouse)

from replicate import evaluate, predict, train
from replicate import train as train_module
from replicate.cli_errors import run_cli
from replicate.errors import DivergedError
from replicate.figures.__main__ import main as figures_main
from replicate.training import checkpoint as checkpoint_module
from replicate.training.checkpoint import (
    LATEST,
    WEIGHTS,
    latest_checkpoint,
    read_state,
    resolve_weights,
)


def interrupt_after_save(monkeypatch: pytest.MonkeyPatch, at_step: int) -> None:
    """Ctrl-C right after the checkpoint of `at_step` is published."""
    save = train_module.Trainer.save_checkpoint

    def save_then_interrupt(trainer) -> None:
        save(trainer)
        if trainer.step == at_step:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module.Trainer, "save_checkpoint", save_then_interrupt)


def test_layout_publishes_one_step_and_keeps_model_safetensors(tmp_path: Path) -> None:
    run(tmp_path, "--epochs", "2", "--checkpoint-every", "5")
    manifest = json.loads((tmp_path / LATEST).read_text())
    assert manifest == {"step": 24, "folder": "checkpoints/step-00000024"}
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000024"]
    latest = latest_checkpoint(tmp_path)
    assert read_state(latest.state)["step"] == 24
    assert (tmp_path / WEIGHTS).samefile(latest.weights)  # the hard link users pass around
    assert resolve_weights(tmp_path) == latest.weights


def test_an_epoch_end_saves_only_once_the_last_checkpoint_is_checkpoint_minutes_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three epochs of seconds: with the default minute, only the last epoch is saved; with
    --checkpoint-minutes 0, every epoch."""
    saved = []
    save = train_module.Trainer.save_checkpoint

    def record_save(trainer) -> None:
        saved.append(trainer.epoch)
        save(trainer)

    monkeypatch.setattr(train_module.Trainer, "save_checkpoint", record_save)
    run(tmp_path / "default", "--epochs", "3", "--checkpoint-minutes", "1")
    run(tmp_path / "every", "--epochs", "3", "--checkpoint-minutes", "0")
    assert saved == [3, 1, 2, 3]
    assert read_state(latest_checkpoint(tmp_path / "default").state)["step"] == 36


def test_a_save_cut_off_keeps_the_previous_checkpoint_and_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--checkpoint-every 5 over 3 epochs of 12 steps; the save at step 10 dies after writing
    the weights, before the state: the run resumes from step 5, mid-epoch, bit for bit."""
    options = ["--epochs", "3", "--lr", "3e-3"]  # dropout 0.1: RNG states matter
    uninterrupted = run(tmp_path / "a", *options)

    save_state = torch.save

    def die_at_step_10(state, path) -> None:
        if state["step"] == 10:
            raise KeyboardInterrupt  # the process killed mid-save
        save_state(state, path)

    monkeypatch.setattr(checkpoint_module.torch, "save", die_at_step_10)
    with pytest.raises(KeyboardInterrupt, match="last checkpoint .step 5. is kept"):
        run(tmp_path / "b", *options, "--checkpoint-every", "5")
    monkeypatch.undo()
    assert read_state(latest_checkpoint(tmp_path / "b").state)["step"] == 5
    resumed = train.main(["--resume", "--out", str(tmp_path / "b")])
    for key, tensor in uninterrupted.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], tensor), key
    assert metrics(tmp_path / "b")[-1]["test_loss"] == metrics(tmp_path / "a")[-1]["test_loss"]
    # the epoch re-entered at step 5 averages its train loss over the 7 steps after the resume
    assert [m["train_steps"] for m in metrics(tmp_path / "a")] == [12, 12, 12]
    assert [m["train_steps"] for m in metrics(tmp_path / "b")] == [7, 12, 12]


def test_a_finished_run_resumed_completes_its_end_of_run_outputs(tmp_path: Path) -> None:
    """Killed while the confusion matrix was written (after the last checkpoint): --resume has
    nothing left to train, and still writes it, from the same weights."""
    run(tmp_path, "--epochs", "1")
    written = json.loads((tmp_path / "confusion_matrix.json").read_text())
    for name in ("confusion_matrix.json", "confusion_matrix.png"):
        (tmp_path / name).unlink()
    train.main(["--resume", "--out", str(tmp_path)])
    assert json.loads((tmp_path / "confusion_matrix.json").read_text()) == written
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0
    assert len(metrics(tmp_path)) == 1  # nothing trained again


def test_resume_continues_the_run_where_it_is_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy resumes into itself, not into the original; a relative --out from another
    working directory finds it."""
    interrupt_after_save(monkeypatch, at_step=12)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "original", "--epochs", "2")
    monkeypatch.undo()
    shutil.copytree(tmp_path / "original", tmp_path / "elsewhere" / "copy")
    monkeypatch.chdir(tmp_path / "elsewhere")
    train.main(["--resume", "--out", "copy"])
    assert [m["epoch"] for m in metrics(tmp_path / "elsewhere" / "copy")] == [1, 2]
    assert [m["epoch"] for m in metrics(tmp_path / "original")] == [1]  # untouched
    assert read_state(latest_checkpoint(tmp_path / "original").state)["step"] == 12
    config = json.loads((tmp_path / "elsewhere" / "copy" / "config.json").read_text())
    assert config["out"] == "copy"


def test_resume_says_when_a_changed_option_costs_exactness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    interrupt_after_save(monkeypatch, at_step=12)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "run", "--epochs", "2")
    monkeypatch.undo()
    capsys.readouterr()
    train.main(["--resume", "--out", str(tmp_path / "run"), "--micro-batch", "64",
                "--log-every", "5"])  # fmt: skip
    err = capsys.readouterr().err
    assert "note: --micro-batch changed on resume" in err and "--log-every" not in err


def test_a_state_edited_by_hand_is_one_line_naming_the_file(tmp_path: Path, capsys) -> None:
    run(tmp_path / "run", "--epochs", "1")
    path = latest_checkpoint(tmp_path / "run").state
    state = read_state(path)
    del state["optimizer"]
    torch.save(state, path)
    capsys.readouterr()
    assert run_cli("replicate.train", train.main, ["--resume", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path} lacks optimizer" in err


def test_a_gpu_checkpoint_resumes_on_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    interrupt_after_save(monkeypatch, at_step=12)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "--epochs", "2")
    monkeypatch.undo()
    path = latest_checkpoint(tmp_path).state
    state = read_state(path)
    state["rng"][0]["cuda"] = torch.zeros(16, dtype=torch.uint8)  # as torch.cuda saves it
    for group in state["optimizer"]["param_groups"]:
        group["fused"] = True  # the optimiser was fused on the GPU
    torch.save(state, path)
    capsys.readouterr()
    assert run_cli("replicate.train", train.main, ["--resume", "--out", str(tmp_path)]) == 0
    assert "CUDA random state is unused" in capsys.readouterr().err
    assert metrics(tmp_path)[-1]["step"] == 24


def test_moments_saved_in_another_memory_layout_resume_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The patch embedding trains channels-last in fp32; a checkpoint whose Adam moments are
    contiguous (as a bf16 run on the CPU saves them) resumes bit for bit: the fused optimiser
    pairs elements by memory, so the moments are laid out as the weights first."""
    options = ["--epochs", "2", "--lr", "3e-3"]
    uninterrupted = run(tmp_path / "a", *options)
    interrupt_after_save(monkeypatch, at_step=12)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", *options)
    monkeypatch.undo()
    path = latest_checkpoint(tmp_path / "b").state
    state = read_state(path)
    moments = [m for s in state["optimizer"]["state"].values() for m in s.values() if m.ndim == 4]
    assert moments and all(m.is_contiguous(memory_format=torch.channels_last) for m in moments)
    for param_state in state["optimizer"]["state"].values():
        for key, value in param_state.items():
            param_state[key] = value.contiguous()
    torch.save(state, path)
    resumed = train.main(["--resume", "--out", str(tmp_path / "b")])
    for key, tensor in uninterrupted.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], tensor), key


@pytest.mark.parametrize("what", ["training loss", "test loss", "weights"])
def test_non_finite_numbers_never_overwrite_the_last_good_checkpoint(
    what: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NaN appears in epoch 2 (steps 13-24); the checkpoint of step 12 stays."""
    step, evaluate_epoch = train_module.Trainer.train_step, train_module.Trainer.evaluate

    def nan_training_loss(trainer, images, labels):
        logits, targets, losses = step(trainer, images, labels)
        return logits, targets, losses * (math.nan if trainer.epoch == 1 else 1)

    def nan_weight(trainer, images, labels):
        out = step(trainer, images, labels)
        if trainer.step == 15:  # the step before the checkpoint at 16
            trainer.model.head.classifier.weight.data[0, 0] = math.inf
        return out

    def nan_test_loss(trainer, model):
        result = evaluate_epoch(trainer, model)
        return result if trainer.epoch == 0 else SimpleNamespace(loss=math.nan)

    name, fake, message, kept = {  # the loss is checked before each checkpoint, at 16 too
        "training loss": ("train_step", nan_training_loss, "training loss is nan at step 16", 12),
        "test loss": ("evaluate", nan_test_loss, "the test loss is nan at step 24", 16),
        "weights": ("train_step", nan_weight, "hold a NaN or an infinity at step 16", 12),
    }[what]
    monkeypatch.setattr(train_module.Trainer, name, fake)
    with pytest.raises(DivergedError) as error:
        run(tmp_path, "--epochs", "2", "--log-every", "10", "--checkpoint-every", "16")
    assert message in str(error.value)
    assert f"the last good checkpoint (step {kept}) is kept in {tmp_path}" in str(error.value)
    assert "fp16" not in str(error.value)  # an fp32 run
    assert read_state(latest_checkpoint(tmp_path).state)["step"] == kept


@pytest.mark.parametrize(
    ("precision", "saved_step", "expected", "absent"),
    [
        ("fp32", None, "no checkpoint was written before it. Try a lower --lr", "fp16"),
        ("fp16", 7, "(step 7) is kept in run. Try a lower --lr, or --precision bf16", "no "),
    ],
)
def test_the_divergence_message_says_what_is_true(precision, saved_step, expected, absent) -> None:
    trainer = SimpleNamespace(
        config=SimpleNamespace(precision=precision), saved_step=saved_step, out="run", step=9
    )
    message = str(train_module.Trainer.diverged(trainer, "the training loss is inf"))
    assert message.startswith("the training loss is inf at step 9; ")
    assert expected in message and absent not in message


# Unreadable files: one line naming the file, exit status 2, never advice to load unsafely.


RANDOM_BYTES = torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0))
RANDOM_BYTES = bytes(RANDOM_BYTES.to(torch.uint8).tolist())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    train.main([*TINY_VIT, "--steps", "2", "--out", str(out)])
    return out


def damage(path: Path, how: str) -> Path:
    """Empty, truncate or replace by random bytes the file at `path`."""
    data = path.read_bytes() if path.exists() else b""
    path.unlink(missing_ok=True)  # a new inode: the run's other hard links keep the good bytes
    damaged = {"empty": b"", "truncated": data[: len(data) // 2], "random": RANDOM_BYTES}[how]
    path.write_bytes(damaged)
    return path


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize(
    ("command", "damaged", "how", "expected"),
    [
        ("train --resume", "state", "empty", "state.pt: the file is empty"),
        ("train --resume", "state", "truncated", "state.pt: truncated or corrupt"),
        ("train --resume", "weights", "random", "not a .safetensors file"),
        ("train --pretrained", "weights", "random", "not a .safetensors file"),
        ("train --pretrained", "state", "random", "not a PyTorch file"),
        ("evaluate", "weights", "truncated", "not a .safetensors file"),
        ("evaluate", "state", None, "state.pt' holds: it is not a checkpoint of replicate.train"),
        ("predict", "weights", "empty", "model.safetensors: the file is empty"),
        ("predict", "state", None, "state.pt' holds: it is not a checkpoint of replicate.train"),
        ("figures", "weights", "truncated", "not a .safetensors file"),
    ],
)
def test_unreadable_checkpoint_files_are_one_line_errors(
    command: str, damaged: str, how: str | None, expected: str, finished_run: Path, tmp_path, capsys
) -> None:
    out = copy_run(finished_run, tmp_path / "run")
    checkpoint = latest_checkpoint(out)
    path = checkpoint.state if damaged == "state" else checkpoint.weights
    if how:
        damage(path, how)
    if command == "figures":
        argv = ["--checkpoint", str(path), "--only", "fig7", "--out", str(tmp_path)]
        status = run_cli("replicate.figures", figures_main, argv)
    else:
        prog, main, argv = {
            "train --resume": ("replicate.train", train.main, ["--resume", "--out", str(out)]),
            "train --pretrained": (
                "replicate.train",
                train.main,
                [
                    *TINY_VIT,
                    "--pretrained",
                    str(path),
                    "--steps",
                    "1",
                    "--out",
                    str(tmp_path / "ft"),
                ],
            ),
            "evaluate": ("replicate.evaluate", evaluate.main, ["--checkpoint", str(path)]),
            "predict": ("replicate.predict", predict.main, ["--checkpoint", str(path), "x.png"]),
        }[command]
        capsys.readouterr()
        status = run_cli(prog, main, argv)
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert str(path) in err and expected in err, err
    assert "weights_only" not in err and "Traceback" not in err


def test_the_commands_exit_2_with_one_line_on_damaged_files(finished_run: Path, tmp_path) -> None:
    """The real commands, side by side: `train --resume` on a truncated state.pt, `evaluate`
    given a state.pt, `predict` and `figures` a weights file of random bytes."""
    out = copy_run(finished_run, tmp_path / "run")
    checkpoint = latest_checkpoint(out)
    damage(checkpoint.state, "truncated")
    random_weights = damage(tmp_path / "random.safetensors", "random")
    commands = {
        "replicate.train": (["--resume", "--out", str(out)], checkpoint.state),
        "replicate.evaluate": (["--checkpoint", str(checkpoint.state)], checkpoint.state),
        "replicate.predict": (["--checkpoint", str(random_weights), "x.png"], random_weights),
        "replicate.figures": (["--checkpoint", str(random_weights), "--out", str(tmp_path)],
                              random_weights),
    }  # fmt: skip
    processes = {
        module: subprocess.Popen(
            [sys.executable, "-m", module, *argv],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        )
        for module, (argv, _) in commands.items()
    }
    for module, process in processes.items():
        _, err = process.communicate(timeout=600)  # the shared CI machine can be slow
        named = commands[module][1]
        assert process.returncode == 2, (module, err)
        assert err.count("\n") == 1 and str(named) in err, (module, err)


def test_a_torn_last_line_of_the_metrics_is_dropped_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """A kill while metrics.jsonl is appended leaves half a line; --resume drops it, says so
    with the file and line, and carries on."""
    from test_train import interrupt_after_the_first_epoch

    from replicate.train import main

    interrupt_after_the_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "--epochs", "2", "--train-fraction", "0.05")
    monkeypatch.undo()
    with open(tmp_path / "metrics.jsonl", "a") as log:
        log.write('{"epoch": 2, "step": 3, "train_lo')
    with caplog.at_level("WARNING", logger="replicate.runs.log"):
        main(["--resume", "--out", str(tmp_path)])
    assert [m["epoch"] for m in metrics(tmp_path)] == [1, 2]
    assert f"{tmp_path / 'metrics.jsonl'}:2: not a JSON object" in caplog.text


def test_a_corrupt_study_file_is_named(tmp_path: Path) -> None:
    from replicate.runs.files import read_json

    (tmp_path / "summary.json").write_text('{"study": "data-si')
    with pytest.raises(ValueError, match=r"cannot read .*summary.json: .*delete it"):
        read_json(tmp_path / "summary.json")


def test_a_run_folder_in_use_refuses_a_second_process(tmp_path: Path, capsys) -> None:
    """Two runs on one --out would interleave their metrics and overwrite each other's weights;
    the second one stops at once, naming the holder. A killed holder frees the folder."""
    from replicate.cli_errors import run_cli
    from replicate.train import main
    from replicate.training.checkpoint import run_folder_lock

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from replicate.training.checkpoint import run_folder_lock\n"
         "with run_folder_lock(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(60)",
         str(out)],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "held\n"
        capsys.readouterr()
        assert run_cli("replicate.train", main, [*TINY_VIT, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"{out} is in use by process {holder.pid} on " in err and "another --out" in err
        assert not (out / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    with run_folder_lock(out):  # the kernel released the dead holder's lock
        pass
    run(out, "--epochs", "1", "--train-fraction", "0.05")
    assert len(metrics(out)) == 1


def test_bad_input_leaves_no_folder_behind(tmp_path: Path) -> None:
    from replicate.train import main

    with pytest.raises(ValueError, match="not a multiple"):
        main([*TINY_VIT, "--image-size", "15", "--out", str(tmp_path / "run")])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "failure",
    [
        RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 4736 vs 4630"),
        OSError(28, "No space left on device"),
    ],
)
def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, failure: Exception
) -> None:
    """torch.save on a full disk fails with its stream writer's position error, other writes
    with ENOSPC: one line naming the folder and the space needed, exit 2, step 12 kept."""
    out = tmp_path / "run"
    save_state = torch.save

    def disk_full_at_step_24(state, path) -> None:
        save_state(state, path)
        if state["step"] == 24:
            raise failure

    monkeypatch.setattr(checkpoint_module.torch, "save", disk_full_at_step_24)
    argv = [*TINY_VIT, "--epochs", "2", "--out", str(out)]
    assert run_cli("replicate.train", train.main, argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in errors[0], errors
    assert f"no space left on the disk of {out} for the checkpoint of step 24" in errors[0]
    assert re.search(
        r"needs about [\d.]+ MB, \d+ MB are free; .*last checkpoint, step 12", errors[0]
    )
    assert read_state(latest_checkpoint(out).state)["step"] == 12
    assert not list((out / "checkpoints").glob(".*"))  # the half-written one is gone


@pytest.mark.parametrize("at", ["config", "epoch"])
def test_a_full_disk_at_any_other_write_is_one_line_that_says_what_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, at: str
) -> None:
    """config.json at the start (no checkpoint yet: start again), metrics.jsonl after the first
    epoch's checkpoint (--resume from it); never an empty config.json."""
    from replicate.runs.log import RunLog

    out = tmp_path / "run"
    original = getattr(RunLog, at)
    calls = []

    def full(self, *args) -> None:
        calls.append(at)
        if at == "config" or len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(self, *args)

    monkeypatch.setattr(RunLog, at, full)
    argv = [*TINY_VIT, "--epochs", "2", "--out", str(out)]
    assert run_cli("replicate.train", train.main, argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and f"no space left on the disk of {out}" in errors[0], errors
    if at == "config":
        assert "start the run again (it wrote no checkpoint)" in errors[0]
        assert not (out / "config.json").exists()
    else:
        assert "then --resume (the last checkpoint, step 12, is kept)" in errors[0]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("num_classes", '"ten"', "num_classes is 'ten', not of type int"),
     ("classes", "[unquoted", "classes is not JSON")],
)  # fmt: skip
def test_weights_metadata_edited_by_hand_is_one_line_naming_the_file(
    tmp_path: Path, capsys, key: str, value: str, message: str
) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    run(tmp_path / "run", "--steps", "1")
    path = tmp_path / "run" / "model.safetensors"
    with safe_open(path, framework="pt") as file:
        metadata = {**file.metadata(), key: value}
    save_file(load_file(path), tmp_path / "edited.safetensors", metadata=metadata)
    capsys.readouterr()
    argv = ["--checkpoint", str(tmp_path / "edited.safetensors")]
    assert run_cli("replicate.evaluate", evaluate.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"edited.safetensors: its metadata's {message}" in err, err
