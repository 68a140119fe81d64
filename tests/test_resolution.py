"""Section 3.2: fine-tuning at a higher resolution by 2-D interpolation of E_pos."""

import numpy as np
import pytest
import scipy.ndimage
import torch
from timm.layers import resample_abs_pos_embed

import vit
from vit.embedding import resize_position_embedding
from vit.pretrained import load_pretrained


def test_224_to_384_gives_a_working_model() -> None:
    model = vit.create_model("vit_ti16", num_classes=4, depth=1)
    model.resize_position_embedding(384)
    assert model.embedding.position_embedding.shape == (1, 24 * 24 + 1, 192)
    assert model.config.image_size == 384
    assert model(torch.randn(1, 3, 384, 384)).shape == (1, 4)


def test_same_size_is_the_identity() -> None:
    pos = torch.randn(1, 14 * 14 + 1, 8)
    assert torch.equal(resize_position_embedding(pos, 14, class_token=True), pos)


def test_class_token_embedding_is_kept_and_grid_interpolated() -> None:
    # A position embedding linear in the column index stays linear after upsampling.
    grid = torch.arange(4.0).repeat(4, 1)  # (4, 4): value = column
    pos = torch.cat([torch.full((1, 1), 9.0), grid.reshape(16, 1)]).reshape(1, 17, 1)
    resized = resize_position_embedding(pos, 8, class_token=True)
    assert resized[0, 0, 0] == 9.0
    new_grid = resized[0, 1:, 0].reshape(8, 8)
    assert torch.allclose(new_grid[0], new_grid[5])  # rows are alike
    torch.testing.assert_close(new_grid[0], torch.linspace(0, 3, 8))  # corners stay corners


@pytest.mark.parametrize("old,new", [(3, 5), (5, 3), (7, 12), (4, 4 * 24 // 16)])
@pytest.mark.parametrize("class_token", [True, False])
def test_linear_interpolation_is_the_official_scipy_zoom(
    old: int, new: int, class_token: bool
) -> None:
    """`vit_jax/checkpoint.py` `interpolate_posembed` and big_vision's `resample_posemb`:
    scipy.ndimage.zoom(grid, (new / old, new / old, 1), order=1) on the (g, g, D) grid."""
    pos = torch.randn(1, int(class_token) + old * old, 6, dtype=torch.float64)
    grid = pos[0, int(class_token) :].reshape(old, old, 6).numpy()
    expected = scipy.ndimage.zoom(grid, (new / old, new / old, 1), order=1).reshape(1, -1, 6)
    resized = resize_position_embedding(pos, new, class_token=class_token, mode="linear")
    assert resized.shape == (1, int(class_token) + new * new, 6)
    np.testing.assert_allclose(resized[:, int(class_token) :].numpy(), expected, atol=1e-6)
    assert torch.equal(resized[:, : int(class_token)], pos[:, : int(class_token)])


@pytest.mark.parametrize("old,new", [(3, 5), (6, 4)])
def test_bicubic_interpolation_is_timms(old: int, new: int) -> None:
    pos = torch.randn(1, 1 + old * old, 6)
    expected = resample_abs_pos_embed(pos, (new, new), num_prefix_tokens=1)
    resized = resize_position_embedding(pos, new, class_token=True, mode="bicubic")
    torch.testing.assert_close(resized, expected)


def test_interpolation_mode_is_chosen_where_users_call_it(tmp_path) -> None:
    model = vit.create_model("vit_ti16", depth=1, image_size=32)
    pos = model.embedding.position_embedding.detach().clone()
    model.resize_position_embedding(48, mode="bicubic")
    expected = resize_position_embedding(pos, 3, class_token=True, mode="bicubic")
    assert torch.equal(model.embedding.position_embedding, expected)
    with pytest.raises(ValueError, match="'linear' or 'bicubic'"):
        model.resize_position_embedding(64, mode="nearest")
    path = tmp_path / "small.pth"
    torch.save(vit.create_model("vit_ti16", depth=1, image_size=32).state_dict(), path)
    checkpoint = torch.load(path)["embedding.position_embedding"]
    config = model.config.replace(image_size=48)
    for mode in ("linear", "bicubic"):
        expected = resize_position_embedding(checkpoint, 3, class_token=True, mode=mode)
        loaded = load_pretrained(config, str(path), "vit_ti16", interpolation=mode)
        assert torch.equal(loaded.embedding.position_embedding, expected)
        created = vit.create_model(
            "vit_ti16", depth=1, image_size=48, pretrained=str(path), interpolation=mode
        )
        assert torch.equal(created.embedding.position_embedding, expected)


def test_resolution_not_divisible_by_patch_is_rejected() -> None:
    model = vit.create_model("vit_ti16", depth=1)
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        model.resize_position_embedding(390)
