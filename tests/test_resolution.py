"""Section 3.2: fine-tuning at a higher resolution by 2-D interpolation of E_pos."""

import pytest
import torch

import vit
from vit.embedding import resize_position_embedding


def test_224_to_384_gives_a_working_model() -> None:
    model = vit.create_model("vit_ti16", num_classes=4, depth=1)
    model.resize_position_embedding(384)
    assert model.embedding.position_embedding.shape == (1, 24 * 24 + 1, 192)
    assert model.config.image_size == 384
    assert model(torch.randn(1, 3, 384, 384)).shape == (1, 4)


def test_same_size_is_the_identity() -> None:
    pos = torch.randn(1, 14 * 14 + 1, 8)
    assert torch.equal(resize_position_embedding(pos, 14), pos)


def test_class_token_embedding_is_kept_and_grid_interpolated() -> None:
    # A position embedding linear in the column index stays linear after upsampling.
    grid = torch.arange(4.0).repeat(4, 1)  # (4, 4): value = column
    pos = torch.cat([torch.full((1, 1), 9.0), grid.reshape(16, 1)]).reshape(1, 17, 1)
    resized = resize_position_embedding(pos, 8, mode="bilinear")
    assert resized[0, 0, 0] == 9.0
    new_grid = resized[0, 1:, 0].reshape(8, 8)
    assert torch.allclose(new_grid[0], new_grid[5])  # rows are alike
    assert (new_grid[0].diff() >= 0).all()  # still increasing along the columns


def test_resolution_not_divisible_by_patch_is_rejected() -> None:
    model = vit.create_model("vit_ti16", depth=1)
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        model.resize_position_embedding(390)
