"""Eq. 1: z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos."""

import pytest
import torch
from einops import rearrange

from vit import ViTConfig
from vit.embedding import PatchEmbedding


@pytest.mark.parametrize("image_size,patch_size", [(32, 8), (32, 16), (48, 16), (28, 14), (64, 32)])
def test_shape_is_batch_by_n_plus_one_by_d(image_size: int, patch_size: int) -> None:
    config = ViTConfig(image_size=image_size, patch_size=patch_size, hidden_size=24, num_heads=2)
    z0 = PatchEmbedding(config)(torch.randn(3, 3, image_size, image_size))
    n = image_size**2 // patch_size**2  # N = HW / P^2
    assert z0.shape == (3, n + 1, 24)


def test_class_token_is_at_index_zero(tiny_config: ViTConfig) -> None:
    embedding = PatchEmbedding(tiny_config)
    torch.nn.init.normal_(embedding.class_token)
    torch.nn.init.normal_(embedding.position_embedding)
    z0 = embedding(torch.randn(2, 3, 32, 32))
    expected = embedding.class_token[0, 0] + embedding.position_embedding[0, 0]
    torch.testing.assert_close(z0[:, 0], expected.expand(2, -1))


def test_flatten_then_linear_equals_the_stored_convolution(tiny_config: ViTConfig) -> None:
    """E of flattened patches (what the model computes) is the stride-P convolution that
    holds its weights, as the reference implementations store and apply them."""
    embedding = PatchEmbedding(tiny_config)
    torch.nn.init.normal_(embedding.class_token)
    images = torch.randn(2, 3, 32, 32)
    grid = embedding.projection(images)  # (B, D, grid, grid)
    expected = torch.cat(
        [embedding.class_token.expand(2, -1, -1), rearrange(grid, "b d gh gw -> b (gh gw) d")],
        dim=1,
    )
    expected = expected + embedding.position_embedding
    torch.testing.assert_close(embedding(images), expected, atol=1e-5, rtol=1e-5)


def test_dropout_follows_position_embedding(tiny_config: ViTConfig) -> None:
    embedding = PatchEmbedding(tiny_config.replace(dropout=0.5)).train()
    z0 = embedding(torch.randn(2, 3, 32, 32))
    assert (z0 == 0).float().mean() > 0.3  # Appendix B.1: dropout after adding E_pos
    assert torch.equal(
        embedding.eval()(torch.ones(1, 3, 32, 32)), embedding(torch.ones(1, 3, 32, 32))
    )


def test_image_size_not_divisible_by_patch_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="not divisible by patch_size 16"):
        ViTConfig(image_size=225, patch_size=16)


def test_wrong_channel_count_is_rejected(tiny_config: ViTConfig) -> None:
    with pytest.raises(ValueError, match="expected 3 channels, got 1"):
        PatchEmbedding(tiny_config)(torch.randn(2, 1, 32, 32))


def test_wrong_image_size_is_rejected(tiny_config: ViTConfig) -> None:
    with pytest.raises(ValueError, match="expected 32x32 images, got 40x40"):
        PatchEmbedding(tiny_config)(torch.randn(2, 3, 40, 40))
