"""Cosine k-nearest-neighbour head (exact search with faiss)."""

from __future__ import annotations

import faiss
import numpy as np
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y
from heads.base import Head


def unit_rows(X, scaler: StandardScaler | None) -> np.ndarray:
    """``X`` transformed by ``scaler`` (if any), rows L2-normalised, as C-contiguous float32.

    All-zero rows stay zero (cosine similarity 0 to everything).
    """
    X = scaler.transform(X) if scaler is not None else X
    X = np.array(X, dtype=np.float32, order="C")
    faiss.normalize_L2(X)
    return X


class KNNHead(Head):
    """Cosine kNN: each of the ``k`` nearest training rows votes
    ``exp((similarity - best similarity) / temperature)`` for its class; a row's votes are
    normalised to probabilities (classes without a vote get 0).

    ``standardize`` z-scores features on the training set before the cosine: on spectral features
    it beat raw and merely centred features on three development datasets and tied on the fourth.
    ``k`` is capped at the training size.
    """

    def __init__(self, k: int = 50, temperature: float = 0.1, standardize: bool = True):
        self.k = k
        self.temperature = temperature
        self.standardize = standardize

    def fit(self, X, y):
        """Store the normalised training rows and their class indices."""
        X, y = check_X_y(X, y, dtype=(np.float32, np.float64))
        self.classes_, self.labels_ = np.unique(y, return_inverse=True)
        self.scaler_ = StandardScaler().fit(X) if self.standardize else None
        self.train_ = unit_rows(X, self.scaler_)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """``(n, len(classes_))`` distance-weighted vote shares."""
        check_is_fitted(self)
        queries = unit_rows(check_array(X, dtype=(np.float32, np.float64)), self.scaler_)
        index = faiss.IndexFlatIP(self.train_.shape[1])
        index.add(self.train_)
        sims, neighbours = index.search(queries, min(self.k, len(self.train_)))
        votes = np.exp((sims - sims[:, :1]) / self.temperature)
        proba = np.zeros((len(queries), len(self.classes_)))
        np.add.at(proba, (np.arange(len(queries))[:, None], self.labels_[neighbours]), votes)
        return proba / proba.sum(axis=1, keepdims=True)
