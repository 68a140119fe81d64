"""One module per study; `STUDIES` in `replicate.study` lists them in the order they run."""
