"""Batch norm over the global batch under torchrun, so that N processes train a CNN baseline as
one process would on the same global batch.

Each process of DistributedDataParallel sees 1/N of the batch; left alone, a batch-norm layer
would normalise with that shard's statistics and update its running statistics from it, so the
ranks' models drift apart and the result depends on the process count. On GPUs,
`torch.nn.SyncBatchNorm` shares the statistics. It does not run on CPUs (gloo), so there every
rank gathers the whole batch's features (autograd-aware `all_gather`), applies the ordinary batch
norm to them, exactly as one process would, and keeps its own rows: N times the batch-norm work,
which only CPU runs, small by nature, pay.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as distributed
from torch import Tensor, nn


class GatheredBatchNorm(nn.Module):
    """Mixed in before a batch-norm class (`nn.BatchNorm2d`, timm's `BatchNormAct2d`): its
    training statistics are those of the global batch."""

    def forward(self, features: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(features)
        every_rank = torch.cat(distributed.all_gather(features))  # equal shards: the sampler pads
        rows = features.shape[0]
        return super().forward(every_rank).narrow(0, dist.get_rank() * rows, rows)


@cache
def gathered(norm: type[nn.BatchNorm2d]) -> type[nn.BatchNorm2d]:
    """`norm` with `GatheredBatchNorm`'s forward: same fields, so the state dict is unchanged."""
    return type(f"Gathered{norm.__name__}", (GatheredBatchNorm, norm), {})


def synchronise_batch_norm(model: nn.Module, device: torch.device) -> nn.Module:
    """The model with every batch-norm layer computing global-batch statistics: SyncBatchNorm on
    a GPU (timm's conversion, which keeps a norm-act layer's activation), `GatheredBatchNorm` on
    the CPU. Parameters, buffers and state-dict keys stay."""
    if device.type != "cpu":
        from timm.layers import convert_sync_batchnorm

        return convert_sync_batchnorm(model)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and not isinstance(module, GatheredBatchNorm):
            module.__class__ = gathered(type(module))
    return model
