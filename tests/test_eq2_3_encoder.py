"""Eq. 2-3: z'_l = MSA(LN(z_{l-1})) + z_{l-1};  z_l = MLP(LN(z'_l)) + z'_l."""

import torch

from vit import VisionTransformer, ViTConfig
from vit.encoder import EncoderBlock
from vit.mlp import MLP


def test_block_keeps_shape(tiny_config: ViTConfig) -> None:
    z = torch.randn(2, 17, tiny_config.hidden_size)
    assert EncoderBlock(tiny_config)(z).shape == z.shape


def test_block_is_identity_when_sub_blocks_output_zero(tiny_config: ViTConfig) -> None:
    """Residual connections after every block: zero the last dense layer of MSA and MLP."""
    block = EncoderBlock(tiny_config)
    for layer in (block.attention.proj, block.mlp.fc2):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    z = torch.randn(2, 17, tiny_config.hidden_size)
    assert torch.equal(block(z), z)


def test_block_matches_equations_2_and_3(tiny_config: ViTConfig) -> None:
    block = EncoderBlock(tiny_config).eval()
    z = torch.randn(2, 17, tiny_config.hidden_size)
    z_prime = block.attention(block.norm1(z)) + z  # Eq. 2: LayerNorm before, residual after
    expected = block.mlp(block.norm2(z_prime)) + z_prime  # Eq. 3
    torch.testing.assert_close(block(z), expected)


def test_layer_norm_eps_is_the_reference_value(tiny_config: ViTConfig) -> None:
    block = EncoderBlock(tiny_config)
    assert block.norm1.eps == block.norm2.eps == 1e-6


def test_mlp_is_two_dense_layers_with_exact_gelu(tiny_config: ViTConfig) -> None:
    mlp = MLP(tiny_config).eval()
    z = torch.randn(2, 17, tiny_config.hidden_size)
    hidden = torch.nn.functional.gelu(mlp.fc1(z), approximate="none")
    torch.testing.assert_close(mlp(z), mlp.fc2(hidden))
    assert mlp.fc1.out_features == tiny_config.mlp_size


def test_mlp_gelu_can_be_flax_tanh_approximation(tiny_config: ViTConfig) -> None:
    """flax's nn.gelu (the official models'): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    mlp = MLP(tiny_config.replace(gelu="tanh")).eval()
    z = torch.randn(2, 17, tiny_config.hidden_size)
    x = mlp.fc1(z)
    hidden = 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x**3)))
    torch.testing.assert_close(mlp(z), mlp.fc2(hidden))
    exact = MLP(tiny_config).eval()
    exact.load_state_dict(mlp.state_dict())
    assert not torch.allclose(exact(z), mlp(z), atol=1e-6)


def test_mlp_dropout_after_every_dense_layer(tiny_config: ViTConfig) -> None:
    mlp = MLP(tiny_config.replace(dropout=0.1))
    assert [m.p for m in (mlp.drop1, mlp.drop2)] == [0.1, 0.1]


def test_gradient_checkpointing_recomputes_blocks_with_the_same_loss_and_gradients(
    tiny_config: ViTConfig,
) -> None:
    """set_grad_checkpointing: each block runs again in the backward pass (non-reentrant
    torch.utils.checkpoint), with the same dropout masks, so nothing the optimiser sees changes."""
    config = tiny_config.replace(dropout=0.2)
    images, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    results = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = VisionTransformer(config).train()
        torch.nn.init.normal_(model.head.classifier.weight)  # zero-initialised: no gradient flow
        model.set_grad_checkpointing(checkpointing)
        calls, mlp = [], model.encoder.layers[0].mlp
        mlp.forward = lambda x, forward=mlp.forward: calls.append(1) or forward(x)  # noqa: B023
        torch.manual_seed(1)  # the same dropout masks for both
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        results.append((loss, {n: p.grad for n, p in model.named_parameters()}, len(calls)))
    (plain_loss, plain_grads, plain_calls), (loss, grads, calls) = results
    assert (plain_calls, calls) == (1, 2)  # the forward, then its recomputation
    torch.testing.assert_close(loss, plain_loss, rtol=0, atol=0)
    for name, grad in plain_grads.items():
        torch.testing.assert_close(grads[name], grad, rtol=1e-6, atol=1e-7, msg=name)
