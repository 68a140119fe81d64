"""Real pretrained weights: randomly initialised timm and torchvision models (no download),
converted into this model, give the same logits; the official .npz layout round-trips."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

import vit
from vit import VisionTransformer, ViTConfig
from vit.layouts import from_ours, npz_layout
from vit.pretrained import INCEPTION_MEAN, WeightsUnavailableError, load_pretrained
from vit.references import image_size_from_spec, variant_from_spec


def randomise_heads(model: torch.nn.Module) -> torch.nn.Module:
    """Reference inits zero some heads; random ones make the logits comparison meaningful."""
    for name, p in model.named_parameters():
        if "head" in name:
            torch.nn.init.normal_(p, std=0.02)
    return model.eval()


def assert_same_logits(reference: torch.nn.Module, ours: torch.nn.Module, size: int) -> None:
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(images), reference(images), atol=1e-4, rtol=1e-4)


def save(state: dict[str, torch.Tensor], path: Path) -> str:
    torch.save(state, path)
    return str(path)


@pytest.mark.parametrize(
    "timm_name,variant", [("vit_base_patch16_224", "vit_b16"), ("vit_tiny_patch16_224", "vit_ti16")]
)
def test_timm_weights_give_timm_logits(tmp_path: Path, timm_name: str, variant: str) -> None:
    reference = randomise_heads(timm.create_model(timm_name, pretrained=False))
    ours = vit.create_model(variant, pretrained=save(reference.state_dict(), tmp_path / "t.pth"))
    assert ours.pretrained_info.layout == "timm"
    assert ours.pretrained_info.mean == INCEPTION_MEAN
    assert_same_logits(reference, ours, 224)


def small_timm_vit(**kwargs) -> torch.nn.Module:
    """A timm ViT of the `tiny_config` geometry, with a random head."""
    return randomise_heads(
        timm.models.vision_transformer.VisionTransformer(
            img_size=32,
            patch_size=8,
            num_classes=5,
            embed_dim=32,
            depth=2,
            num_heads=4,
            mlp_ratio=2.0,
            **kwargs,
        )
    )


@pytest.mark.parametrize(
    "timm_kwargs,pool,class_token",
    [
        # Google's GAP models in timm (`*_gap_*`, SigLIP GAP): the paper's GAP.
        (dict(class_token=False, global_pool="avg", fc_norm=False), "gap", False),
        # timm's default GAP (BEiT, MAE, EVA): class token kept, mean of the patches, then LN.
        (dict(global_pool="avg"), "gap_fc_norm", True),
        (dict(class_token=False, global_pool="avg"), "gap_fc_norm", False),
    ],
)
def test_timm_global_average_pool_models(
    tmp_path: Path, tiny_config: ViTConfig, timm_kwargs: dict, pool: str, class_token: bool
) -> None:
    """The file decides the head: a GAP checkpoint never loads into a class-token model,
    whatever pool the config asked for."""
    reference = small_timm_vit(**timm_kwargs)
    path = save(reference.state_dict(), tmp_path / "gap.pth")
    for requested in ("cls", "gap"):
        ours = load_pretrained(tiny_config.replace(pool=requested), path, "tiny")
        assert (ours.config.pool, ours.config.has_class_token) == (pool, class_token)
        assert (ours.pretrained_info.pool, ours.pretrained_info.gelu) == (pool, "exact")
        assert_same_logits(reference, ours, 32)


def test_timm_pre_logits_checkpoint(tmp_path: Path, tiny_config: ViTConfig) -> None:
    """Older timm ImageNet-21k checkpoints carry a tanh pre-logits layer, `pre_logits.fc`."""
    reference = small_timm_vit()
    state = reference.state_dict()
    fc = torch.nn.Linear(32, 32)
    state |= {"pre_logits.fc.weight": fc.weight.detach(), "pre_logits.fc.bias": fc.bias.detach()}
    ours = load_pretrained(tiny_config, save(state, tmp_path / "pre.pth"), "tiny").eval()
    assert ours.config.representation_size == 32
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = reference.forward_head(reference.forward_features(images), pre_logits=True)
        expected = reference.head(torch.tanh(fc(features)))
        torch.testing.assert_close(ours(images), expected, atol=1e-5, rtol=1e-5)


def test_torchvision_weights_give_torchvision_logits(tmp_path: Path) -> None:
    reference = randomise_heads(torchvision.models.vit_b_16())
    ours = vit.create_model("vit_b16", pretrained=save(reference.state_dict(), tmp_path / "tv.pth"))
    assert ours.pretrained_info.layout == "torchvision"
    assert_same_logits(reference, ours, 224)


def test_small_torchvision_model_with_pre_logits(tmp_path: Path, tiny_config: ViTConfig) -> None:
    reference = torchvision.models.VisionTransformer(
        image_size=32,
        patch_size=8,
        num_layers=2,
        num_heads=4,
        hidden_dim=32,
        mlp_dim=64,
        num_classes=5,
        representation_size=48,
    )
    path = save(randomise_heads(reference).state_dict(), tmp_path / "tv.pth")
    ours = load_pretrained(tiny_config, path, "tiny")
    assert ours.config.representation_size == 48
    assert_same_logits(reference, ours, 32)


@pytest.mark.parametrize("naming,attention", [("2020", "_1"), ("linen", "_0")])
@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_official_npz_layout_round_trips_exactly(
    tmp_path: Path, tiny_config: ViTConfig, naming: str, attention: str, pool: str
) -> None:
    config = tiny_config.replace(representation_size=24, pool=pool, gelu="tanh")
    original = VisionTransformer(config)
    for p in original.parameters():
        torch.nn.init.normal_(p)
    arrays = from_ours(original.state_dict(), npz_layout(config.num_heads, naming))
    query = f"Transformer/encoderblock_0/MultiHeadDotProductAttention{attention}/query/kernel"
    assert arrays[query].shape == (32, 4, 8)  # (D, heads, D_h)
    assert arrays["embedding/kernel"].shape == (8, 8, 3, 32)  # (P, P, C, D)
    assert ("cls" in arrays) == (pool == "cls")
    np.savez(tmp_path / "ViT-tiny.npz", **{k: v.numpy() for k, v in arrays.items()})
    loaded = load_pretrained(tiny_config, str(tmp_path / "ViT-tiny.npz"), "tiny")
    assert loaded.pretrained_info.layout == "npz"
    assert loaded.config == config.replace(class_token=pool == "cls")
    for key, value in original.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_npz_matches_jax_attention_semantics(tmp_path: Path, tiny_config: ViTConfig) -> None:
    """Build the official arrays by hand from per-head q/k/v kernels and check our attention
    computes the JAX einsums: q = einsum('nd,dhk->nhk'), out = einsum('nhk,hkd->nd')."""
    model = VisionTransformer(tiny_config)
    arrays = {k: v.numpy() for k, v in from_ours(model.state_dict(), npz_layout(4)).items()}
    prefix = "Transformer/encoderblock_0/MultiHeadDotProductAttention_1/"
    rng = np.random.default_rng(0)
    for name in ("query", "key", "value", "out"):
        arrays[prefix + f"{name}/kernel"] = rng.normal(size=arrays[prefix + f"{name}/kernel"].shape)
    arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
    np.savez(tmp_path / "jax.npz", **arrays)
    attention = (
        load_pretrained(tiny_config, str(tmp_path / "jax.npz"), "tiny").encoder.layers[0].attention
    )
    z = rng.normal(size=(17, 32)).astype(np.float32)
    q, k, v = (
        np.einsum("nd,dhk->nhk", z, arrays[prefix + f"{n}/kernel"]) + arrays[prefix + f"{n}/bias"]
        for n in ("query", "key", "value")
    )
    logits = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(8)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = np.einsum("hqk,khd->qhd", weights, v)
    expected = (
        np.einsum("qhd,hdo->qo", heads, arrays[prefix + "out/kernel"]) + arrays[prefix + "out/bias"]
    )
    with torch.no_grad():
        ours = attention(torch.from_numpy(z)[None])[0].numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-4, rtol=1e-4)


def test_project_checkpoint_with_metadata(tmp_path: Path, tiny_config: ViTConfig) -> None:
    """A safetensors file written by this project, wrapped by DDP, keeps its normalisation."""
    model = VisionTransformer(tiny_config)
    state = {f"module.{k}": v.contiguous() for k, v in model.state_dict().items()}
    save_file(
        state,
        tmp_path / "model.safetensors",
        metadata={"mean": "[0.1, 0.2, 0.3]", "std": "[1, 1, 1]"},
    )
    loaded = load_pretrained(tiny_config, str(tmp_path / "model.safetensors"), "tiny")
    assert loaded.pretrained_info.layout == "vit-replicate"
    assert loaded.pretrained_info.mean == (0.1, 0.2, 0.3)
    assert_same_logits(model.eval(), loaded, 32)


def test_new_classes_and_resolution_on_load(tmp_path: Path) -> None:
    """Appendix B.1.1 and Section 3.2: zero-initialised head, interpolated E_pos."""
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    path = save(reference.state_dict(), tmp_path / "t.pth")
    model = vit.create_model("vit_ti16", num_classes=10, image_size=384, pretrained=path)
    assert model.pretrained_info.image_size == 224
    assert model.config.image_size == 384 and model.config.num_classes == 10
    assert not model.head.classifier.weight.any()
    assert model.embedding.position_embedding.shape == (1, 24 * 24 + 1, 192)
    assert torch.equal(model.embedding.position_embedding[:, 0], reference.pos_embed[:, 0])
    assert model(torch.randn(1, 3, 384, 384)).shape == (1, 10)


def test_checkpoint_of_another_variant_is_rejected(tmp_path: Path) -> None:
    path = save(vit.create_model("vit_ti16", depth=2).state_dict(), tmp_path / "ti.pth")
    with pytest.raises(ValueError, match="another variant"):
        vit.create_model("vit_s16", depth=2, pretrained=path)
    with pytest.raises(ValueError, match="2 encoder layers but vit_ti16 has 12"):
        vit.create_model("vit_ti16", pretrained=path)


def test_unreadable_and_unknown_checkpoints_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read .*junk.pth"):
        vit.create_model("vit_ti16", pretrained=str(tmp_path / "junk.pth"))
    path = save({"conv1.weight": torch.zeros(1)}, tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match="unrecognised checkpoint layout"):
        vit.create_model("vit_ti16", pretrained=path)
    with pytest.raises(ValueError, match="neither a file nor a known source"):
        vit.create_model("vit_ti16", pretrained="no/such/file.pth")
    np.savez(tmp_path / "objects.npz", cls=np.array([{"a": 1}], dtype=object))  # pickled
    (tmp_path / "torn.npz").write_bytes(b"PK\x03\x04 a torn archive")
    for name in ("objects.npz", "torn.npz"):
        with pytest.raises(ValueError, match=f"cannot read {tmp_path / name}: not an .npz"):
            vit.create_model("vit_ti16", pretrained=str(tmp_path / name))


@pytest.mark.parametrize(
    "variant,spec",
    [
        ("vit_b16", "timm:vit_base_patch16_224.augreg2_in21k_ft_in1k"),
        ("vit_r50_b16", "timm:vit_base_r50_s16_384.orig_in21k_ft_in1k"),  # the hybrid
    ],
)
def test_timm_download_offline_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, variant: str, spec: str
) -> None:
    import socket

    def refuse(*args, **kwargs):
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(WeightsUnavailableError, match="cannot reach huggingface.co.*pass its path"):
        vit.create_model(variant, pretrained=spec)


def test_timm_weights_follow_the_hub_clients_own_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The cache is the hub client's (`local_files_only`), HF_HUB_OFFLINE stops before any
    request, an HF_ENDPOINT mirror is the host probed, and behind a proxy the client decides."""
    import socket

    from huggingface_hub import constants

    import vit.pretrained as pretrained

    calls: list[tuple] = []

    def download(repo, filename, local_files_only=False):
        calls.append((filename, local_files_only))
        if local_files_only and filename == "model.safetensors" and cached:
            return str(tmp_path / "cached.safetensors")
        raise OSError("offline")  # LocalEntryNotFoundError, a connection error: both OSErrors

    monkeypatch.setattr("huggingface_hub.hf_hub_download", download)
    name = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
    cached = True
    assert pretrained._fetch_timm(name) == tmp_path / "cached.safetensors"
    assert calls == [("model.safetensors", True)]

    cached, calls[:] = False, []
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsUnavailableError, match="not in the Hugging Face cache, and HF_HUB"):
        pretrained._fetch_timm(name)
    assert all(local for _, local in calls)  # no request left the machine

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "https://hf-mirror.example:8443")
    probed = []

    def refuse(address, timeout=None):
        probed.append(address)
        raise OSError("[Errno -2] Name or service not known")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(WeightsUnavailableError, match="cannot reach hf-mirror.example"):
        pretrained._fetch_timm(name)
    assert probed == [("hf-mirror.example", 8443)]

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    calls[:] = []
    with pytest.raises(WeightsUnavailableError, match="could not download .*hf-mirror.example"):
        pretrained._fetch_timm(name)
    assert ("model.safetensors", False) in calls and len(probed) == 1  # the client tried


def test_torchvision_download_offline_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    with pytest.raises(
        WeightsUnavailableError, match="ViT_B_16_Weights.IMAGENET1K_V1.*pass its path"
    ):
        vit.create_model("vit_b16", pretrained="torchvision:IMAGENET1K_V1")
    with pytest.raises(ValueError, match="no weights 'IMAGENET9K'"):
        vit.create_model("vit_b16", pretrained="torchvision:IMAGENET9K")


def test_a_specs_variant_and_resolution_are_read_off_the_references_names() -> None:
    assert variant_from_spec("timm:vit_large_patch32_384.orig_in21k_ft_in1k") == "vit_l32"
    assert variant_from_spec("weights/vit_small_patch16_224_in21k.npz") == "vit_s16"
    assert variant_from_spec("google:imagenet21k/ViT-H_14") == "vit_h14"
    assert variant_from_spec("google:imagenet21k/ViT-B_16.npz") == "vit_b16"
    assert variant_from_spec("timm:vit_base_patch16_clip_224.openai") is None  # not Table 1's
    assert variant_from_spec("torchvision:IMAGENET1K_V1") is None
    assert image_size_from_spec("timm:vit_base_patch16_384.augreg_in21k_ft_in1k") == 384
    assert image_size_from_spec("google:imagenet21k/ViT-B_16") is None


def test_num_classes_none_keeps_the_weights_own_head(tmp_path: Path) -> None:
    model = vit.create_model("vit_ti16", num_classes=7, image_size=32, depth=1)
    torch.nn.init.normal_(model.head.classifier.weight)
    path = save(model.state_dict(), tmp_path / "seven.pth")
    kept = vit.create_model("vit_ti16", num_classes=None, image_size=32, depth=1, pretrained=path)
    images = torch.randn(2, 3, 32, 32)
    assert kept.num_classes == 7
    torch.testing.assert_close(kept(images), model(images))
    assert vit.create_model("vit_ti16", num_classes=None, depth=1).num_classes == 1000
