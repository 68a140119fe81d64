"""Eq. 4: y = LN(z_L^0), then the classifier (and the pre-logits layer at pre-training)."""

import pytest
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


def test_global_average_pooling_is_the_mean_of_normalised_patch_tokens(
    tiny_config: ViTConfig,
) -> None:
    """Appendix D.3 and the official `classifier="gap"`: no class token, the encoder's final LN
    on every token, then the mean (not LN of the mean)."""
    model = VisionTransformer(tiny_config.replace(pool="gap"))
    assert not hasattr(model.embedding, "class_token")
    assert model.embedding.position_embedding.shape == (1, 16, tiny_config.hidden_size)
    head = _random_head(model.config)
    z_L = torch.randn(2, 16, tiny_config.hidden_size) * torch.rand(1, 16, 1) * 3
    normalised = torch.nn.functional.layer_norm(
        z_L, (tiny_config.hidden_size,), head.norm.weight, head.norm.bias, eps=1e-6
    )
    torch.testing.assert_close(head.features(z_L), normalised.mean(dim=1))
    assert not torch.allclose(head.features(z_L), head.norm(z_L.mean(dim=1)), atol=1e-3)


def test_timm_fc_norm_pooling_is_layer_norm_of_the_patch_mean(tiny_config: ViTConfig) -> None:
    """timm's `global_pool="avg"`: a class token in the sequence, left out of the mean, and LN
    after the mean (`fc_norm`)."""
    config = tiny_config.replace(pool="gap_fc_norm")
    assert config.has_class_token
    head = _random_head(config)
    z_L = torch.randn(2, 17, tiny_config.hidden_size)
    torch.testing.assert_close(head.features(z_L), head.fc_norm(z_L[:, 1:].mean(dim=1)))
    changed = z_L.clone()
    changed[:, 0] = torch.randn_like(changed[:, 0])  # the class token is not averaged
    assert torch.equal(head(z_L), head(changed))


def test_gap_model_runs_and_has_no_class_token_parameter(tiny_config: ViTConfig) -> None:
    model = VisionTransformer(tiny_config.replace(pool="gap"))
    assert "embedding.class_token" not in model.state_dict()
    assert model.no_weight_decay() == {"embedding.position_embedding"}
    images = torch.randn(2, 3, 32, 32)
    assert model(images).shape == (2, tiny_config.num_classes)
    assert model.attention_maps(images)[0].shape == (2, 4, 16, 16)
    with pytest.raises(ValueError, match="cannot have class_token=False"):
        tiny_config.replace(class_token=False)


def test_replaced_head_is_zero_initialised_and_drops_pre_logits(tiny_config: ViTConfig) -> None:
    model = VisionTransformer(tiny_config.replace(representation_size=48))
    model.replace_head(7)
    assert isinstance(model.head.pre_logits, torch.nn.Identity)
    assert model.head.classifier.weight.shape == (7, tiny_config.hidden_size)
    assert not model.head.classifier.weight.any() and not model.head.classifier.bias.any()
    assert torch.equal(model(torch.randn(2, 3, 32, 32)), torch.zeros(2, 7))
    assert model.config.num_classes == 7 and model.config.representation_size is None


def test_timm_pool_switch_keeps_the_head_consistent(tiny_config: ViTConfig) -> None:
    """reset_classifier(global_pool=...) switches only what the modules can compute."""
    model = VisionTransformer(tiny_config)
    model.reset_classifier(3, global_pool="avg")  # class token kept, mean over the patches
    assert (model.config.pool, model.config.has_class_token) == ("gap", True)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    gap = VisionTransformer(tiny_config.replace(pool="gap"))
    fc_norm = VisionTransformer(tiny_config.replace(pool="gap_fc_norm"))
    fc_norm.reset_classifier(3, global_pool="avg")
    assert fc_norm.config.pool == "gap_fc_norm"
    for no_token_to_read in (gap, fc_norm):
        with pytest.raises(ValueError, match="global_pool='token' needs"):
            no_token_to_read.reset_classifier(3, global_pool="token")
