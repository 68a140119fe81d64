"""`python -m replicate.study`: every study end to end at smoke scale, what a rerun skips, and
the numbers the studies report."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from replicate.figures.embeddings import (
    position_similarity,
    position_structure,
    row_column_structure,
)
from replicate.runs.log import training_seconds
from replicate.runs.paired import verdict
from replicate.study import STUDIES, runner
from replicate.study.__main__ import main as study_main
from replicate.study.definitions import (
    attention,
    data_size,
    resolution,
    self_supervision,
    transfer,
)
from replicate.study.runner import STUDY_SUMMARY
from replicate.study.scales import SCALES, SMOKE
from replicate.study.spec import RunSpec, command_line


def sinusoidal_grid_embedding(grid: int, dim: int) -> torch.Tensor:
    """(1, 1 + grid^2, dim): 2-D sine-cosine embeddings (MAE's), which encode the grid."""
    position = torch.arange(grid, dtype=torch.float64)
    frequencies = 1 / 100 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    angles = position[:, None] * frequencies[None]  # (grid, dim / 4)
    axis = torch.cat([angles.sin(), angles.cos()], dim=1)  # (grid, dim / 2)
    rows = axis[:, None].expand(grid, grid, -1)
    cols = axis[None, :].expand(grid, grid, -1)
    table = torch.cat([rows, cols], dim=-1).reshape(grid * grid, dim)
    return torch.cat([torch.zeros(1, dim, dtype=torch.float64), table])[None]


def test_position_structure_separates_a_grid_code_from_noise() -> None:
    grid = position_structure(
        position_similarity(sinusoidal_grid_embedding(8, 64), class_token=True)
    )
    noise = position_structure(position_similarity(torch.randn(1, 65, 64), class_token=True))
    assert grid > 0.3
    assert abs(noise) < 0.05


def test_rows_and_columns_are_scored_apart() -> None:
    """An embedding of the row alone scores on rows (same row, far apart: alike), not on
    columns; noise on neither."""
    rows_only = sinusoidal_grid_embedding(8, 64)
    rows_only[0, 1:, 32:] = 0  # the column half of the code removed
    scores = row_column_structure(position_similarity(rows_only, class_token=True))
    assert scores["rows"] > 0.3 and abs(scores["columns"]) < 0.05
    noise = row_column_structure(position_similarity(torch.randn(1, 65, 64), class_token=True))
    assert abs(noise["rows"]) < 0.05 and abs(noise["columns"]) < 0.05


def test_position_structure_on_a_hand_made_similarity() -> None:
    """Neighbours at similarity 1, distant pairs at 0, the rest at 0.5: exactly 1."""
    g = 4
    rows, cols = np.indices((g, g))
    r, c = rows.ravel(), cols.ravel()
    gap_r, gap_c = abs(r[:, None] - r[None]), abs(c[:, None] - c[None])
    pairs = np.full((g * g, g * g), 0.5)
    pairs[gap_r + gap_c == 1] = 1.0
    pairs[np.maximum(gap_r, gap_c) >= g / 2] = 0.0
    assert position_structure(pairs.reshape(g, g, g, g)) == 1.0


def test_every_study_runs_end_to_end_at_smoke_scale(tmp_path, monkeypatch, caplog) -> None:
    """Every study, every tool, on digits with one-layer models; then a rerun runs nothing."""
    torch.set_num_threads(1)
    out = tmp_path / "studies"
    with caplog.at_level("INFO", logger="replicate.study"):
        written = study_main(["all", "--scale", "smoke", "--out", str(out)])
    for table in out.glob("study_*.md"):  # digits are named as digits, not CIFAR-10
        assert "CIFAR-10" not in table.read_text(), table.name
    progress = [r.message for r in caplog.records if "runs done" in r.message]
    assert sum("runs to go" in r.message for r in caplog.records) == len(STUDIES)
    assert len(progress) == sum(len(study.runs(SMOKE)) for study in STUDIES.values())
    for name in STUDIES:
        summary = json.loads((out / name / STUDY_SUMMARY).read_text())
        assert [run["run"] for run in summary["runs"]] == [
            spec.name for spec in STUDIES[name].runs(SMOKE)
        ]
        for run in summary["runs"]:
            assert run["result"], f"{name}/{run['run']} reported nothing"
            trains = run["tool"] in ("train", "sweep")  # estimated before it ran; others are not
            assert run["estimate_s"] > 0 if trains else run["estimate_s"] is None, run["run"]
            trained = run["training_time_s"]  # from its metrics.jsonl files
            assert trained > 0 if trains else trained is None, run["run"]
            assert run["device"] and run["versions"]["torch"]
        assert out / f"study_{name}.md" in written
    assert {p.name for p in written} >= {
        "study_data-size.png",
        "fig7_centre_position_similarity.png",
    }
    assert summary["complete"] and summary["commit"] and summary["cores"] >= 1
    attention = json.loads((out / "attention" / STUDY_SUMMARY).read_text())["runs"][0]["result"]
    for side in ("model", "control"):  # the trained ViT and its untrained twin
        assert len(attention["attention"][side]["by_layer_px"]) == 1  # the smoke ViT's one layer
        assert {"rows", "columns"} <= set(attention["position"][side])
    assert "untrained" in attention["attention"]["control"]["label"]
    assert "attention distance grows with depth" in (out / "study_attention.md").read_text()
    disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    assert disk < 50e6, f"the smoke studies wrote {disk / 1e6:.0f} MB"

    # The upstream runs others start from publish bf16 weights (committed, checkpoints are not).
    upstream = out / "data-size" / "vit-100"
    published = upstream / runner.PUBLISHED_WEIGHTS
    assert published.is_file() and published.stat().st_size < 5e6
    for ignored in ("checkpoints", "latest.json", "best.safetensors", "model.safetensors"):
        path = upstream / ignored
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    assert runner.run_weights(upstream) == published

    def must_not_run(*args) -> None:
        raise AssertionError("a finished run was run again")

    monkeypatch.setattr(runner, "TOOLS", dict.fromkeys(runner.TOOLS, must_not_run))
    study_main(["all", "--scale", "smoke", "--out", str(out)])  # from the published weights

    # A study cut off part-way: its finished runs summarised, marked incomplete.
    (out / "data-size" / "bit-10" / runner.SUMMARY).unlink()
    study_main(["data-size", "--scale", "smoke", "--out", str(out), "--summarise"])
    partial = json.loads((out / "data-size" / STUDY_SUMMARY).read_text())
    assert not partial["complete"] and "bit-10" not in [r["run"] for r in partial["runs"]]
    assert "not yet run: bit-10" in (out / "study_data-size.md").read_text()


def _run(name: str, accuracy: float, images: int = 10_000, **result) -> dict:
    result = {"test_acc": accuracy, "test_images": images, **result}
    return {"run": name, "tool": "train", "result": result}


def _attention(first: list[float], last: list[float], heads: int = 2) -> dict:
    """Figure 7 right's numbers for one side: every head of an image at the same distance,
    first and last of three layers as given."""
    per_image = [[[a] * heads, [(a + b) / 2] * heads, [b] * heads]
                 for a, b in zip(first, last, strict=True)]  # fmt: skip
    return {"per_image_px": per_image}


def test_attention_distance_grows_with_depth_beyond_the_untrained_control() -> None:
    """An untrained ViT's distances are flat with depth; a trained one's must grow more."""
    control = _attention([16.0, 16.5, 16.0, 16.2], [16.1, 16.4, 16.0, 16.3])
    grows = attention.depth_growth(
        {"model": _attention([8.0, 9.0, 10.0, 9.0], [14.0, 15.0, 15.0, 16.0]), "control": control}
    )
    assert grows.effect == pytest.approx(6.0 - 0.025) and verdict(grows, 1.6) == "held"
    same = attention.depth_growth({"model": control, "control": control})
    assert same.effect == 0 and verdict(same, 1.6) == "not held"


def test_the_nearest_first_layer_head_is_compared_with_the_controls() -> None:
    model = {"per_image_px": [[[4.0, 15.0]], [[5.0, 16.0]], [[4.5, 15.5]]]}  # head 1 is local
    control = {"per_image_px": [[[16.0, 15.8]], [[16.2, 16.0]], [[16.1, 15.9]]]}
    gap = attention.nearest_head_gap({"model": model, "control": control})
    assert gap.effect == pytest.approx(15.9 - 4.5)


def test_attention_notes_decide_each_claim_by_its_rule() -> None:
    uniform = {"neighbours_minus_distant": 0.0, "rows": 0.01, "columns": -0.02, "label": "u"}
    grid = {"neighbours_minus_distant": 0.4, "rows": 0.3, "columns": 0.05, "label": "m"}
    control = _attention([16.0, 16.5, 16.0], [16.1, 16.4, 16.0])
    result = {
        "position": {"model": grid, "control": uniform},
        "attention": {"model": _attention([8.0, 9.0, 10.0], [14.0, 15.0, 16.0]),
                      "control": control, "uniform_px": 16.5},
    }  # fmt: skip
    words = [word for _, _, word in attention.attention_verdicts(result, result["attention"])]
    assert words == ["held", "held", "not held"]  # columns are not encoded
    result["position"]["control"] = grid  # a control that shows the structure already
    assert attention.attention_verdicts(result, result["attention"])[2][2] == "not testable here"


def test_resolution_compares_the_highest_resolution_with_the_pre_training_one(tmp_path) -> None:
    """The lowest and highest resolutions paired, whatever the order of the runs: 64 px 3 points
    over 32 px on 1,000 nested answers is held."""
    summary = {"runs": [_sweep(f"vit-{size}px", tmp_path, right, images=1000)
                        for size, right in ((48, 520), (32, 460), (64, 490))]}  # fmt: skip
    notes = resolution.resolution_notes(summary, tmp_path)
    assert "at 64x64 beats fine-tuning at the pre-training 32x32" in notes
    assert "+3.0 points (± 1.1; seeds 1 and 1). **held**" in notes
    rows = resolution.resolution_table(summary, tmp_path).rows
    assert [row[0] for row in rows] == ["32x32", "48x48", "64x64"]


def _write_dev(run: Path, dev: list[float]) -> None:
    records = [{"epoch": i + 1, "step": 100 * (i + 1), "dev_acc": d} for i, d in enumerate(dev)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _trained_run(folder: Path, name: str, right: int, dev: list[float], steps: int) -> dict:
    """A finished training run on 1,000 test images (its first `right` correct) and its dev
    accuracy every 100 steps."""
    run = folder / name
    run.mkdir(parents=True)
    record = {"split": "test", "true": list(range(1000)),
              "predicted": list(range(right)) + [-1] * (1000 - right)}  # fmt: skip
    (run / "predictions.json").write_text(json.dumps(record))
    (run / "config.json").write_text(json.dumps({"steps": steps}))
    _write_dev(run, dev)
    result = {
        "test_acc": right / 1000,
        "test_images": 1000,
        "train_images": 100 * (1 + ("100" in name)),
    }
    return {"run": name, "tool": "train", "result": result}


def test_data_size_decides_whether_the_vit_closes_the_gap_once_the_large_runs_converged(
    tmp_path,
) -> None:
    """The ResNet leads by 10 points on the small subset and by 4 on all the data: the ViT
    closes 6 points (held); an all-data run still rising in its last fifth: not testable."""
    flat = [0.5, 0.6, 0.65, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    runs = [_trained_run(tmp_path, name, right, flat, 1000) for name, right in
            (("vit-10", 400), ("bit-10", 500), ("vit-100", 600), ("bit-100", 640))]  # fmt: skip
    summary = {"runs": runs}
    rule, difference, word = data_size.data_size_verdict(summary, tmp_path)
    assert (round(difference.effect, 3), word) == (0.06, "held")
    assert data_size.converged(tmp_path / "vit-100")
    rising = flat[:8] + [0.72, 0.75]
    _write_dev(tmp_path / "bit-100", rising)
    assert not data_size.converged(tmp_path / "bit-100")
    assert data_size.data_size_verdict(summary, tmp_path)[2] == "not testable here"
    _write_dev(tmp_path / "bit-100", rising[:6])  # stopped by patience at step 600 of 1,000
    assert data_size.converged(tmp_path / "bit-100")
    table = data_size.data_size_table(summary, tmp_path)
    assert [row[0] for row in table.rows] == ["100", "200"]


def test_the_pretext_baselines_on_hand_made_patches() -> None:
    """Two 8x8 images of 4x4 patches (2x2 grids): the prior is the training patches' most
    common colour; the neighbour copy predicts each patch from its left (column 0: right)."""
    black, white = torch.zeros(3, 4, 4), torch.ones(3, 4, 4)
    rows = [torch.cat([black, white], dim=2), torch.cat([white, white], dim=2)]
    images = torch.stack([torch.cat(rows, dim=1), torch.zeros(3, 8, 8)])
    result = self_supervision.pretext_baselines(images, torch.zeros(1, 3, 8, 8), patch=4)
    assert result["colour_prior_acc"] == 5 / 8  # black: 1 patch + 4 of the second image
    assert result["neighbour_copy_acc"] == 6 / 8  # the first image's top row disagrees
    assert result["images"] == 2 and result["colour_prior_nats"] > 0


def test_self_supervision_decides_both_claims_only_when_the_pretext_was_learned(tmp_path) -> None:
    """Masked 4 points over scratch (held), supervised half a point over masked (below the
    minimum: not held); a pretext accuracy within 5 points of a baseline: both not testable."""
    from replicate.study.definitions.self_supervision import BASELINES, PRETRAIN

    baselines = {"colour_prior_acc": 0.06, "colour_prior_nats": 4.2,
                 "neighbour_copy_acc": 0.29, "images": 100}  # fmt: skip
    (tmp_path / BASELINES).write_text(json.dumps(baselines))
    arms = [_sweep(name, tmp_path, right, images=1000) for name, right in
            (("vit-scratch-3", 400), ("vit-masked-3", 440), ("vit-supervised-3", 445))]  # fmt: skip
    pretrain = {
        "run": PRETRAIN,
        "tool": "sweep",
        "result": {"test_acc": 0.5, "best_lr": 0.001, "final_runs": ["final-lr-0.001"]},
    }
    summary = {"runs": [pretrain, *arms]}  # fmt: skip
    decided = self_supervision.self_supervision_verdicts(summary, tmp_path)
    assert [word for _, _, word in decided] == ["held", "not held"]
    notes = self_supervision.self_supervision_notes(summary, tmp_path)
    assert "the neighbour copy 29.0%" in notes and "+4.0 points" in notes
    assert self_supervision.self_supervision_table(summary, tmp_path).rows[1][1:] == [
        "44.0% (44.0)", "0.01"]  # fmt: skip
    pretrain["result"]["test_acc"] = 0.33
    decided = self_supervision.self_supervision_verdicts(summary, tmp_path)
    assert [word for _, _, word in decided] == ["not testable here"] * 2


def _sweep(name: str, folder: Path, right: int, images: int = 100) -> dict:
    """A finished sweep whose one final run got its first `right` of `images` test images."""
    final = folder / name / "final-lr-0.01"
    final.mkdir(parents=True)
    predicted = list(range(right)) + [-1] * (images - right)
    record = {"split": "test", "true": list(range(images)), "predicted": predicted}
    (final / "predictions.json").write_text(json.dumps(record))
    result = {"test_acc": right / images, "test_accs": [right / images],
              "final_runs": [final.name], "best_lr": 0.01}  # fmt: skip
    return {"run": name, "tool": "sweep", "result": result}


def test_transfer_pairs_each_arm_on_bs_test_images_by_the_rules_fixed_before(tmp_path) -> None:
    """Nested right answers: fine-tuning 30 points over scratch (held), BiT's fine-tuning one
    point over its scratch (below the 5-point minimum: not held) and 5 over the ViT's (held);
    a model that did not learn A makes every claim not testable."""
    sweeps = [_sweep(name, tmp_path, right) for name, right in
              (("vit-finetune", 80), ("vit-scratch", 50), ("bit-finetune", 85),
               ("bit-scratch", 84))]  # fmt: skip
    summary = {"runs": [_run("vit-pretrain", 0.7), _run("bit-pretrain", 0.8), *sweeps]}
    words = [word for _, _, word in transfer.transfer_verdicts(summary, tmp_path)]
    assert words == ["held", "not held", "held"]
    notes = transfer.transfer_notes(summary, tmp_path)
    assert "+30.0 points" in notes and "+5.0 points" in notes
    table = transfer.transfer_table(summary, tmp_path)
    assert table.rows[0][1:4] == ["70.0%", "80.0% (80.0)", "0.01"]
    summary["runs"][0] = _run("vit-pretrain", 0.5)  # below the floor: A was not learned
    words = [word for _, _, word in transfer.transfer_verdicts(summary, tmp_path)]
    assert words == ["not testable here"] * 3


@pytest.mark.parametrize("scale", SCALES.values(), ids=list(SCALES))
def test_every_study_has_its_runs_at_every_scale(scale) -> None:
    """Each study keeps its own sizes by scale name: a scale one of them lacks is a KeyError."""
    for study in STUDIES.values():
        specs = study.runs(scale)
        assert specs and all(spec.args for spec in specs), (study.name, scale.name)


def test_the_definitions_give_the_committed_runs_their_command_lines() -> None:
    """Each committed cpu-scale run ran the command line its study's settings give today: the
    results in results/studies are what the definitions describe."""
    from replicate.study.scales import CPU

    committed = sorted(
        (Path(__file__).resolve().parents[1] / "results/studies").glob("*/study.json")
    )
    assert committed
    for path in committed:
        summary = json.loads(path.read_text())
        specs = {spec.name: spec for spec in STUDIES[summary["study"]].runs(CPU)}
        for run in summary["runs"]:
            assert list(specs[run["run"]].args) == run["args"], (summary["study"], run["run"])


def test_settings_become_the_tools_command_line() -> None:
    settings = {"image_size": 32, "early_stopping": True, "model_arg": ["depth=1", "stem=small"],
                "only": ("fig1", "fig7"), "lrs": [0.01, 0.03]}  # fmt: skip
    assert command_line(settings) == (
        "--image-size", "32", "--early-stopping", "--model-arg", "depth=1",
        "--model-arg", "stem=small", "--only", "fig1", "fig7", "--lrs", "0.01", "0.03",
    )  # fmt: skip


def test_a_runs_planned_steps_count_every_candidate_and_every_final_seed() -> None:
    from replicate.study.estimate import planned_steps

    train = {"variant": "vit_ti16", "dataset": "digits", "steps": 10}
    sweep = {"lrs": [0.01, 0.03], "weight_decays": [0.0, 0.1, 0.3], "seeds": 2, "final_steps": 50}
    assert planned_steps(RunSpec("s", "sweep", sweep, train=train))[0] == 2 * 3 * 10 + 2 * 50
    seeds = {"lrs": [0.01], "seeds": 3}  # the final runs as long as the candidates
    assert planned_steps(RunSpec("s", "sweep", seeds, train=train))[0] == 10 + 3 * 10
    assert planned_steps(RunSpec("t", "train", train)) == (10, command_line(train))
    assert planned_steps(RunSpec("f", "fewshot", {"checkpoint": "x"})) is None


def test_a_resumed_runs_estimate_is_what_is_left_of_it() -> None:
    from replicate.study.estimate import estimate_s

    tiny = RunSpec("t", "train", {**SMOKE.vit, "dataset": "digits", "image_size": 16, "steps": 10})
    whole = estimate_s(tiny)
    assert whole > 0 and estimate_s(tiny, done=4) == pytest.approx(whole * 6 / 10)


def _sweep_run(name: str, candidates: list[tuple[float, float, float, float]], **result) -> dict:
    keys = ("lr", "weight_decay", "crop_scale", "dev_acc")
    found = [dict(zip(keys, c, strict=True)) | {"run": f"c{i}"} for i, c in enumerate(candidates)]
    return {"run": name, "tool": "sweep", "result": {"candidates": found, **result}}


def test_the_commit_is_dirty_for_changed_code_not_for_the_results_a_study_rewrites(
    tmp_path: Path,
) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("a = 1\n")
    (tmp_path / "results" / "study.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    commit = runner.project_commit(tmp_path)
    assert commit is not None and len(commit) == 40
    (tmp_path / "results" / "study.json").write_text('{"complete": true}\n')
    assert runner.project_commit(tmp_path) == commit
    (tmp_path / "code.py").write_text("a = 2\n")
    assert runner.project_commit(tmp_path) == commit + "+dirty"


def test_training_time_adds_each_session_of_a_resumed_run_and_each_sweep_candidate(
    tmp_path: Path,
) -> None:
    def log(run: str, *wall_times: float) -> None:
        (tmp_path / run).mkdir(parents=True)
        rows = [{"epoch": i, "wall_time_s": t} for i, t in enumerate(wall_times, start=1)]
        (tmp_path / run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    log("lr-0.01", 100.0, 200.0, 50.0, 120.0)  # cut off after 200 s, resumed for 120 s more
    log("lr-0.03", 300.0)
    assert training_seconds(tmp_path) == 620.0
    assert training_seconds(tmp_path / "lr-0.03") == 300.0
    assert training_seconds(tmp_path / "nothing-trained") is None


def test_a_second_runner_on_the_same_out_is_refused(tmp_path, capsys) -> None:
    """It would remove the first runner's live run folders (those without a checkpoint yet)."""
    from replicate.cli_errors import run_cli
    from replicate.study.__main__ import main
    from replicate.training.checkpoint import run_folder_lock

    with run_folder_lock(tmp_path / "studies"):  # the first runner, still running
        argv = ["data-size", "--scale", "smoke", "--out", str(tmp_path / "studies")]
        assert run_cli("replicate.study", main, argv) == 2
    assert "is in use by process" in capsys.readouterr().err
    assert not (tmp_path / "studies" / "data-size").exists()  # nothing touched


def test_a_study_json_edited_by_hand_is_one_line_naming_it(tmp_path) -> None:
    from replicate.figures.studies import draw_study

    committed = Path(__file__).resolve().parents[1] / "results/studies/attention/study.json"
    summary = json.loads(committed.read_text())
    del summary["runs"]
    with pytest.raises(ValueError, match=r"cannot draw .*study.json: KeyError\('runs'\)"):
        draw_study(
            summary, tmp_path / "attention", tmp_path / "figures", STUDIES["attention"].drawing
        )
