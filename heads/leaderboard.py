"""Candidates scored on the validation split, and the blend of the best of them.

A challenge run adds one `Candidate` per (features, head). The leaderboard keeps the blend with the
best validation score; a new candidate only changes what the run publishes when it makes that
score better.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from heads.ensemble import blend, select_members
from heads.metrics import normalized_auc

log = logging.getLogger(__name__)


def expand_columns(proba: np.ndarray, classes, class_num: int) -> np.ndarray:
    """Scores for ``classes`` -> scores for all ``class_num`` classes (unseen classes get 0)."""
    full = np.zeros((len(proba), class_num), np.float32)
    full[:, np.asarray(classes, dtype=int)] = proba
    return full


@dataclass(eq=False)
class Candidate:
    """One fitted head: ``head`` was fit on all training data and predicts the test set from the
    ``key`` features; ``val_proba`` comes from its twin fit without the validation split."""

    name: str
    key: str
    head: object
    val_proba: np.ndarray | None
    classes: np.ndarray
    score: float = float("nan")
    test_proba: np.ndarray | None = field(default=None, repr=False)


class Leaderboard:
    """Keeps every candidate and the best validated blend of up to ``max_members`` of them."""

    def __init__(self, y_val, class_num: int, max_members: int = 5):
        self.y_val = np.asarray(y_val)
        self.class_num = class_num
        self.max_members = max_members
        self.candidates: list[Candidate] = []
        self.members: list[int] = []
        self.best_score = -np.inf

    def add(self, candidate: Candidate) -> bool:
        """Score ``candidate`` on validation; True when it improves the best blend."""
        self.candidates.append(candidate)
        if candidate.val_proba is None or len(self.y_val) == 0:  # nothing to validate on: trust the newest
            self.members = [len(self.candidates) - 1]
            return True
        candidate.val_proba = expand_columns(candidate.val_proba, candidate.classes, self.class_num)
        candidate.score = normalized_auc(self.y_val, candidate.val_proba, np.arange(self.class_num))
        scored = [i for i, c in enumerate(self.candidates) if c.val_proba is not None]
        members, score = select_members([self.candidates[i].val_proba for i in scored], self.y_val,
                                        np.arange(self.class_num), max_members=self.max_members)
        if score <= self.best_score + 1e-6:
            return False
        self.members = [scored[i] for i in members]
        self.best_score = score
        log.info("best blend: %s (validation %.4f)",
                 ", ".join(self.candidates[i].name for i in self.members), score)
        return True

    def forget_test(self):
        """Drop cached test predictions (the test set changed)."""
        for candidate in self.candidates:
            candidate.test_proba = None

    def best_test(self, test_proba) -> np.ndarray | None:
        """The best blend on the test set; ``test_proba(candidate)`` predicts one candidate."""
        if not self.members:
            return None
        for i in self.members:
            candidate = self.candidates[i]
            if candidate.test_proba is None:
                candidate.test_proba = expand_columns(test_proba(candidate), candidate.classes, self.class_num)
        return blend([self.candidates[i].test_proba for i in self.members]).astype(np.float32)
