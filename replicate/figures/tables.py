"""Table 1 measured, and each run's accuracy beside the paper's (Tables 2 and 5), in Markdown."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from replicate.figures.paper_numbers import (
    PaperAccuracy,
    paper_accuracy,
    paper_dataset,
    paper_variant,
    pretraining_dataset,
)
from replicate.flops import forward_flops
from replicate.runs.read import Run
from replicate.training.resolution import nearest_multiple
from vit import create_model, list_models
from vit.variants import VARIANTS

NO_PAPER_NUMBER = "no paper number"


@dataclass(frozen=True)
class VariantRow:
    """One registered ViT variant, measured: its config, parameters and forward FLOPs."""

    name: str  # registry name, "vit_b16"
    paper_name: str  # "ViT-B/16"
    layers: int
    hidden_size: int
    mlp_size: int
    heads: int
    params: int  # with a 1000-class head, at 224 (E_pos grows with the resolution)
    gflops_224: float
    fine_tune_size: int  # 384 rounded to the patch size (/14: 378), replicate.training.resolution
    gflops_fine_tune: float


def measure_variant(name: str) -> VariantRow:
    """Build `name` on the meta device (no memory, no time) and read its size off it."""
    with torch.device("meta"):
        model = create_model(name, num_classes=1000, image_size=224)
    c = model.config
    step = c.downsampling  # pixels per token: the patch size, or a hybrid's total stride
    fine_tune_size = nearest_multiple(384, step)  # Table 5: "fine-tuned at 384 resolution"
    return VariantRow(
        name=name,
        paper_name=VARIANTS[name].paper_name,
        layers=c.depth,
        hidden_size=c.hidden_size,
        mlp_size=c.mlp_size,
        heads=c.num_heads,
        params=sum(p.numel() for p in model.parameters()),
        gflops_224=forward_flops(name, 224) / 1e9,
        fine_tune_size=fine_tune_size,
        gflops_fine_tune=forward_flops(name, fine_tune_size) / 1e9,
    )


def table1_markdown(rows: list[VariantRow] | None = None) -> str:
    """Table 1 measured on every registered ViT variant, beside the paper's row for its size."""
    rows = rows if rows is not None else [measure_variant(n) for n in list_models("vit")]
    lines = [
        "| model | layers | hidden size D | MLP size | heads | params | paper (Table 1) "
        "| GFLOPs 224² | GFLOPs 384² |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for r in rows:
        paper = paper_variant(r.paper_name)
        paper_cell = (
            f"{paper.name}: {paper.layers} / {paper.hidden_size} / {paper.mlp_size} / "
            f"{paper.heads}, {paper.params_millions}M"
            if paper
            else "not in the paper"
        )
        lines.append(
            f"| {r.paper_name} (`{r.name}`) | {r.layers} | {r.hidden_size} | {r.mlp_size} "
            f"| {r.heads} | {r.params / 1e6:.1f}M | {paper_cell} "
            f"| {r.gflops_224:.1f} | {r.gflops_fine_tune:.1f}{_size_note(r.fine_tune_size)} |"
        )
    notes = (
        "Measured on the meta device with a 1000-class head at 224² (position embeddings grow "
        "with the resolution). The paper gives one parameter count per size (B, L, H), whatever "
        "the patch size. GFLOPs: one forward pass of one image, 2 FLOPs per multiply-add, "
        "counted by `torch.utils.flop_counter` (`replicate.flops`)."
    )
    return "\n".join(["# Table 1, measured", "", *lines, "", notes, ""])


def _size_note(size: int) -> str:
    return "" if size == 384 else f" ({size}²)"


@dataclass(frozen=True)
class ResultRow:
    run: str
    model: str  # paper name where the variant is a ViT, else the registry name
    pretrained: str  # the weights spec, or "scratch"
    dataset: str
    epochs: int
    test_acc: float | None  # final epoch, %; None for a run evaluated on a dev split only
    paper: PaperAccuracy | None
    eval_split: str = "test"


def result_row(run: Run) -> ResultRow:
    """A run's final test accuracy, matched to the paper's number for the same model,
    pre-training data and dataset."""
    variant = run.config.get("variant", "?")
    model = VARIANTS[variant].paper_name if variant in VARIANTS else variant
    dataset = run.dataset
    spec = run.pretrained
    final_acc = run.final("test_acc")
    paper = paper_accuracy(model, pretraining_dataset(spec, dataset), dataset)
    recipe = run.config.get("recipe")  # a dict in replicate.train's config.json
    if isinstance(recipe, dict) and recipe.get("objective") == "masked-patch":
        model += ", masked-patch pre-training (colour accuracy)"  # not a classification top-1
        paper = None
    return ResultRow(
        run=run.name,
        model=model,
        pretrained=spec or "scratch",
        dataset=dataset,
        epochs=run.metrics[-1]["epoch"],
        test_acc=None if final_acc is None else 100 * final_acc,
        paper=paper,
        eval_split=run.eval_split,
    )


def _paper_cell(paper: PaperAccuracy | None) -> str:
    if paper is None:
        return NO_PAPER_NUMBER
    spread = f" ± {paper.std:.2f}" if paper.std is not None else ""
    return f"{paper.top1:.2f}{spread} ({paper.source}, {paper.pretraining} pre-training)"


def results_markdown(runs: list[Run]) -> str:
    """Each run's final test top-1 beside the paper's, "no paper number" where it has none."""
    lines = [
        "| run | model | weights | dataset | epochs | test top-1 (%) | paper top-1 (%) | Δ |",
        "| --- | --- | --- | --- | ---: | ---: | --- | ---: |",
    ]
    for r in map(result_row, runs):
        ours = f"{r.test_acc:.2f}" if r.test_acc is not None else "—"
        if r.eval_split != "test":
            ours += f" ({r.eval_split} split only)"
        delta = (
            f"{r.test_acc - r.paper.top1:+.2f}"
            if r.paper is not None and r.test_acc is not None
            else "—"
        )
        dataset = paper_dataset(r.dataset) or r.dataset
        lines.append(
            f"| {r.run} | {r.model} | `{r.pretrained}` | {dataset} | {r.epochs} | {ours} "
            f"| {_paper_cell(r.paper)} | {delta} |"
        )
    notes = (
        "Paper numbers: top-1 after fine-tuning at 384² (Table 5; Table 2 where Table 5 has "
        "none), matched on model, pre-training data (read from the weights spec: `in21k`, "
        "`in1k`, `jft`; training from scratch is matched as pre-training on the dataset "
        "itself) and dataset."
    )
    return "\n".join(["# Results beside the paper", "", *lines, "", notes, ""])
