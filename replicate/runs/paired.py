"""Two arms compared image by image: each arm one run or several seeds, all scored on the same
evaluation images (each run's `predictions.json`). The difference of their accuracies gets a 95%
interval that covers the sampling of images, paired since both arms see every image, and the
spread between an arm's seeds; a claim is decided from it by a rule fixed before the runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replicate.runs.log import PREDICTIONS

Z95 = 1.96  # the normal quantile of a two-sided 95% interval


def correct(folder: Path, split: str, file: str = PREDICTIONS) -> np.ndarray:
    """1.0 or 0.0 for each image of the run's final evaluation on `split`, in the split's order
    (`file`: a later evaluation's, written in the same format)."""
    path = folder / file
    record = json.loads(path.read_text())
    if record["split"] != split:
        raise ValueError(f"{path} scores the {record['split']} split, not {split}")
    return np.equal(record["true"], record["predicted"]).astype(float)


@dataclass(frozen=True)
class Difference:
    """An arm's accuracy minus the control's, as a fraction, with its 95% half-width."""

    effect: float
    half_width: float
    seeds: tuple[int, int]  # runs behind the arm and behind the control


def paired_difference(arm: Sequence[np.ndarray], control: Sequence[np.ndarray]) -> Difference:
    """`arm` and `control`: one array per seed of a score per image (1 or 0 for right or
    wrong, or any measure), every array over the same images in the same order. The variance:
    that of the per-image differences of the seed means over the number of images, plus each
    side's variance of its seeds' mean scores over its number of seeds (none with one seed: the
    interval then covers the images alone)."""
    a, b = np.stack(arm), np.stack(control)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the arms were scored on {a.shape[1]} and {b.shape[1]} images")
    per_image = a.mean(axis=0) - b.mean(axis=0)
    variance = per_image.var(ddof=1) / len(per_image)
    variance += sum(s.mean(axis=1).var(ddof=1) / len(s) for s in (a, b) if len(s) > 1)
    return Difference(float(per_image.mean()), Z95 * math.sqrt(variance), (len(a), len(b)))


def verdict(difference: Difference, minimum: float, testable: bool = True) -> str:
    """The rule for a claim that the arm beats the control by at least `minimum` (> 0): "held"
    when the interval excludes zero and the effect reaches the minimum, "not held" when the
    interval excludes the minimum (the effect is absent or too small to matter), else "within
    noise"; "not testable here" when the design cannot decide it (a control failed, the arms did
    not converge), whatever the numbers."""
    if not testable:
        return "not testable here"
    low = difference.effect - difference.half_width
    high = difference.effect + difference.half_width
    if low > 0 and difference.effect >= minimum:
        return "held"
    if high < minimum:
        return "not held"
    return "within noise"
