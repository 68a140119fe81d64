"""Graph breaks under torch.compile, counted by `torch._dynamo.explain` (no compiler needed)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class GraphBreaks:
    graph_count: int  # FX graphs dynamo captured; 1 means the whole forward is one graph
    graph_break_count: int
    reasons: tuple[str, ...]  # why dynamo broke the graph, one line each


def explain(model: nn.Module, images: torch.Tensor) -> GraphBreaks:
    """Trace one forward of `model` with dynamo and report where it fell back to Python."""
    explanation = torch._dynamo.explain(model)(images)
    torch._dynamo.reset()  # leave no traced state behind for later torch.compile calls
    return GraphBreaks(
        explanation.graph_count,
        explanation.graph_break_count,
        tuple(str(reason.reason) for reason in explanation.break_reasons),
    )
