import numpy as np
import pytest

from budget import Clock, CostModel, crop_seconds
from heads.validation import validation_split


class FakeTime:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_clock_keeps_a_margin_and_follows_injected_time():
    now = FakeTime()
    clock = Clock(100, margin=3, margin_fraction=0.05, now=now)
    assert clock.left() == pytest.approx(95)
    now.t += 90
    assert clock.fits(4) and not clock.fits(6)
    assert Clock(None, now=now).fits(1e9)
    assert Clock(2, margin=3, now=now).left() == pytest.approx(1)  # never more than half kept back


def test_cost_model_learns_from_measurements():
    costs = CostModel({"a": 1.0})
    assert costs.estimate("a", 10) == 10
    costs.record("a", seconds=1, audio_seconds=100)
    assert costs.estimate("a", 100) == pytest.approx(1)
    assert costs.audio_for("a", 2) == pytest.approx(200)


def test_crop_seconds_fits_the_affordable_audio():
    durations = [1.0] * 10 + [600.0]
    assert crop_seconds(durations, 1e9) == 30.0
    crop = crop_seconds(durations, 20.0)
    assert np.minimum(durations, crop).sum() <= 20.0 + 1e-6 and crop == pytest.approx(10, abs=1e-3)


def test_validation_split_is_stratified_and_keeps_singletons_in_train():
    labels = np.array([0] * 50 + [1] * 10 + [2] * 2 + [3])
    train, val = validation_split(labels, fraction=0.2)
    assert set(train) | set(val) == set(range(len(labels))) and not set(train) & set(val)
    assert np.bincount(labels[val], minlength=4).tolist() == [10, 2, 1, 0]
    assert (np.bincount(labels[train], minlength=4) >= 1).all()
