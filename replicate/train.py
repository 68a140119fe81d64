"""Train a registered model (a ViT variant or a CNN baseline) on an image-classification dataset.

    python -m replicate.train --variant vit_b16        # options: --help, or replicate.train_config

One `Trainer` holds a run: the model as its recipe wants it, the images on the device, the
optimiser and schedule; each epoch it trains, evaluates on the test split, logs (`RunLog`) and
checkpoints (`replicate.checkpoint`), so that `--resume` continues exactly where it stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from tqdm import tqdm

from replicate import models
from replicate.augment import Augmentation, InceptionCrop, crop_seeds
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
from replicate.cli_errors import run_cli
from replicate.data import get_dataset_spec, load_splits
from replicate.errors import DivergedError
from replicate.evaluate import Evaluation, evaluate
from replicate.loader import Crops, epoch_indices, place
from replicate.metrics import accuracy_metrics
from replicate.objectives import objective_for, pretraining_model
from replicate.recipes import build_optimizer, build_scheduler
from replicate.run_log import EpochRecord, PhaseTimer, RunLog
from replicate.runtime import Runtime, float8_training, seed_everything
from replicate.train_config import TrainConfig, build_parser, resolve_config
from vit.data_config import input_normalisation


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The model as the recipe wants it: pretrained weights, a new head, a frozen backbone."""
    entry = models.get_model_entry(config.variant)
    overrides = dict(config.model_overrides)
    if entry.family == "vit":
        overrides.setdefault("dropout", config.recipe.dropout)
    try:
        model = models.create_model(
            config.variant,
            num_classes=num_classes,
            image_size=config.image_size,
            pretrained=config.pretrained,
            **overrides,
        )
    except TypeError as error:  # a --model-arg the model's builder does not take
        raise ValueError(f"--model-arg: {config.variant} cannot take it ({error})") from error
    if config.recipe.new_head and config.pretrained:
        model.replace_head(num_classes)  # Appendix B.1.1, even when the class count matches
    if config.recipe.freeze_backbone:
        model.requires_grad_(False)
        model.head.requires_grad_(True)
    if config.grad_checkpointing:
        if not hasattr(model, "set_grad_checkpointing"):
            raise ValueError(f"--grad-checkpointing: {config.variant} has no encoder blocks")
        model.set_grad_checkpointing(True)
    if config.precision == "fp8":
        float8_training(model)  # the linear layers, in place: the same parameters and keys
    return pretraining_model(config.recipe.objective, model)  # masked patch: a predictor around it


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
        # Downloaded and listed by one process of each node, not by every one.
        splits = runtime.once_per_node(
            lambda: load_splits(spec, Path(config.data_dir), config.verify_images)
        )
        self.classes = splits.classes
        self.train_images, self.test_images = (
            place(split, config.image_size, runtime, config.data_placement, config.workers, crop)
            for split, crop in (
                (splits.train, InceptionCrop(spec.crop_scale, spec.flip)),
                (splits.test, None),
            )
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
        self.optimizer = build_optimizer(
            self.model, self.recipe, fused=runtime.device.type == "cuda"
        )
        self.scheduler = build_scheduler(self.optimizer, self.recipe, self.total_steps)
        self.scaler = runtime.grad_scaler()
        self.epoch = self.step = 0
        self.best_test_acc = 0.0
        mean, std = self._load_checkpoint() if resume else input_normalisation(self.model)
        self.augmentation = Augmentation(mean, std, spec.flip, spec.crop_scale)
        self.objective = objective_for(
            self.recipe.objective, self.model, len(self.classes), mean, std
        )
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
                timer = PhaseTimer()
                train_loss, train_acc, images_per_s = self.train_epoch(progress, timer)
                with timer("eval"):
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
                    skipped_images=len(self.train_images.skipped | self.test_images.skipped),
                    wall_time_s=time.perf_counter() - start,
                    lr=self.scheduler.get_last_lr()[0],
                    phase_s=dict(timer.seconds),
                )
                self.log.epoch(record)  # before the checkpoint: a resumed run drops what follows
                self.save_checkpoint()
                if self.runtime.is_main:
                    progress.write(_summary(record))
        if test is not None and self.recipe.objective == "classification":
            self.log.confusion_matrix(test.confusion, self.classes)
        self.log.close()
        return self.model

    def train_epoch(self, progress: tqdm, timer: PhaseTimer) -> tuple[float, float, float]:
        """One pass (or what is left of the step budget); returns the mean loss, the accuracy
        and the throughput in images per second over all ranks; `timer` adds up where the
        time went."""
        self._train_mode()
        metrics = accuracy_metrics(self.objective.num_classes, self.runtime.device)
        # Crops depend on (seed, epoch, rank) alone, so a resumed epoch sees the same ones.
        seed = np.random.SeedSequence([self.config.seed, self.epoch, self.runtime.rank])
        generator = torch.Generator().manual_seed(int(seed.generate_state(1)[0]))
        indices = epoch_indices(len(self.train_images), **self._sharding(self.epoch), shuffle=True)
        steps = min(self.steps_per_epoch, self.total_steps - self.step)
        indices = indices[: steps * self.local_batch]
        crops = Crops(self.augmentation.crop, crop_seeds(generator, len(indices)))
        start = time.perf_counter()
        for images, labels in timer.iterate(
            self.train_images.batches(indices, self.local_batch, crops)
        ):
            with timer("step"):
                logits, targets, losses = self.train_step(
                    self.augmentation.normalise(images), labels
                )
            with timer("log"):
                metrics["loss"].update(losses)
                metrics["top1"].update(logits, targets)
                self.step += 1
                progress.update()
                if self.step % self.config.log_every == 0:
                    self._report(metrics, progress)
        with timer("log"):
            results = self._report(metrics, progress)  # syncs the device: the timing is right
        images = len(indices) * self.runtime.world_size
        return results["loss"], results["top1"], images / (time.perf_counter() - start)

    def _train_mode(self) -> None:
        """Training mode, except for a frozen backbone: its batch-norm statistics stay fixed."""
        self.network.train(not self.recipe.freeze_backbone)
        if self.recipe.freeze_backbone:
            self.model.head.train()

    def train_step(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimiser step on the batch's mean loss; returns the logits, their targets (the
        labels, unless the objective makes its own) and the per-sample losses, detached, for
        the metrics."""
        if self.runtime.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        with self.runtime.autocast():
            logits, targets = self.objective(self.network, images, labels)
            logits = logits.float()
            losses = F.cross_entropy(logits, targets, reduction="none")
        self.scaler.scale(losses.mean()).backward()
        if self.recipe.grad_clip:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return logits.detach(), targets, losses.detach()

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
        # Under torchrun the shards may differ by a batch, and DDP's forward is a collective
        # (it broadcasts buffers): each rank evaluates with the plain model instead.
        return evaluate(
            self.model if self.runtime.distributed else self.network,
            self.test_images,
            indices,
            self.augmentation,
            self.local_batch,
            self.objective.num_classes,
            self.runtime.autocast,
            self.objective.for_evaluation(self.runtime.device),
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
        f" | {record.images_per_s:.0f} img/s; time: "
        + ", ".join(f"{phase} {s:.1f} s" for phase, s in record.phase_s.items())
    )


def main(argv: Sequence[str] | None = None) -> nn.Module:
    args = build_parser().parse_args(argv)
    return train(resolve_config(args), resume=bool(args.resume))


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.train", main))
