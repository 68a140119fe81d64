"""Shared test helpers: small configs keep the suite fast on a 2-core CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vit import ViTConfig

# The project's offline data beside the checkout; a user's clone has none, and the tests that
# read it skip there (CI and the project's machines have it, so they run there).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_shared_data = pytest.mark.skipif(
    not (SHARED_DATA / "hymenoptera_data").is_dir(),
    reason=f"needs the photos in {SHARED_DATA}, which a clone of the project alone does not have",
)


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
