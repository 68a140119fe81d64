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

import ctypes
import os
import random
import sys
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
from replicate.errors import Unavailable

Precision = Literal["bf16", "fp16", "fp32", "fp8"]
# The dtype the matrix products run in under each precision; fp8 runs torchao's float8 linear
# layers (`float8_training`) inside bf16 autocast, for the products they do not take.
COMPUTE_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
    "fp8": torch.bfloat16,
}
FLOAT8_CAPABILITY = (8, 9)  # Ada and Hopper: the first GPUs with float8 tensor cores
T = TypeVar("T")


# oneDNN's names for the instruction sets that include AMX (`ONEDNN_MAX_CPU_ISA` may cap it),
# and those that include AVX512-BF16's dot products.
AMX_ISAS = ("AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX10_2_512_AMX_2", "ALL", "DEFAULT")
AVX512_BF16_ISAS = ("AVX512_CORE_BF16", *AMX_ISAS)


def default_precision() -> tuple[Precision, str]:
    """The fastest precision that trains as well as fp32, and why: bf16 autocast on a GPU that
    has it (no loss scaling needed), and on a CPU whose oneDNN may use AMX (bf16 matrix products
    measured 5x the fp32 ones on an Intel Xeon) or AVX512-BF16 (the studies' ViT trained 1.85x
    faster than in fp32 on an AMD EPYC); fp32 elsewhere: with AVX2 alone bf16 is emulated, and
    measured a thousand times slower."""
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return "bf16", "GPU with bf16"
        return "fp32", "GPU without bf16"
    if cpu_has_amx():
        return "bf16", "CPU with AMX (bf16 matrix units)"
    if cpu_has_avx512_bf16():
        return "bf16", "CPU with AVX512-BF16 (bf16 dot products)"
    return "fp32", "CPU without AMX or AVX512-BF16: bf16 is emulated there"


def fused_optimizer(device: torch.device) -> bool:
    """Whether the optimiser takes PyTorch's fused kernel (one per parameter tensor, in place of
    a dozen elementwise ops each): on CUDA, and on the CPU, where an AdamW step over ViT-B/16's
    86M parameters measured 51 ms fused against 280 ms in the per-parameter loop (2 cores)."""
    return device.type in ("cuda", "cpu")


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # the largest glibc accepts on 64-bit machines


def keep_freed_memory() -> None:
    """Keep the memory a training step frees for the next step, instead of glibc's returning
    it to the kernel. Each step frees and reallocates the same activations; returned, every
    page of them is faulted in again next step, which made the elementwise ops of a CPU step
    (dropout, GELU) several times slower than on warm memory: a ViT-Ti/4 training step at
    32x32 measured 12% faster with the memory kept. A process's memory then stays at its peak.
    Nothing to do where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # no glibc (musl, say)
        return
    mallopt(M_TRIM_THRESHOLD, 1 << 30)  # keep up to 1 GB free at the top of the heap
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)  # blocks up to 32 MB from the heap, kept


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles and oneDNN is allowed to use them."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    return torch.cpu._is_amx_tile_supported() and cap in AMX_ISAS


def cpu_has_avx512_bf16() -> bool:
    """Whether this CPU has AVX512-BF16 and oneDNN is allowed to use it."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    return torch.cpu._is_avx512_bf16_supported() and cap in AVX512_BF16_ISAS


def cpu_isa() -> str:
    """The CPU's fastest bf16 path, else its vector instructions ("AMX", "AVX512-BF16", "AVX2"):
    what decides its default precision and its speed, so that records name it beside the CPU."""
    if cpu_has_amx():
        return "AMX"
    if cpu_has_avx512_bf16():
        return "AVX512-BF16"
    return torch.backends.cpu.get_cpu_capability()


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
        else:
            keep_freed_memory()
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

    @property
    def channels_last(self) -> bool:
        """Whether convolutions train faster channels-last: on the GPU, and in fp32 on the CPU
        (a ResNet's step 1.3x faster on AVX2); not in bf16 on the CPU, where GroupNorm's
        channels-last kernel made it 1.4x slower (docs/benchmarks.md)."""
        return self.device.type == "cuda" or self.precision == "fp32"

    def autocast(self) -> AbstractContextManager:
        return autocast(self.device, self.precision)

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


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on `device`: CUDA runs asynchronously, a CPU queues none."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """Mixed precision: matrix products in the precision's dtype, reductions kept in fp32."""
    dtype = COMPUTE_DTYPES[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)


def float8_training(model: nn.Module) -> nn.Module:
    """`--precision fp8`: torchao swaps the model's linear layers for float8 ones in place
    (e4m3 inputs and weights with dynamic per-tensor scales, e5m2 gradients), leaving out those
    whose sizes are not multiples of 16, which the float8 matrix product cannot take. It pays
    under torch.compile, which fuses the casts into the neighbouring kernels."""
    if not torch.cuda.is_available() or torch.cuda.get_device_capability() < FLOAT8_CAPABILITY:
        raise Unavailable(
            "--precision fp8 needs an NVIDIA GPU with float8 tensor cores (compute capability "
            "8.9 or later: H100, H200, L4, RTX 4090); use bf16 here"
        )
    try:
        from torchao.float8 import convert_to_float8_training
    except ImportError as error:
        raise Unavailable(
            "--precision fp8 needs torchao (pip install torchao, the version built for this torch)"
        ) from error
    return convert_to_float8_training(model, module_filter_fn=_float8_sized)


def _float8_sized(module: nn.Module, name: str) -> bool:
    sizes = (module.in_features, module.out_features) if isinstance(module, nn.Linear) else (1,)
    return all(size % 16 == 0 for size in sizes)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every CUDA device too
