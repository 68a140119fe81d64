"""The models as timm and torch.hub users expect them: `pretrained_cfg` that gives this project's
evaluation view, timm's head methods, timm's registry and a `hubconf.py`."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import timm.data
import torch
from conftest import SHARED_DATA, needs_shared_data
from PIL import Image

import replicate.timm_models  # noqa: F401  (registers the models with timm)
import vit
from replicate import models
from replicate.data.augment import Augmentation
from replicate.data.images import SquareImages, load_image
from vit.data_config import IMAGENET_MEAN, INCEPTION_MEAN

REPO = Path(__file__).resolve().parents[1]
PHOTO = SHARED_DATA / "hymenoptera_data/val/bees/1032546534_06907fe3b3.jpg"


def tiny_vit(**kwargs) -> vit.VisionTransformer:
    return models.create_model("vit_ti16", image_size=32, depth=1, **kwargs)


def project_view(model: torch.nn.Module, path: Path) -> torch.Tensor:
    """The test images of replicate.train/evaluate/predict: squashed to S x S, normalised."""
    size = model.pretrained_cfg["input_size"][-1]
    image = SquareImages([(load_image(str(path)), 0)], size)[0][0]
    mean, std = model.pretrained_cfg["mean"], model.pretrained_cfg["std"]
    return Augmentation(mean, std).eval(image[None])[0]


def efficientnet_from_a_torchvision_file(tmp_path: Path) -> torch.nn.Module:
    import torchvision

    path = tmp_path / "efficientnet_b0.pth"
    torch.save(torchvision.models.efficientnet_b0().state_dict(), path)
    return models.create_model("effnet_b0", num_classes=2, image_size=48, pretrained=str(path))


@needs_shared_data
@pytest.mark.parametrize("weights", ["scratch", "torchvision"])
def test_timm_transform_from_pretrained_cfg_is_the_projects_view(weights, tmp_path) -> None:
    model = tiny_vit() if weights == "scratch" else efficientnet_from_a_torchvision_file(tmp_path)
    config = timm.data.resolve_model_data_config(model)
    expected_mean = INCEPTION_MEAN if weights == "scratch" else IMAGENET_MEAN
    assert config["mean"] == expected_mean and config["crop_mode"] == "squash"
    timm_view = timm.data.create_transform(**config)(Image.open(PHOTO).convert("RGB"))
    ours = project_view(model, PHOTO)
    assert timm_view.shape == ours.shape == config["input_size"]
    one_level = 1 / 255 / min(config["std"])  # PIL's and torch's antialiased resize round apart
    torch.testing.assert_close(timm_view, ours, rtol=0, atol=one_level + 1e-6)


def test_pretrained_cfg_follows_the_models_resolution_and_weights(tmp_path) -> None:
    model = tiny_vit()
    model.resize_position_embedding(48)
    assert model.pretrained_cfg["input_size"] == (3, 48, 48) == (3, *[model.config.image_size] * 2)
    path = tmp_path / "ti.pth"
    torch.save(model.state_dict(), path)
    loaded = tiny_vit(pretrained=str(path))  # this project's layout: mean = std = 0.5
    assert loaded.pretrained_cfg["mean"] == INCEPTION_MEAN


def test_timm_head_methods() -> None:
    model = tiny_vit(num_classes=3, representation_size=16).eval()
    images = torch.randn(2, 3, 32, 32)
    assert model.num_classes == 3 and model(images).shape == (2, 3)
    z = model.forward_features(images)
    assert model.forward_head(z, pre_logits=True).shape == (2, 16)  # the classifier's input

    model.reset_classifier(5, global_pool="avg")
    assert (model.num_classes, model.config.num_classes, model.config.pool) == (5, 5, "gap")
    assert not model(images).any()  # Appendix B.1.1: a zero-initialised head
    model.reset_classifier(0)  # timm's convention: the model outputs its features
    assert model.num_classes == 0 and model.config.representation_size is None
    torch.testing.assert_close(model(images), model.forward_head(z, pre_logits=True))
    with pytest.raises(ValueError, match="global_pool"):
        model.reset_classifier(5, global_pool="max")


def test_models_in_timms_registry_under_a_prefix(tmp_path) -> None:
    assert {f"replicate_{n}" for n in models.list_models()} <= set(timm.list_models("replicate_*"))
    model = timm.create_model("replicate_vit_ti16", num_classes=3, img_size=32, depth=1)
    assert isinstance(model, vit.VisionTransformer) and model.config.image_size == 32
    path = tmp_path / "ti.pth"
    torch.save(model.state_dict(), path)
    loaded = timm.create_model(  # timm's way to name a local file of weights
        "replicate_vit_ti16", pretrained=True, pretrained_cfg_overlay={"file": str(path)},
        num_classes=3, img_size=32, depth=1, global_pool="token", in_chans=3,
    )  # fmt: skip
    images = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded(images), model(images))
    # A tag names the reference's weights, as for timm's own models.
    assert models.default_weights("vit_b16", "orig_in21k_ft_in1k") == (
        "timm:vit_base_patch16_224.orig_in21k_ft_in1k"
    )
    assert models.default_weights("effnet_b0") == "torchvision:DEFAULT"
    with pytest.raises(ValueError, match="tinyvgg has no pretrained weights"):
        models.default_weights("tinyvgg")


def test_torch_hub_loads_from_a_clone(tmp_path) -> None:
    model = tiny_vit(num_classes=3)
    path = tmp_path / "ti.pth"
    torch.save(model.state_dict(), path)
    kwargs = dict(num_classes=3, image_size=32, depth=1)
    loaded = torch.hub.load(str(REPO), "vit_ti16", source="local", pretrained=str(path), **kwargs)
    images = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded(images), model(images))
    cnn = torch.hub.load(str(REPO), "tinyvgg", source="local", num_classes=2)
    assert cnn(torch.randn(1, 3, 64, 64)).shape == (1, 2)
