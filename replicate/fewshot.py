"""Few-shot linear evaluation of frozen representations (Section 4.1, "Metrics").

    python -m replicate.fewshot --checkpoint runs/vit_b16-digits-.../model.safetensors \\
        --dataset digits --shots 1 5 10 25 --seeds 3
    python -m replicate.fewshot --pretrained timm:vit_base_patch16_224.orig_in21k_ft_in1k \\
        --dataset imagefolder:.data/cifar10 --image-size 224 --max-test-images 2000

"Few-shot accuracies are obtained by solving a regularized least-squares regression problem that
maps the (frozen) representation of a subset of training images to {-1, 1}^K target vectors.
This formulation allows us to recover the exact solution in closed form."

As big_vision's `fewshot_lsr` evaluator does it: for each seed, k training images per class
(a seeded permutation of each class, its first k, so the 5 shots include the 1); their
representations (the input of the classifier: the LN'd class token, or the pre-logits layer
where the model has one) standardised per feature with the mean and std of those k x K
images; a constant feature of 100 appended for the bias, so large that it is almost
unregularised; targets 2 one_hot - 1; the ridge solution with L2 = 2^10 (big_vision's
`configs/common_fewshot.py`); the test images classified by the arg-max of the K outputs.
The accuracy is averaged over the seeds.

Only the images a seed picks are encoded, not the whole training split, so CIFAR-10 takes
seconds to minutes on a CPU; `--max-test-images` evaluates on a class-balanced part of a large
test split. Results go to `--out/fewshot.json`; `python -m replicate.figures` lists them.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from replicate.cli_errors import ArgumentParser, run_cli
from replicate.data.augment import Augmentation
from replicate.data.datasets import DEFAULT_DATA_DIR, get_dataset_spec, load_splits
from replicate.data.loader import default_workers, place
from replicate.data.subsets import dataset_labels, stratified_subsets, subset
from replicate.runs.files import write_json
from replicate.runtime import Runtime
from replicate.sources import load_source
from vit.data_config import input_normalisation
from vit.references import variant_from_spec

L2_REG = 2.0**10  # big_vision configs/common_fewshot.py: config.l2_reg
BIAS_FEATURE = 100.0  # big_vision fewshot_lsr.py: "large so it's almost unregularized"
SHOTS = (1, 5, 10, 25)  # big_vision's config.shots
RESULTS = "fewshot.json"


def fewshot_accuracies(
    model: nn.Module,
    train_images: Dataset,
    test_images: Dataset,
    shots: Sequence[int],
    seeds: int,
    *,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    l2_reg: float = L2_REG,
    batch_size: int = 256,
    workers: int | None = None,
) -> dict[int, list[float]]:
    """Every seed's test accuracy per number of shots.

    train_images, test_images: (image, label) datasets, as `replicate.data.images.Splits`
    holds them.
    image_size, mean, std: how the model takes its input (default: a ViT's resolution and
    the normalisation of its pretrained weights, else pixels to [-1, 1]); workers: processes
    decoding images (default: `replicate.data.loader.default_workers()`; 0 for in-memory images)."""
    default_mean, default_std = input_normalisation(model)
    encoder = Encoder(
        model,
        image_size or model.config.image_size,
        Augmentation(tuple(mean or default_mean), tuple(std or default_std)),
        batch_size,
        default_workers() if workers is None else workers,
    )
    labels = np.asarray(dataset_labels(train_images))
    picks = {seed: shot_indices(labels, max(shots), seed) for seed in range(seeds)}
    pool = sorted({i for per_class in picks.values() for i in per_class.ravel().tolist()})
    pool_features = dict(zip(pool, encoder(subset(train_images, pool)), strict=True))
    test_features = encoder(test_images)
    test_labels = torch.as_tensor(dataset_labels(test_images))
    num_classes = len(np.unique(labels))
    results: dict[int, list[float]] = {k: [] for k in shots}
    for per_class in picks.values():
        for k in shots:
            chosen = per_class[:, :k].ravel()
            x = torch.stack([pool_features[i] for i in chosen.tolist()])
            w, x_mean, x_std = ridge_regression(
                x, torch.as_tensor(labels[chosen]), num_classes, l2_reg
            )
            predictions = (_design(test_features, x_mean, x_std) @ w).argmax(dim=1)
            results[k].append((predictions == test_labels).double().mean().item())
    return results


def shot_indices(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """(K, shots) training indices: the first `shots` of a seeded permutation of each class."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    if (fewest := min(len(p) for p in per_class)) < shots:
        raise ValueError(f"{shots} shots need {shots} training images per class; one has {fewest}")
    return np.stack([p[:shots] for p in per_class])


def ridge_regression(
    x: Tensor, y: Tensor, num_classes: int, l2_reg: float
) -> tuple[Tensor, Tensor, Tensor]:
    """The closed-form L2-regularised least squares from standardised features (with a bias
    feature) to {-1, 1}^K targets, in float64; returns (W, feature mean, feature std)."""
    x = x.double()
    x_mean, x_std = x.mean(dim=0, keepdim=True), x.std(dim=0, unbiased=False, keepdim=True) + 1e-5
    design = _design(x, x_mean, x_std)  # (n, d + 1)
    targets = 2.0 * nn.functional.one_hot(y, num_classes).double() - 1.0  # (n, K)
    n, d = design.shape
    if n >= d:  # (X^T X + l2 I)^-1 X^T Y
        w = torch.linalg.solve(
            design.T @ design + l2_reg * torch.eye(d, dtype=x.dtype), design.T @ targets
        )
    else:  # X^T (X X^T + l2 I)^-1 Y: the same solution, from an n x n system
        w = design.T @ torch.linalg.solve(
            design @ design.T + l2_reg * torch.eye(n, dtype=x.dtype), targets
        )
    return w, x_mean, x_std


def _design(features: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    standardised = (features.double() - mean) / std
    return nn.functional.pad(standardised, (0, 1), value=BIAS_FEATURE)


class Encoder:
    """Frozen representations: the input of the model's classifier, its last linear layer (a
    1x1 convolution on the pooled features in timm's ResNetV2, i.e. BiT)."""

    def __init__(
        self,
        model: nn.Module,
        image_size: int,
        augmentation: Augmentation,
        batch_size: int,
        workers: int,
    ) -> None:
        self.model, self.image_size, self.workers = model.eval(), image_size, workers
        self.augmentation, self.batch_size = augmentation, batch_size
        device = next(model.parameters()).device
        self.runtime = Runtime(device, rank=0, world_size=1, precision="fp32")
        layers = [m for m in model.head.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        self.classifier = layers[-1]

    @torch.no_grad()
    def __call__(self, dataset: Dataset) -> Tensor:
        """(N, D) float32 representations on the CPU, in the dataset's order."""
        images = place(dataset, self.image_size, self.runtime, "auto", self.workers)
        captured: list[Tensor] = []
        hook = self.classifier.register_forward_hook(
            lambda module, inputs, output: captured.append(inputs[0].flatten(1).float().cpu())
        )
        try:
            for batch, _ in images.batches(range(len(images)), self.batch_size):
                self.model(self.augmentation.eval(batch))
        finally:
            hook.remove()
        return torch.cat(captured)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m replicate.fewshot",
        description="Few-shot linear accuracy of frozen representations (Section 4.1): "
        "regularised least squares to {-1, 1}^K, in closed form, averaged over seeds.",
        epilog=__doc__.split("\n\n", 2)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="a model.safetensors of replicate.train")
    source.add_argument(
        "--pretrained", metavar="SPEC", help="weights spec (timm:..., google:..., a file)"
    )
    parser.add_argument("--variant", help="model of --pretrained (default: read from the spec)")
    parser.add_argument("--dataset", default="digits", help="dataset name or imagefolder:PATH")
    parser.add_argument("--data-dir", type=Path, default=Path(DEFAULT_DATA_DIR))
    parser.add_argument("--shots", type=int, nargs="+", default=list(SHOTS), metavar="K")
    parser.add_argument("--seeds", type=int, default=3, metavar="N", help="repetitions (3)")
    parser.add_argument(
        "--image-size", type=int, metavar="S", help="input resolution (default: the model's)"
    )
    parser.add_argument(
        "--max-test-images",
        type=int,
        metavar="N",
        help="evaluate on a fixed class-balanced part of the test split of about N images",
    )
    parser.add_argument("--l2-reg", type=float, default=L2_REG, help="ridge penalty (2^10)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    parser.add_argument(
        "--out", type=Path, help="run folder (default runs/fewshot-MODEL-DATA-TIME)"
    )
    return parser


def load_subject(args: argparse.Namespace) -> tuple[nn.Module, dict[str, Any]]:
    """The model (a run's checkpoint, or weights by spec with their own head, pre-logits layer
    included) and what the results record about it: its input size and normalisation."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = str(args.checkpoint or args.pretrained)
    source = load_source(name, args.variant, args.image_size, device)
    about = {"checkpoint" if args.checkpoint else "pretrained": name}
    return source.model, {**about, "image_size": source.image_size, "mean": source.mean,
                          "std": source.std}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if min(args.shots) < 1 or args.seeds < 1:
        raise ValueError("--shots and --seeds take positive numbers")
    splits = load_splits(get_dataset_spec(args.dataset), args.data_dir)
    model, about = load_subject(args)
    test = splits.test
    if args.max_test_images and args.max_test_images < len(test):
        fraction = args.max_test_images / len(test)
        test = subset(test, stratified_subsets(dataset_labels(test), 0.0, fraction).train)
    start = time.perf_counter()
    per_seed = fewshot_accuracies(
        model, splits.train, test, args.shots, args.seeds,
        image_size=about["image_size"], mean=about["mean"], std=about["std"],
        l2_reg=args.l2_reg, batch_size=args.batch_size,
    )  # fmt: skip
    results = {
        **about,
        "dataset": args.dataset,
        "seeds": args.seeds,
        "l2_reg": args.l2_reg,
        "test_images": len(test),
        "accuracy": {str(k): float(np.mean(v)) for k, v in per_seed.items()},
        "accuracy_per_seed": {str(k): v for k, v in per_seed.items()},
        "seconds": time.perf_counter() - start,
        "device": torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else platform.processor() or "cpu",
        "torch": torch.__version__,
    }
    spec_name = args.variant or variant_from_spec(str(args.pretrained)) or "weights"
    name = Path(args.checkpoint).parent.name if args.checkpoint else spec_name
    dataset = args.dataset.replace("imagefolder:", "").strip("/").replace("/", "-")
    out = args.out or Path(f"runs/fewshot-{name}-{dataset}-{datetime.now():%Y%m%d-%H%M%S}")
    write_json(out / RESULTS, results)  # atomically: a kill leaves the previous file or none
    for k, accuracy in results["accuracy"].items():
        spread = np.std(per_seed[int(k)])
        print(f"{k:>3}-shot: {100 * accuracy:.2f}% (± {100 * spread:.2f} over {args.seeds} seeds)")
    print(f"written to {out / RESULTS} ({results['seconds']:.1f} s)")
    return results


def read_results(runs_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(folder name, results) of every fewshot.json in `runs_dir` or one level below it."""
    paths = sorted([*runs_dir.glob(RESULTS), *runs_dir.glob(f"*/{RESULTS}")])
    return [(path.parent.name, json.loads(path.read_text())) for path in paths]


def results_markdown(results: list[tuple[str, dict[str, Any]]]) -> str:
    """The few-shot table of figures/results.md: one row per result, one column per k."""
    if not results:
        return ""
    shots = sorted({int(k) for _, r in results for k in r["accuracy"]})
    lines = [
        "## Few-shot linear accuracy (Section 4.1)",
        "",
        "| run | model | dataset | " + " | ".join(f"{k}-shot (%)" for k in shots) + " | seeds |",
        "| --- | --- | --- | " + " | ".join("---:" for _ in shots) + " | ---: |",
    ]
    for name, r in results:
        model = r.get("pretrained") or r.get("checkpoint", "?")
        cells = [
            f"{100 * r['accuracy'][str(k)]:.2f}" if str(k) in r["accuracy"] else "—" for k in shots
        ]
        lines.append(
            f"| {name} | `{model}` | {r['dataset']} | {' | '.join(cells)} | {r['seeds']} |"
        )
    note = (
        "Regularised least squares from frozen representations of k training images per class "
        "to {-1, 1}^K, closed form, L2 = 2^10 (big_vision's few-shot evaluator), mean over seeds."
    )
    return "\n".join(["", *lines, "", note, ""])


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.fewshot", main))
