"""Study 0, `recipe`: the training recipe of the studies chosen on the dev split, the same
search for both models, and the sanity check of what it trains.

For the ViT and the ResNet alike, one grid (`Scale.search`): every learning rate with every
weight decay and every floor of the inception crop, each candidate trained for a short budget
on CIFAR-10 minus its 2% dev split and scored on that split (Appendix B.1.1's protocol, with
the same number of trials for each model). The crop the studies use is the floor whose best
candidates score higher over both models together; each model keeps its best learning rate
and weight decay at that floor. The chosen candidate is then trained on the whole training set
for as long as the scale's budget allows and tested once: the sanity check that the training
behind every study is sound.
"""

from __future__ import annotations

from pathlib import Path

from replicate.figures.studies import (
    MODEL_NAMES,
    Drawing,
    Summary,
    Table,
    Verdict,
    difference_verdict,
    model_label,
    plot_with_intervals,
    runs_by_name,
    test_images,
    trained_on,
    with_interval,
)
from replicate.study.definitions import data_size
from replicate.study.spec import RunSpec, Scale, Study

NAME = "recipe"


def run_name(model: str) -> str:
    return f"{model}-search"


def runs(scale: Scale) -> list[RunSpec]:
    search = scale.search
    return [
        RunSpec(
            run_name(model),
            "sweep",
            {
                "lrs": search.lrs,
                "weight_decays": search.weight_decays,
                "crop_scales": search.crop_scales,
                "val_fraction": scale.dev_fraction,
                "final_steps": search.final_steps[model],
            },
            label=data_size.model_name(scale, model),
            train={
                **scale.models[model],
                "dataset": scale.upstream,
                "image_size": scale.image_size,
                "batch_size": scale.batch_size,
                "workers": scale.workers,
                "checkpoint_every": scale.checkpoint_every,
                "steps": search.steps,
            },
        )
        for model in data_size.MODELS
    ]


# The study's table, figure and rule, drawn from its study.json


def recipe_candidates(summary: Summary) -> dict[str, list[Summary]]:
    """model -> its sweep's candidates (lr, weight_decay, crop_scale, dev_acc, run)."""
    runs = runs_by_name(summary)
    return {
        model: runs[f"{model}-search"]["result"]["candidates"]
        for model in MODEL_NAMES
        if f"{model}-search" in runs
    }


def recipe_choice(summary: Summary) -> tuple[float, dict[str, Summary]] | None:
    """The crop floor whose best candidates score highest over both models together, and each
    model's best candidate at that floor: the recipe the studies take."""
    candidates = recipe_candidates(summary)
    if len(candidates) < len(MODEL_NAMES):
        return None
    floors = sorted({c["crop_scale"] for found in candidates.values() for c in found})

    def best(model: str, floor: float) -> Summary:
        return max((c for c in candidates[model] if c["crop_scale"] == floor),
                   key=lambda c: c["dev_acc"])  # fmt: skip

    floor = max(floors, key=lambda f: sum(best(m, f)["dev_acc"] for m in candidates))
    return floor, {model: best(model, floor) for model in candidates}


def recipe_table(summary: Summary, folder: Path) -> Table:
    choice = recipe_choice(summary)
    chosen = {m: c["run"] for m, c in choice[1].items()} if choice else {}
    rows = []
    for model, candidates in recipe_candidates(summary).items():
        for c in candidates:
            images = test_images(folder / f"{model}-search" / c["run"])
            dev = with_interval(c["dev_acc"], images)
            mark = " **(chosen)**" if chosen.get(model) == c["run"] else ""
            rows.append([model_label(summary, model) + mark, f"{c['lr']:g}",
                         f"{c['weight_decay']:g}", f"{c['crop_scale']:g}", dev])  # fmt: skip
    return Table(["model", "lr", "weight decay", "crop floor", "dev top-1 [95%]"], rows)


# What a sound run reaches on all of CIFAR-10 from scratch within the cpu budget (test top-1).
SANITY_TARGETS = {"vit": 0.65, "bit": 0.85}


def recipe_notes(summary: Summary, folder: Path) -> str:
    """The recipe the studies take, and the sanity rule: each model's own best candidate
    trained on the whole training set reaches its target (95% interval above it)."""
    lines = []
    choice = recipe_choice(summary)
    if choice:
        floor, best = choice
        each = "; ".join(
            f"{model_label(summary, m)}: lr {c['lr']:g}, weight decay {c['weight_decay']:g}"
            for m, c in best.items()
        )
        lines.append(f"Chosen for the studies: the inception crop with a {floor:g} area floor "
                     f"for both models (the higher sum of each model's best dev accuracy); "
                     f"{each}.\n\n")  # fmt: skip
    runs = runs_by_name(summary)
    for model, target in SANITY_TARGETS.items():
        result = runs.get(f"{model}-search", {}).get("result", {})
        if result.get("test_acc") is None:  # the search's final run has not finished
            continue
        images = test_images(folder / f"{model}-search" / result["final_runs"][0])
        if images is None:
            continue
        measured = difference_verdict([(1, result["test_acc"], images)])
        verdict = Verdict(measured.effect - target, measured.half_width)
        lines.append(
            f"Sanity: {model_label(summary, model)} with its best candidate "
            f"(lr {result['best_lr']:g}, weight decay {result['best_weight_decay']:g}, crop "
            f"floor {result['best_crop_scale']:g}) on all {result['train_images']:,} training "
            f"images for {result['final_steps']:,} steps: test top-1 "
            f"{with_interval(result['test_acc'], images)} against the target "
            f"{100 * target:.0f}%: {100 * verdict.effect:+.1f} points "
            f"(± {100 * verdict.half_width:.1f}); **{verdict.word}**.\n\n"
        )
    return "".join(lines)


def recipe_figure(summary: Summary, ax, folder: Path) -> None:
    """Each model's dev accuracy by candidate, with 95% intervals."""
    for offset, (model, candidates) in zip(
        (-0.15, 0.15), recipe_candidates(summary).items(), strict=False
    ):
        accuracy = [c["dev_acc"] for c in candidates]
        images = [test_images(folder / f"{model}-search" / c["run"]) or 1 for c in candidates]
        x = [i + offset for i in range(len(candidates))]
        plot_with_intervals(ax, x, accuracy, images, linestyle="none",
                            label=model_label(summary, model))  # fmt: skip
        ax.set_xticks(range(len(candidates)), [
            f"lr {c['lr']:g}\nwd {c['weight_decay']:g}\ncrop {c['crop_scale']:g}"
            for c in candidates], fontsize=7)  # fmt: skip
    ax.set_ylabel(f"{trained_on(summary)} dev top-1 (%)")
    ax.legend()


STUDY = Study(
    name=NAME,
    title="The studies' recipe, chosen on the dev split, and the sanity check",
    claim=(
        "Appendix B.1.1: hyper-parameters are chosen on a small dev split held out of the "
        "training set. The same grid for both models (learning rate x weight decay x crop "
        "floor). Sanity: the chosen candidate, trained on the whole training set from scratch "
        "within the cpu budget, reaches what a sound run of its model reaches there."
    ),
    runs=runs,
    drawing=Drawing(recipe_table, recipe_figure, recipe_notes),
)
