"""How a model is trained: the recipes, the run's configuration and runtime, checkpoints, and
the pieces of a step (objectives, accumulation, MixUp, EMA, batch norm, metrics)."""
