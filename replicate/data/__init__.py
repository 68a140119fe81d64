"""The images a run trains on: named datasets, image files and decoding, tar shards, the
protocol's subsets, the inception crop, and the loader that keeps them resident or streams them."""
