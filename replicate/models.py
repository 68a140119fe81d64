"""The application's models: `vit`'s registry with the CNN baselines registered in it.

`vit` holds the paper's model and the registry and imports neither `baselines` nor `replicate`;
`baselines` registers its CNNs with `vit.registry.register_model`; the commands of `replicate`
name models through this module, which imports both.
"""

import baselines  # noqa: F401  (importing registers tinyvgg, effnet_b0, effnet_b2)
from vit.registry import ModelEntry, create_model, get_model_entry, list_models

__all__ = ["ModelEntry", "create_model", "get_model_entry", "list_models"]
