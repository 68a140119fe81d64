"""What is timed: one training step (forward, cross-entropy, backward, AdamW) and one inference
forward, on a fixed synthetic batch, under bf16 autocast or in fp32."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

Forward = Callable[[torch.Tensor], torch.Tensor]
PRECISIONS = {"bf16": torch.bfloat16, "fp32": torch.float32}


def synthetic_batch(
    batch_size: int, image_size: int, num_classes: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images and labels, the same for every model at a given batch size."""
    generator = torch.Generator(device).manual_seed(0)
    images = torch.randn(batch_size, 3, image_size, image_size, device=device, generator=generator)
    labels = torch.randint(num_classes, (batch_size,), device=device, generator=generator)
    return images, labels


def autocast(device: torch.device, precision: str) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def compiled(model: nn.Module, mode: str) -> Forward:
    """`torch.compile(model, mode=mode)`, marking each call as a new step for the CUDA-graph
    modes ("reduce-overhead", "max-autotune"), which otherwise reuse the previous step's outputs."""
    compiled_model = torch.compile(model, mode=mode)

    def forward(images: torch.Tensor) -> torch.Tensor:
        torch.compiler.cudagraph_mark_step_begin()
        return compiled_model(images)

    return forward


def train_step(
    forward: Forward, model: nn.Module, images: torch.Tensor, labels: torch.Tensor, precision: str
) -> Callable[[], None]:
    """A closure running one training step; AdamW is fused on CUDA, as a fast trainer uses it."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=images.device.type == "cuda")

    def step() -> None:
        with autocast(images.device, precision):
            loss = F.cross_entropy(forward(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def inference_step(
    forward: Forward, model: nn.Module, images: torch.Tensor, precision: str
) -> Callable[[], None]:
    """A closure running one forward pass in eval and inference mode."""
    model.eval()

    def step() -> None:
        with torch.inference_mode(), autocast(images.device, precision):
            forward(images)

    return step
