"""Run a study: each unfinished run in turn, then the study's summary, table and figure.

    OUT/STUDY/RUN/            the run's own folder: what its tool writes (config.json,
                              metrics.jsonl, checkpoints, ...), then
    OUT/STUDY/RUN/summary.json  written last, atomically: the run's result, how long it took,
                              the device and the library versions. A run with a summary is
                              finished and is not run again; a run folder without one is
                              resumed (`replicate.train --resume`) or, holding no checkpoint,
                              started over.
    OUT/STUDY/study.json      every run's summary, the scale and the device time spent

A run that needs another's weights (`{weights:STUDY/RUN}` in its arguments) runs it first, in
whichever study it belongs to, so `resolution` alone trains the data-size ViT it starts from.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from replicate.bench.report import describe_device, library_versions
from replicate.runs.files import atomic_path, read_json, write_json
from replicate.runs.log import (
    CONFIG,
    PUBLISHED_WEIGHTS,
    STUDY_SUMMARY,
    SUMMARY,
    last_epoch,
    training_seconds,
)
from replicate.runs.read import PROJECT
from replicate.study.estimate import described, described_total, duration, estimate_s
from replicate.study.spec import WEIGHTS as WEIGHTS_PLACEHOLDER
from replicate.study.spec import RunSpec, Scale, Study
from replicate.train import BEST_WEIGHTS, TEST_RESULT
from replicate.training.checkpoint import latest_checkpoint, read_weights, resolve_weights

log = logging.getLogger("replicate.study")


def environment() -> dict[str, Any]:
    """Where the runs ran: the device's name, the cores, the project's commit, the versions."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return {
        "device": describe_device(device).name,
        "cores": torch.get_num_threads(),
        "commit": project_commit(),
        "versions": library_versions(),
    }


def shared_environment(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Where the runs ran: each environment field all of them share, None for one they do not
    (each run keeps its own), never the machine or commit that summarised them later."""
    first = summaries[0]
    return {
        key: first.get(key) if all(s.get(key) == first.get(key) for s in summaries) else None
        for key in ("device", "cores", "commit", "versions")
    }


def project_commit(root: Path = PROJECT) -> str | None:
    """The git commit of the checkout the runs came from ("+dirty" with uncommitted changes,
    save those in results/ and figures/, which the studies themselves rewrite)."""
    try:
        commit = _git(root, "rev-parse", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".",
                     ":!results", ":!figures")  # fmt: skip
    except OSError:  # no git
        return None
    return (commit + "+dirty" * bool(dirty)) or None


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True).stdout.strip()


# The tools a run can call, each `tool(args, out, resume)`: in-process, so a smoke study pays
# for one interpreter and one import of torch.


def _train(args: Sequence[str], out: Path, resume: bool) -> None:
    from replicate.train import main

    main(["--resume", "--out", str(out)] if resume else [*args, "--out", str(out)])


def _figures(args: Sequence[str], out: Path, resume: bool) -> None:
    from replicate.figures.__main__ import main

    main([*args, "--out", str(out)])


def _sweep(args: Sequence[str], out: Path, resume: bool) -> None:
    """`replicate.sweep OPTIONS -- TRAIN_OPTIONS`; it resumes by itself from its sweep.json."""
    from replicate.sweep import main

    split = list(args).index("--")
    main([*args[:split], "--out", str(out), *args[split:]])


def _fewshot(args: Sequence[str], out: Path, resume: bool) -> None:
    from replicate.fewshot import main

    main([*args, "--out", str(out)])


TOOLS: dict[str, Callable[[Sequence[str], Path, bool], None]] = {
    "train": _train,
    "sweep": _sweep,
    "fewshot": _fewshot,
    "figures": _figures,
}


def run_weights(run_folder: Path) -> Path | None:
    """The weights a run of `replicate.train` left here for others to start from: early
    stopping's best dev checkpoint, else the latest checkpoint, else (a sweep) its first final
    run's, else the published bf16 copy (the one that is committed); None when there are none."""
    from replicate.sweep import SWEEP

    best, published = run_folder / BEST_WEIGHTS, run_folder / PUBLISHED_WEIGHTS
    if best.is_file():
        return best
    if _checkpointed(run_folder):
        return resolve_weights(run_folder)
    final = read_json(run_folder / SWEEP)["final_runs"] if (run_folder / SWEEP).is_file() else []
    if final and (weights := run_weights(run_folder / final[0])):
        return weights
    return published if published.is_file() else None


def _checkpointed(run_folder: Path) -> bool:
    return latest_checkpoint(run_folder) is not None


def has_weights(run_folder: Path) -> bool:
    return run_weights(run_folder) is not None


def publish_weights(run_folder: Path) -> Path:
    """The run's weights (`run_weights`) in bf16, beside its results, small enough to commit:
    the studies' 2.25M-parameter ViT takes 4.5 MB. They load into an fp32 model unchanged but
    for the rounding (8 bits of mantissa), which moves accuracies by well under a point."""
    source = run_weights(run_folder)
    if source is None:
        raise FileNotFoundError(f"{run_folder} holds no weights to publish")
    state, info = read_weights(source)
    half = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state.items()}
    target = run_folder / PUBLISHED_WEIGHTS
    with atomic_path(target) as tmp:
        save_file(half, tmp, metadata=info.to_metadata())
    return target


def _can_resume(folder: Path) -> bool:
    return (folder / CONFIG).is_file() and latest_checkpoint(folder) is not None


class Runner:
    """Runs the studies' runs under `out`, each at most once, dependencies first."""

    def __init__(self, studies: Mapping[str, Study], scale: Scale, out: Path) -> None:
        self.studies, self.scale, self.out = studies, scale, out
        self.environment = environment()

    def folder(self, study: str, run: str) -> Path:
        return self.out / study / run

    def spec(self, study: str, run: str) -> RunSpec:
        if study not in self.studies:
            raise ValueError(f"unknown study {study!r} in a run's arguments")
        for spec in self.studies[study].runs(self.scale):
            if spec.name == run:
                return spec
        raise ValueError(f"study {study!r} has no run {run!r} at scale {self.scale.name}")

    def ensure(self, study: str, spec: RunSpec, weights: bool = False) -> dict[str, Any]:
        """The run's summary, running it (and what it needs) first if it has not finished.

        weights: another run needs this one's weights. Checkpoints are not committed, so a
        finished run whose weights are not on this machine is run again (same seed and
        configuration) and its summary replaced.
        """
        folder = self.folder(study, spec.name)
        finished = (folder / SUMMARY).is_file()
        if finished and not (weights and not has_weights(folder)):
            summary = read_json(folder / SUMMARY)
        else:
            summary = self._run(study, spec, folder, finished)
        summary["training_time_s"] = training_seconds(folder)  # from its logs, every session
        if (
            weights
            and spec.tool in ("train", "sweep")
            and not (folder / PUBLISHED_WEIGHTS).is_file()
        ):
            publish_weights(folder)  # others start from it: its weights are committed
        return summary

    def _run(self, study: str, spec: RunSpec, folder: Path, finished: bool) -> dict[str, Any]:
        """Run `spec` (what it needs first) into `folder`, resuming a cut-off run; its summary."""
        if finished:
            log.info("%s/%s: re-run for its weights, which are not here", study, spec.name)
        for need in spec.needs:
            need_study, need_run = need.split("/", 1)
            self.ensure(need_study, self.spec(need_study, need_run), weights=True)
        args = [self._resolve(arg) for arg in spec.args]
        resume = spec.tool == "train" and _can_resume(folder)
        if folder.exists() and not resume and spec.tool != "sweep":  # cut off before a checkpoint
            shutil.rmtree(folder)
        estimate = self.estimate(study, spec)
        log.info("%s %s/%s: %s, %s", "resuming" if resume else "running", study, spec.name,
                 spec.tool, described(spec, estimate))  # fmt: skip
        start, cpu_start = time.perf_counter(), time.process_time()
        TOOLS[spec.tool](args, folder, resume)
        summary = {
            "study": study,
            "run": spec.name,
            "label": spec.label or spec.name,
            "tool": spec.tool,
            "args": list(spec.args),
            "scale": self.scale.name,
            "result": summarise(spec.tool, folder, args),
            "wall_time_s": round(time.perf_counter() - start, 1),  # this session's
            "cpu_time_s": round(time.process_time() - cpu_start, 1),  # all of its threads
            "estimate_s": None if estimate is None else round(estimate, 3),  # made before it
            "resumed": resume,
            **self.environment,
        }
        write_json(folder / SUMMARY, summary)
        return summary

    def _resolve(self, arg: str) -> str:
        """`{weights:STUDY/RUN}` -> that run's weights file; other arguments unchanged."""
        if not arg.startswith(WEIGHTS_PLACEHOLDER):
            return arg
        study, run = arg[len(WEIGHTS_PLACEHOLDER) : -1].split("/", 1)
        weights = run_weights(self.folder(study, run))
        if weights is None:
            raise FileNotFoundError(f"{study}/{run} left no weights")
        return str(weights)

    def run(self, study: Study) -> dict[str, Any]:
        """Every run of `study`; its study.json after each, so that a study cut off part-way
        has its finished runs summarised (`complete` false) and can be committed as it is."""
        specs = study.runs(self.scale)
        self.log_plan(study.name, specs)
        summaries: list[dict[str, Any]] = []
        for index, spec in enumerate(specs):
            summaries.append(self.ensure(study.name, spec))
            self.write_summary(study, summaries, complete=index + 1 == len(specs))
            done = summaries[-1]
            trained = done["training_time_s"]
            log.info("%s/%s: %s measured in this session%s (estimate: %s); %d of %d runs done",
                     study.name, spec.name, duration(done["wall_time_s"]),
                     f", {duration(trained)} of training logged in all" if trained else "",
                     described(spec, done.get("estimate_s")), index + 1, len(specs))  # fmt: skip
        return read_json(self.out / study.name / STUDY_SUMMARY)

    def log_plan(self, study: str, specs: Sequence[RunSpec]) -> None:
        """Each run still to go with its estimate, and their sum, before the first starts."""
        to_go = [s for s in specs if not (self.folder(study, s.name) / SUMMARY).is_file()]
        if not to_go:
            return
        estimates = [self.estimate(study, spec) for spec in to_go]
        for spec, estimate in zip(to_go, estimates, strict=True):
            log.info("  %s/%s: %s", study, spec.name, described(spec, estimate))
        total = sum(e for e in estimates if e is not None)
        log.info("%s: %d of %d runs to go, %s on this machine", study, len(to_go), len(specs),
                 described_total(to_go, total))  # fmt: skip

    def estimate(self, study: str, spec: RunSpec) -> float | None:
        """What is left of the run: a cut-off training run resumes from its last checkpoint."""
        folder = self.folder(study, spec.name)
        checkpoint = latest_checkpoint(folder) if spec.tool == "train" else None
        return estimate_s(spec, checkpoint.step if checkpoint else 0)

    def write_summary(self, study: Study, summaries: list[dict[str, Any]], complete: bool) -> None:
        summary = {
            "study": study.name,
            "title": study.title,
            "claim": study.claim,
            "scale": self.scale.name,
            "upstream": self.scale.upstream_name,
            "complete": complete,
            "planned_runs": [spec.name for spec in study.runs(self.scale)],
            "runs": summaries,
            "device_time_s": round(sum(s["wall_time_s"] for s in summaries), 1),
            "training_time_s": round(sum(s.get("training_time_s") or 0 for s in summaries), 1),
            "cpu_time_s": round(sum(s.get("cpu_time_s", 0.0) for s in summaries), 1),
            **self.environment,
            **shared_environment(summaries),
        }
        write_json(self.out / study.name / STUDY_SUMMARY, summary)

    def summarise_finished(self, study: Study) -> dict[str, Any] | None:
        """study.json from the runs that have finished, without running any: for a study cut
        off by the end of a session, whose finished runs are committed."""
        folders = [self.folder(study.name, spec.name) for spec in study.runs(self.scale)]
        summaries = [read_json(f / SUMMARY) for f in folders if (f / SUMMARY).is_file()]
        if not summaries:
            return None
        self.write_summary(study, summaries, complete=len(summaries) == len(folders))
        return read_json(self.out / study.name / STUDY_SUMMARY)


# What each tool's run folder yields for the study's table.


def summarise(tool: str, folder: Path, args: Sequence[str]) -> dict[str, Any]:
    if tool == "train":
        return summarise_training(folder)
    if tool == "sweep":
        return summarise_sweep(folder)
    if tool == "fewshot":
        return {"shots": read_json(folder / "fewshot.json")["accuracy"]}
    return summarise_figures(Path(args[args.index("--checkpoint") + 1]), folder)


def summarise_training(folder: Path) -> dict[str, Any]:
    """The run's result: with early stopping, the test accuracy of its best dev checkpoint
    (chosen on the dev split, never on the test split); else the last epoch's."""
    config = read_json(folder / CONFIG)
    last = last_epoch(folder)
    if (folder / TEST_RESULT).is_file():  # early stopping: the best dev checkpoint, tested once
        best = read_json(folder / TEST_RESULT)
        last = {**last, **{k: best[k] for k in ("test_acc", "test_top5", "test_loss")}}
        last |= {k: best[k] for k in ("dev_acc", "step", "test_images")}
    return {
        "variant": config["variant"],
        "dataset": config["dataset"],
        "recipe": config["recipe"]["name"],
        "image_size": config["image_size"],
        "precision": config["precision"],
        "steps": last["step"],
        "test_acc": last["test_acc"],
        "test_top5": last["test_top5"],
        "test_loss": last["test_loss"],
        "train_loss": last["train_loss"],
        "images_per_s": last["images_per_s"],
        "train_images": last.get("train_images"),
        "best_dev_acc": last.get("dev_acc"),
        "best_step": last.get("step") if "dev_acc" in last else None,
        "test_images": last.get("test_images"),
    }


def summarise_sweep(folder: Path) -> dict[str, Any]:
    """Appendix B.1.1: every candidate's dev accuracy, the choice, the one test evaluation."""
    from replicate.sweep import SWEEP

    sweep = read_json(folder / SWEEP)
    return {
        "candidates": sweep["candidates"],  # lr (weight_decay, crop_scale), dev_acc, run
        "best_lr": sweep["best_lr"],
        "best_weight_decay": sweep.get("best_weight_decay"),
        "best_crop_scale": sweep.get("best_crop_scale"),
        "test_acc": sweep["test_acc"],  # the mean over the final runs' seeds
        "test_accs": sweep["test_accs"],
        "final_runs": sweep["final_runs"],
        "final_steps": sweep.get("final_steps"),
        "train_images": sweep["train_images"],
        "precision": read_json(folder / sweep["final_runs"][0] / CONFIG)["precision"],
    }


def _without_per_image(record: dict[str, Any]) -> dict[str, Any]:
    return {key: {k: v for k, v in value.items() if not k.startswith("per_image")}
            if isinstance(value, dict) else value for key, value in record.items()}  # fmt: skip


def summarise_figures(checkpoint: Path, folder: Path) -> dict[str, Any]:
    """What the figures command measured of the model and its untrained twin: the structure
    of the position embeddings (Figure 7 centre) and the attention's distance and entropy by
    layer and head (Figure 7 right; each image's stay in the run's own file)."""
    from replicate.figures.make import FIGURE_7_CENTRE_NUMBERS, FIGURE_7_RIGHT_NUMBERS
    from replicate.training.checkpoint import run_checkpoint_info

    return {
        "position": read_json(folder / FIGURE_7_CENTRE_NUMBERS),
        "attention": _without_per_image(read_json(folder / FIGURE_7_RIGHT_NUMBERS)),
        "step": run_checkpoint_info(str(checkpoint)).step,
    }
