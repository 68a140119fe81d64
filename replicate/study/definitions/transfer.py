"""Study 2, `transfer`: Tables 2 and 5 in miniature, on a downstream task with thousands of test
images.

CIFAR-10's classes split in two (`SPLIT`): the scale's ViT and BiT ResNet are pre-trained from
scratch on the first five (A: airplane, automobile, bird, cat, deer; all their training images,
each model's own from-scratch recipe, early stopping on a 2% dev split), then trained on the
other five (B: dog, frog, horse, ship, truck) from 100 labelled images a class and scored on
B's 5,000 test images. Two arms per model, tuned alike:

    fine-tuned      from A's weights with Appendix B.1.1's protocol (SGD with momentum, the head
                    replaced by a zero-initialised layer), the rate from Table 4's grid
    from scratch    the model's from-scratch recipe, the rate from a grid of as many points
                    around the recipe's own

Each arm's rate is chosen on a dev split of 100 more labelled images a class (98 train on each
candidate), with the same steps for every run; the chosen rate then trains three seeds on the
100 labels and is tested once. Beside them: the frozen A model's few-shot linear accuracy on B
(Section 4.1, "Metrics"). Every comparison is paired image by image on B's test images, the
interval covering the seeds' spread too (`replicate.runs.paired`).

The rules, fixed before the runs: fine-tuning beats scratch by at least `FINETUNE_MINIMUM` for
each model (Section 4.2); the BiT ResNet fine-tuned beats the ViT fine-tuned by at least
`BIT_MINIMUM` (Table 5 and Figure 3 at ImageNet scale: with little pre-training data, ResNets
transfer better). Neither is testable when a model failed to learn A (`PRETRAINED_FLOOR`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from replicate.figures.studies import (
    MODEL_NAMES,
    Drawing,
    Summary,
    Table,
    grouped_bars,
    model_label,
    paired_rule_line,
    percent_cell,
    runs_by_name,
    sweep_scores,
)
from replicate.runs.files import read_json
from replicate.runs.paired import Difference, paired_difference, verdict
from replicate.study.definitions.common import budget, finetune
from replicate.study.definitions.common import upstream as upstream_settings
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "transfer"
DEV_FRACTION = 0.02  # of B's training images: 100 a class, as many as the labels trained on
LABELS_FRACTION = 0.02  # of B's training images: 100 a class (98 beside the dev split)
EVAL_EVERY = 100  # steps: a candidate's dev accuracy a few times, not after every tiny epoch
FINETUNE_MINIMUM = 0.05  # fine-tuned over scratch, per model
BIT_MINIMUM = 0.02  # BiT fine-tuned over ViT fine-tuned
PRETRAINED_FLOOR = 0.6  # test top-1 on A's 5 classes (chance 0.2) below which nothing transfers
# By scale: the upstream classes split in two (A, B); the pre-training steps on A (cpu: about 8
# epochs of A's 24,500 training images); the batch of the runs on B.
CIFAR10_SPLIT = (("airplane", "automobile", "bird", "cat", "deer"),
                 ("dog", "frog", "horse", "ship", "truck"))  # fmt: skip
SPLIT = {"cpu": CIFAR10_SPLIT, "gpu": CIFAR10_SPLIT, "smoke": (tuple("01234"), tuple("56789"))}
PRETRAIN_STEPS = {"cpu": 1_500, "gpu": 3_000, "smoke": 2}
BATCH_SIZE = {"cpu": 64, "gpu": 256, "smoke": 32}


def classes(dataset: str, names: tuple[str, ...]) -> str:
    """`imagefolder:PATH` with some classes: `imagefolder:PATH[dog,frog]`."""
    return f"{dataset}[{','.join(names)}]"


def pretrain_name(model: str) -> str:
    return f"{model}-pretrain"


def runs(scale: Scale) -> list[RunSpec]:
    upstream, downstream = (classes(scale.upstream, names) for names in SPLIT[scale.name])
    batch_size = BATCH_SIZE[scale.name]
    specs = []
    for model, settings in scale.models.items():
        name = scale.names[model]
        recipe = {"recipe": scale.recipes[model]}
        weights = weights_of(NAME, pretrain_name(model))
        on_b = {
            **settings,
            "dataset": downstream,
            "image_size": scale.image_size,
            "batch_size": batch_size,
            "workers": scale.workers,
            "train_fraction": LABELS_FRACTION,
            "eval_every": EVAL_EVERY,
            **budget(scale.few_label_steps),
        }
        sweep = {"val_fraction": DEV_FRACTION, "seeds": scale.finetune_seeds}
        specs += [
            RunSpec(
                pretrain_name(model),
                "train",
                {
                    **settings,
                    **recipe,
                    **upstream_settings(scale),
                    "dataset": upstream,
                    "steps": PRETRAIN_STEPS[scale.name],
                },
                label=f"{name}, pre-trained on A",
            ),
            RunSpec(
                f"{model}-finetune",
                "sweep",
                {"lrs": scale.learning_rates, **sweep},
                label=f"{name}, pre-trained on A, fine-tuned on B",
                train={**on_b, **finetune(weights, batch_size)},
            ),
            RunSpec(
                f"{model}-scratch",
                "sweep",
                {"lrs": scale.scratch_lrs[model], **sweep},
                label=f"{name}, from scratch on B",
                train={**on_b, **recipe},
            ),
            RunSpec(
                f"{model}-fewshot",
                "fewshot",
                {"checkpoint": weights, "dataset": downstream, "shots": scale.shots},
                label=f"{name}, pre-trained on A, frozen: few-shot linear on B",
            ),
        ]
    return specs


# The study's table, figure and rule, drawn from its study.json


def final_scores(summary: Summary, folder: Path, run: str) -> list[np.ndarray] | None:
    """Right (1) or wrong (0) on each of B's test images, one array per final seed of the sweep
    `run`; None where it has not finished."""
    sweep = runs_by_name(summary).get(run)
    if sweep is None:
        return None
    return sweep_scores(folder, sweep)


def transfer_verdicts(summary: Summary, folder: Path) -> list[tuple[str, Difference | None, str]]:
    """(rule, measured difference or None, verdict) of each claim, by the rules above."""
    runs = runs_by_name(summary)
    pretrained = [runs.get(pretrain_name(model)) for model in MODEL_NAMES]
    learned = all(run and run["result"]["test_acc"] >= PRETRAINED_FLOOR for run in pretrained)
    scores = {
        (model, arm): final_scores(summary, folder, f"{model}-{arm}")
        for model in MODEL_NAMES
        for arm in ("finetune", "scratch")
    }
    claims = [
        (f"{model_label(summary, model)} pre-trained on A and fine-tuned beats the same model "
         f"from scratch on B's labels by at least {100 * FINETUNE_MINIMUM:.0f} points",
         (model, "finetune"), (model, "scratch"), FINETUNE_MINIMUM)
        for model in MODEL_NAMES
    ]  # fmt: skip
    claims.append((
        f"the BiT ResNet fine-tuned beats the ViT fine-tuned by at least "
        f"{100 * BIT_MINIMUM:.0f} points", ("bit", "finetune"), ("vit", "finetune"), BIT_MINIMUM,
    ))  # fmt: skip
    decided = []
    for rule, arm, control, minimum in claims:
        if scores[arm] is None or scores[control] is None:
            decided.append((rule, None, "not yet run"))
            continue
        difference = paired_difference(scores[arm], scores[control])
        decided.append((rule, difference, verdict(difference, minimum, testable=learned)))
    return decided


def transfer_notes(summary: Summary, folder: Path) -> str:
    notes = (
        f"Rules fixed before the runs, paired on B's test images, the interval covering the "
        f"seeds: a claim is testable only if both models learned A (test top-1 >= "
        f"{100 * PRETRAINED_FLOOR:.0f}%, chance 20%).\n\n"
    )
    return notes + "".join(
        paired_rule_line(*decided) for decided in transfer_verdicts(summary, folder)
    )


def transfer_table(summary: Summary, folder: Path | None = None) -> Table:
    runs = runs_by_name(summary)
    shots = sorted(
        {int(k) for r in summary["runs"] if r["tool"] == "fewshot" for k in r["result"]["shots"]}
    )
    rows = []
    for model in MODEL_NAMES:
        pretrained = runs.get(pretrain_name(model), {}).get("result", {})
        cells = [model_label(summary, model), percent_cell(pretrained.get("test_acc"))]
        for arm in ("finetune", "scratch"):
            sweep = runs.get(f"{model}-{arm}", {}).get("result", {})
            accs = sweep.get("test_accs") or []
            seeds = ", ".join(f"{100 * a:.1f}" for a in accs)
            lr = sweep.get("best_lr")
            cells += [percent_cell(sweep.get("test_acc")) + (f" ({seeds})" if seeds else ""),
                      "-" if lr is None else f"{lr:g}"]  # fmt: skip
        fewshot = runs.get(f"{model}-fewshot", {}).get("result", {}).get("shots", {})
        rows.append([*cells, *(percent_cell(fewshot.get(str(k))) for k in shots)])
    columns = [
        "model",
        "A test top-1",
        "B fine-tuned (seeds)",
        "lr",
        "B from scratch (seeds)",
        "lr",
    ]
    return Table([*columns, *(f"B {k}-shot linear" for k in shots)], rows)


def transfer_figure(summary: Summary, ax, folder: Path) -> None:
    """Each arm's mean over seeds on B's test images, with a 95% interval over the images."""
    runs = runs_by_name(summary)
    arms = {"fine-tuned from A": "finetune", "from scratch": "scratch"}
    images = _test_images(summary, folder)
    grouped_bars(ax, [model_label(summary, m) for m in MODEL_NAMES],
                 {label: [_measured(runs, f"{m}-{arm}", images) for m in MODEL_NAMES]
                  for label, arm in arms.items()})  # fmt: skip
    ax.axhline(20, color="grey", ls="--", lw=1, label="chance (5 classes)")
    ax.set_ylabel(f"B test top-1 (%, {images:,} images, 95% interval)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small", loc="lower right")


def _test_images(summary: Summary, folder: Path) -> int:
    """How many of B's test images the final runs were scored on."""
    for run in summary["runs"]:
        if run["tool"] == "sweep":
            path = folder / run["run"] / run["result"]["final_runs"][0] / "predictions.json"
            return len(read_json(path)["true"])
    return 0


def _measured(runs: dict[str, Summary], run: str, images: int) -> tuple[float, int] | None:
    sweep = runs.get(run)
    return None if sweep is None else (sweep["result"]["test_acc"], images)


STUDY = Study(
    name=NAME,
    title="Transfer with few labels, in miniature (Tables 2 and 5)",
    claim=(
        "Section 4.2 and Appendix B.1.1: pre-trained models fine-tuned with SGD and a "
        "zero-initialised head transfer well to data sets with few labels, far above training "
        "from scratch on them; at small pre-training scale (ImageNet) BiT ResNets transfer "
        "better than ViTs (Table 5, Figure 3)."
    ),
    runs=runs,
    drawing=Drawing(transfer_table, transfer_figure, transfer_notes),
)
