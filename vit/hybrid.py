"""Section 3.1, "Hybrid Architecture": Eq. 1 applied to a CNN feature map.

"As an alternative to raw image patches, the input sequence can be formed from feature maps of
a CNN. In this hybrid model, the patch embedding projection E (Eq. 1) is applied to patches
extracted from a CNN feature map. As a special case, the patches can have spatial size 1x1,
which means that the input sequence is obtained by simply flattening the spatial dimensions of
the feature map and projecting to the Transformer dimension."

The CNN is the paper's "ResNet (BiT)" (Section 4.1): Group Normalization and weight-standardised
convolutions, timm's `ResNetV2` built as timm's `vit_base_r50_s16_384` builds it (and as the
official `models_vit.py` does: a 7x7 stride-2 root with SAME padding, 3x3 stride-2 max-pool,
post-activation bottlenecks). Appendix D.2's two ways of feeding a ResNet-50 to the Transformer:
(i) the output of stage 4, layers (3, 4, 6, 3), stride 32; (ii) stage 4 removed and its layers
placed in stage 3, layers (3, 4, 9), stride 16, "a 4x longer sequence".
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import torch

from vit.config import ViTConfig
from vit.embedding import PatchEmbedding

if TYPE_CHECKING:
    from timm.models.resnetv2 import ResNetV2


def resnet_features(config: ViTConfig) -> ResNetV2:
    """The ResNet (BiT) of a hybrid, without its pooling and classifier: stem, then
    `config.resnet_layers` bottleneck stages of 4 * width * 2^s output channels."""
    from timm.layers import StdConv2dSame  # imported when a hybrid is built: `import vit` is fast
    from timm.models.resnetv2 import ResNetV2

    width, layers = config.resnet_width, config.resnet_layers
    return ResNetV2(
        layers=layers,
        channels=tuple(4 * width * 2**s for s in range(len(layers))),
        stem_chs=width,
        num_classes=0,
        global_pool="",
        in_chans=config.in_channels,
        preact=False,  # post-activation bottlenecks, as the official hybrid's ResidualUnit
        stem_type="same",  # TensorFlow SAME padding in the root conv and pool, as the original
        conv_layer=partial(StdConv2dSame, eps=1e-8),  # timm's setting for these weights
        zero_init_last=True,  # the official ResidualUnit: gn3 scale initialised to zeros
    )


class HybridEmbedding(PatchEmbedding):
    """Eq. 1 on a ResNet feature map: x_p are the 1x1 (P x P) cells of the last stage's output."""

    def __init__(self, config: ViTConfig) -> None:
        backbone = resnet_features(config)
        super().__init__(config, in_channels=backbone.num_features)
        self.backbone = backbone

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 4 * width * 2^(s-1), H / stride, W / stride)."""
        return self.backbone.forward_features(images)
