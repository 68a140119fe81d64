"""Where a run's settings come from: `resolve_config` takes each from the first source that gives
it (option, recipe, dataset, model) and records which; the run prints the table first."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from test_train import TINY_VIT, one_thread, resolve  # noqa: F401  (autouse)

from replicate.runtime import default_precision
from replicate.train import main


@pytest.mark.parametrize(
    ("argv", "size", "source"),
    [
        (["--image-size", "48", "--pretrained", "x.pth"], 48, "--image-size"),
        (["--pretrained", "x.pth"], 384, "recipe finetune, pretrained ViT"),  # Table 4
        (["--variant", "tinyvgg", "--pretrained", "x.pth"], 32, "dataset digits"),  # not a ViT
        (["--dataset", "imagefolder:photos"], 224, "model vit_b16"),
        (["--variant", "tinyvgg", "--dataset", "imagefolder:photos"], 64, "model tinyvgg"),
    ],
)
def test_image_size_comes_from_the_first_of_its_four_sources(argv, size, source) -> None:
    config = resolve(*argv)
    assert (config.image_size, config.sources["image_size"]) == (size, source)


def test_every_setting_records_its_source() -> None:
    config = resolve("--pretrained", "x.pth", "--dataset", "oxford_pets", "--lr", "0.01")
    assert config.sources == {
        "variant": "default",
        "dataset": "--dataset",
        "recipe": "model vit_b16, --pretrained",
        "lr": "--lr",
        **dict.fromkeys(
            [
                "weight_decay",
                "warmup_steps",
                "schedule",
                "grad_clip",
                "dropout",
                "crop",
                "label_smoothing",
            ],
            "recipe finetune",
        ),  # fmt: skip
        "image_size": "recipe finetune, pretrained ViT",
        "batch_size": "recipe finetune",  # Table 4: 512
        "length": "dataset oxford_pets (Table 4 steps)",
        "precision": default_precision()[1],
    }


def test_a_run_prints_its_settings_and_keeps_them_in_config_json(tmp_path: Path, capsys) -> None:
    main([*TINY_VIT, "--steps", "1", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    table = printed[printed.index("settings (value, source):") :].splitlines()
    assert table[1].split() == ["variant", "vit_ti16", "--variant"]
    assert ["image_size", "16", "--image-size"] in [line.split() for line in table]
    assert ["length", "1", "steps", "--steps"] in [line.split() for line in table]
    saved = json.loads((tmp_path / "config.json").read_text())["sources"]
    assert saved["batch_size"] == "--batch-size"
    assert saved["lr"] == "recipe scratch: 0.003 at batch 4096 x sqrt(128/4096)"


def test_every_option_of_train_is_in_a_group_of_help() -> None:
    """`--help` reads as timm's train.py does: options grouped by what they decide."""
    from replicate.training.config import build_parser

    groups = {
        group.title: [a.option_strings[0] for a in group._group_actions]
        for group in build_parser()._action_groups
    }
    assert list(groups) == ["positional arguments", "options", "model", "data", "optimisation",
                            "schedule", "evaluation", "checkpoints", "hardware"]  # fmt: skip
    assert groups["positional arguments"] == [] and groups["options"] == ["-h", "--config"]
    assert "--epochs" in groups["schedule"] and "--precision" in groups["hardware"]


CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.py"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_experiment_file_resolves_and_says_what_it_should_reach(path: Path) -> None:
    from replicate.training.config import build_parser, resolve_config

    config = resolve_config(build_parser().parse_args(["--config", str(path)]))
    assert config.sources["variant"] == f"--config {path.name}"
    assert "Should reach:" in path.read_text()


def test_options_given_override_the_experiment_file(tmp_path: Path, capsys) -> None:
    """The main job as a file: the same run as `--variant vit_b16`; --epochs given wins, and
    the settings table names the file as the source of what it set."""
    from replicate.training.config import build_parser, resolve_config, settings_table

    digits = next(p for p in CONFIGS if p.name == "digits_vit_b16.py")
    parse = build_parser().parse_args
    from_file = resolve_config(parse(["--config", str(digits), "--epochs", "2", "--out", "x"]))
    plain = resolve_config(parse(["--variant", "vit_b16", "--epochs", "2", "--out", "x"]))
    assert replace(from_file, sources={}) == replace(plain, sources={})
    table = settings_table(from_file)
    assert re.search(r"image_size +32 +--config digits_vit_b16.py", table)
    assert re.search(r"length +2 epochs +--epochs\n", table + "\n")
    bad = tmp_path / "bad.py"
    bad.write_text("def get_config():\n    return {'imge_size': 32}\n")
    with pytest.raises(ValueError, match="bad.py sets imge_size, which .* has no option"):
        resolve_config(parse(["--config", str(bad)]))
    for setting, problem in [
        ("'steps': -5", "steps=-5: must be at least 1"),
        ("'lr': float('nan')", "lr=nan: must be at least 0"),
        ("'batch_size': 0", "batch_size=0: must be at least 1"),
        ("'recipe': 'fast'", "recipe='fast': must be one of scratch, "),
        ("'compile': 'yes'", "compile='yes': must be True or False"),
    ]:
        bad.write_text(f"def get_config():\n    return {{{setting}}}\n")  # the options' checks
        with pytest.raises(ValueError, match=re.escape(f"bad.py sets {problem}")):
            resolve_config(parse(["--config", str(bad)]))
    bad.write_text("config = {'image_size': 32}\n")  # no get_config(): refused, not ignored
    with pytest.raises(ValueError, match="bad.py defines no get_config"):
        resolve_config(parse(["--config", str(bad)]))
