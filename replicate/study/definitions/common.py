"""Settings every study shares."""

from __future__ import annotations

from replicate.study.spec import Scale, Settings


def upstream(scale: Scale, image_size: int | None = None) -> Settings:
    """Train on the upstream dataset (CIFAR-10) at the scale's batch and workers, with early
    stopping on the dev split held out of it (Section 4.3): the best dev checkpoint is tested
    once."""
    return {
        "dataset": scale.upstream,
        "image_size": image_size or scale.image_size,
        "batch_size": scale.batch_size,
        "workers": scale.workers,
        "val_fraction": scale.dev_fraction,
        "early_stopping": True,
        "eval_every": scale.eval_every,
        "checkpoint_every": scale.checkpoint_every,
    }


def budget(steps: int) -> Settings:
    """A run of `steps` optimiser steps whose first tenth warms up. The finetune recipe's own
    500 warm-up steps (Table 4's runs are 500 to 20,000 steps) would leave a short study run
    warming up to its end, never at its peak rate nor decaying."""
    return {"steps": steps, "warmup_steps": steps // 10}


def percent(fraction: float) -> str:
    """0.05 -> "5": run names read as percentages of the training set."""
    return f"{100 * fraction:g}"


def finetune(weights: str, batch_size: int) -> Settings:
    """Start from `weights` with Appendix B.1.1's fine-tuning recipe, the whole batch in one
    pass: the recipe's micro-batches are sized for ViT-B at 384, not for these small models."""
    return {"pretrained": weights, "recipe": "finetune", "micro_batch": batch_size}
