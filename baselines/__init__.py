"""CNN baselines in the model registry: `create_model("tinyvgg" | "effnet_b0" | "effnet_b2")`.

    baselines/tinyvgg.py       TinyVGG, the CNN Explainer net of the course (trained from scratch)
    baselines/efficientnet.py  EfficientNet-B0/B2 from torchvision, ImageNet weights on request
    baselines/bit.py           BiT ResNets registered as models, and their default recipes
    baselines/bit_network.py   the BiT network (timm's ResNetV2: GroupNorm, standardised convs)
    baselines/bit_weights.py   BiT weights: timm's BiT-M, Google's .npz, state-dict files
    baselines/weights.py       torchvision weight specs: download, hash check, clear errors offline
    baselines/head.py          the head contract below

The head contract, shared with `vit.VisionTransformer`, so a trainer needs no `isinstance`:

    model.head                    the classification block after the features; a feature-extraction
                                  recipe freezes everything and trains `model.head.parameters()`
    model.replace_head(n)         a new n-class final linear layer, on the model's device and dtype

For the CNNs `model.head` is `model.classifier` (TinyVGG: Flatten + Linear; EfficientNet:
Dropout + Linear), named as in the course and torchvision so their state dicts load unchanged;
for BiT it is timm's `head` (average pool, 1x1 convolution), replaced by a zero-initialised one.
For a ViT it is the `ClassificationHead` (final LayerNorm, pre-logits, classifier).
"""

from baselines import bit, efficientnet, tinyvgg  # noqa: F401  (importing registers the models)
