"""Nearest-class-mean head in cosine space, for few-shot problems."""

from __future__ import annotations

import faiss
import numpy as np
from scipy.special import softmax
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y

from heads.base import Head
from heads.knn import unit_rows


class PrototypeHead(Head):
    """Class prototypes = normalised means of the z-scored, L2-normalised training rows;
    probabilities = softmax(cosine similarity to each prototype / ``temperature``).

    The default temperature had the best mean normalised AUC of 0.1, 0.2, 0.5 and 1 on the four
    development datasets (spectral features).
    """

    def __init__(self, temperature: float = 0.2):
        self.temperature = temperature

    def fit(self, X, y):
        """Compute one unit-length prototype per class."""
        X, y = check_X_y(X, y, dtype=(np.float32, np.float64))
        self.classes_, labels = np.unique(y, return_inverse=True)
        self.scaler_ = StandardScaler().fit(X)
        rows = unit_rows(X, self.scaler_)
        one_hot = np.eye(len(self.classes_), dtype=np.float32)[labels]
        self.prototypes_ = np.ascontiguousarray(one_hot.T @ rows)
        faiss.normalize_L2(self.prototypes_)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """``(n, len(classes_))`` softmax of the scaled cosine similarities."""
        check_is_fitted(self)
        rows = unit_rows(check_array(X, dtype=(np.float32, np.float64)), self.scaler_)
        return softmax(rows.astype(np.float64) @ self.prototypes_.T / self.temperature, axis=1)
