"""Study 2, `transfer`: Tables 2 and 5 in miniature.

The ViT and the ResNet of the data-size study, pre-trained on all of CIFAR-10, are fine-tuned on
the ants vs bees photos with the paper's protocol (Appendix B.1.1, Table 4): SGD with momentum,
the head replaced by a zero-initialised layer, twice the pre-training resolution with E_pos
interpolated (Section 3.2), the learning rate chosen from Table 4's grid on a 10% dev split, then
trained on the whole training set and evaluated once on the test set. Beside each: the same model
trained from scratch on the photos with the same budget, and the few-shot linear accuracy of the
frozen pre-trained model (Section 4.1, "Metrics").
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from replicate.figures.studies import (
    MODEL_NAMES,
    Drawing,
    Summary,
    Table,
    difference_verdict,
    grouped_bars,
    majority_share,
    model_label,
    percent_cell,
    rule_line,
    runs_by_name,
    test_acc,
    test_images,
    trained_on,
    with_interval,
)
from replicate.study.definitions import data_size
from replicate.study.definitions.common import downstream, finetune
from replicate.study.spec import RunSpec, Scale, Study, weights_of

NAME = "transfer"
DEV_FRACTION = 0.1  # Appendix B.1.1: 10% for the small datasets (Pets, Flowers)


def runs(scale: Scale) -> list[RunSpec]:
    specs = []
    for model in data_size.MODELS:
        paper_name = data_size.model_name(scale, model)
        pretrained = weights_of(data_size.NAME, data_size.run_name(model, 1.0))
        specs += [
            RunSpec(
                f"{model}-finetune",
                "sweep",
                {
                    "lrs": scale.learning_rates,
                    "val_fraction": DEV_FRACTION,
                    "seeds": scale.finetune_seeds,
                },
                label=f"{paper_name}, {scale.upstream_name} pre-trained, fine-tuned",
                train={
                    **scale.models[model],
                    **downstream(scale),
                    **finetune(pretrained, scale.finetune_batch_size),
                },
            ),
            RunSpec(
                f"{model}-scratch",
                "train",
                {**scale.models[model], **downstream(scale)},
                label=f"{paper_name}, from scratch on the photos",
            ),
            RunSpec(
                f"{model}-fewshot",
                "fewshot",
                {"checkpoint": pretrained, "dataset": scale.downstream, "shots": scale.shots},
                label=f"{paper_name}, {scale.upstream_name} pre-trained, frozen: few-shot linear",
            ),
        ]
    return specs


# The study's table, figure and rule, drawn from its study.json


def transfer_table(summary: Summary, folder: Path | None = None) -> Table:
    runs = runs_by_name(summary)
    shots = sorted(
        {int(k) for r in summary["runs"] if r["tool"] == "fewshot" for k in r["result"]["shots"]}
    )
    rows = []
    for model in MODEL_NAMES:
        name = model_label(summary, model)
        finetune = runs.get(f"{model}-finetune")
        fewshot = runs.get(f"{model}-fewshot", {}).get("result", {}).get("shots", {})
        best_lr = finetune["result"].get("best_lr") if finetune else None
        tested = [
            with_interval(test_acc(runs.get(run)), test_images(folder / run) if folder else None)
            for run in (f"{model}-finetune", f"{model}-scratch")
        ]
        rows.append(
            [
                name,
                tested[0],
                "-" if best_lr is None else f"{best_lr:g}",
                tested[1],
                *(percent_cell(fewshot.get(str(k))) for k in shots),
            ]
        )
    columns = [
        "model",
        "fine-tuned (95% interval)",
        "lr (dev split)",
        "from scratch (95% interval)",
    ]
    return Table([*columns, *(f"{k}-shot linear" for k in shots)], rows)


def _measured(runs: dict[str, Summary], folder: Path, name: str) -> tuple[float, int] | None:
    """(test top-1, test images) of run `name`, or None where it has not run."""
    images = test_images(folder / name)
    return None if name not in runs or images is None else (test_acc(runs[name]), images)


def transfer_notes(summary: Summary, folder: Path) -> str:
    """Section 4.2's claims on the photos: each pre-trained model fine-tuned beats the same
    model trained from scratch on them; and (Table 5, Figure 3 at ImageNet scale) the BiT
    ResNet transfers better than the ViT."""
    measured = partial(_measured, runs_by_name(summary), folder)
    lines = []
    for model in MODEL_NAMES:
        finetuned, scratch = measured(f"{model}-finetune"), measured(f"{model}-scratch")
        if finetuned and scratch:
            lines.append(rule_line(
                f"{model_label(summary, model)} pre-trained on {trained_on(summary)} and "
                "fine-tuned beats the same model trained from scratch on the photos",
                difference_verdict([(1, *finetuned), (-1, *scratch)]),
            ))  # fmt: skip
    bit, vit = measured("bit-finetune"), measured("vit-finetune")
    if bit and vit:
        lines.append(rule_line(
            "the BiT ResNet fine-tuned beats the ViT fine-tuned",
            difference_verdict([(1, *bit), (-1, *vit)]),
        ))  # fmt: skip
    return "".join(lines)


def transfer_figure(summary: Summary, ax, folder: Path) -> None:
    """Fine-tuned and from scratch with their 95% intervals, and the majority class's share."""
    measured = partial(_measured, runs_by_name(summary), folder)
    arms = {"fine-tuned": "finetune", "from scratch": "scratch"}
    grouped_bars(ax, [model_label(summary, m) for m in MODEL_NAMES],
                 {label: [measured(f"{m}-{arm}") for m in MODEL_NAMES]
                  for label, arm in arms.items()})  # fmt: skip
    majority = majority_share(folder / "vit-scratch")
    if majority is not None:
        ax.axhline(100 * majority, color="grey", ls="--", lw=1, label="the majority class")
    ax.set_ylabel("ants vs bees test top-1 (%, 95% interval)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small", loc="lower right")


STUDY = Study(
    name=NAME,
    title="Transfer to a small dataset, in miniature (Tables 2 and 5)",
    claim=(
        "Section 4.2 and Appendix B.1.1: pre-trained models fine-tuned with SGD, a "
        "zero-initialised head and a higher resolution transfer well to small datasets, far "
        "above training from scratch on them; at small pre-training scale (ImageNet) BiT "
        "ResNets transfer better than ViTs (Table 5, Figure 3)."
    ),
    runs=runs,
    drawing=Drawing(transfer_table, transfer_figure, transfer_notes),
)
