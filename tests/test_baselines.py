"""The CNN baselines: shapes, parameter counts, the head contract, and weights offline."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision
from torch import nn

from replicate.models import create_model, list_models
from vit.pretrained import IMAGENET_MEAN, WeightsUnavailableError


def test_registered_as_cnn() -> None:
    assert list_models("cnn") == [
        "bit_r101x1",
        "bit_r152x2",
        "bit_r50x1",
        "bit_r50x3",
        "effnet_b0",
        "effnet_b2",
        "tinyvgg",
    ]


@pytest.mark.parametrize("image_size", [16, 64, 100])
def test_tinyvgg_forward_any_image_size(image_size: int) -> None:
    model = create_model("tinyvgg", num_classes=3, image_size=image_size)
    assert model(torch.randn(2, 3, image_size, image_size)).shape == (2, 3)


def test_tinyvgg_is_the_courses_layout() -> None:
    model = create_model("tinyvgg", num_classes=3, hidden_units=8)  # 64x64 by default
    assert model.head[-1].in_features == 8 * 13 * 13  # the course's hidden_units * 13 * 13
    assert model.conv_block_1[0].out_channels == 8
    convs = (3 * 9 + 1) * 8 + 3 * (8 * 9 + 1) * 8  # one 3->8 and three 8->8 3x3 convolutions
    assert sum(p.numel() for p in model.parameters()) == convs + (8 * 13 * 13 + 1) * 3


def test_tinyvgg_rejects_pretrained_and_wrong_sizes() -> None:
    with pytest.raises(ValueError, match="no pretrained weights"):
        create_model("tinyvgg", pretrained="torchvision:DEFAULT")
    with pytest.raises(ValueError, match="at least 16x16"):
        create_model("tinyvgg", image_size=15)
    with pytest.raises(ValueError, match="built for 64x64"):
        create_model("tinyvgg")(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("name", ["effnet_b0", "effnet_b2"])
@pytest.mark.parametrize("image_size", [32, 96])
def test_effnet_forward_any_image_size(name: str, image_size: int) -> None:
    model = create_model(name, num_classes=5, image_size=image_size).eval()
    assert model(torch.randn(2, 3, image_size, image_size)).shape == (2, 5)


def test_effnet_matches_torchvision() -> None:
    model = create_model("effnet_b0")
    reference = torchvision.models.efficientnet_b0()
    assert sum(p.numel() for p in model.parameters()) == 5_288_548
    assert model.state_dict().keys() == reference.state_dict().keys()
    assert model.head[0].p == 0.2 and create_model("effnet_b2").head[0].p == 0.3
    assert create_model("effnet_b0", dropout=0.5).head[0].p == 0.5


@pytest.mark.parametrize("name", ["tinyvgg", "effnet_b0"])
def test_replace_head(name: str) -> None:
    model = create_model(name, num_classes=1000).to(torch.float64)
    model.replace_head(7)
    assert isinstance(model.head[-1], nn.Linear)
    assert model.head[-1].out_features == 7 and model.head[-1].weight.dtype == torch.float64


def _offline(*args, **kwargs):
    raise urllib.error.URLError("[Errno -2] Name or service not known")


def _bad_hash(*args, **kwargs):
    raise RuntimeError('invalid hash value (expected "7f5810bc", got "0123abcd")')


@pytest.mark.parametrize("fetch, cause", [(_offline, "Name or service"), (_bad_hash, "hash")])
def test_weights_unavailable_name_weights_and_cause(monkeypatch, fetch, cause: str) -> None:
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fetch)
    with pytest.raises(WeightsUnavailableError, match=cause) as error:
        create_model("effnet_b0", pretrained="torchvision:IMAGENET1K_V1")
    assert "EfficientNet_B0_Weights.IMAGENET1K_V1" in str(error.value)
    assert "pretrained='/path/to/efficientnet_b0_rwightman-7f5810bc.pth'" in str(error.value)


def test_bad_weight_specs() -> None:
    with pytest.raises(
        ValueError, match="no weights 'IMAGENET21K'; available: IMAGENET1K_V1, DEFAULT"
    ):
        create_model("effnet_b0", pretrained="torchvision:IMAGENET21K")
    with pytest.raises(ValueError, match="no weights file no/such/file.pth"):
        create_model("effnet_b0", pretrained="no/such/file.pth")


def test_pretrained_from_local_file(tmp_path) -> None:
    torch.manual_seed(0)
    reference = torchvision.models.efficientnet_b0().eval()
    path = tmp_path / "efficientnet_b0.pth"
    torch.save(reference.state_dict(), path)

    model = create_model("effnet_b0", num_classes=3, pretrained=str(path)).eval()
    assert model.pretrained_info.spec == str(path)
    assert model.pretrained_info.image_size == 224 and model.pretrained_info.mean == IMAGENET_MEAN
    reference.classifier[-1] = model.head[-1]  # same backbone weights, same new 3-class head
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(images), reference(images))
        assert not torch.equal(model.features(images), create_model("effnet_b0").features(images))

    # A fine-tuned file keeps its own head when the class counts agree.
    torch.save(model.state_dict(), path)
    again = create_model("effnet_b0", num_classes=3, pretrained=str(path)).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(images), model(images))
