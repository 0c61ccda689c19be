"""Blending the predictions of several heads, and choosing which to blend on a validation set."""

from __future__ import annotations

import logging

import numpy as np
from scipy.stats import rankdata

from heads.metrics import normalized_auc

log = logging.getLogger(__name__)


def _scores(prediction, method: str) -> np.ndarray:
    """One ``(n, C)`` prediction as blended by ``method``: column ranks scaled to [0, 1], or as is."""
    prediction = np.asarray(prediction, dtype=np.float64)
    if method == "rank":
        return (rankdata(prediction, axis=0) - 1) / max(len(prediction) - 1, 1)
    if method == "mean":
        return prediction
    raise ValueError(f"unknown blend method {method!r}; expected 'rank' or 'mean'")


def blend(predictions, weights=None, method: str = "rank") -> np.ndarray:
    """Weighted average of ``(n, C)`` predictions with the same rows and columns.

    ``method="rank"`` averages each column's ranks scaled to [0, 1] (ties share their mean rank):
    robust to differently calibrated heads, meant for ranking metrics such as AUC, and its rows
    do not sum to 1. ``method="mean"`` averages the probabilities themselves.
    """
    return np.average([_scores(p, method) for p in predictions], axis=0, weights=weights)


def select_members(predictions, y_true, classes, max_members: int = 5, method: str = "rank",
                   score=normalized_auc) -> tuple[list[int], float]:
    """Greedy forward selection (Caruana et al., 2004) of the candidates whose equal-weight
    `blend` scores best on validation: ``(member indices in order of selection, blend score)``.

    ``predictions`` are the candidates' validation predictions, ``score(y_true, blend, classes)``
    the metric. Each round adds the candidate that improves the blend most; selection stops at
    ``max_members`` or when no candidate improves it, so the first member is the best single one.
    """
    candidates = [_scores(p, method) for p in predictions]
    members, total, best = [], 0.0, -np.inf
    while len(members) < min(max_members, len(candidates)):
        trials = {i: score(y_true, total + candidate, classes)
                  for i, candidate in enumerate(candidates) if i not in members}
        pick = max(trials, key=trials.get)
        if trials[pick] <= best:
            break
        members.append(pick)
        total, best = total + candidates[pick], trials[pick]
    log.debug("ensemble selection: members %s, validation score %.4f", members, best)
    return members, best
