"""Official checkpoints compute what the official models compute.

Every file here is built from the reference's own rules, not from `vit.layouts`: the parameter
names and shapes that google-research/vision_transformer (`vit_jax/models_vit.py`, 2020 and
Linen numbering) and big_vision (`big_vision/models/vit.py`, scanned or not) write, and a numpy
forward pass written from those modules as they stand (flax's `nn.gelu`, the tanh form; LN eps
1e-6; the query scaled by 1/sqrt(D_h); `classifier="token"` or `"gap"`). Our logits must equal it
within 1e-5. `test_real_flax_model` runs the official Flax code itself where jax, flax and a
checkout of vision_transformer are available.
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vit import VisionTransformer, ViTConfig
from vit.pretrained import load_pretrained

# The reference's module names inside `encoderblock_i`, by role (norm1, attention, norm2, mlp).
BLOCK_NAMES = {
    "2020": ("LayerNorm_0", "MultiHeadDotProductAttention_1", "LayerNorm_2", "MlpBlock_3"),
    "linen": ("LayerNorm_0", "MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0"),
}
TOLERANCE = 1e-5


def block_modules(i: int, naming: str) -> tuple[str, ...]:
    return tuple(f"Transformer/encoderblock_{i}/{name}" for name in BLOCK_NAMES[naming])


def official_params(
    config: ViTConfig, *, naming: str = "linen", classifier: str = "token", seed: int = 0
) -> dict[str, np.ndarray]:
    """Random parameters of `vit_jax.models_vit.VisionTransformer`, flattened with "/" as
    `checkpoint.save` writes them; scaled so activations are O(1) and GELU's form matters."""
    rng = np.random.default_rng(seed)
    d, h, p, m = config.hidden_size, config.num_heads, config.patch_size, config.mlp_size
    n = config.num_patches + (classifier == "token")

    def normal(*shape: int, std: float = 1.0) -> np.ndarray:
        return rng.normal(0, std, shape).astype(np.float32)

    def norm(prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}/scale": 1 + normal(d, std=0.1), f"{prefix}/bias": normal(d, std=0.1)}

    params = {
        "embedding/kernel": normal(p, p, 3, d, std=1 / math.sqrt(p * p * 3)),
        "embedding/bias": normal(d, std=0.1),
        "Transformer/posembed_input/pos_embedding": normal(1, n, d, std=0.5),
        **norm("Transformer/encoder_norm"),
        "head/kernel": normal(d, config.num_classes, std=1 / math.sqrt(d)),
        "head/bias": normal(config.num_classes, std=0.1),
    }
    if classifier == "token":
        params["cls"] = normal(1, 1, d, std=0.5)
    for i in range(config.depth):
        ln1, attn, ln2, mlp = (
            f"Transformer/encoderblock_{i}/{name}" for name in BLOCK_NAMES[naming]
        )
        params |= norm(ln1) | norm(ln2)
        for name in ("query", "key", "value"):
            params[f"{attn}/{name}/kernel"] = normal(d, h, d // h, std=1 / math.sqrt(d))
            params[f"{attn}/{name}/bias"] = normal(h, d // h, std=0.1)
        params[f"{attn}/out/kernel"] = normal(h, d // h, d, std=1 / math.sqrt(d))
        params[f"{attn}/out/bias"] = normal(d, std=0.1)
        params[f"{mlp}/Dense_0/kernel"] = normal(d, m, std=1 / math.sqrt(d))
        params[f"{mlp}/Dense_0/bias"] = normal(m, std=0.1)
        params[f"{mlp}/Dense_1/kernel"] = normal(m, d, std=1 / math.sqrt(m))
        params[f"{mlp}/Dense_1/bias"] = normal(d, std=0.1)
    return params


def flax_gelu(x: np.ndarray) -> np.ndarray:
    """flax.linen.gelu = jax.nn.gelu(approximate=True)."""
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def layer_norm(x: np.ndarray, params: dict, prefix: str) -> np.ndarray:
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-6) * params[f"{prefix}/scale"] + params[f"{prefix}/bias"]


def official_forward(
    params: dict[str, np.ndarray],
    images: np.ndarray,
    *,
    naming: str = "linen",
    classifier: str = "token",
    posemb_before_cls: bool = False,
) -> np.ndarray:
    """`VisionTransformer.__call__(images, train=False)` of `vit_jax/models_vit.py` in numpy
    (float64); with `posemb_before_cls`, big_vision's order (E_pos added, then [class] prepended).
    images: (B, H, W, C) as flax takes them."""
    params = {k: v.astype(np.float64) for k, v in params.items()}
    kernel = params["embedding/kernel"]
    p = kernel.shape[0]
    b, hh, ww, c = images.shape
    patches = images.reshape(b, hh // p, p, ww // p, p, c).transpose(0, 1, 3, 2, 4, 5)
    x = np.einsum("bhwijc,ijcd->bhwd", patches, kernel) + params["embedding/bias"]
    x = x.reshape(b, -1, x.shape[-1])  # row-major patches
    pos = params["Transformer/posembed_input/pos_embedding"]
    if posemb_before_cls:
        x = x + pos
    if "cls" in params:
        x = np.concatenate([np.tile(params["cls"], (b, 1, 1)), x], axis=1)
    if not posemb_before_cls:
        x = x + pos
    depth = len({k.split("/")[1] for k in params if k.startswith("Transformer/encoderblock_")})
    for i in range(depth):
        ln1, attn, ln2, mlp = (
            f"Transformer/encoderblock_{i}/{name}" for name in BLOCK_NAMES[naming]
        )
        y = layer_norm(x, params, ln1)
        q, k, v = (
            np.einsum("bnd,dhk->bnhk", y, params[f"{attn}/{name}/kernel"])
            + params[f"{attn}/{name}/bias"]
            for name in ("query", "key", "value")
        )
        q = q / np.sqrt(q.shape[-1])  # flax's dot_product_attention scales the query
        logits = np.einsum("bqhd,bkhd->bhqk", q, k)
        weights = np.exp(logits - logits.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        heads = np.einsum("bhqk,bkhd->bqhd", weights, v)
        x = x + np.einsum("bqhd,hdo->bqo", heads, params[f"{attn}/out/kernel"])
        x = x + params[f"{attn}/out/bias"]
        y = layer_norm(x, params, ln2)
        y = flax_gelu(y @ params[f"{mlp}/Dense_0/kernel"] + params[f"{mlp}/Dense_0/bias"])
        x = x + y @ params[f"{mlp}/Dense_1/kernel"] + params[f"{mlp}/Dense_1/bias"]
    x = layer_norm(x, params, "Transformer/encoder_norm")
    x = x[:, 0] if classifier == "token" else x.mean(axis=1)
    if "pre_logits/kernel" in params:
        x = np.tanh(x @ params["pre_logits/kernel"] + params["pre_logits/bias"])
    return x @ params["head/kernel"] + params["head/bias"]


def big_vision_file(params: dict[str, np.ndarray], *, scan: bool) -> dict[str, np.ndarray]:
    """The official parameters as big_vision's `_Model` names them (`params/` prefix, E_pos at
    the top without the class token's row), stacked along a leading axis as its
    `pyloop_to_scan` does when `scan`."""
    out = {}
    for key, value in params.items():
        if key == "Transformer/posembed_input/pos_embedding":
            key = "pos_embedding"
        out["params/" + key] = value
    if not scan:
        return out
    depth = len({k.split("/")[2] for k in out if "/encoderblock_" in k})
    suffixes = {k.split("/", 3)[3] for k in out if "/encoderblock_0/" in k}
    for suffix in suffixes:
        layers = [out.pop(f"params/Transformer/encoderblock_{i}/{suffix}") for i in range(depth)]
        out[f"params/Transformer/encoderblock/{suffix}"] = np.stack(layers)
    return out


def our_logits(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        nchw = torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2)
        return model.eval()(nchw).double().numpy()


def save_npz(tmp_path: Path, arrays: dict[str, np.ndarray], name: str = "official.npz") -> str:
    np.savez(tmp_path / name, **arrays)
    return str(tmp_path / name)


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max())


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(2, 32, 32, 3))


@pytest.mark.parametrize("naming", ["2020", "linen"])
@pytest.mark.parametrize("classifier", ["token", "gap"])
def test_official_npz_gives_the_official_logits(
    tmp_path: Path, tiny_config: ViTConfig, images: np.ndarray, naming: str, classifier: str
) -> None:
    """Both block numberings, class token and GAP (no class token, LN then mean), tanh GELU."""
    params = official_params(tiny_config, naming=naming, classifier=classifier)
    expected = official_forward(params, images, naming=naming, classifier=classifier)
    model = load_pretrained(tiny_config, save_npz(tmp_path, params), "tiny")
    info = model.pretrained_info
    assert (info.layout, info.gelu) == ("npz", "tanh")
    assert info.pool == ("cls" if classifier == "token" else "gap")
    assert info.class_token == (classifier == "token")
    assert max_difference(our_logits(model, images), expected) < TOLERANCE


def test_pre_linen_and_linen_files_load_the_same_model(
    tmp_path: Path, tiny_config: ViTConfig
) -> None:
    """Map by role, not by number: the 2020 file's LayerNorm_2 is Linen's LayerNorm_1."""
    linen = official_params(tiny_config, naming="linen")
    renamed = {}
    for key, value in linen.items():
        for new, old in zip(BLOCK_NAMES["2020"], BLOCK_NAMES["linen"], strict=True):
            key = key.replace(f"/{old}/", f"/{new}/")
        renamed[key] = value
    assert "Transformer/encoderblock_0/LayerNorm_2/scale" in renamed
    a = load_pretrained(tiny_config, save_npz(tmp_path, linen, "linen.npz"), "tiny")
    b = load_pretrained(tiny_config, save_npz(tmp_path, renamed, "2020.npz"), "tiny")
    for key, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[key], value), key


def test_official_weights_need_flax_gelu(
    tmp_path: Path, tiny_config: ViTConfig, images: np.ndarray
) -> None:
    """Exact GELU (timm's, torchvision's) puts the logits of official weights measurably off."""
    params = official_params(tiny_config)
    expected = official_forward(params, images)
    tanh_model = load_pretrained(tiny_config, save_npz(tmp_path, params), "tiny")
    exact_model = type(tanh_model)(tanh_model.config.replace(gelu="exact"))
    exact_model.load_state_dict(tanh_model.state_dict())
    assert max_difference(our_logits(tanh_model, images), expected) < TOLERANCE
    assert max_difference(our_logits(exact_model, images), expected) > 10 * TOLERANCE


@pytest.mark.parametrize("scan", [False, True])
@pytest.mark.parametrize("classifier", ["token", "gap"])
def test_big_vision_checkpoint_gives_big_vision_logits(
    tmp_path: Path, tiny_config: ViTConfig, images: np.ndarray, scan: bool, classifier: str
) -> None:
    """big_vision adds E_pos (no class-token row) before it prepends [class]; blocks stacked
    under `Transformer/encoderblock/` when saved with scan=True."""
    params = official_params(tiny_config, classifier="gap", seed=2)
    if classifier == "token":  # pool_type="tok": a class token, E_pos still (1, N, D)
        params["cls"] = np.random.default_rng(3).normal(0, 0.5, (1, 1, 32)).astype(np.float32)
    expected = official_forward(params, images, classifier=classifier, posemb_before_cls=True)
    path = save_npz(tmp_path, big_vision_file(params, scan=scan))
    model = load_pretrained(tiny_config, path, "tiny")
    assert (model.pretrained_info.layout, model.pretrained_info.gelu) == ("big_vision", "tanh")
    assert model.config.pool == ("cls" if classifier == "token" else "gap")
    assert max_difference(our_logits(model, images), expected) < TOLERANCE


def test_unsupported_big_vision_heads_fail_in_one_line(
    tmp_path: Path, tiny_config: ViTConfig
) -> None:
    arrays = big_vision_file(official_params(tiny_config, classifier="gap"), scan=True)
    with_map = arrays | {"params/MAPHead_0/probe": np.zeros((1, 1, 32), np.float32)}
    with pytest.raises(ValueError, match="MAP-head .* not supported") as error:
        load_pretrained(tiny_config, save_npz(tmp_path, with_map, "map.npz"), "tiny")
    assert "\n" not in str(error.value)
    sincos = {k: v for k, v in arrays.items() if k != "params/pos_embedding"}
    with pytest.raises(ValueError, match="sincos2d.* not supported"):
        load_pretrained(tiny_config, save_npz(tmp_path, sincos, "sincos.npz"), "tiny")


def _vision_transformer_checkout() -> Path | None:
    """A checkout of google-research/vision_transformer: $VISION_TRANSFORMER_SRC, else
    `.refs/vision_transformer` in the repository (git-ignored)."""
    default = Path(__file__).resolve().parents[1] / ".refs" / "vision_transformer"
    path = Path(os.environ.get("VISION_TRANSFORMER_SRC", default))
    return path if (path / "vit_jax" / "models_vit.py").is_file() else None


# Runs in its own process: JAX starts threads, and later tests fork (DataLoader workers).
FLAX_RUN = """
import sys
import jax, numpy as np
from flax.traverse_util import flatten_dict, unflatten_dict
from vit_jax import models_vit

out, classifier = sys.argv[1], sys.argv[2]
inputs = np.load(out + "/inputs.npz")
patch, depth, mlp, heads, width, classes = (int(v) for v in inputs["geometry"])
model = models_vit.VisionTransformer(
    num_classes=classes,
    patches=type("Patches", (), {"size": (patch, patch)})(),
    transformer=dict(num_layers=depth, mlp_dim=mlp, num_heads=heads),
    hidden_size=width,
    classifier=classifier,
)
x = jax.numpy.asarray(inputs["images"], dtype=np.float32)
variables = model.init(jax.random.PRNGKey(0), x, train=False)
flat = {"/".join(k): np.asarray(v) for k, v in flatten_dict(variables["params"]).items()}
init_query = flat["Transformer/encoderblock_0/MultiHeadDotProductAttention_0/query/kernel"]
rng = np.random.default_rng(4)  # the head and class token start at zero: randomise all
flat = {k: (v + rng.normal(0, 0.2, v.shape)).astype(np.float32) for k, v in flat.items()}
logits = model.apply({"params": unflatten_dict(flat, sep="/")}, x, train=False)
np.savez(out + "/official.npz", **flat)
np.savez(out + "/outputs.npz", logits=np.asarray(logits), init_query=init_query)
"""


@pytest.mark.parametrize("classifier", ["token", "gap"])
def test_real_flax_model(
    tmp_path: Path, tiny_config: ViTConfig, images: np.ndarray, classifier: str
) -> None:
    """The official Flax model as written (`vit_jax/models_vit.py`): its own parameters,
    flattened as its `checkpoint.save` writes them, load here with logits within 1e-5 of its
    own; and its initial query kernel has the bound ours has."""
    checkout = _vision_transformer_checkout()
    if checkout is None:
        pytest.skip("google-research/vision_transformer checkout not available here")
    for package in ("jax", "flax"):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} not available here")
    c = tiny_config
    geometry = [c.patch_size, c.depth, c.mlp_size, c.num_heads, c.hidden_size, c.num_classes]
    np.savez(tmp_path / "inputs.npz", images=images, geometry=np.array(geometry))
    env = {**os.environ, "PYTHONPATH": str(checkout), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-c", FLAX_RUN, str(tmp_path), classifier]
    subprocess.run(command, check=True, env=env, timeout=300)
    outputs = np.load(tmp_path / "outputs.npz")
    loaded = load_pretrained(tiny_config, str(tmp_path / "official.npz"), "tiny")
    difference = max_difference(our_logits(loaded, images), outputs["logits"])
    print(f"max |logit difference| vs the official Flax model ({classifier}): {difference:.2e}")
    assert difference < TOLERANCE
    bound = math.sqrt(3 / c.hidden_size)  # xavier_uniform of one D x D kernel, in both
    ours = VisionTransformer(c).encoder.layers[0].attention.qkv.weight[: c.hidden_size]
    assert 0.9 * bound < np.abs(outputs["init_query"]).max() <= bound
    assert 0.9 * bound < ours.abs().max().item() <= bound
