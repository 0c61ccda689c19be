"""What every head shares: the scikit-learn classifier API on top of ``predict_proba``."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class Head(ClassifierMixin, BaseEstimator):
    """Base of all heads: subclasses implement ``fit`` (setting ``classes_``) and ``predict_proba``."""

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
