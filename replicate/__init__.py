"""replicate: train, evaluate, benchmark and draw the paper's figures with the `vit` package."""

import os

# OpenMP's threads sleep while they wait for work instead of spinning, so that a run beside
# another busy process (a laptop's browser, a second run) slows by the share of the cores it
# lost rather than several times that (results/bench/shared-machine-*.md). Read once, when
# torch loads OpenMP: replicate's commands import this before torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
