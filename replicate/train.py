"""Train a registered model (a ViT variant or a CNN baseline) on an image-classification dataset.

    python -m replicate.train --variant vit_b16    # options: --help, or replicate.training.config

One `Trainer` holds a run: the model as its recipe wants it, the images on the device, the
optimiser and schedule; each epoch it trains, evaluates on the test split (or on the dev split
that `--val-fraction` holds out, Appendix B.1.1), logs (`RunLog`) and checkpoints
(`replicate.training.checkpoint`), so that `--resume` continues exactly where it stopped. Each
optimiser step takes the global `--batch-size`, accumulated over micro-batches
(`replicate.training.accumulation`); `--ema` keeps a Polyak average of the weights beside them
(`replicate.training.ema`).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from replicate import models
from replicate.cli_errors import run_cli
from replicate.data.augment import Augmentation, InceptionCrop, crop_seeds, pad_crop
from replicate.data.datasets import get_dataset_spec, load_splits
from replicate.data.loader import Crops, ResidentImages, epoch_indices, place
from replicate.data.subsets import eval_split_name, protocol_splits
from replicate.errors import DataError, DivergedError, NoSpaceError
from replicate.evaluate import Evaluation, evaluate
from replicate.flops import forward_flops
from replicate.runs.files import write_json
from replicate.runs.log import EpochRecord, PhaseTimer, RunLog, evaluation_fields
from replicate.runtime import Runtime, float8_training, fused_optimizer, seed_everything
from replicate.training.accumulation import accumulate_gradients, split_batch
from replicate.training.checkpoint import (
    WEIGHTS,
    CheckpointInfo,
    check_writable,
    latest_checkpoint,
    lay_out_as_parameters,
    load_state,
    no_space_left,
    non_finite_weights,
    out_of_space,
    read_state,
    read_weights,
    resolve_weights,
    rng_state,
    run_folder_lock,
    save_checkpoint,
    save_weights,
    set_rng_state,
)
from replicate.training.config import (
    USED,
    TrainConfig,
    parse_args,
    resolve_config,
    settings_table,
)
from replicate.training.ema import EMA_WEIGHTS, averaged_model, restore
from replicate.training.metrics import accuracy_metrics
from replicate.training.mixup import mixup
from replicate.training.objectives import objective_for, pretraining_model
from replicate.training.recipes import build_optimizer, build_scheduler, warmup_steps
from vit import ViTConfig
from vit.data_config import input_normalisation
from vit.variants import VARIANTS

if TYPE_CHECKING:
    import torchmetrics


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The model as the recipe wants it: pretrained weights, a new head, a frozen backbone."""
    entry = models.get_model_entry(config.variant)
    overrides = dict(config.model_overrides)
    if entry.family == "vit":
        overrides.setdefault("dropout", config.recipe.dropout)
        if config.recipe.pre_logits and not config.pretrained:  # Section 3.1's pre-training head
            overrides.setdefault(
                "representation_size", vit_config(config.variant, overrides).hidden_size
            )
    pretrained = config.pretrained
    if pretrained and Path(pretrained).expanduser().is_dir():  # a run folder: its latest weights
        pretrained = str(resolve_weights(pretrained))
    try:
        model = models.create_model(
            config.variant,
            num_classes=num_classes,
            image_size=config.image_size,
            pretrained=pretrained,
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


def vit_config(variant: str, overrides: dict[str, Any]) -> ViTConfig:
    """A registered ViT's config with `overrides` applied, without building the model."""
    return VARIANTS[variant].config.replace(**overrides)


def architecture(model: nn.Module) -> dict[str, Any]:
    """The ViT config fields pretrained weights decide (GELU, pooling, class token; see
    `vit.pretrained`), saved with a checkpoint so that it rebuilds the model it was."""
    config = getattr(model, "config", None)
    if not isinstance(config, ViTConfig):
        return {}
    return {
        "pool": config.pool,
        "class_token": config.class_token,
        "gelu": config.gelu,
        "representation_size": config.representation_size,
    }


def train(config: TrainConfig, resume: bool = False) -> nn.Module:
    """Run the training `config` describes; returns the trained model (unwrapped)."""
    runtime = Runtime.start(config.precision)
    try:
        if runtime.is_main:
            check_writable(Path(config.out))
        with run_folder_lock(Path(config.out)) if runtime.is_main else nullcontext():
            trainer = Trainer(config, runtime, resume)
            try:
                return trainer.fit()
            except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM (replicate.cli_errors)
                raise type(error)(trainer.interrupted()) from None
    except Exception as error:
        if isinstance(error, NoSpaceError) or not out_of_space(error):
            raise
        raise no_space_left(Path(config.out), error) from error
    finally:
        runtime.close()


class Trainer:
    """The state of one run and the loop over its epochs."""

    def __init__(self, config: TrainConfig, runtime: Runtime, resume: bool) -> None:
        self.config, self.runtime, self.recipe = config, runtime, config.recipe
        self.out = Path(config.out)
        if not resume and latest_checkpoint(self.out) is not None:
            raise ValueError(
                f"{self.out} holds a run already: add --resume to continue it, or choose "
                "another --out"
            )
        self.batch = split_batch(config.batch_size, runtime.world_size, config.micro_batch)
        self.local_batch = self.batch.local_batch
        seed_everything(config.seed + runtime.rank)
        spec = get_dataset_spec(config.dataset)
        # Downloaded and listed by one process of each node, not by every one.
        splits = runtime.once_per_node(
            lambda: load_splits(spec, Path(config.data_dir), config.verify_images)
        )
        self.held_out_test = splits.test  # tested once at the end under --early-stopping
        splits = protocol_splits(splits, config.val_fraction, config.train_fraction)
        self.eval_split = eval_split_name(config.val_fraction)
        self.classes = splits.classes
        if len(self.classes) < 2:
            raise DataError(
                f"{config.dataset} has a single class ({', '.join(self.classes)}): a classifier "
                "needs at least two; add a folder of images per class"
            )
        # BiT-HyperRule's or --crop-scale's, else the dataset's
        crop_scale = config.recipe.crop_scale or spec.crop_scale
        # The loader cuts the inception crop; the padded crop is cut on the device (`pad_crop`)
        self.inception = InceptionCrop(crop_scale, spec.flip) if self.recipe.crop != "pad" else None
        self.train_images, self.test_images = (
            place(split, config.image_size, runtime, config.data_placement, config.workers, crop)
            for split, crop in ((splits.train, self.inception), (splits.test, None))
        )
        if not len(self.train_images):  # resident: decoded once, every image unreadable
            raise self.unreadable("none of the training images")
        self.steps_per_epoch = math.ceil(
            math.ceil(len(self.train_images) / runtime.world_size) / self.local_batch
        )
        self.total_steps = config.steps or config.epochs * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)

        # Resuming rebuilds the architecture only: the weights come from the checkpoint, not
        # from another download of the pretrained ones, and the overrides saved with them
        # (`architecture`: what a pretrained file decided, such as official weights' GELU).
        model_config = replace(config, pretrained=None) if resume else config
        saved = latest_checkpoint(self.out) if resume else None
        if saved is not None:
            overrides = read_weights(saved.weights)[1].model_overrides
            model_config = replace(model_config, model_overrides=overrides)
        self.model = build_model(model_config, len(self.classes)).to(runtime.device)
        self.optimizer = build_optimizer(
            self.model, self.recipe, fused=fused_optimizer(runtime.device)
        )
        self.scheduler = build_scheduler(self.optimizer, self.recipe, self.total_steps)
        self.scaler = runtime.grad_scaler()
        self.ema = averaged_model(self.model, config.ema) if config.ema else None
        self.epoch = self.step = 0
        self.saved_step: int | None = None  # of the last checkpoint written
        self.saved_at = time.monotonic()  # when it was written, or when the run started
        self.best = BestDev()  # --early-stopping: the best dev accuracy so far, and its step
        self.evaluated_step = 0  # of the last evaluation (--eval-every)
        if resume:
            mean, std = self._load_checkpoint()
        else:
            mean, std = (
                (config.mean, config.std) if config.mean else input_normalisation(self.model)
            )
        self.augmentation = Augmentation(mean, std, spec.flip)
        self.objective = objective_for(
            self.recipe.objective, self.model, len(self.classes), mean, std
        )
        self.network = self._wrap(self.model)
        self.log = RunLog(self.out, enabled=runtime.is_main, epoch=self.epoch, step=self.step)
        used = self.used_settings()
        self.log.config({**asdict(config), USED: used})
        if runtime.is_main:
            print(f"run folder: {self.out}")
            print(settings_table(config, used))
            print(self.model_line())
            print(
                f"{self.batch}; training on {len(self.train_images)} images, evaluating on "
                f"the {self.eval_split} split ({len(self.test_images)} images)"
            )

    def model_line(self) -> str:
        """The model's size beside Table 1's: parameters (trainable) and forward GFLOPs."""
        parameters = list(self.model.parameters())
        total = sum(p.numel() for p in parameters)
        trainable = sum(p.numel() for p in parameters if p.requires_grad)
        size = self.config.image_size
        overrides = {**self.config.model_overrides, **architecture(self.model)}
        flops = forward_flops(self.config.variant, size, len(self.classes), **overrides)
        return (
            f"model {self.config.variant}: {total / 1e6:.3g}M parameters "
            f"({trainable / 1e6:.3g}M trainable), {flops / 1e9:.3g} GFLOPs per {size}x{size} image"
        )

    def used_settings(self) -> dict[str, Any]:
        """What this run uses where the configuration left the choice to the trainer: the
        warm-up after its cap, the placement "auto" chose, the inputs' normalisation."""
        resident = isinstance(self.train_images, ResidentImages)
        return {
            "warmup_steps": warmup_steps(self.recipe, self.total_steps),
            "data_placement": "device" if resident else "stream",
            "mean": list(self.augmentation.mean),
            "std": list(self.augmentation.std),
        }

    def _sharding(self, epoch: int) -> dict[str, Any]:
        return dict(
            seed=self.config.seed,
            epoch=epoch,
            rank=self.runtime.rank,
            world_size=self.runtime.world_size,
        )

    def _wrap(self, model: nn.Module) -> nn.Module:
        """channels_last where it pays, DistributedDataParallel under torchrun, torch.compile."""
        if self.runtime.channels_last:
            model.to(memory_format=torch.channels_last)
        lay_out_as_parameters(self.optimizer)  # a resumed run's moments, as its weights now
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
        with progress, logging_redirect_tqdm():  # a logged line (a skipped image) above the bar
            while self.epoch < self.epochs and not self._out_of_patience():
                progress.set_description(f"epoch {self.epoch + 1}/{self.epochs}")
                timer = PhaseTimer()
                train_loss, train_acc, images_per_s, steps = self.train_epoch(progress, timer)
                evaluated = self._evaluates_now()
                evaluation = {}
                if evaluated:
                    with timer("eval"):
                        test = self.evaluate(self.model)
                    if not math.isfinite(test.loss):
                        raise self.diverged(f"the {self.eval_split} loss is {test.loss}")
                    evaluation = evaluation_fields(self.eval_split, test.loss, test.top1, test.top5)
                    self.evaluated_step = self.step
                    if self.config.early_stopping and test.top1 > self.best.top1:
                        self.best = BestDev(test.top1, self.step)
                        self._save_best()
                    elif self.config.early_stopping:
                        self.best = replace(self.best, since=self.best.since + 1)
                    if self.ema is not None:
                        with timer("eval"):
                            ema = self.evaluate(self.ema.module)
                        evaluation |= evaluation_fields(
                            self.eval_split, ema.loss, ema.top1, ema.top5, prefix="ema_"
                        )
                self.epoch += 1
                record = EpochRecord(
                    epoch=self.epoch,
                    step=self.step,
                    train_loss=train_loss,
                    train_acc=train_acc,
                    images_per_s=images_per_s,
                    skipped_images=len(self.train_images.skipped | self.test_images.skipped),
                    train_steps=steps,
                    wall_time_s=time.perf_counter() - start,
                    lr=self.scheduler.get_last_lr()[0],
                    train_images=len(self.train_images),
                    eval_split=self.eval_split,
                    evaluation=evaluation,
                    phase_s=dict(timer.seconds),
                )
                self.log.epoch(record)  # before the checkpoint: a resumed run drops what follows
                stopping = self._out_of_patience()
                if self.epoch == self.epochs or stopping or self._checkpoint_due():
                    self.save_checkpoint()
                if self.runtime.is_main:
                    progress.write(_summary(record))
                    if stopping:
                        progress.write(
                            f"stopping early: no better {self.eval_split} top-1 in "
                            f"{self.config.patience} evaluations (best {self.best.top1:.2%} at "
                            f"step {self.best.step})"
                        )
        if self.config.early_stopping:
            test = self.test_best()
        elif test is None:  # resumed with nothing left to train: the end-of-run outputs still
            test = self.evaluate(self.model)
        if self.recipe.objective == "classification":
            self.log.confusion_matrix(test.confusion, self.classes)
            if not self.runtime.distributed:  # each rank holds its shard's only
                split = "test" if self.config.early_stopping else self.eval_split
                self.log.predictions(split, test.true, test.predicted)
        self.log.close()
        if self.runtime.is_main:
            print(self.closing_summary(test, time.perf_counter() - start))
        return self.model.to(memory_format=torch.contiguous_format)  # the layout callers save

    def closing_summary(self, final: Evaluation, seconds: float) -> str:
        """What the run reached, where it is, and the commands that use it next."""
        split = "test" if self.config.early_stopping else self.eval_split
        reached = f"{split} top-1 {final.top1:.2%}"
        if self.config.early_stopping:
            reached += f" (best dev top-1 {self.best.top1:.2%} at step {self.best.step})"
        weights = self.out / (BEST_WEIGHTS if self.config.early_stopping else WEIGHTS)
        minutes, secs = divmod(round(seconds), 60)
        lines = [
            f"done in {minutes} min {secs} s: {reached}",
            f"run folder: {self.out}",
            "next:",
            f"  python -m replicate.evaluate --checkpoint {weights}",
            f"  python -m replicate.predict --checkpoint {weights} IMAGE [IMAGE ...] --plot "
            "predictions.png",
        ]
        if self.config.variant in VARIANTS:  # Figures 1, 6 and 7 are of a ViT
            lines.append(
                f"  python -m replicate.figures --checkpoint {weights} --out {self.out / 'figures'}"
            )
        return "\n".join(lines)

    def _out_of_patience(self) -> bool:
        """--patience: the dev top-1 has not improved in that many evaluations (a resumed run
        that stopped stays stopped)."""
        return self.config.patience is not None and self.best.since >= self.config.patience

    def _evaluates_now(self) -> bool:
        """At this epoch's end: always after the last; else as --final-eval-only and
        --eval-every allow."""
        if self.epoch + 1 == self.epochs:
            return True
        if self.config.final_eval_only:
            return False
        every = self.config.eval_every
        steps_since = self.step - self.evaluated_step
        return every is None or steps_since >= every

    def _save_best(self) -> None:
        if self.runtime.is_main:
            save_weights(self.out / BEST_WEIGHTS, self.model, self.checkpoint_info())

    def test_best(self) -> Evaluation:
        """Section 4.3's early stopping: the weights of the best dev accuracy, evaluated once on
        the test split; written to test.json beside the run's log."""
        weights, _ = read_weights(self.out / BEST_WEIGHTS)
        load_state(self.model, weights, str(self.out / BEST_WEIGHTS))
        self.test_images = place(
            self.held_out_test, self.config.image_size, self.runtime, "auto", self.config.workers
        )
        test = self.evaluate(self.model)
        if self.runtime.is_main:
            result = {
                "weights": BEST_WEIGHTS,
                "step": self.best.step,
                "dev_acc": self.best.top1,
                **evaluation_fields("test", test.loss, test.top1, test.top5),
                "test_images": len(self.test_images),
            }
            write_json(self.out / TEST_RESULT, result)
            print(
                f"early stopping: best dev top-1 {self.best.top1:.4f} at step {self.best.step}; "
                f"its test top-1 {test.top1:.4f} ({self.out / TEST_RESULT})"
            )
        return test

    def train_epoch(self, progress: tqdm, timer: PhaseTimer) -> tuple[float, float, float, int]:
        """One pass (or what is left of it after a resume, or of the step budget); returns the
        mean loss and accuracy of the steps it ran, the throughput in images per second over
        all ranks, and the number of those steps; `timer` adds up where the time went.
        Checkpoints every `--checkpoint-every` steps on the way."""
        self._train_mode()
        metrics = accuracy_metrics(self.objective.num_classes, self.runtime.device)
        batches, steps = self.epoch_batches()
        every = self.config.checkpoint_every
        start = time.perf_counter()
        for step, (images, labels) in enumerate(timer.iterate(batches), start=1):
            with timer("step"):
                images = self.pad_crop(images)
                images, labels = self.mix(self.augmentation.normalise(images), labels)
                logits, targets, losses = self.train_step(images, labels)
            with timer("log"):
                metrics["loss"].update(losses)
                # MixUp's targets are label mixtures: the accuracy counts the larger share.
                metrics["top1"].update(logits, targets.argmax(-1) if targets.ndim > 1 else targets)
                self.step += 1
                progress.update()
                checkpoint = every is not None and self.step % every == 0 and step < steps
                if self.step % self.config.log_every == 0 or checkpoint:
                    self._report(metrics, progress)  # also stops a diverged run before it saves
            if checkpoint:  # the epoch's last step is saved by fit(), with the epoch counted
                with timer("checkpoint"):
                    self.save_checkpoint()
        if steps and not metrics["loss"].update_count:  # streamed: decoded as met, none read
            raise self.unreadable("not one training image of an epoch")
        with timer("log"):
            results = self._report(metrics, progress)  # syncs the device: the timing is right
        images = steps * self.local_batch * self.runtime.world_size
        throughput = images / (time.perf_counter() - start)
        return results["loss"], results["top1"], throughput, steps

    def epoch_batches(self) -> tuple[Iterator[tuple[torch.Tensor, torch.Tensor]], int]:
        """This process's (images, labels) batches for the rest of this epoch (all of it, or
        what follows a resume, within the step budget), and how many steps they make. The
        order and the crops are drawn from (seed, epoch) alone: one crop seed per image by its
        place in the epoch's global order (rank r holds places r, r + W, ...), so the same
        images are cut the same way on any number of processes, and after a resume."""
        done = self.step - self.epoch * self.steps_per_epoch  # steps run before a resume
        seed = np.random.SeedSequence([self.config.seed, self.epoch])
        generator = torch.Generator().manual_seed(int(seed.generate_state(1)[0]))
        indices = epoch_indices(len(self.train_images), **self._sharding(self.epoch), shuffle=True)
        seeds = crop_seeds(generator, len(indices) * self.runtime.world_size)
        seeds = seeds[self.runtime.rank :: self.runtime.world_size]
        steps = min(self.steps_per_epoch - done, self.total_steps - self.step)
        window = slice(done * self.local_batch, (done + steps) * self.local_batch)
        crops = Crops(self.inception, seeds[window]) if self.inception else None
        return self.train_images.batches(indices[window], self.local_batch, crops), steps

    def pad_crop(self, images: torch.Tensor) -> torch.Tensor:
        """The padded crop and flip (`--crop pad`; a no-op for the inception crop, which the
        loader cut), drawn from (seed, step, rank): a resumed run cuts the same windows."""
        if self.inception:
            return images
        seed = np.random.SeedSequence([self.config.seed, self.step, self.runtime.rank])
        generator = torch.Generator().manual_seed(int(seed.generate_state(1)[0]))
        return pad_crop(images, generator, flip=self.augmentation.flip)

    def mix(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """BiT-HyperRule's MixUp (a no-op for the other recipes): one λ per optimiser step,
        drawn from (seed, step), so a run resumed mid-epoch mixes as it would have."""
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.step)
        return mixup(images, labels, len(self.classes), self.recipe.mixup_alpha, generator)

    def _train_mode(self) -> None:
        """Training mode, except for a frozen backbone: its batch-norm statistics stay fixed."""
        self.network.train(not self.recipe.freeze_backbone)
        if self.recipe.freeze_backbone:
            self.model.head.train()

    def train_step(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimiser step on the batch's mean loss, accumulated over micro-batches; returns
        the logits, their targets (the labels, unless the objective makes its own) and the
        per-sample losses, detached, for the metrics."""
        if self.runtime.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)

        def losses_of(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
            with self.runtime.autocast():
                logits, targets = self.objective(self.network, x, y)
                logits = logits.float()
                smoothing = self.recipe.label_smoothing
                loss = F.cross_entropy(logits, targets, reduction="none", label_smoothing=smoothing)
                return logits, targets, loss

        logits, targets, losses = accumulate_gradients(
            self.network,
            images,
            labels,
            self.batch.micro_batch,
            losses_of,
            lambda loss: self.scaler.scale(loss).backward(),
        )
        if self.recipe.grad_clip:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return logits, targets, losses

    def _report(self, metrics: torchmetrics.MetricCollection, progress: tqdm) -> dict[str, float]:
        """The running loss and accuracy to the progress bar and TensorBoard; stops a run whose
        loss is no longer finite before it overwrites the last good checkpoint."""
        results = {k: v.item() for k, v in metrics.compute().items()}
        if not math.isfinite(results["loss"]):
            raise self.diverged(f"the training loss is {results['loss']}")
        lr = self.scheduler.get_last_lr()[0]
        progress.set_postfix(
            loss=f"{results['loss']:.4f}", acc=f"{results['top1']:.3f}", lr=f"{lr:.2e}"
        )
        self.log.step(self.step, results["loss"], results["top1"], lr)
        return results

    def evaluate(self, model: nn.Module) -> Evaluation:
        """`model` (the weights or their average) on the dev or test split."""
        indices = epoch_indices(len(self.test_images), **self._sharding(self.epoch), shuffle=False)
        # Under torchrun the shards may differ by a batch, and DDP's forward is a collective
        # (it broadcasts buffers): each rank evaluates with the plain model instead.
        wrapped = model is self.model and not self.runtime.distributed  # compiled, maybe
        return evaluate(
            self.network if wrapped else model,
            self.test_images,
            indices,
            self.augmentation,
            self.batch.micro_batch,
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
            model_overrides={**self.config.model_overrides, **architecture(self.model)},
            pretrained=self.config.pretrained,
            dataset=self.config.dataset,
            epoch=self.epoch,
            step=self.step,
        )

    def _checkpoint_due(self) -> bool:
        """Whether the last checkpoint (or the run's start) is --checkpoint-minutes old, by the
        main process's clock: every rank takes part in a save, so all must agree."""
        due = time.monotonic() - self.saved_at >= 60 * self.config.checkpoint_minutes
        return self.runtime.gather(due)[0]

    def save_checkpoint(self) -> None:
        """The weights and the state of this step as one checkpoint
        (`replicate.training.checkpoint`), every rank's RNG included; never weights that hold a
        NaN or an infinity."""
        broken = non_finite_weights(self.model)
        if broken:
            raise self.diverged(f"the weights ({broken[0]}, ...) hold a NaN or an infinity")
        rng = self.runtime.gather(rng_state(self.runtime.device))
        if self.runtime.is_main:
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "epoch": self.epoch,
                "step": self.step,
                "total_steps": self.total_steps,
                "rng": rng,
                "best_dev": [self.best.top1, self.best.step, self.best.since],
                "evaluated_step": self.evaluated_step,
            }
            if self.ema is not None:  # in the same checkpoint, so it resumes with the weights
                state["ema"] = self.ema.module.state_dict()
                state["ema_updates"] = int(self.ema.n_averaged)
            save_checkpoint(self.out, self.model, self.checkpoint_info(), state)
            if self.ema is not None:  # and beside the weights, for evaluate and --pretrained
                save_weights(self.out / EMA_WEIGHTS, self.ema.module, self.checkpoint_info())
        self.saved_step, self.saved_at = self.step, time.monotonic()

    def unreadable(self, what: str) -> DataError:
        """Images that could not be decoded, too many to train on: said, not trained as NaNs."""
        skipped = sorted(self.train_images.skipped | self.test_images.skipped)
        first = f"; the first: {skipped[0]}" if skipped else ""
        return DataError(
            f"{what} of {self.config.dataset} could be read ({len(skipped)} skipped{first}); "
            "check the files, e.g. with --verify-images"
        )

    def diverged(self, what: str) -> DivergedError:
        """The error that stops a run whose numbers stopped being finite, before it saves."""
        kept = (
            f"the last good checkpoint (step {self.saved_step}) is kept in {self.out}"
            if self.saved_step is not None
            else "no checkpoint was written before it"
        )
        remedy = "Try a lower --lr"
        if self.config.precision == "fp16":
            remedy += ", or --precision bf16 or fp32 instead of fp16"
        return DivergedError(f"{what} at step {self.step}; {kept}. {remedy}")

    def interrupted(self) -> str:
        """What an interrupted run says: where it stopped and how to continue it. The checkpoint
        is read from the folder: the signal may have come after a save was published."""
        checkpoint = latest_checkpoint(self.out)
        if checkpoint is None:
            return f"interrupted at step {self.step}, before the first checkpoint"
        return (
            f"interrupted at step {self.step}; the last checkpoint (step {checkpoint.step}) is "
            f"kept: continue with python -m replicate.train --resume --out {self.out}"
        )

    def _load_checkpoint(self) -> tuple[list[float], list[float]]:
        """Restore the last checkpoint; returns the input normalisation it was trained with."""
        checkpoint = latest_checkpoint(self.out)
        if checkpoint is None:
            raise FileNotFoundError(
                f"no checkpoint in {self.out}: nothing to resume (the run stopped before its "
                "first one); start it again without --resume"
            )
        state = read_state(checkpoint.state)
        weights, info = read_weights(checkpoint.weights)
        missing = sorted(set(STATE_KEYS) - set(state))
        if missing:
            raise ValueError(
                f"{checkpoint.state} lacks {', '.join(missing)}: not a state this trainer wrote "
                "(edited by hand?); resume from an earlier checkpoint or start the run again"
            )
        if (info.step, state.get("total_steps")) != (state["step"], self.total_steps):
            raise ValueError(
                f"{checkpoint.state} is not the state of {checkpoint.weights} for this run's "
                f"{self.total_steps} steps; the checkpoint folder was edited"
            )
        load_state(self.model, weights, str(checkpoint.weights))
        if self.ema is not None:
            restore(self.ema, state["ema"], state["ema_updates"])
        fused = fused_optimizer(self.runtime.device)
        for group in state["optimizer"]["param_groups"]:  # saved on one device, resumed on another
            if "fused" in group:
                group["fused"] = fused
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.best = BestDev(*state.get("best_dev", (-1.0, 0)))
        self.evaluated_step = state.get("evaluated_step", 0)
        self.saved_step = self.step
        self._restore_rng(state["rng"])
        return info.mean, info.std

    def _restore_rng(self, saved: list[dict[str, Any]]) -> None:
        """This rank's generators as saved; with another number of processes, fresh ones."""
        rank, world_size = self.runtime.rank, self.runtime.world_size
        if len(saved) != world_size:
            seed_everything(self.config.seed + world_size * self.step + rank)
            self._note(
                f"{self.out} was saved by {len(saved)} process(es) and resumes on {world_size}: "
                f"the same global batch ({self.config.batch_size}), data order, crops and "
                "schedule, but new random streams for dropout, so not bit for bit the same run"
            )
        elif not set_rng_state(saved[rank], self.runtime.device):
            self._note("saved on a GPU and resumed on the CPU: its CUDA random state is unused")

    def _note(self, message: str) -> None:
        if self.runtime.is_main:
            print(f"replicate.train: note: {message}", file=sys.stderr)


STATE_KEYS = ("optimizer", "scheduler", "scaler", "epoch", "step", "rng")  # what a resume reads
BEST_WEIGHTS = "best.safetensors"  # --early-stopping: the weights of the best dev accuracy
TEST_RESULT = "test.json"  # ... and their one evaluation on the test split


@dataclass(frozen=True)
class BestDev:
    top1: float = -1.0
    step: int = 0
    since: int = 0  # evaluations since, for --patience


def _summary(record: EpochRecord) -> str:
    evaluation = " ".join(f"{key} {value:.4f}" for key, value in record.evaluation.items())
    return (
        f"epoch {record.epoch}: train loss {record.train_loss:.4f} acc {record.train_acc:.3f} | "
        f"{evaluation or 'not evaluated'} | {record.images_per_s:.0f} img/s; time: "
        + ", ".join(f"{phase} {s:.1f} s" for phase, s in record.phase_s.items())
    )


def main(argv: Sequence[str] | None = None) -> nn.Module:
    args = parse_args(argv)
    return train(resolve_config(args), resume=args.resume)


if __name__ == "__main__":
    raise SystemExit(run_cli("replicate.train", main))
