import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import rankdata
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from heads import REGISTRY, blend, make_head, normalized_auc, select_by_validation, select_members
from heads.knn import KNNHead
from heads.linear import LinearHead

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def blobs(n_classes=5, n=400, dim=32, seed=0, spread=1.0):
    """Badly scaled Gaussian blobs with a constant column, split in half: train, test."""
    X, y = make_blobs(n, dim, centers=n_classes, cluster_std=spread, random_state=seed)
    X = X * np.logspace(-3, 3, dim) + 1e4
    X[:, 0] = 7.0
    return X[: n // 2], y[: n // 2], X[n // 2:], y[n // 2:]


@pytest.fixture(params=sorted(REGISTRY))
def head(request):
    return make_head(request.param)


@pytest.mark.parametrize("n_classes", [2, 5])
def test_head_separates_blobs(head, n_classes):
    X, y, X_test, y_test = blobs(n_classes)
    proba = head.fit(X, y).predict_proba(X_test)
    assert proba.shape == (len(X_test), n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert normalized_auc(y_test, proba, head.classes_) > 0.95
    assert np.mean(head.predict(X_test) == y_test) > 0.9


def test_head_beats_chance_on_overlapping_blobs(head):
    X, y, X_test, y_test = blobs(8, n=800, dim=8, spread=12.0, seed=1)
    score = normalized_auc(y_test, head.fit(X, y).predict_proba(X_test), head.classes_)
    assert 0.4 < score < 0.8  # informative on a genuinely hard problem (0.54-0.65 measured)


def test_classes_are_the_labels_seen(head):
    X, y, X_test, _ = blobs(5)
    keep = np.isin(y, [1, 3, 4])
    head.fit(X[keep], y[keep] * 10)
    np.testing.assert_array_equal(head.classes_, [10, 30, 40])
    assert head.predict_proba(X_test).shape == (len(X_test), 3)


def test_single_example_class(head):
    X, y, X_test, _ = blobs(3)
    keep = (y != 2) | (np.arange(len(y)) == np.flatnonzero(y == 2)[0])
    proba = head.fit(X[keep], y[keep]).predict_proba(X_test)
    assert proba.shape == (len(X_test), 3) and np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)


def test_single_class_gives_a_column_of_ones(head):
    X, _, X_test, _ = blobs(3)
    proba = head.fit(X, np.full(len(X), 4)).predict_proba(X_test)
    np.testing.assert_array_equal(head.classes_, [4])
    np.testing.assert_allclose(proba, np.ones((len(X_test), 1)))


def test_clone_is_unfitted_with_the_same_params(head):
    X, y, _, _ = blobs()
    copy = clone(head.fit(X, y))
    assert copy.get_params() == head.get_params()
    with pytest.raises(NotFittedError):
        copy.predict_proba(X)


def test_knn_k1_is_the_nearest_neighbour():
    X, y, X_test, _ = blobs(5, spread=8.0)
    ours = KNNHead(k=1, standardize=False).fit(X, y).predict(X_test)
    reference = KNeighborsClassifier(1, metric="cosine").fit(X, y).predict(X_test)
    np.testing.assert_array_equal(ours, reference)


def test_knn_k_is_capped_at_the_training_size():
    X, y, X_test, _ = blobs(3)
    assert KNNHead(k=1000).fit(X[:5], y[:5]).predict_proba(X_test).shape[0] == len(X_test)


def test_normalized_auc():
    y = np.array([0, 0, 1, 1, 2])
    perfect = np.eye(3)[y]
    assert normalized_auc(y, perfect, [0, 1, 2]) == pytest.approx(1.0)
    assert normalized_auc(y, -perfect, [0, 1, 2]) == pytest.approx(-1.0)
    assert normalized_auc(y, np.ones((5, 3)), [0, 1, 2]) == pytest.approx(0.0)
    # class 3 has no positives and is skipped; only columns of classes with both count
    assert normalized_auc(y, np.eye(4)[y], [0, 1, 2, 3]) == pytest.approx(1.0)
    assert normalized_auc(np.zeros(4), np.ones((4, 1)), [0]) == 0.0


def test_normalized_auc_matches_sklearn_with_ties_and_unseen_labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 300)  # labels 5, 6 have no column
    proba = rng.integers(0, 4, (300, 5)).astype(float)
    reference = np.mean([roc_auc_score(y == c, proba[:, c]) for c in range(5)])
    assert normalized_auc(y, proba, range(5)) == pytest.approx(2 * reference - 1)


def test_rank_blend_of_identical_predictions_is_their_ranks():
    proba = np.random.default_rng(0).dirichlet(np.ones(4), size=50)
    ranks = (rankdata(proba, axis=0) - 1) / 49
    np.testing.assert_allclose(blend([proba, proba, proba]), ranks)
    np.testing.assert_allclose(blend([proba, proba], weights=[3, 1], method="mean"), proba)


def test_ensemble_selection_blends_complementary_heads_and_skips_noise():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    signal = np.eye(4)[y] + rng.normal(0, 0.5, (400, 4))
    noise = rng.normal(size=(400, 4))
    knows_01 = np.hstack([signal[:, :2], noise[:, 2:]])  # informative on classes 0, 1 only
    knows_23 = np.hstack([noise[:, :2], signal[:, 2:]])
    members, score = select_members([noise, knows_01, knows_23], y, [0, 1, 2, 3])
    assert sorted(members) == [1, 2]
    assert score == pytest.approx(normalized_auc(y, blend([knows_01, knows_23]), [0, 1, 2, 3]))
    assert score > max(normalized_auc(y, p, [0, 1, 2, 3]) for p in (knows_01, knows_23)) + 0.1


def nuisance_data(seed=0, n=600):
    """Labels hidden under a nuisance that only an unregularised model can subtract."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    nuisance = 5 * rng.normal(size=(n, 2))
    signal = np.eye(3)[y][:, :2] + 0.3 * rng.normal(size=(n, 2))
    X = np.hstack([signal + nuisance, nuisance, rng.normal(size=(n, 20))])
    return X[:400], y[:400], X[400:], y[400:]


def test_selection_picks_the_better_C():
    best, scores = select_by_validation([LinearHead(C=1e-4), LinearHead(C=10.0)], *nuisance_data())
    assert best.C == 10.0 and scores[1] > scores[0] + 0.5
    assert best.predict_proba(nuisance_data()[2]).shape == (200, 3)


def test_selection_stops_at_the_deadline():
    candidates = [LinearHead(C=C) for C in (1e-4, 10.0, 1.0)]
    best, scores = select_by_validation(candidates, *nuisance_data(), deadline=time.monotonic() - 1)
    assert len(scores) == 1 and best.C == 1e-4


@pytest.fixture(scope="module")
def speaker_embeddings(tmp_path_factory):
    """Spectral embeddings of a slice of fsdd_speaker: 240 training and 120 test clips."""
    if not (DATASETS / "fsdd_speaker").is_dir():
        pytest.skip("shared development datasets are not here")
    from challenge.data import load_dataset
    from embedders import get_embedder

    out = tmp_path_factory.mktemp("datasets")
    subprocess.run([sys.executable, str(DATASETS / "materialize.py"), str(out), "fsdd_speaker"],
                   check=True, capture_output=True)
    data = load_dataset(out / "fsdd_speaker")
    embedder = get_embedder("spectral")
    return (embedder.embed(data.x_train[:240]), data.y_train[:240].argmax(axis=1),
            embedder.embed(data.x_test[:120]), data.y_test[:120].argmax(axis=1))


def test_heads_on_spectral_embeddings(head, speaker_embeddings):
    X, y, X_test, y_test = speaker_embeddings
    assert normalized_auc(y_test, head.fit(X, y).predict_proba(X_test), head.classes_) > 0.8
