"""The BiT ResNets: timm's parameter counts, the two stems, the zero-initialised head, and weights
(timm state dicts, Google's .npz layout) that give timm's logits; offline downloads fail at once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from baselines.bit import VARIANTS
from replicate.models import create_model, default_weights
from vit.data_config import INCEPTION_MEAN
from vit.pretrained import WeightsUnavailableError

SIZE = 64  # a ResNet-50 forward pass at 64x64 takes a fraction of a second on a CPU


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(VARIANTS))
def test_parameter_counts_are_timms(name: str) -> None:
    """Both stems, on the meta device: the small stem's 3x3 kernel has 3 * 3 * 3 * 64w weights
    where the ImageNet stem's 7x7 has 7 * 7 * 3 * 64w."""
    with torch.device("meta"):
        reference = timm.create_model(VARIANTS[name].timm_name)
        imagenet = create_model(name)
        small = create_model(name, stem="small")
    width = reference.stem.conv.out_channels // 64
    assert parameters(imagenet) == parameters(reference)
    assert parameters(imagenet) - parameters(small) == (7 * 7 - 3 * 3) * 3 * 64 * width
    assert imagenet.state_dict().keys() == reference.state_dict().keys()


def test_bit_r50x1_counts() -> None:
    with torch.device("meta"):
        assert parameters(create_model("bit_r50x1")) == 25_549_352
        assert parameters(create_model("bit_r50x1", stem="small")) == 25_541_672


def test_replace_head_is_zero_initialised() -> None:
    model = create_model("bit_r50x1", num_classes=1000).to(torch.float64).eval()
    model.replace_head(7)
    assert model.num_classes == 7 and model.head.fc.weight.dtype == torch.float64
    assert not model.head.fc.weight.any() and not model.head.fc.bias.any()
    with torch.no_grad():
        assert not model(torch.randn(1, 3, 32, 32, dtype=torch.float64)).any()


def bit_npz_arrays(network: torch.nn.Module) -> dict[str, np.ndarray]:
    """`network`'s weights in the layout of Google's BiT-M-*.npz, by the rules of the reference's
    `ResNetV2.load_from` (google-research/big_transfer, bit_pytorch/models.py): kernels HWIO,
    'resnet/' + root_block, block{i}/unit{j:02d}/{a,b,c}, a/proj, group_norm, head/conv2d."""

    def hwio(weight: torch.Tensor) -> np.ndarray:
        return weight.detach().permute(2, 3, 1, 0).numpy()

    conv, gn = "standardized_conv2d/kernel", "group_norm/"
    arrays = {
        f"resnet/root_block/{conv}": hwio(network.stem.conv.weight),
        f"resnet/{gn}gamma": network.norm.weight.detach().numpy(),
        f"resnet/{gn}beta": network.norm.bias.detach().numpy(),
        "resnet/head/conv2d/kernel": hwio(network.head.fc.weight),
        "resnet/head/conv2d/bias": network.head.fc.bias.detach().numpy(),
    }
    for i, stage in enumerate(network.stages):
        for j, block in enumerate(stage.blocks):
            prefix = f"resnet/block{i + 1}/unit{j + 1:02d}/"
            for part, index in zip("abc", "123", strict=True):
                arrays[prefix + f"{part}/{conv}"] = hwio(getattr(block, f"conv{index}").weight)
                norm = getattr(block, f"norm{index}")
                arrays[prefix + f"{part}/{gn}gamma"] = norm.weight.detach().numpy()
                arrays[prefix + f"{part}/{gn}beta"] = norm.bias.detach().numpy()
            if block.downsample is not None:
                arrays[prefix + f"a/proj/{conv}"] = hwio(block.downsample.conv.weight)
    return arrays


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    """timm's BiT-R50x1 for 5 classes, randomly initialised (its head too, so the logits mean
    something); one per module, as building a ResNet-50 takes seconds on a busy CPU."""
    torch.manual_seed(0)
    return timm.create_model("resnetv2_50x1_bit", num_classes=5).eval()


@pytest.fixture(scope="module")
def reference_files(reference: torch.nn.Module, tmp_path_factory) -> dict[str, str]:
    """The reference's weights as a timm state dict and as Google's BiT-M-R50x1.npz."""
    folder = tmp_path_factory.mktemp("bit")
    torch.save(reference.state_dict(), folder / "bit.pth")
    np.savez(folder / "BiT-M-R50x1.npz", **bit_npz_arrays(reference))
    return {"timm": str(folder / "bit.pth"), "npz": str(folder / "BiT-M-R50x1.npz")}


def assert_same_logits(reference: torch.nn.Module, ours: torch.nn.Module) -> None:
    images = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(images), reference(images), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("layout", ["timm", "npz"])
def test_weights_give_timm_logits(reference, reference_files, layout: str) -> None:
    ours = create_model("bit_r50x1", num_classes=5, pretrained=reference_files[layout])
    assert ours.pretrained_info.layout == layout
    assert ours.pretrained_cfg["mean"] == INCEPTION_MEAN  # BiT takes pixels in [-1, 1]
    assert ours.pretrained_cfg["input_size"] == (3, 224, 224)
    assert_same_logits(reference, ours)


def test_new_task_gets_a_zero_head_on_pretrained_features(reference, reference_files) -> None:
    ours = create_model("bit_r50x1", num_classes=3, pretrained=reference_files["timm"])
    assert ours.head.fc.out_channels == 3 and not ours.head.fc.weight.any()
    images = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        features = ours.eval().norm(ours.stages(ours.stem(images)))
        torch.testing.assert_close(features, reference.forward_features(images))


def test_small_stem_keeps_the_resolution_and_round_trips(reference, tmp_path: Path) -> None:
    """CIFAR-size images reach stage 1 at 32x32 (the ImageNet stem leaves 8x8); a run of
    replicate.train with stem=small, saved with its input normalisation, loads back."""
    images = torch.randn(2, 3, 32, 32)
    trained = create_model("bit_r50x1", num_classes=4, image_size=32, stem="small").eval()
    with torch.no_grad():
        assert reference.stem(images).shape[-2:] == (8, 8)
        assert trained.stem(images).shape == (2, 64, 32, 32)
    path = tmp_path / "model.safetensors"
    save_file(
        {k: v.contiguous() for k, v in trained.state_dict().items()},
        path,
        metadata={"mean": json.dumps([0.1, 0.2, 0.3]), "std": json.dumps([1, 1, 1])},
    )
    loaded = create_model("bit_r50x1", num_classes=4, stem="small", pretrained=str(path))
    assert loaded.pretrained_cfg["mean"] == (0.1, 0.2, 0.3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(images), trained(images))
    with pytest.raises(ValueError, match="does not fit resnetv2_50x1_bit with stem='imagenet'"):
        create_model("bit_r50x1", num_classes=4, pretrained=str(path))


def test_batch_norm_variant_is_timms_resnetv2_and_loads_back(tmp_path: Path) -> None:
    """norm="batch" undoes Section 4.1's change: timm's ResNetV2 with BatchNorm and plain
    convolutions (the stem's too), as timm's resnetv2_50; trained weights load back with it,
    and timm's GroupNorm weights refuse it in one line."""
    from timm.layers import BatchNormAct2d, GroupNormAct, StdConv2d

    with torch.device("meta"):
        reference = timm.create_model("resnetv2_50")
        batch = create_model("bit_r50x1", norm="batch")
    assert batch.state_dict().keys() == reference.state_dict().keys()
    assert parameters(batch) == parameters(reference)
    small = create_model("bit_r50x1", num_classes=4, stem="small", layers=(1, 1), width=0.5,
                         norm="batch")  # fmt: skip
    kinds = {type(m) for m in small.modules()}
    assert BatchNormAct2d in kinds and not kinds & {GroupNormAct, StdConv2d}
    assert type(small.stem.conv) is torch.nn.Conv2d and small.stem.conv.kernel_size == (3, 3)
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in small.state_dict().items()}, path)
    settings = {"stem": "small", "layers": (1, 1), "width": 0.5}
    loaded = create_model("bit_r50x1", num_classes=4, pretrained=str(path), norm="batch",
                          **settings)  # fmt: skip
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(images), small.eval()(images))
    with pytest.raises(ValueError, match="does not fit resnetv2_50x1_bit"):
        create_model("bit_r50x1", num_classes=4, pretrained=str(path), **settings)
    with pytest.raises(ValueError, match=r"\(GroupNorm\): drop layers, width and norm"):
        create_model("bit_r50x1", pretrained="timm:resnetv2_50x1_bit.goog_in21k", norm="batch")
    with pytest.raises(ValueError, match="norm must be one of group, batch; got 'layer'"):
        create_model("bit_r50x1", norm="layer")


def test_bad_stems_and_weights_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="stem must be one of imagenet, small; got 'tiny'"):
        create_model("bit_r50x1", stem="tiny")
    np.savez(tmp_path / "other.npz", kernel=np.zeros(3))
    with pytest.raises(ValueError, match="not a BiT checkpoint"):
        create_model("bit_r50x1", pretrained=str(tmp_path / "other.npz"))
    with pytest.raises(ValueError, match="BiT weights come as 'timm:MODEL.TAG'"):
        create_model("bit_r50x1", pretrained="torchvision:IMAGENET1K_V1")


def test_timm_download_offline_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    assert default_weights("bit_r50x1") == "timm:resnetv2_50x1_bit.goog_in21k"  # BiT-M
    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(WeightsUnavailableError, match="cannot reach huggingface.co.*pass its path"):
        create_model("bit_r50x1", pretrained=default_weights("bit_r50x1"))
