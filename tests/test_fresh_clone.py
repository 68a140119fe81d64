"""What a user's fresh clone meets: no `../shared` beside it, and committed results that name no
path of the machine they were made on."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"


def _uses_shared_data(module: ast.Module) -> tuple[set[str], list[ast.FunctionDef]]:
    """The module-level names bound to paths under SHARED_DATA, and the test functions that read
    SHARED_DATA or one of them."""
    names = {"SHARED_DATA"}
    for node in module.body:
        if isinstance(node, ast.Assign) and {n.id for n in ast.walk(node.value)
                                             if isinstance(n, ast.Name)} & names:  # fmt: skip
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    readers = [
        node
        for node in module.body
        if isinstance(node, ast.FunctionDef)
        and node.name.startswith("test_")
        and any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(node))
    ]
    return names, readers


def _marked(function: ast.FunctionDef) -> bool:
    return any(ast.unparse(d) == "needs_shared_data" for d in function.decorator_list)


def test_every_test_that_reads_shared_data_is_marked() -> None:
    """A test that reads ../shared/data without `@needs_shared_data` fails on a user's clone."""
    unmarked = []
    for path in sorted(TESTS.glob("test_*.py")):
        _, readers = _uses_shared_data(ast.parse(path.read_text()))
        unmarked += [f"{path.name}::{f.name}" for f in readers if not _marked(f)]
    assert not unmarked, f"read ../shared/data without @needs_shared_data: {unmarked}"


def test_the_shared_data_tests_skip_where_a_clone_has_none(tmp_path: Path) -> None:
    """The marked tests, run with ../shared hidden: each skipped with its reason, none failed."""
    env = {**os.environ, "VIT_REPLICATE_SHARED_DATA": str(tmp_path / "absent")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "shared_data", "-rs", "-p", "no:cacheprovider",
         "tests/test_data.py", "tests/test_evaluate_predict.py", "tests/test_timm_interface.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\b[1-9]\d* skipped", summary) and "passed" not in summary, summary
    assert "which a clone of the project alone lacks" in result.stdout


def test_committed_results_name_no_machine_path() -> None:
    """`results/` and `figures/` are read on other machines: a path of the machine a run was made
    on (/work/..., /tmp/..., /home/...) means nothing there."""
    absolute = re.compile(r"(?<![\w.])/(?:work|tmp|home|root|Users|mnt)/[^\s\"'`)]*")
    found = []
    for folder in ("results", "figures"):
        for path in sorted((REPO / folder).rglob("*")):
            if path.suffix in {".json", ".jsonl", ".md"}:
                found += [f"{path.relative_to(REPO)}: {m}" for m in
                          absolute.findall(path.read_text())]  # fmt: skip
    assert not found, found


def test_the_readme_states_the_committed_runs_as_they_are() -> None:
    """Each row of the README's runs table: its wall time and test top-1 are the last epoch of
    `results/runs/NAME/metrics.jsonl`, so a regenerated run cannot leave a stale claim."""
    rows = re.findall(r"^\| `([\w-]+)` \|.*\| ([\d.]+) min \| ([\d.]+)% \|$",
                      (REPO / "README.md").read_text(), flags=re.M)  # fmt: skip
    assert {name for name, _, _ in rows} == {p.name for p in (REPO / "results/runs").iterdir()
                                             if p.is_dir()}  # fmt: skip
    for name, minutes, accuracy in rows:
        lines = (REPO / "results/runs" / name / "metrics.jsonl").read_text().splitlines()
        last = json.loads(lines[-1])
        assert f"{100 * last['test_acc']:.1f}" == accuracy, name
        assert f"{last['wall_time_s'] / 60:.1f}" == minutes, name


def test_the_readme_states_each_studys_verdicts_as_its_table_does() -> None:
    """Each README study row that has run quotes its measured differences ("+2.6 (± 2.2)") and
    verdicts as figures/study_NAME.md states them ("+2.6 points (± 2.2; ...) ... **not held**"),
    which `python -m replicate.study --summarise` writes from results/studies."""
    readme = (REPO / "README.md").read_text()
    quoted = re.findall(r"^\| `([\w-]+)` \|.*$", readme, flags=re.M)
    studies = [name for name in quoted if (REPO / "figures" / f"study_{name}.md").is_file()]
    assert studies, "the README quotes no study"
    for name in studies:
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{name}` |"))
        table = (REPO / "figures" / f"study_{name}.md").read_text()
        differences = re.findall(r"([+-][\d.]+)(?: px)? \(± ([\d.]+)\)", row)
        verdicts = set(re.findall(r"\*\*([a-z ]+)\*\*", row))
        assert differences and verdicts, (name, "quotes no measured difference or verdict")
        for effect, half_width in differences:
            pattern = rf"{re.escape(effect)} (points|px) \(± {re.escape(half_width)}[;)]"
            assert re.search(pattern, table), (name, effect, half_width)
        assert verdicts <= set(re.findall(r"\*\*([a-z ]+)\*\*", table)), (name, verdicts)


def test_the_readmes_fine_tuning_command_starts_from_a_committed_model() -> None:
    """Its weights are committed, its rate is one of Table 4's, and a tenth of its steps warm up
    (the studies' short-run rule): a short fine-tune that reaches its rate and decays."""
    from replicate.study.definitions.common import budget

    readme = (REPO / "README.md").read_text()
    block = re.search(r"python -m replicate\.train --pretrained results/.*?\n```", readme, re.S)
    argv = block.group(0).replace("\\\n", " ").split()[3:-1]
    given = dict(zip(argv[::2], argv[1::2], strict=True))
    steps = budget(int(given["--steps"]))
    assert int(given["--warmup-steps"]) == steps["warmup_steps"]
    assert float(given["--lr"]) in (0.001, 0.003, 0.01, 0.03)  # Table 4's grid
    assert (REPO / given["--pretrained"]).is_file()


def test_the_readme_states_the_from_scratch_vit_as_committed() -> None:
    """Each committed CIFAR-10 run's final test top-1 (the 10-epoch ViT normalised by CIFAR-10's
    statistics among them) and the plain loop's beside them, as their files say."""
    readme = (REPO / "README.md").read_text()
    normalised = REPO / "results/recipe-ablation/vit-cifar-stats-10-epochs/metrics.jsonl"
    runs = [*sorted((REPO / "results").glob("cifar10-*/metrics.jsonl")), normalised]
    assert runs
    for metrics in runs:
        last = json.loads(metrics.read_text().splitlines()[-1])
        assert f"| **{100 * last['test_acc']:.1f}%** |" in readme, metrics.parent.name
    for name in ("vit.json", "vit-cifar-stats.json"):
        plain = json.loads((REPO / "results/plain-loop" / name).read_text())["test_top1"]
        assert f"| {100 * plain['plain loop']:.1f}% |" in readme, name


def test_every_weights_file_the_project_names_is_committed() -> None:
    """The figures' default model, the studies' best ViT and the README's fine-tuning example
    read committed bf16 weights: a clone that lacks one draws an untrained model."""
    texts = [REPO / "README.md", *(REPO / "replicate").rglob("*.py")]
    named = {
        m for path in texts for m in re.findall(r"results/[\w./-]+\.safetensors", path.read_text())
    }
    tracked = subprocess.run(["git", "ls-files", "results"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()  # fmt: skip
    assert named and not named - set(tracked), named - set(tracked)
