"""Arms compared image by image (`replicate.runs.paired`): the interval of a paired difference,
seeds' spread added to it, and the rule that turns it into a verdict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from replicate.runs.paired import Difference, correct, paired_difference, verdict


def test_one_seed_each_gives_the_interval_of_the_per_image_differences() -> None:
    base, arm = np.array([1.0, 0, 1, 0] * 250), np.array([1.0, 1, 1, 0] * 250)
    difference = paired_difference([arm], [base])
    assert difference.effect == pytest.approx(0.25) and difference.seeds == (1, 1)
    # differences are 0, 1, 0, 0: sd sqrt(0.25 * 0.75 * 1000/999), over sqrt(1000)
    assert difference.half_width == pytest.approx(1.96 * (0.1875 * 1000 / 999) ** 0.5 / 1000**0.5)


def test_pairing_is_narrower_than_independent_samples_when_the_arms_agree() -> None:
    """Both arms right on the same 700 images, the arm right on 20 more: the independent
    (Wald) interval would be about +-4 points; paired it is about +-0.9."""
    base = np.array([1.0] * 700 + [0.0] * 300)
    arm = base.copy()
    arm[700:720] = 1
    difference = paired_difference([arm], [base])
    wald = 1.96 * np.sqrt(0.72 * 0.28 / 1000 + 0.7 * 0.3 / 1000)
    assert difference.half_width < wald / 3


def test_the_spread_between_seeds_widens_the_interval() -> None:
    rng = np.random.default_rng(0)
    base = [(rng.random(2000) < 0.6).astype(float) for _ in range(3)]
    steady = [(rng.random(2000) < 0.65).astype(float) for _ in range(3)]
    unsteady = [(rng.random(2000) < p).astype(float) for p in (0.5, 0.65, 0.8)]
    assert (
        paired_difference(unsteady, base).half_width
        > 2 * paired_difference(steady, base).half_width
    )
    with pytest.raises(ValueError, match="scored on 2000 and 1000 images"):
        paired_difference(steady, [b[:1000] for b in base])


@pytest.mark.parametrize(
    "effect, half_width, expected",
    [
        (0.05, 0.02, "held"),  # above zero and past the minimum
        (0.015, 0.01, "within noise"),  # above zero, short of the minimum, cannot exclude it
        (0.005, 0.01, "not held"),  # excludes the minimum
        (-0.04, 0.01, "not held"),
        (0.03, 0.04, "within noise"),  # too wide to say
    ],
)
def test_the_verdict_rule_with_a_minimum_effect_of_two_points(effect, half_width, expected) -> None:
    assert verdict(Difference(effect, half_width, (3, 3)), minimum=0.02) == expected
    assert verdict(Difference(effect, half_width, (3, 3)), 0.02, testable=False) == (
        "not testable here"
    )


def test_predictions_of_another_split_are_refused(tmp_path: Path) -> None:
    record = {"split": "test", "true": [0, 1, 2], "predicted": [0, 1, 1]}
    (tmp_path / "predictions.json").write_text(json.dumps(record))
    assert correct(tmp_path, "test").tolist() == [1.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="scores the test split, not dev"):
        correct(tmp_path, "dev")
