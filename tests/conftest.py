"""Shared test helpers: small configs keep the suite fast on a 2-core CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from vit import ViTConfig

# The project's offline data beside the checkout; a user's clone has none, and the tests that
# read it skip there (CI and the project's machines have it, so they run there).
# VIT_REPLICATE_SHARED_DATA points elsewhere: tests/test_fresh_clone.py hides it that way.
SHARED_DATA = Path(
    os.environ.get("VIT_REPLICATE_SHARED_DATA")
    or Path(__file__).resolve().parents[2] / "shared" / "data"
)
needs_shared_data = pytest.mark.shared_data


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if (SHARED_DATA / "hymenoptera_data").is_dir():
        return
    skip = pytest.mark.skip(
        reason=f"needs the photos in {SHARED_DATA}, which a clone of the project alone lacks"
    )
    for item in items:
        if item.get_closest_marker("shared_data"):
            item.add_marker(skip)


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
