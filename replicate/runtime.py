"""Where a run executes: the device, the process group under torchrun, mixed precision, seeds.

One process trains on the GPU if there is one, else on the CPU. Under
`torchrun --nproc_per_node=N -m replicate.train ...` each process takes GPU `LOCAL_RANK` (or, on a
machine without GPUs, the CPU with the gloo backend) and the model is wrapped in
DistributedDataParallel, which averages gradients so every rank holds the same weights.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

Precision = Literal["bf16", "fp16", "fp32"]
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def default_precision() -> Precision:
    """bf16 autocast on a GPU that has it (no loss scaling needed), fp32 elsewhere."""
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int
    world_size: int
    precision: Precision

    @classmethod
    def start(cls, precision: Precision) -> Runtime:
        """Join the process group when launched by torchrun; pick this process's device."""
        world_size = int(os.environ.get("WORLD_SIZE", 1))
        if world_size > 1:
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        device = torch.device("cpu")
        if torch.cuda.is_available():
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores
            torch.backends.cudnn.allow_tf32 = True
        rank = dist.get_rank() if world_size > 1 else 0
        return cls(device, rank, world_size, precision)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def autocast(self) -> AbstractContextManager:
        dtype = AUTOCAST_DTYPES.get(self.precision)
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for fp16 only; disabled, it passes everything through unchanged."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    def wrap(self, model: nn.Module) -> nn.Module:
        if not self.distributed:
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    @contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block (a download, say) before the others do."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def gather(self, value: Any) -> list[Any]:
        """`value` from every rank, in rank order."""
        if not self.distributed:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values

    def close(self) -> None:
        if self.distributed:
            dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every CUDA device too
