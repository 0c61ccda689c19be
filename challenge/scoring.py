"""Scoring of the AutoSpeech / AutoDL challenges.

Each prediction is scored by the normalized AUC, ``2 * mean per-class ROC AUC - 1`` (the official
``autodl_auc``); a run is scored by the area under its learning curve (ALC): the step curve of
those scores against the transformed time ``t~ = ln(1 + t/t0) / ln(1 + T/t0)``, 0 before the first
prediction, each score held until the next one and the last one held until ``t~ = 1``.
"""

from __future__ import annotations

import logging

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import rankdata

log = logging.getLogger(__name__)

T0 = 60.0  # seconds; the official time-transform constant


def as_written(prediction) -> np.ndarray:
    """Round ``prediction`` to 6 significant digits, as the official ingestion's '{:g}' writing does."""
    a = np.asarray(prediction, dtype=float)
    return np.array([float(f"{v:g}") for v in a.ravel()]).reshape(a.shape)


def per_class_auc(solution, prediction) -> np.ndarray:
    """ROC AUC of each class (column), ties averaged; NaN for a class that has no positive or
    no negative example in ``solution``. ``prediction`` is first rounded by `as_written`."""
    y = np.asarray(solution, dtype=float)
    p = as_written(prediction)
    if y.ndim != 2 or y.shape != p.shape:
        raise ValueError(f"prediction shape {p.shape} does not match solution shape {y.shape}")
    if not np.isfinite(p).all():
        raise ValueError("prediction has NaN or Inf values")
    positive = y == 1
    n_pos = positive.sum(axis=0)
    n_neg = len(y) - n_pos
    ranks = rankdata(p, axis=0)  # average ranks for ties
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * positive).sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def normalized_auc(solution, prediction) -> float:
    """``2 * mean(AUC) - 1`` over the classes having both positive and negative test examples."""
    auc = per_class_auc(solution, prediction)
    valid = ~np.isnan(auc)
    if not valid.any():
        raise ValueError("no class has both positive and negative examples in the solution")
    if not valid.all():
        log.warning("classes %s have a single label value in the solution; ignored",
                    np.flatnonzero(~valid).tolist())
    return float(2 * auc[valid].mean() - 1)


def transform_time(t, T, t0=T0):
    """Map seconds ``t`` in [0, T] to [0, 1] by ``ln(1 + t/t0) / ln(1 + T/t0)``."""
    return np.log1p(np.asarray(t, dtype=float) / t0) / np.log1p(T / t0)


def _curve(times, scores, T, t0):
    """Vertices of the step learning curve: (0, 0), each prediction made within the budget ``T``
    at its transformed time, then (1, last score)."""
    times, scores = np.asarray(times, dtype=float), np.asarray(scores, dtype=float)
    if times.shape != scores.shape or times.ndim != 1:
        raise ValueError(f"{times.size} timestamps but {scores.size} scores")
    if (times < 0).any() or (np.diff(times) < 0).any():
        raise ValueError("timestamps must be non-negative and increasing")
    within = times <= T
    if not within.all():
        log.warning("%d prediction(s) made after the time budget are ignored", (~within).sum())
    x = np.concatenate([[0.0], transform_time(times[within], T, t0), [1.0]])
    y = np.concatenate([[0.0], scores[within]])
    return x, np.append(y, y[-1])


def alc(times, scores, T, t0=T0) -> float:
    """Area under the step learning curve of ``scores`` made at ``times`` seconds (budget ``T``)."""
    x, y = _curve(times, scores, T, t0)
    return float(np.sum(np.diff(x) * y[:-1]))


def plot_learning_curve(times, scores, T, path, title, t0=T0) -> None:
    """Write to ``path`` a PNG of the step learning curve over transformed time, area shaded,
    with real seconds on a secondary x axis."""
    x, y = _curve(times, scores, T, t0)
    fig = Figure(figsize=(7, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.step(x, y, where="post", marker="o", markersize=4, markevery=slice(1, -1),
            label=f"ALC = {np.sum(np.diff(x) * y[:-1]):.4f}")
    ax.fill_between(x, y, step="post", alpha=0.3)
    ax.set(xlim=(0, 1), ylim=(min(-0.01, y.min()), 1), ylabel="score (2 * AUC - 1)", title=title,
           xlabel=f"transformed time ln(1 + t/t0) / ln(1 + T/t0)   (T = {T:g} s, t0 = {t0:g} s)")
    ax.grid(True)
    ax.legend(loc="lower right")
    seconds = [s for s in (1, 10, 60, 300, 600, 1200, 1800, 3600, 7200) if s < T] + [T]
    top = ax.secondary_xaxis("top")
    top.set_xticks(transform_time(seconds, T, t0), [f"{s:g}" for s in seconds])
    top.set_xlabel("time (s)")
    fig.savefig(path, dpi=100, bbox_inches="tight")
