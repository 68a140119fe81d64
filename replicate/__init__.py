"""replicate: train, evaluate, benchmark and draw the paper's figures with the `vit` package."""
