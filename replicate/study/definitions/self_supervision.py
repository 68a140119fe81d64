"""Study 4, `self-supervision`: Section 4.6 and Appendix B.1.2, masked patch prediction.

The scale's ViT is pre-trained on CIFAR-10's training images without their labels (50% of the
patch embeddings corrupted, the 3-bit mean colour of each predicted), at the rate that predicts
the colours best on the dev split (`PRETEXT_LRS`, each candidate `CANDIDATE_STEPS` long), the
chosen rate then trained `PRETEXT_STEPS`. Its pretext accuracy on the test images is recorded
beside what needs no learning: always the training patches' most common colour (the colour
prior) and each patch's left neighbour's colour (the neighbour copy).

Three arms then train on the data-size study's smallest label fraction (3%), each for
`Scale.few_label_steps`, each rate chosen on the 2% dev split, the choice trained with three
seeds and tested once on the 10,000 test images:

    scratch       the model's from-scratch recipe, its grid of rates (`Scale.scratch_lrs`)
    masked        from the masked-patch weights, Appendix B.1.1's fine-tuning, Table 4's grid
    supervised    from a ViT trained on all of CIFAR-10's labels (`Scale.best_vit`), fine-tuned
                  alike: it has seen every label, so an upper bound, not the paper's setting
                  (supervised pre-training on a larger labelled set, JFT)

The rules, fixed before the runs (Section 4.6 at ImageNet scale: +2% over scratch, 4% behind
supervised): masked beats scratch by at least `MINIMUM`; supervised beats masked by at least
`MINIMUM`; neither testable unless the pretext accuracy beats both the colour prior and the
neighbour copy by `PRETEXT_MARGIN` (the pretext task was learned, not guessed or copied).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from replicate.figures.studies import (
    Drawing,
    Summary,
    Table,
    grouped_bars,
    paired_rule_line,
    percent_cell,
    runs_by_name,
    sweep_scores,
    trained_on,
)
from replicate.runs.paired import Difference, paired_difference, verdict
from replicate.study.definitions import data_size
from replicate.study.definitions.common import budget, finetune, percent
from replicate.study.spec import RunSpec, Scale, Study, weights_of
from replicate.training.resolution import patch_size

NAME = "self-supervision"
PRETRAIN = "pretrain-masked-patch"
ARMS = {
    "scratch": "from scratch",
    "masked": "masked patch pre-training (no labels), fine-tuned",
    "supervised": "supervised pre-training on all labels (upper bound), fine-tuned",
}
MINIMUM = 0.02  # Section 4.6's 2% over scratch, and its 4% to supervised halved
PRETEXT_MARGIN = 0.05  # pretext accuracy over the better of the two baselines
BASELINES = "pretext_baselines.json"  # beside study.json: computed once from the test images
# By scale: masked patch prediction's rates (cpu: around scratch-small's Adam rate at batch
# 128), each tried this many steps on the dev split, the chosen one pre-training this many (cpu:
# about 8 epochs of the training images, without their labels).
PRETEXT_LRS = {
    "cpu": (0.0005, 0.001, 0.002),
    "gpu": (0.0005, 0.001, 0.002),
    "smoke": (0.001, 0.003),
}
CANDIDATE_STEPS = {"cpu": 300, "gpu": 100, "smoke": 2}
PRETEXT_STEPS = {"cpu": 3_000, "gpu": 3_000, "smoke": 3}


def label_fraction(scale: Scale) -> float:
    """The data-size study's smallest subset: where pre-training can matter most."""
    return min(data_size.FRACTIONS[scale.name])


def runs(scale: Scale) -> list[RunSpec]:
    common = {
        **scale.vit,
        "dataset": scale.upstream,
        "image_size": scale.image_size,
        "batch_size": scale.batch_size,
        "workers": scale.workers,
        "eval_every": scale.eval_every,
        "checkpoint_every": scale.checkpoint_every,
    }
    fraction = label_fraction(scale)
    sweep = {"val_fraction": scale.dev_fraction, "seeds": scale.finetune_seeds}
    on_labels = {**common, "train_fraction": fraction, **budget(scale.few_label_steps)}
    supervised = scale.best_vit or weights_of(data_size.NAME, data_size.run_name("vit", 1.0))
    starts = {"masked": weights_of(NAME, PRETRAIN), "supervised": supervised}
    specs = [
        RunSpec(
            PRETRAIN,
            "sweep",
            {
                "lrs": PRETEXT_LRS[scale.name],
                "val_fraction": scale.dev_fraction,
                "final_steps": PRETEXT_STEPS[scale.name],
            },
            label="masked patch prediction, no labels",
            train={**common, "recipe": "masked-patch", "steps": CANDIDATE_STEPS[scale.name]},
        ),
        RunSpec(
            f"vit-scratch-{percent(fraction)}",
            "sweep",
            {"lrs": scale.scratch_lrs["vit"], **sweep},
            label=f"{ARMS['scratch']}, {percent(fraction)}% of the labels",
            train={**on_labels, "recipe": scale.recipes["vit"]},
        ),
    ]
    for arm, weights in starts.items():
        specs.append(
            RunSpec(
                f"vit-{arm}-{percent(fraction)}",
                "sweep",
                {"lrs": scale.learning_rates, **sweep},
                label=f"{ARMS[arm]}, {percent(fraction)}% of the labels",
                train={**on_labels, **finetune(weights, scale.batch_size)},
            )
        )
    return specs


# What the pretext task scores without learning, on the test images


def pretext_baselines(pixels: torch.Tensor, prior_pixels: torch.Tensor, patch: int) -> dict:
    """The colour prior (always the most common colour of `prior_pixels`' patches; its
    cross-entropy in nats, add-one smoothed) and the neighbour copy (each patch the colour of
    its left neighbour, the first column its right), scored on every patch of `pixels`, both
    (N, 3, H, W) in [0, 1]."""
    from vit.masked_patch import COLOUR_BITS, mean_colour_classes

    classes = 2 ** (3 * COLOUR_BITS)
    target = mean_colour_classes(pixels, patch)  # (N, P), row-major patches
    prior = torch.bincount(mean_colour_classes(prior_pixels, patch).flatten(), minlength=classes)
    log_p = torch.log((prior + 1) / (prior + 1).sum())
    side = pixels.shape[-1] // patch
    grid = target.view(len(target), side, side)
    left = torch.cat([grid[:, :, 1:2], grid[:, :, :-1]], dim=2)  # column 0 copies column 1
    return {
        "colour_prior_acc": (target == prior.argmax()).float().mean().item(),
        "colour_prior_nats": -log_p[target].mean().item(),
        "neighbour_copy_acc": (grid == left).float().mean().item(),
        "images": len(target),
    }


def measured_baselines(summary: Summary, folder: Path) -> dict:
    """`pretext_baselines` of the upstream test images (the prior from as many training
    images, spread evenly over the split, which a folder lists class by class), computed once
    and kept in the study folder."""
    path = folder / BASELINES
    if not path.is_file():
        from replicate.data.datasets import DEFAULT_DATA_DIR, get_dataset_spec, load_splits
        from replicate.data.images import SquareImages

        config = json.loads((folder / PRETRAIN / _final(summary) / "config.json").read_text())
        splits = load_splits(get_dataset_spec(config["dataset"]), Path(DEFAULT_DATA_DIR))
        size = config["image_size"]
        patch = patch_size(config["variant"], config["model_overrides"])

        def pixels(split) -> torch.Tensor:
            view = SquareImages(split, size)
            picked = torch.linspace(0, len(view) - 1, min(len(view), len(splits.test))).long()
            return torch.stack([view[int(i)][0] for i in picked]).float() / 255

        baselines = pretext_baselines(pixels(splits.test), pixels(splits.train), patch)
        path.write_text(json.dumps(baselines, indent=2) + "\n")
    return json.loads(path.read_text())


def _final(summary: Summary) -> str:
    return runs_by_name(summary)[PRETRAIN]["result"]["final_runs"][0]


# The study's table, figure and rule, drawn from its study.json


def _arm_runs(summary: Summary) -> dict[str, Summary]:
    """arm -> its sweep's summary, for the arms that have run."""
    return {
        name.split("-")[1]: run
        for name, run in runs_by_name(summary).items()
        if name.startswith("vit-") and name.split("-")[1] in ARMS
    }


def self_supervision_verdicts(
    summary: Summary, folder: Path
) -> list[tuple[str, Difference | None, str]]:
    arms = _arm_runs(summary)
    pretrain = runs_by_name(summary).get(PRETRAIN)
    testable = False
    if pretrain:
        baselines = measured_baselines(summary, folder)
        floor = max(baselines["colour_prior_acc"], baselines["neighbour_copy_acc"])
        testable = pretrain["result"]["test_acc"] >= floor + PRETEXT_MARGIN
    scores = {arm: sweep_scores(folder, run) for arm, run in arms.items()}
    decided = []
    for better, worse, what in (("masked", "scratch", "masked patch pre-training beats training "
                                 "from scratch"), ("supervised", "masked", "supervised "
                                 "pre-training beats masked patch pre-training")):  # fmt: skip
        rule = f"{what} on the same labels by at least {100 * MINIMUM:.0f} points"
        if better not in scores or worse not in scores:
            decided.append((rule, None, "not yet run"))
            continue
        difference = paired_difference(scores[better], scores[worse])
        decided.append((rule, difference, verdict(difference, MINIMUM, testable)))
    return decided


def self_supervision_notes(summary: Summary, folder: Path) -> str:
    notes = ""
    pretrain = runs_by_name(summary).get(PRETRAIN)
    if pretrain:
        b = measured_baselines(summary, folder)
        notes += (
            f"The pretext task on {b['images']:,} test images: masked patch prediction "
            f"{100 * pretrain['result']['test_acc']:.1f}% of the corrupted patches' colours "
            f"(lr {pretrain['result']['best_lr']:g} chosen on the dev split); without learning, "
            f"the colour prior {100 * b['colour_prior_acc']:.1f}% "
            f"({b['colour_prior_nats']:.2f} nats), the neighbour copy "
            f"{100 * b['neighbour_copy_acc']:.1f}%. The claims are testable when the pretext "
            f"accuracy beats both by {100 * PRETEXT_MARGIN:.0f} points.\n\n"
        )
    verdicts = self_supervision_verdicts(summary, folder)
    return notes + "".join(paired_rule_line(*decided) for decided in verdicts)


def self_supervision_table(summary: Summary, folder: Path) -> Table:
    arms = _arm_runs(summary)
    rows = []
    for arm, label in ARMS.items():
        result = arms.get(arm, {}).get("result", {})
        seeds = ", ".join(f"{100 * a:.1f}" for a in result.get("test_accs", []))
        lr = result.get("best_lr")
        rows.append([label, percent_cell(result.get("test_acc")) + (f" ({seeds})" if seeds else ""),
                     "-" if lr is None else f"{lr:g}"])  # fmt: skip
    return Table(["start", "test top-1, mean (seeds)", "lr (dev split)"], rows)


def self_supervision_figure(summary: Summary, ax, folder: Path) -> None:
    arms = _arm_runs(summary)
    images = {arm: len(sweep_scores(folder, run)[0])
              for arm, run in arms.items()}  # fmt: skip
    grouped_bars(ax, ["the smallest label fraction"],
                 {label: [(arms[arm]["result"]["test_acc"], images[arm]) if arm in arms else None]
                  for arm, label in ARMS.items()})  # fmt: skip
    ax.axhline(10, color="grey", ls="--", lw=1, label="chance (10 classes)")
    ax.set_ylabel(f"{trained_on(summary)} test top-1 (%, 95% interval)")
    ax.legend(fontsize="small", loc="lower right")


STUDY = Study(
    name=NAME,
    title="Masked patch prediction (Section 4.6)",
    claim=(
        'Section 4.6: "With self-supervised pre-training, our smaller ViT-B/16 model achieves '
        "79.9% accuracy on ImageNet, a significant improvement of 2% to training from scratch, "
        'but still 4% behind supervised pre-training."'
    ),
    runs=runs,
    drawing=Drawing(self_supervision_table, self_supervision_figure, self_supervision_notes),
)
