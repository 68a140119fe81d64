"""Where a run executes: the device, the process group under torchrun, mixed precision, seeds.

One process trains on the GPU if there is one, else on the CPU. Under
`torchrun --nproc_per_node=N -m replicate.train ...` each process takes GPU `LOCAL_RANK` (or, on a
machine without GPUs, the CPU with the gloo backend) and the model is wrapped in
DistributedDataParallel, which averages gradients so every rank holds the same weights. Work
that a node needs once (a download, the listing of an image folder, decoding the images kept in
memory) is done by its local rank 0 and shared with the node's other ranks (`once_per_node`);
batch norm uses the statistics of the global batch, so a CNN trains as it would in one process.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from replicate.batch_norm import synchronise_batch_norm

Precision = Literal["bf16", "fp16", "fp32"]
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
T = TypeVar("T")


def default_precision() -> Precision:
    """bf16 autocast on a GPU that has it (no loss scaling needed), fp32 elsewhere."""
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int
    world_size: int
    precision: Precision
    local_rank: int = 0  # on this node
    local_world_size: int = 1  # processes on this node
    node_group: Any = None  # the process group of this node's ranks, under torchrun

    @classmethod
    def start(cls, precision: Precision) -> Runtime:
        """Pick this process's device, then join the process group when launched by torchrun
        (bound to the device, so NCCL sets up its communicator for that GPU at once)."""
        world_size = int(os.environ.get("WORLD_SIZE", 1))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        device = torch.device("cpu")
        if torch.cuda.is_available():
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores
            torch.backends.cudnn.allow_tf32 = True
        if world_size == 1:
            return cls(device, 0, 1, precision)
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
        # torchrun numbers the ranks of a node consecutively: groups of LOCAL_WORLD_SIZE.
        node_group, _ = dist.new_subgroups(group_size=local_world_size)
        return cls(
            device, dist.get_rank(), world_size, precision, local_rank, local_world_size, node_group
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def once_per_node(self, work: Callable[[], T]) -> T:
        """`work()` run by this node's local rank 0, its result (or its exception) handed to the
        node's other ranks, which wait for it."""
        if self.local_world_size == 1:
            return work()
        box: list[Any] = [None]
        if self.local_rank == 0:
            try:
                box[0] = (work(), None)
            except Exception as error:  # the other ranks raise it too, rather than hang
                box[0] = (None, error)
        dist.broadcast_object_list(box, src=self.rank - self.local_rank, group=self.node_group)
        result, error = box[0]
        if error is not None:
            raise error
        return result

    def node_barrier(self) -> None:
        if self.local_world_size > 1:
            dist.barrier(group=self.node_group)

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
        """DistributedDataParallel under torchrun, batch norm over the global batch
        (`replicate.batch_norm`); the model itself in one process."""
        if not self.distributed:
            return model
        model = synchronise_batch_norm(model, self.device)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

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
