"""The data path under torchrun: 2 CPU processes with the gloo backend, as on one node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
IMAGES = 10  # per split; the id of an image is its flat grey level

SCRIPT = """
import json, sys
from pathlib import Path
from replicate.data import datasets
from replicate.data import images as data
from replicate.data.loader import epoch_indices, place
from replicate.runtime import Runtime

dataset, out = sys.argv[1], Path(sys.argv[2])
runtime = Runtime.start("fp32")
scan = data.ImageFiles.scan.__func__
def counted(cls, folder, *only):  # which ranks list the folder
    (out / f"scan-rank{runtime.rank}-{folder.name}").touch()
    return scan(cls, folder, *only)
data.ImageFiles.scan = classmethod(counted)
spec = datasets.get_dataset_spec(dataset)
splits = runtime.once_per_node(lambda: datasets.load_splits(spec, out))
seen = {}
for placement in ("device", "stream"):
    source = place(splits.test, 8, runtime, placement, workers=0)
    for shuffle in (True, False):
        indices = epoch_indices(len(source), seed=0, epoch=1, rank=runtime.rank,
                                world_size=runtime.world_size, shuffle=shuffle)
        ids = []
        for images, labels in source.batches(indices, 3):
            ids += images[:, 0, 4, 4].tolist()
        seen[f"{placement}-{shuffle}"] = ids
(out / f"rank{runtime.rank}.json").write_text(json.dumps(seen))
runtime.close()
"""


def write_grey_folder(root: Path) -> Path:
    """IMAGES flat grey images per split in two classes; image i has grey level 20 i + 5."""
    for split in ("train", "val"):
        for i in range(IMAGES):
            folder = root / split / ("a" if i % 2 else "b")
            folder.mkdir(parents=True, exist_ok=True)
            pixels = torch.full((12 + i, 10, 3), 20 * i + 5, dtype=torch.uint8).numpy()
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def test_two_ranks_see_disjoint_complete_shards_listed_once(tmp_path: Path) -> None:
    folder = write_grey_folder(tmp_path / "images")
    script = tmp_path / "shards.py"
    script.write_text(SCRIPT)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--standalone", str(script), f"imagefolder:{folder}", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    every = sorted(20 * i + 5 for i in range(IMAGES))
    for key in rank0:  # resident (one shared decoded copy) and streamed, shuffled or not
        assert len(rank0[key]) == len(rank1[key]) == IMAGES // 2, key
        assert not set(rank0[key]) & set(rank1[key]), key
        assert sorted(rank0[key] + rank1[key]) == every, key
    assert rank0["device-True"] == rank0["stream-True"]  # where they live changes no image
    listed = sorted(p.name for p in tmp_path.glob("scan-*"))
    assert listed == ["scan-rank0-train", "scan-rank0-val"]  # by local rank 0 only
