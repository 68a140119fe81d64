"""`python -m replicate.sweep`: Appendix B.1.1's learning-rate choice on a dev split, then the
whole training set and a single test evaluation, end to end with a tiny ViT on digits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train import (
    TINY_VIT,
    interrupt_after_the_first_epoch,
    metrics,
    one_thread,  # noqa: F401 (an autouse fixture: one thread for the tiny models)
)

from replicate import sweep as sweep_module
from replicate.sweep import main


def test_sweep_picks_the_best_dev_accuracy_then_tests_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    out = tmp_path / "sweep"
    argv = ["--lrs", "1e-5", "3e-3", "--val-fraction", "0.1", "--out", str(out),
            "--", *TINY_VIT, "--steps", "2", "--train-fraction", "0.5"]  # fmt: skip
    result = main(argv)
    recorded = json.loads((out / "sweep.json").read_text())
    dev = {c["lr"]: c["dev_acc"] for c in recorded["candidates"]}
    assert dev.keys() == {1e-5, 3e-3}
    assert recorded["best_lr"] == result.best_lr == max(dev, key=dev.get)
    for candidate in recorded["candidates"]:
        [line] = metrics(out / candidate["run"])
        assert line["eval_split"] == "dev" and line["dev_acc"] == candidate["dev_acc"]
        config = json.loads((out / candidate["run"] / "config.json").read_text())
        assert config["val_fraction"] == 0.1 and config["recipe"]["lr"] == candidate["lr"]
    [final] = metrics(out / recorded["final_runs"][0])
    assert final["eval_split"] == "test" and final["test_acc"] == recorded["test_acc"]
    assert final["train_images"] == recorded["train_images"] == 718  # half, no dev split
    assert "**(chosen)**" in (out / "sweep.md").read_text() and "evaluated once" in (
        capsys.readouterr().out
    )

    def no_training(argv):
        raise AssertionError("a finished sweep trains nothing again")

    monkeypatch.setattr(sweep_module, "train_main", no_training)
    assert main(argv).test_acc == result.test_acc


def test_an_interrupted_sweep_resumes_its_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["--lrs", "0.003", "--out", str(tmp_path), "--", *TINY_VIT, "--epochs", "2",
            "--train-fraction", "0.05"]  # fmt: skip
    interrupt_after_the_first_epoch(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        main(argv)
    monkeypatch.undo()
    result = main(argv)
    assert [m["epoch"] for m in metrics(tmp_path / "lr-0.003")] == [1, 2]
    assert result.candidates[0].dev_acc == metrics(tmp_path / "lr-0.003")[-1]["dev_acc"]
    assert result.val_fraction == 0.1  # the default for a dataset the paper does not name


def test_options_the_sweep_sets_itself_are_refused(capsys, tmp_path: Path) -> None:
    from replicate.cli_errors import run_cli

    capsys.readouterr()
    assert run_cli("replicate.sweep", main, ["--", *TINY_VIT, "--lr", "0.1"]) == 2
    assert "the sweep sets --lr itself" in capsys.readouterr().err


def test_an_experiment_file_may_set_what_the_sweep_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """configs/ name their --out and seed: the sweep's own override them, without refusal."""
    experiment = tmp_path / "experiment.py"
    experiment.write_text("def get_config():\n    return {'seed': 3, 'out': 'runs/x'}\n")

    class Reached(Exception):
        pass

    def run_sweep(train_args, *rest):
        raise Reached(train_args)

    monkeypatch.setattr(sweep_module, "run_sweep", run_sweep)
    with pytest.raises(Reached):
        main(["--", "--config", str(experiment), *TINY_VIT])


def test_seeds_retrain_the_chosen_rate_and_average_the_tests(tmp_path: Path) -> None:
    argv = ["--lrs", "3e-3", "--seeds", "2", "--val-fraction", "0.1", "--out", str(tmp_path),
            "--", *TINY_VIT, "--steps", "2", "--train-fraction", "0.2"]  # fmt: skip
    result = main(argv)
    assert result.final_runs == ["final-lr-0.003-seed-0", "final-lr-0.003-seed-1"]
    seeds = [json.loads((tmp_path / run / "config.json").read_text())["seed"]
             for run in result.final_runs]  # fmt: skip
    accs = [metrics(tmp_path / run)[-1]["test_acc"] for run in result.final_runs]
    assert seeds == [0, 1] and result.test_accs == accs
    recorded = json.loads((tmp_path / "sweep.json").read_text())
    assert recorded["test_acc"] == pytest.approx(sum(accs) / 2) == result.test_acc
    assert "the mean of seeds 0:" in (tmp_path / "sweep.md").read_text()


def test_a_grid_of_weight_decays_and_crop_floors_then_a_longer_final_run(tmp_path: Path) -> None:
    """Every learning rate with every weight decay and crop floor, each candidate trained with
    exactly its point of the grid; the best then trains --final-steps on the whole split."""
    argv = ["--lrs", "3e-3", "--weight-decays", "0.05", "0.3", "--crop-scales", "0.5", "1",
            "--final-steps", "3", "--val-fraction", "0.1", "--out", str(tmp_path),
            "--", *TINY_VIT, "--steps", "2", "--train-fraction", "0.2"]  # fmt: skip
    result = main(argv)
    points = [(c.lr, c.weight_decay, c.crop_scale) for c in result.candidates]
    assert points == [(3e-3, 0.05, 0.5), (3e-3, 0.05, 1.0), (3e-3, 0.3, 0.5), (3e-3, 0.3, 1.0)]
    for candidate in result.candidates:
        recipe = json.loads((tmp_path / candidate.run / "config.json").read_text())["recipe"]
        assert (recipe["lr"], recipe["weight_decay"], recipe["crop_scale"][0]) == candidate.point
        assert metrics(tmp_path / candidate.run)[-1]["step"] == 2
    best = max(result.candidates, key=lambda c: c.dev_acc)
    assert (result.best_lr, result.best_weight_decay, result.best_crop_scale) == best.point
    [final] = result.final_runs
    assert final == f"final-{best.run}" and metrics(tmp_path / final)[-1]["step"] == 3
    recipe = json.loads((tmp_path / final / "config.json").read_text())["recipe"]
    assert (recipe["weight_decay"], recipe["crop_scale"][0]) == best.point[1:]
    assert "for 3 steps" in (tmp_path / "sweep.md").read_text()


def test_a_swept_option_given_to_every_run_is_refused(capsys) -> None:
    from replicate.cli_errors import run_cli

    capsys.readouterr()
    argv = ["--weight-decays", "0.1", "0.3", "--", *TINY_VIT, "--weight-decay", "0.1"]
    assert run_cli("replicate.sweep", main, argv) == 2
    assert "the sweep sets --weight-decay itself" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["{not json", '{"candidates": 3}', "[1, 2]"])
def test_a_sweep_json_edited_by_hand_is_one_line_naming_it(
    tmp_path: Path, capsys, content: str
) -> None:
    from replicate.cli_errors import run_cli

    (tmp_path / "sweep.json").write_text(content)
    argv = ["--lrs", "0.003", "--out", str(tmp_path), "--", *TINY_VIT, "--steps", "1"]
    assert run_cli("replicate.sweep", main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot read {tmp_path / 'sweep.json'}" in err, err
