"""Tests for challenge.scoring: known answers of the official AutoDL/AutoSpeech scoring."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from challenge.scoring import (alc, as_written, normalized_auc, per_class_auc,
                               plot_learning_curve, transform_time)

rng = np.random.default_rng(0)
Y = np.eye(3)[[0, 1, 2, 0, 1, 2, 0, 1]]


def test_perfect_prediction_at_start_has_alc_1():
    assert normalized_auc(Y, Y) == 1.0
    assert alc([0.0], [1.0], T=1800) == 1.0


def test_perfect_prediction_after_60_s():
    assert alc([60.0], [1.0], T=1800) == pytest.approx(1 - np.log(2) / np.log(31))


def test_constant_prediction_scores_0():
    assert normalized_auc(Y, np.full(Y.shape, 0.3)) == 0.0


def test_reversed_prediction_scores_minus_1():
    assert normalized_auc(Y, -Y) == -1.0


def test_per_class_auc_equals_sklearn_with_ties():
    y = np.eye(4)[rng.integers(0, 4, 200)]
    p = np.round(rng.random((200, 4)), 1)  # many ties
    expected = [roc_auc_score(y[:, k], p[:, k]) for k in range(4)]
    np.testing.assert_allclose(per_class_auc(y, p), expected)
    assert normalized_auc(y, p) == pytest.approx(2 * np.mean(expected) - 1)


def test_class_absent_from_test_set_is_dropped():
    y = np.eye(3)[[0, 1, 0, 1, 1]]  # class 2 never occurs
    p = rng.random((5, 3))
    assert np.isnan(per_class_auc(y, p)[2])
    expected = np.mean([roc_auc_score(y[:, k], p[:, k]) for k in (0, 1)])
    assert normalized_auc(y, p) == pytest.approx(2 * expected - 1)


def test_no_scorable_class_is_an_error():
    with pytest.raises(ValueError, match="no class has both"):
        normalized_auc(np.ones((3, 1)), np.zeros((3, 1)))


def test_six_significant_digits_merge_near_ties():
    y = np.eye(2)[[0, 1]]
    p = np.array([[0.1000001, 0.5], [0.1, 0.6]])
    np.testing.assert_array_equal(as_written(p)[:, 0], [0.1, 0.1])
    np.testing.assert_allclose(per_class_auc(y, p), [0.5, 1.0])  # unrounded: [1.0, 1.0]
    assert normalized_auc(y, p) == pytest.approx(0.5)


def test_bad_prediction_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        normalized_auc(Y, Y[:, :2])
    with pytest.raises(ValueError, match="NaN or Inf"):
        normalized_auc(Y, np.where(Y == 1, np.nan, 0))


def test_transform_time():
    np.testing.assert_allclose(transform_time([0, 60, 1800], 1800), [0, np.log(2) / np.log(31), 1])


def test_alc_is_a_step_function_held_to_the_end():
    x1, x2 = transform_time([10, 100], 300)
    assert alc([10, 100], [0.5, 0.8], T=300) == pytest.approx(0.5 * (x2 - x1) + 0.8 * (1 - x2))


def test_alc_drops_predictions_after_budget():
    assert alc([10, 400], [0.5, 1.0], T=300) == pytest.approx(alc([10], [0.5], T=300))
    assert alc([], [], T=300) == 0.0


def test_alc_rejects_unordered_times():
    with pytest.raises(ValueError, match="increasing"):
        alc([5, 1], [0.1, 0.2], T=10)


def test_plot_learning_curve_writes_png(tmp_path):
    path = tmp_path / "curve.png"
    plot_learning_curve([3, 30, 90], [0.2, 0.6, 0.9], 120, path, "demo")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
