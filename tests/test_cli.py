"""The command lines as a user meets them: options checked, never abbreviated, one-line errors
with exit status 2; Ctrl-C and SIGTERM keep the last checkpoint and say how to resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_data import write_image_folder
from test_train import REPO, TINY_VIT, one_thread, resolve  # noqa: F401  (autouse)

from replicate import evaluate, predict, train
from replicate.bench import __main__ as bench
from replicate.cli_errors import run_cli
from replicate.figures import __main__ as figures
from replicate.runs.read import load_runs, portable_name
from replicate.training.checkpoint import latest_checkpoint, read_state

ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def one_line_error(capsys, prog: str, main, argv: list[str]) -> str:
    """Run a command's main as its `__main__` does; its one-line error, after exit status 2."""
    capsys.readouterr()
    try:
        status = run_cli(prog, main, argv)
    except SystemExit as usage:  # argparse's errors
        status = usage.code
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert "Traceback" not in err and err.startswith(f"{prog}: error: "), err
    return err


@pytest.mark.parametrize(
    ("prog", "argv", "expected"),
    [
        ("train", ["--grad-clip", "-1"], "argument --grad-clip: must be at least 0, got -1.0"),
        ("train", ["--weight-decay", "-0.1"], "argument --weight-decay: must be at least 0"),
        ("train", ["--warmup-steps", "-5"], "argument --warmup-steps: must be at least 0, got -5"),
        ("train", ["--lr", "nan"], "argument --lr: must be at least 0, got nan"),
        ("train", ["--lr", "inf"], "argument --lr: must be at most 10, got inf"),
        ("train", ["--lr", "1e308"], "argument --lr: must be at most 10, got 1e+308"),
        ("train", ["--weight-decay", "inf"], "argument --weight-decay: must be finite"),
        ("train", ["--dropout", "2"], "argument --dropout: must be below 1, got 2.0"),
        ("train", ["--image-size", "15"], "not a multiple of vit_b16's patch size 16: use 16"),
        ("train", ["--checkpoint-every", "0"], "argument --checkpoint-every: must be at least 1"),
        ("train", ["--model-ar", "depth=2"], "unrecognized arguments: --model-ar"),  # no abbrev
        ("predict", ["--checkpoint", "run", "--top-k", "0", "x.png"], "--top-k: must be at least"),
        ("evaluate", ["--checkpoint", "run", "--batch-size", "0"], "--batch-size: must be at"),
        ("figures", ["--only", "table1", "--ou", "x"], "unrecognized arguments: --ou"),
        ("bench", ["--step", "2"], "unrecognized arguments: --step"),
    ],
)
def test_bad_options_are_one_line_errors(prog: str, argv: list[str], expected: str, capsys):
    main = {
        "train": train.main,
        "predict": predict.main,
        "evaluate": evaluate.main,
        "figures": figures.main,
        "bench": bench.main,
    }[prog]
    err = one_line_error(capsys, f"python -m replicate.{prog}", main, argv)
    assert expected in err, err


def test_only_the_projects_own_errors_are_one_line(capsys, monkeypatch) -> None:
    """A ValueError the project raises is the user's to fix: one line, exit 2. One raised
    inside a library is a bug to report: its traceback, as is every error with REPLICATE_DEBUG=1."""
    import json

    from replicate.training.config import parse_model_arg

    def rejects(argv) -> None:
        parse_model_arg("depth")  # the project's own check

    def library_bug(argv) -> None:
        json.loads("{")  # json.JSONDecodeError, a ValueError raised in the json module

    assert run_cli("prog", rejects, []) == 2
    err = capsys.readouterr().err
    assert err == (
        "prog: error: --model-arg takes KEY=VALUE, e.g. depth=2; got 'depth' "
        "(REPLICATE_DEBUG=1 shows the traceback)\n"
    )
    with pytest.raises(json.JSONDecodeError):
        run_cli("prog", library_bug, [])
    monkeypatch.setenv("REPLICATE_DEBUG", "1")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        run_cli("prog", rejects, [])


def test_model_is_the_variant_and_never_an_abbreviation() -> None:
    assert resolve("--model", "vit_s16").variant == "vit_s16"
    config = resolve("--model", "vit_ti16", "--model-arg", "depth=1")
    assert (config.variant, config.model_overrides) == ("vit_ti16", {"depth": 1})


def test_a_bad_option_on_the_real_command_line(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "replicate.train", "--grad-clip", "-1"]
    result = subprocess.run(command, cwd=REPO, env=ENV, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--grad-clip: must be at least 0" in result.stderr


def test_an_unwritable_out_fails_before_the_data_loads(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_data(*args):
        raise AssertionError("the data was loaded before --out was checked")

    monkeypatch.setattr(train, "load_splits", no_data)
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "run"
    err = one_line_error(capsys, "replicate.train", train.main, [*TINY_VIT, "--out", str(out)])
    assert f"cannot write the run folder {out}: Not a directory; choose another --out" in err


def test_a_single_class_dataset_is_refused_in_words(tmp_path: Path, capsys) -> None:
    folder = write_image_folder(tmp_path / "images")
    for split in ("train", "val"):
        shutil.rmtree(folder / split / "bright")
    argv = [*TINY_VIT, "--dataset", f"imagefolder:{folder}", "--out", str(tmp_path / "run")]
    err = one_line_error(capsys, "replicate.train", train.main, argv)
    assert "has a single class (dark): a classifier needs at least two" in err


@pytest.mark.parametrize(("sent", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_keep_the_last_checkpoint_and_say_how_to_resume(
    sent: signal.Signals, status: int, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "replicate.train", *TINY_VIT, "--epochs", "1000",
               "--checkpoint-every", "2", "--out", str(out)]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600  # a loaded CI machine starts slowly
    while latest_checkpoint(out) is None and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.2)
    process.send_signal(sent)
    _, err = process.communicate(timeout=120)
    last = err.strip().splitlines()[-1]  # after the progress bar
    assert process.returncode == status, err
    assert last.startswith("replicate.train: error: interrupted at step "), last
    assert last.endswith(f"is kept: continue with python -m replicate.train --resume --out {out}")
    kept = read_state(latest_checkpoint(out).state)["step"]
    assert f"the last checkpoint (step {kept}) is kept" in last


def test_figures_without_a_model_leave_a_trained_models_figures_alone(tmp_path: Path) -> None:
    out = tmp_path / "figures"
    out.mkdir()
    committed = out / "fig7_left_embedding_filters.png"
    committed.write_bytes(b"a trained model's figure")
    argv = ["--only", "fig7", "--variant", "vit_ti16", "--image-size", "32", "--num-images", "2"]
    assert run_cli("replicate.figures", figures.main, [*argv, "--out", str(out)]) == 0
    assert committed.read_bytes() == b"a trained model's figure"
    assert (out / "untrained" / committed.name).stat().st_size > 0


def test_results_and_legends_name_a_dataset_without_the_machines_paths(tmp_path: Path) -> None:
    runs = load_runs(REPO / "results" / "runs")
    assert {run.dataset for run in runs} == {"digits", "imagefolder:hymenoptera_data"}
    assert portable_name("imagefolder:../shared/data/ants") == "imagefolder:ants"  # outside
    assert portable_name("imagefolder:.data/cifar10") == "imagefolder:.data/cifar10"  # inside
    assert all("/work" not in run.label for run in runs)
    results = (REPO / "figures" / "results.md").read_text()
    assert "imagefolder:hymenoptera_data" in results and "/work/" not in results
