"""Polyak averaging of the weights (Section 4.1).

"For ImageNet results in Table 2, we fine-tuned at higher resolution ... and also used Polyak &
Juditsky (1992) averaging with a factor of 0.9999."

An exponential moving average of the parameters and buffers, updated after every optimiser
step: ema <- decay * ema + (1 - decay) * weights, starting from a copy of the weights. It is
`torch.optim.swa_utils.AveragedModel` with `get_ema_multi_avg_fn`; with decay 0.9999 it averages
over roughly the last 10,000 steps, so it lags a run much shorter than that.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

EMA_WEIGHTS = "model_ema.safetensors"


def check_decay(decay: float) -> float:
    if not 0 < decay < 1:
        raise ValueError(f"--ema takes a decay in (0, 1), e.g. 0.9999 (Section 4.1); got {decay}")
    return decay


def averaged_model(model: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of `model` (the plain module, not a DDP or compiled wrapper), evaluated as it
    is: its batch-norm statistics are averaged too (`use_buffers`), not recomputed."""
    ema = AveragedModel(
        model, multi_avg_fn=get_ema_multi_avg_fn(check_decay(decay)), use_buffers=True
    )
    ema.requires_grad_(False)
    return ema


def restore(ema: AveragedModel, state: dict[str, torch.Tensor], updates: int) -> None:
    """Put back the averaged weights and the count of updates of a checkpoint."""
    ema.module.load_state_dict(state)
    ema.n_averaged.fill_(updates)
