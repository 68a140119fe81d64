"""Eq. 4: y = LN(z_L^0), then the classifier (and the pre-logits layer at pre-training)."""

import torch

from vit import VisionTransformer, ViTConfig
from vit.head import ClassificationHead


def test_logits_shape(tiny_config: ViTConfig) -> None:
    model = VisionTransformer(tiny_config)
    assert model(torch.randn(4, 3, 32, 32)).shape == (4, tiny_config.num_classes)


def _random_head(config: ViTConfig) -> ClassificationHead:
    head = ClassificationHead(config)
    for p in head.parameters():
        torch.nn.init.normal_(p)
    return head


def test_only_class_token_reaches_head(tiny_config: ViTConfig) -> None:
    head = _random_head(tiny_config)
    z_L = torch.randn(2, 17, tiny_config.hidden_size)
    changed = z_L.clone()
    changed[:, 1:] = torch.randn_like(changed[:, 1:])
    assert torch.equal(head(z_L), head(changed))
    changed[:, 0] = torch.randn_like(changed[:, 0])  # not a constant shift: LN removes those
    assert not torch.allclose(head(z_L), head(changed))


def test_head_is_layer_norm_of_class_token_then_linear(tiny_config: ViTConfig) -> None:
    head = _random_head(tiny_config)
    z_L = torch.randn(2, 17, tiny_config.hidden_size)
    y = torch.nn.functional.layer_norm(
        z_L[:, 0], (tiny_config.hidden_size,), head.norm.weight, head.norm.bias, eps=1e-6
    )
    torch.testing.assert_close(head(z_L), head.classifier(y))


def test_pre_logits_is_a_tanh_hidden_layer(tiny_config: ViTConfig) -> None:
    head = _random_head(tiny_config.replace(representation_size=48))
    z_L = torch.randn(2, 17, tiny_config.hidden_size)
    hidden = torch.tanh(head.pre_logits[0](head.features(z_L)))
    assert hidden.shape == (2, 48)
    torch.testing.assert_close(head(z_L), head.classifier(hidden))


def test_global_average_pooling_uses_every_patch_token(tiny_config: ViTConfig) -> None:
    head = _random_head(tiny_config.replace(pool="gap"))
    z_L = torch.randn(2, 17, tiny_config.hidden_size)
    changed = z_L.clone()
    changed[:, 0] = torch.randn_like(changed[:, 0])  # the class token is ignored by GAP
    assert torch.equal(head(z_L), head(changed))
    changed[:, 3] = torch.randn_like(changed[:, 3])
    assert not torch.allclose(head(z_L), head(changed))


def test_replaced_head_is_zero_initialised_and_drops_pre_logits(tiny_config: ViTConfig) -> None:
    model = VisionTransformer(tiny_config.replace(representation_size=48))
    model.replace_head(7)
    assert isinstance(model.head.pre_logits, torch.nn.Identity)
    assert model.head.classifier.weight.shape == (7, tiny_config.hidden_size)
    assert not model.head.classifier.weight.any() and not model.head.classifier.bias.any()
    assert torch.equal(model(torch.randn(2, 3, 32, 32)), torch.zeros(2, 7))
    assert model.config.num_classes == 7 and model.config.representation_size is None
