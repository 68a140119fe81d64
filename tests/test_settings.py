"""Where a run's settings come from: `resolve_config` takes each from the option, else the recipe,
the dataset or the model; the run prints them first and keeps them in config.json."""

from __future__ import annotations

import json
import re
import runpy
from pathlib import Path

import pytest
from test_train import TINY_VIT, one_thread, resolve  # noqa: F401  (autouse)

from replicate.train import main


@pytest.mark.parametrize(
    ("argv", "size"),
    [
        (["--image-size", "48", "--pretrained", "x.pth"], 48),  # given
        (["--pretrained", "x.pth"], 384),  # the finetune recipe's for a pretrained ViT, Table 4
        (["--variant", "tinyvgg", "--pretrained", "x.pth"], 32),  # not a ViT: the dataset's
        (["--dataset", "imagefolder:photos"], 224),  # no size of its own: the model's
        (["--variant", "tinyvgg", "--dataset", "imagefolder:photos"], 64),
    ],
)
def test_image_size_comes_from_the_first_of_its_four_sources(argv, size) -> None:
    assert resolve(*argv).image_size == size


def test_options_left_to_the_recipe_are_the_recipes() -> None:
    config = resolve("--pretrained", "x.pth", "--dataset", "oxford_pets", "--lr", "0.01")
    recipe = config.recipe
    assert (recipe.name, recipe.lr, recipe.optimizer) == ("finetune", 0.01, "sgd")
    assert (recipe.weight_decay, recipe.warmup_steps, recipe.grad_clip) == (0.0, 500, 1.0)
    assert (config.batch_size, config.steps, config.epochs) == (512, 500, None)  # Table 4: Pets
    assert (config.seed, config.dataset, config.val_fraction) == (0, "oxford_pets", 0.0)


def test_a_run_prints_its_settings_and_keeps_them_in_config_json(tmp_path: Path, capsys) -> None:
    main([*TINY_VIT, "--steps", "1", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    table = [line.split() for line in printed[printed.index("settings:") :].splitlines()]
    assert table[1] == ["variant", "vit_ti16"]
    assert ["image_size", "16"] in table and ["length", "1", "steps"] in table
    assert ["lr", str(3e-3 * (128 / 4096) ** 0.5)] in table  # scratch's rate at batch 128
    assert ["warmup_steps", "0"] in table  # 10k, capped at a tenth of the 1-step run
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["batch_size"] == 128 and saved["used"]["warmup_steps"] == 0


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
    from replicate.training.config import parse_args, resolve_config

    settings = runpy.run_path(str(path))["get_config"]()
    config = resolve_config(parse_args(["--config", str(path)]))
    assert (config.variant, config.out) == (settings["variant"], settings["out"])
    assert "Should reach:" in path.read_text()


def test_options_given_override_the_experiment_file(tmp_path: Path) -> None:
    """The main job as a file: the same run as `--variant vit_b16`; --epochs given wins."""
    from replicate.training.config import parse_args, resolve_config

    digits = next(p for p in CONFIGS if p.name == "digits_vit_b16.py")
    from_file = resolve_config(parse_args(["--config", str(digits), "--epochs", "2", "--out", "x"]))
    plain = resolve_config(parse_args(["--variant", "vit_b16", "--epochs", "2", "--out", "x"]))
    assert from_file == plain and from_file.epochs == 2
    in_steps = resolve_config(parse_args(["--config", str(digits), "--steps", "3", "--out", "x"]))
    assert (in_steps.epochs, in_steps.steps) == (None, 3)  # the file's epochs give way
    parse = parse_args
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
