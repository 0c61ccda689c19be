"""Choosing a head's hyper-parameters on a validation split within a time budget."""

from __future__ import annotations

import logging
import time

from sklearn.base import clone

from heads.metrics import normalized_auc

log = logging.getLogger(__name__)


def select_by_validation(candidates, X_train, y_train, X_val, y_val, score=normalized_auc,
                         deadline: float | None = None):
    """Fit a clone of each candidate estimator on the training split, score it on the validation
    split with ``score(y_val, proba, classes)`` and return ``(best fitted clone, scores)``.

    Candidates are tried in order; the first is always fitted, a later one only when the previous
    fit's duration still fits before ``deadline`` (a `time.monotonic` value), so ``scores`` may be
    shorter than ``candidates``. Ties go to the earlier candidate.
    """
    best, scores, last_seconds = None, [], 0.0
    for candidate in candidates:
        if best is not None and deadline is not None and time.monotonic() + last_seconds > deadline:
            log.info("selection: deadline reached, %d of %d candidates skipped",
                     len(candidates) - len(scores), len(candidates))
            break
        start = time.monotonic()
        model = clone(candidate).fit(X_train, y_train)
        scores.append(score(y_val, model.predict_proba(X_val), model.classes_))
        last_seconds = time.monotonic() - start
        log.info("selection: %r scores %.4f (%.2f s)", candidate, scores[-1], last_seconds)
        if best is None or scores[-1] > max(scores[:-1]):
            best = model
    return best, scores
