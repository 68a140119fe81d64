"""Shared test helpers: small configs keep the suite fast on a 2-core CPU."""

from __future__ import annotations

import pytest
import torch

from vit import ViTConfig


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def tiny_config() -> ViTConfig:
    """A two-layer ViT on 32x32 images with 8x8 patches: N = 16, D = 32, 4 heads."""
    return ViTConfig(
        image_size=32,
        patch_size=8,
        num_classes=5,
        hidden_size=32,
        depth=2,
        num_heads=4,
        mlp_size=64,
    )
