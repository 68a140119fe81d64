"""Train a registered model (a ViT variant or a CNN baseline) on an image-classification dataset.

    python -m replicate.train --variant vit_b16                      # digits, from scratch, offline
    python -m replicate.train --variant vit_b16 --dataset oxford_pets \\
        --pretrained timm:vit_base_patch16_224.orig_in21k_ft_in1k     # Table 4 fine-tuning at 384
    python -m replicate.train --variant tinyvgg --dataset imagefolder:data/hymenoptera
    torchrun --nproc_per_node=8 -m replicate.train --variant vit_b16 --dataset cifar100 ...

The recipe (`replicate.recipes`, Appendix B) and the dataset (`replicate.data`) give the defaults;
options override them; the resolved configuration is written to `--out/config.json`.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from tqdm import tqdm

import vit
from replicate.augment import Augmentation
from replicate.checkpoint import (
    STATE,
    WEIGHTS,
    CheckpointInfo,
    load_state,
    read_state,
    read_weights,
    rng_state,
    save_state,
    save_weights,
    set_rng_state,
)
from replicate.cli_errors import DivergedError, run_cli
from replicate.data import IMAGEFOLDER, SquareImages, get_dataset_spec, load_splits
from replicate.evaluate import Evaluation, accuracy_metrics, evaluate
from replicate.loader import Placement, epoch_indices, place
from replicate.recipes import RECIPES, Recipe, build_optimizer, build_scheduler
from replicate.run_log import CONFIG, EpochRecord, RunLog
from replicate.runtime import Precision, Runtime, default_precision, seed_everything

SCRATCH_MEAN = SCRATCH_STD = (0.5, 0.5, 0.5)  # from scratch: pixels to [-1, 1], as the paper's


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on, resolved; written to config.json."""

    variant: str
    dataset: str
    data_dir: str
    pretrained: str | None  # weights spec: timm:NAME, torchvision:WEIGHTS or a file
    recipe: Recipe  # the preset, with the options applied
    model_overrides: dict[str, Any]  # create_model(variant, **model_overrides)
    image_size: int
    batch_size: int  # over all processes
    epochs: int | None  # exactly one of epochs and steps is set
    steps: int | None
    precision: Precision
    compile: bool
    seed: int
    out: str
    data_placement: Placement
    workers: int  # DataLoader processes that decode images
    log_every: int  # steps between progress updates (each costs a device sync)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> TrainConfig:
        recipe = config["recipe"]
        return cls(**{**config, "recipe": Recipe(**{**recipe, "betas": tuple(recipe["betas"])})})


# Options that change where or how fast a run goes but not what it computes: --resume accepts
# them; every other option must come from the run's config.json, so a resumed run is the same run.
RESUMABLE_OPTIONS = ("data_dir", "workers", "data_placement", "log_every")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m replicate.train",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # every default is None, "not given": resolve_config fills in the real defaults
    add = p.add_argument
    add("--variant", help="registry name: " + ", ".join(vit.list_models()) + " (default vit_b16)")
    add(
        "--dataset",
        help="digits (default; bundled with scikit-learn, offline), pizza_steak_sushi, cifar10, "
        "cifar100, food101, oxford_pets, flowers102, or imagefolder:PATH (PATH/train and PATH/val "
        "or PATH/test, one subfolder per class)",
    )
    add("--data-dir", help="where datasets are downloaded to and read from (default .data)")
    add(
        "--pretrained",
        metavar="SPEC",
        help="start from these weights: timm:MODEL.TAG, torchvision:WEIGHTS (e.g. IMAGENET1K_V1), "
        "google:imagenet21k/ViT-B_16, or a file (e.g. a model.safetensors of an earlier run)",
    )
    add(
        "--recipe",
        choices=list(RECIPES),
        help="Appendix B presets: scratch (Table 3: AdamW, wd 0.1, warm-up + cosine, clip 1, "
        "dropout 0.1), finetune (Table 4: SGD momentum 0.9, cosine, clip 1, new zero-init head, "
        "384px for ViTs), feature-extract (finetune on the head only, backbone frozen); default "
        "finetune with --pretrained, else scratch",
    )
    length = p.add_mutually_exclusive_group()
    length.add_argument(
        "--epochs", type=int, help="passes over the training set (default: the dataset's)"
    )
    length.add_argument(
        "--steps",
        type=int,
        help="optimiser steps instead of epochs (default with finetune: Table 4's, where given)",
    )
    add("--batch-size", type=int, help="images per step over all processes (default: dataset's)")
    add("--lr", type=float, help="peak learning rate (default: the recipe's)")
    add("--weight-decay", type=float, help="decoupled weight decay (default: the recipe's)")
    add("--warmup-steps", type=int, help="linear warm-up steps, at most a tenth of the run")
    add("--schedule", choices=["cosine", "linear"], help="decay after the warm-up")
    add("--grad-clip", type=float, help="clip gradients at this global norm (0: no clipping)")
    add("--dropout", type=float, help="ViT dropout rate (default: the recipe's)")
    add(
        "--image-size",
        type=int,
        help="training resolution (default: 384 for a pretrained ViT, else the dataset's, e.g. 32 "
        "for digits, else the model's, e.g. 224 for a ViT, 64 for TinyVGG)",
    )
    add(
        "--model-arg",
        action="append",
        metavar="KEY=VALUE",
        help="override a model argument, e.g. depth=2 or hidden_size=64 (ViT config fields) or "
        "hidden_units=32 (TinyVGG); repeatable",
    )
    add(
        "--precision",
        choices=["bf16", "fp16", "fp32"],
        help="autocast dtype (fp16 with loss scaling); default bf16 on a GPU, fp32 on the CPU",
    )
    add("--compile", action="store_true", default=None, help="wrap the model in torch.compile")
    add("--seed", type=int, help="seeds initialisation, data order and augmentation (default 0)")
    add("--out", help="run folder (default runs/VARIANT-DATASET-TIME)")
    add(
        "--resume",
        action="store_true",
        default=None,
        help="continue the run in --out from its last checkpoint, with its config.json; only "
        "--data-dir, --workers, --data-placement and --log-every may be given again",
    )
    add(
        "--data-placement",
        choices=["auto", "device", "stream"],
        help="device: decode the images once and keep them on the training device as uint8; "
        "stream: decode them every epoch in DataLoader workers; auto (default): device when they "
        "take at most a quarter of its free memory",
    )
    add(
        "--workers",
        type=int,
        help="DataLoader processes decoding images (default: 4, or fewer CPU cores)",
    )
    add("--log-every", type=int, help="steps between progress-bar and TensorBoard updates (10)")
    return p


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The defaults of the recipe and the dataset, overridden by the options given."""
    if args.resume:
        return resumed_config(args)
    variant = args.variant or "vit_b16"
    entry = vit.get_model_entry(variant)  # fails early on an unknown name
    spec = get_dataset_spec(args.dataset or "digits")
    recipe = RECIPES[args.recipe or ("finetune" if args.pretrained else "scratch")]
    recipe = replace(
        recipe,
        **{
            field: value
            for field in ("lr", "weight_decay", "warmup_steps", "schedule", "grad_clip", "dropout")
            if (value := getattr(args, field)) is not None
        },
    )
    pretrained_vit_size = recipe.image_size if args.pretrained and entry.family == "vit" else None
    epochs, steps = args.epochs, args.steps
    if epochs is None and steps is None:
        steps = spec.finetune_steps if args.pretrained else None
        epochs = None if steps else spec.epochs
    dataset = spec.name.replace(IMAGEFOLDER, "imagefolder-").rstrip("/").replace("/", "-")
    return TrainConfig(
        variant=variant,
        dataset=spec.name,
        data_dir=args.data_dir or ".data",
        pretrained=args.pretrained,
        recipe=recipe,
        model_overrides=dict(_parse_model_arg(a) for a in args.model_arg or ()),
        image_size=args.image_size
        or pretrained_vit_size
        or spec.image_size
        or entry.default_image_size,
        batch_size=args.batch_size or spec.batch_size,
        epochs=epochs,
        steps=steps,
        precision=args.precision or default_precision(),
        compile=bool(args.compile),
        seed=args.seed if args.seed is not None else 0,
        out=args.out or f"runs/{variant}-{dataset}-{datetime.now():%Y%m%d-%H%M%S}",
        data_placement=args.data_placement or "auto",
        workers=args.workers if args.workers is not None else min(4, os.cpu_count() or 1),
        log_every=args.log_every or 10,
    )


def resumed_config(args: argparse.Namespace) -> TrainConfig:
    if not args.out:
        raise ValueError("--resume needs --out, the folder of the run to continue")
    config_path = Path(args.out) / CONFIG
    if not config_path.is_file():
        raise FileNotFoundError(f"no run to resume in {args.out}: {CONFIG} is missing")
    config = TrainConfig.from_dict(json.loads(config_path.read_text()))
    given = {
        k: v
        for k, v in vars(args).items()
        if v is not None and k not in ("resume", "out", *RESUMABLE_OPTIONS)
    }
    if given:
        names = ", ".join("--" + k.replace("_", "-") for k in given)
        raise ValueError(
            f"--resume continues the run as {config_path} configures it; drop {names} "
            f"(to change them, start a new run)"
        )
    return replace(config, **{k: getattr(args, k) for k in RESUMABLE_OPTIONS if getattr(args, k)})


def _parse_model_arg(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--model-arg takes KEY=VALUE, e.g. depth=2; got {text!r}")
    try:
        return key, ast.literal_eval(value)  # numbers, True/False, None, quoted strings
    except (ValueError, SyntaxError):
        return key, value  # a bare word, e.g. pool=gap


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The model as the recipe wants it: pretrained weights, a new head, a frozen backbone."""
    entry = vit.get_model_entry(config.variant)
    overrides = dict(config.model_overrides)
    if entry.family == "vit":
        overrides.setdefault("dropout", config.recipe.dropout)
    model = vit.create_model(
        config.variant,
        num_classes=num_classes,
        image_size=config.image_size,
        pretrained=config.pretrained,
        **overrides,
    )
    if config.recipe.new_head and config.pretrained:
        model.replace_head(num_classes)  # Appendix B.1.1, even when the class count matches
    if config.recipe.freeze_backbone:
        model.requires_grad_(False)
        model.head.requires_grad_(True)
    return model


def input_normalisation(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and std the pretrained weights expect; [-1, 1] inputs from scratch."""
    info = getattr(model, "pretrained_info", None)
    return (info.mean, info.std) if info else (SCRATCH_MEAN, SCRATCH_STD)


def train(config: TrainConfig, resume: bool = False) -> nn.Module:
    """Run the training `config` describes; returns the trained model (unwrapped)."""
    runtime = Runtime.start(config.precision)
    try:
        return Trainer(config, runtime, resume).fit()
    finally:
        runtime.close()


class Trainer:
    """The state of one run and the loop over its epochs."""

    def __init__(self, config: TrainConfig, runtime: Runtime, resume: bool) -> None:
        self.config, self.runtime, self.recipe = config, runtime, config.recipe
        self.out = Path(config.out)
        if not resume and (self.out / STATE).exists():
            raise ValueError(
                f"{self.out} holds a run already: add --resume to continue it, or choose "
                "another --out"
            )
        if config.batch_size % runtime.world_size:
            raise ValueError(
                f"--batch-size {config.batch_size} does not split over "
                f"{runtime.world_size} processes"
            )
        self.local_batch = config.batch_size // runtime.world_size
        seed_everything(config.seed + runtime.rank)
        spec = get_dataset_spec(config.dataset)
        with runtime.main_first():  # one download, not one per process
            splits = load_splits(spec, Path(config.data_dir))
        self.classes = splits.classes
        self.train_images, self.test_images = (
            place(
                SquareImages(split, config.image_size),
                runtime.device,
                config.data_placement,
                config.workers,
            )
            for split in (splits.train, splits.test)
        )
        self.steps_per_epoch = math.ceil(
            math.ceil(len(self.train_images) / runtime.world_size) / self.local_batch
        )
        self.total_steps = config.steps or config.epochs * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)

        # Resuming rebuilds the architecture only: the weights come from the checkpoint, not
        # from another download of the pretrained ones.
        self.model = build_model(
            replace(config, pretrained=None) if resume else config, len(self.classes)
        ).to(runtime.device)
        mean, std = input_normalisation(self.model)
        self.optimizer = build_optimizer(
            self.model, self.recipe, fused=runtime.device.type == "cuda"
        )
        self.scheduler = build_scheduler(self.optimizer, self.recipe, self.total_steps)
        self.scaler = runtime.grad_scaler()
        self.epoch = self.step = 0
        self.best_test_acc = 0.0
        if resume:
            mean, std = self._load_checkpoint()
        self.augmentation = Augmentation(mean, std, spec.flip, spec.crop_scale)
        self.network = self._wrap(self.model)
        self.log = RunLog(self.out, enabled=runtime.is_main, epoch=self.epoch, step=self.step)
        self.log.config(asdict(config))

    def _sharding(self, epoch: int) -> dict[str, Any]:
        return dict(
            seed=self.config.seed,
            epoch=epoch,
            rank=self.runtime.rank,
            world_size=self.runtime.world_size,
        )

    def _wrap(self, model: nn.Module) -> nn.Module:
        """channels_last on the GPU, DistributedDataParallel under torchrun, torch.compile."""
        if self.runtime.device.type == "cuda":
            model.to(memory_format=torch.channels_last)
        network = self.runtime.wrap(model)
        return torch.compile(network) if self.config.compile else network

    def fit(self) -> nn.Module:
        progress = tqdm(
            total=self.total_steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            disable=not self.runtime.is_main,
        )
        start = time.perf_counter()
        test = None
        with progress:
            while self.epoch < self.epochs:
                progress.set_description(f"epoch {self.epoch + 1}/{self.epochs}")
                train_loss, train_acc, images_per_s = self.train_epoch(progress)
                test = self.evaluate()
                self.epoch += 1
                self.best_test_acc = max(self.best_test_acc, test.top1)
                record = EpochRecord(
                    epoch=self.epoch,
                    step=self.step,
                    train_loss=train_loss,
                    train_acc=train_acc,
                    test_loss=test.loss,
                    test_acc=test.top1,
                    test_top5=test.top5,
                    images_per_s=images_per_s,
                    wall_time_s=time.perf_counter() - start,
                    lr=self.scheduler.get_last_lr()[0],
                )
                self.log.epoch(record)  # before the checkpoint: a resumed run drops what follows
                self.save_checkpoint()
                if self.runtime.is_main:
                    progress.write(_summary(record))
        if test is not None:
            self.log.confusion_matrix(test.confusion, self.classes)
        self.log.close()
        return self.model

    def train_epoch(self, progress: tqdm) -> tuple[float, float, float]:
        """One pass (or what is left of the step budget); returns the mean loss, the accuracy
        and the throughput in images per second over all ranks."""
        self._train_mode()
        metrics = accuracy_metrics(len(self.classes), self.runtime.device)
        # Crops depend on (seed, epoch, rank) alone, so a resumed epoch sees the same ones.
        seed = np.random.SeedSequence([self.config.seed, self.epoch, self.runtime.rank])
        generator = torch.Generator().manual_seed(int(seed.generate_state(1)[0]))
        indices = epoch_indices(len(self.train_images), **self._sharding(self.epoch), shuffle=True)
        steps = min(self.steps_per_epoch, self.total_steps - self.step)
        indices = indices[: steps * self.local_batch]
        start = time.perf_counter()
        for images, labels in self.train_images.batches(indices, self.local_batch):
            logits, loss = self.train_step(self.augmentation.train(images, generator), labels)
            metrics["loss"].update(loss, weight=len(labels))
            metrics["top1"].update(logits, labels)
            self.step += 1
            progress.update()
            if self.step % self.config.log_every == 0:
                self._report(metrics, progress)
        results = self._report(metrics, progress)  # syncs the device, so the timing is right
        images = len(indices) * self.runtime.world_size
        return results["loss"], results["top1"], images / (time.perf_counter() - start)

    def _train_mode(self) -> None:
        """Training mode, except for a frozen backbone: its batch-norm statistics stay fixed."""
        self.network.train(not self.recipe.freeze_backbone)
        self.model.head.train()

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple:
        if self.runtime.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with self.runtime.autocast():
            logits = self.network(images).float()
            loss = F.cross_entropy(logits, labels)
        self.scaler.scale(loss).backward()
        if self.recipe.grad_clip:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return logits.detach(), loss.detach()

    def _report(self, metrics: MetricCollection, progress: tqdm) -> dict[str, float]:
        """The running loss and accuracy to the progress bar and TensorBoard; stops a run whose
        loss is no longer finite before it overwrites the last good checkpoint."""
        results = {k: v.item() for k, v in metrics.compute().items()}
        if not math.isfinite(results["loss"]):
            raise DivergedError(
                f"the training loss is {results['loss']} at step {self.step}; the last good "
                f"checkpoint (epoch {self.epoch}) is kept in {self.out}. Try a lower --lr, or "
                "--precision bf16/fp32 instead of fp16"
            )
        lr = self.scheduler.get_last_lr()[0]
        progress.set_postfix(
            loss=f"{results['loss']:.4f}", acc=f"{results['top1']:.3f}", lr=f"{lr:.2e}"
        )
        self.log.step(self.step, results["loss"], results["top1"], lr)
        return results

    def evaluate(self) -> Evaluation:
        indices = epoch_indices(len(self.test_images), **self._sharding(self.epoch), shuffle=False)
        return evaluate(
            self.network,
            self.test_images,
            indices,
            self.augmentation,
            self.local_batch,
            len(self.classes),
            self.runtime.autocast,
        )

    def checkpoint_info(self) -> CheckpointInfo:
        return CheckpointInfo(
            variant=self.config.variant,
            num_classes=len(self.classes),
            image_size=self.config.image_size,
            classes=self.classes,
            mean=list(self.augmentation.mean),
            std=list(self.augmentation.std),
            model_overrides=self.config.model_overrides,
            pretrained=self.config.pretrained,
            dataset=self.config.dataset,
            epoch=self.epoch,
            step=self.step,
        )

    def save_checkpoint(self) -> None:
        """Weights first, then the state that points at them (every rank's RNG included)."""
        rng = self.runtime.gather(rng_state(self.runtime.device))
        if not self.runtime.is_main:
            return
        save_weights(self.out / WEIGHTS, self.model, self.checkpoint_info())
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_test_acc": self.best_test_acc,
            "rng": rng,
        }
        save_state(self.out / STATE, state)

    def _load_checkpoint(self) -> tuple[list[float], list[float]]:
        """Restore the last checkpoint; returns the input normalisation it was trained with."""
        state = read_state(self.out / STATE)
        weights, info = read_weights(self.out / WEIGHTS)
        if info.step != state["step"]:
            raise ValueError(
                f"{self.out}: {WEIGHTS} is from step {info.step} but {STATE} from step "
                f"{state['step']}; the run was cut off while saving and cannot resume exactly"
            )
        load_state(self.model, weights, str(self.out / WEIGHTS))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.best_test_acc = state["best_test_acc"]
        set_rng_state(state["rng"][self.runtime.rank], self.runtime.device)
        return info.mean, info.std


def _summary(record: EpochRecord) -> str:
    return (
        f"epoch {record.epoch}: train loss {record.train_loss:.4f} acc {record.train_acc:.3f} | "
        f"test loss {record.test_loss:.4f} acc {record.test_acc:.3f} top-5 {record.test_top5:.3f}"
        f" | {record.images_per_s:.0f} img/s"
    )


def main(argv: Sequence[str] | None = None) -> nn.Module:
    args = build_parser().parse_args(argv)
    return train(resolve_config(args), resume=bool(args.resume))


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.train", main))
