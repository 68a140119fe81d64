"""Gradient accumulation: the paper's global batch on any memory.

"All models are fine-tuned with ... a batch size of 512" (Table 4). `--batch-size` is that global
batch, over all processes; each process splits its share into micro-batches of `--micro-batch`
images and adds up their gradients before one optimiser step:

    global batch = processes x micro-batch x accumulation steps

Each micro-batch back-propagates the sum of its losses divided by the number of losses in the
whole step, so the accumulated gradient is the gradient of the step's mean loss, as one big batch
would give, however the batch splits (a short last batch of 96 as 64 + 32 too). Under DDP every
process holds the same number of images (the sampler pads the epoch to a multiple of the
processes), so DistributedDataParallel's average of their gradients is the global batch's
gradient; the gradients are all-reduced once per step: every micro-step but the last runs
under `no_sync()`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor, nn

# Images per forward/backward pass on one process when the finetune recipes' 512 is accumulated:
# ViT-B/16 at 384 x 384 takes about 0.3 GB per image in bf16 on a GPU (64 fit in 24 GB), and
# about 0.7 GB in fp32 on a CPU (16 fit in 12 GB).
FINETUNE_MICRO_BATCH = {"cuda": 64, "cpu": 16}


@dataclass(frozen=True)
class BatchSplit:
    global_batch: int  # --batch-size: images per optimiser step over all processes
    processes: int
    micro_batch: int  # images per forward/backward pass on one process

    @property
    def local_batch(self) -> int:
        return self.global_batch // self.processes

    @property
    def accumulation_steps(self) -> int:
        return self.local_batch // self.micro_batch

    def __str__(self) -> str:
        return (
            f"global batch {self.global_batch} = {self.processes} process"
            f"{'es' * (self.processes != 1)} x micro-batch {self.micro_batch} x "
            f"{self.accumulation_steps} accumulation step{'s' * (self.accumulation_steps != 1)}"
        )


def split_batch(global_batch: int, processes: int, micro_batch: int | None) -> BatchSplit:
    """How `global_batch` splits; `micro_batch=None` (or one above the per-process batch) means
    one pass per step. Fails with a message when the numbers do not divide."""
    if global_batch % processes:
        raise ValueError(f"--batch-size {global_batch} does not split over {processes} processes")
    local = global_batch // processes
    micro = min(micro_batch or local, local)
    if local % micro:
        divisors = [d for d in range(micro, 0, -1) if local % d == 0][:1]
        raise ValueError(
            f"--micro-batch {micro} does not divide the {local} images per process "
            f"(--batch-size {global_batch} over {processes} process(es)); try {divisors[0]}"
        )
    return BatchSplit(global_batch, processes, micro)


def accumulate_gradients(
    network: nn.Module,
    images: Tensor,
    labels: Tensor,
    micro_batch: int,
    losses_of: Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]],
    backward: Callable[[Tensor], None],
) -> tuple[Tensor, Tensor, Tensor]:
    """Forward and backward over `images` in micro-batches, gradients added in `.grad`.

    losses_of(images, labels) -> (logits, targets, losses): one loss per image, or per scored
    item (the masked patches of masked patch prediction, the same number in every image);
    backward(loss) back-propagates (through the loss scaler in fp16). Each micro-batch's summed
    losses are divided by the step's count of losses, so the gradient is the step's mean loss's.
    Returns all the logits, targets and losses, detached."""
    chunks = list(zip(images.split(micro_batch), labels.split(micro_batch), strict=True))
    no_sync = getattr(network, "no_sync", nullcontext)  # DistributedDataParallel's
    outputs = []
    count = None  # losses in the step: images x scored items per image
    for index, (x, y) in enumerate(chunks):
        last = index == len(chunks) - 1
        with nullcontext() if last else no_sync():
            logits, targets, losses = losses_of(x, y)
            count = count or len(images) * losses.numel() // len(x)
            backward(losses.sum() / count)
        outputs.append((logits.detach(), targets, losses.detach()))
    logits, targets, losses = zip(*outputs, strict=True)
    return torch.cat(logits), torch.cat(targets), torch.cat(losses)
