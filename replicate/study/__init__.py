"""`python -m replicate.study NAME`: the paper's findings, in miniature, on real data.

replicate/study/spec.py         Study, RunSpec, Scale: a study as data
replicate/study/scales.py       `cpu` (committed), `gpu` (one H100) and `smoke` (CI)
replicate/study/definitions/    one module per study, in the order they run: its runs, table,
                                figure and rule
    data_size.py          Figures 3-4: ViT vs BiT on 3%...100% of CIFAR-10
    transfer.py           Tables 2, 5: five CIFAR-10 classes to the other five, 100 labels each
    resolution.py         Section 3.2: fine-tuning at a higher resolution
    self_supervision.py   Section 4.6: masked patch prediction
    attention.py          Figures 6, 7, 11 from the best-trained ViT, beside it untrained
replicate/study/runner.py       runs what has not finished, dependencies first
replicate/figures/studies.py    what every study's table and figure share (intervals, verdicts)
"""

from replicate.study.definitions import (
    attention,
    data_size,
    resolution,
    self_supervision,
    transfer,
)
from replicate.study.spec import RunSpec, Scale, Study

STUDIES: dict[str, Study] = {
    module.STUDY.name: module.STUDY
    for module in (data_size, transfer, resolution, self_supervision, attention)
}

__all__ = ["STUDIES", "RunSpec", "Scale", "Study"]
