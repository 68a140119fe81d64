"""vit: the Vision Transformer of Dosovitskiy et al. (ICLR 2021), equation by equation.

vit/embedding.py   Eq. 1     patch + position embedding, [class] token; Section 3.2 resize
vit/attention.py   Eq. 5-8   multi-head self-attention (Appendix A)
vit/mlp.py         Eq. 3     the MLP block
vit/encoder.py     Eq. 2-3   pre-LN encoder block with residuals, and the encoder
vit/head.py        Eq. 4     LN on z_L^0, optional pre-logits, classifier
vit/model.py                 VisionTransformer: Figure 1 put together
vit/variants.py    Table 1   vit_b16, vit_b32, vit_l16, vit_l32, vit_h14 (+ vit_ti16, vit_s16)
vit/pretrained.py            real weights from timm, torchvision, the official .npz and big_vision
"""

from vit.config import ViTConfig
from vit.model import VisionTransformer
from vit.registry import create_model, get_model_entry, list_models, register_model

__all__ = [
    "ViTConfig",
    "VisionTransformer",
    "create_model",
    "get_model_entry",
    "list_models",
    "register_model",
]
