"""The recipe ablation's statistics and rule (`replicate.study.ablation`), on arms written by
hand: the runs themselves are `replicate.train`'s, tested end to end elsewhere."""

from __future__ import annotations

import json
from pathlib import Path

from replicate.runs.paired import Difference
from replicate.study import ablation


def write_arm(folder: Path, correct: list[int], split: str = "dev") -> None:
    folder.mkdir(parents=True)
    true = [0] * len(correct)
    predicted = [0 if c else 1 for c in correct]
    record = {"split": split, "true": true, "predicted": predicted}
    (folder / "predictions.json").write_text(json.dumps(record))
    epoch = {"epoch": 2, "step": 766, "train_loss": 1.5, "wall_time_s": 600.0}
    (folder / "metrics.jsonl").write_text(json.dumps(epoch) + "\n")
    where = {"device": "cpu", "cores": 2, "commit": "abc", "versions": {}}
    (folder / "environment.json").write_text(json.dumps(where))


def test_an_arm_is_adopted_or_rejected_when_its_interval_excludes_zero() -> None:
    assert ablation.verdict(Difference(0.03, 0.02, (1, 1)), diagnosis=False) == "adopted"
    assert ablation.verdict(Difference(-0.05, 0.02, (1, 1)), diagnosis=False) == "rejected"
    assert ablation.verdict(Difference(0.01, 0.02, (1, 1)), diagnosis=False) == "within noise"


def test_a_diagnosis_names_a_cause_and_is_never_adopted() -> None:
    assert ablation.verdict(Difference(0.03, 0.02, (1, 1)), diagnosis=True) == "a cause"
    assert ablation.verdict(Difference(-0.05, 0.02, (1, 1)), diagnosis=True) == "not the cause"


def test_summary_scores_every_arm_against_the_baseline_on_the_same_images(tmp_path: Path) -> None:
    for arm in ablation.arms("bit"):
        better = arm == "lr-0.002"
        write_arm(tmp_path / arm, [1] * 600 + [1 if better else 0] * 400)
    summary = ablation.summarise("bit", tmp_path)
    rows = {row["arm"]: row for row in summary["arms"]}
    assert "dropout-0.1" not in rows  # no dropout in the ResNet
    assert rows["scratch-small"]["verdict"] == "baseline"
    assert rows["lr-0.002"]["verdict"] == "adopted"
    assert rows["lr-0.002"]["dev_acc"] == 1.0 and rows["wd-0.3"]["dev_acc"] == 0.6
    assert rows["wd-0.3"]["difference"] == 0 and summary["dev_images"] == 1000
    assert summary["commit"] == "abc"
    table = ablation.markdown(summary)
    assert "| lr-0.002 | lr 0.002 | 100.0% | +40.0 ± 3.0 | adopted |" in table
    ablation.figure(summary, tmp_path / "bit.png")
    assert (tmp_path / "bit.png").stat().st_size > 0


def test_a_diagnosis_is_decided_on_the_test_split(tmp_path: Path) -> None:
    for arm in ablation.arms("vit"):
        write_arm(tmp_path / arm, [1] * 600 + [0] * 400)  # every arm alike on dev
        if arm in ablation.DIAGNOSES | {ablation.BASELINE}:
            better = arm == "anchor-init"
            test = {"split": "test", "true": [0] * 10_000,
                    "predicted": [0] * 6_000 + [0 if better else 1] * 4_000}  # fmt: skip
            (tmp_path / arm / ablation.TEST_PREDICTIONS).write_text(json.dumps(test))
    rows = {row["arm"]: row for row in ablation.summarise("vit", tmp_path)["arms"]}
    assert rows["anchor-init"]["verdict"] == "a cause"  # within noise on dev, ahead on test
    assert rows["anchor-init"]["test_difference"] == 0.4
    assert rows["anchor-size"]["verdict"] == "within noise"
    assert rows["wd-0.3"]["verdict"] == "within noise" and "test_acc" not in rows["wd-0.3"]
    table = ablation.markdown({"model": "vit", "epochs": 2, "arms": list(rows.values())})
    assert "| anchor-init | 100.0% | +40.0 ± 1.0 | a cause |" in table
    assert "(the baseline there: 60.0%)" in table


def test_every_arm_is_one_change_to_the_baseline_command() -> None:
    out = Path("runs/ablation/vit")
    base = ablation.arm_settings("vit", "scratch-small", out)
    assert base["recipe"] == "scratch-small" and base["val_fraction"] == 0.02
    for arm in ablation.arms("vit")[2:]:  # past the baseline and the control
        settings = ablation.arm_settings("vit", arm, out)
        changed = {k for k in settings if settings[k] != base.get(k)} - {"out"}
        assert changed == set(ablation.ARMS[arm]["vit"]), arm


def test_anchor_init_writes_the_baseline_model_with_the_anchors_initialisation(
    tmp_path: Path,
) -> None:
    from safetensors.torch import load_file

    settings = ablation.arm_settings("vit", "anchor-init", tmp_path)
    assert settings["pretrained"] == tmp_path / "anchor-init" / ablation.ANCHOR_INIT
    ablation.write_anchor_init(settings, tmp_path / "init.safetensors")
    weights = load_file(tmp_path / "init.safetensors")
    assert weights["embedding.position_embedding"].shape == (1, 65, 192)  # ViT-Ti/4 at 32 px
    assert 0.9 < weights["embedding.position_embedding"].std() < 1.1  # N(0, 1), not N(0, 0.02)
    classifier = weights["head.classifier.weight"]  # PyTorch's default, not zeros
    assert 0 < classifier.abs().max() <= 192**-0.5


def test_versus_pairs_a_full_budget_run_with_its_control(tmp_path: Path) -> None:
    """The run's own test predictions against the control's re-evaluated committed weights
    (`TEST_PREDICTIONS`, preferred where a folder has it); written to the run's summary.json."""
    write_arm(tmp_path / "run", [1] * 7_000 + [0] * 3_000, split="test")
    write_arm(tmp_path / "control", [1] * 10_000, split="dev")  # its training evaluated dev
    test = {"split": "test", "true": [0] * 10_000, "predicted": [0] * 6_000 + [1] * 4_000}
    (tmp_path / "control" / ablation.TEST_PREDICTIONS).write_text(json.dumps(test))
    ablation.main(["--versus", str(tmp_path / "run"), str(tmp_path / "control")])
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test_acc"] == 0.7 and summary["control_test_acc"] == 0.6
    assert summary["difference"] == 0.1 and summary["verdict"] == "a cause"
    assert summary["test_images"] == 10_000 and 0 < summary["half_width_95"] < 0.02
