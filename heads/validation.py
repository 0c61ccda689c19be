"""The held-out split that scores every candidate inside a challenge run."""

from __future__ import annotations

import numpy as np


def validation_split(labels, fraction: float = 0.2, max_size: int = 1000, seed: int = 0):
    """Stratified ``(train_idx, val_idx)``: about ``fraction`` of each class (at most ``max_size``
    rows in all) held out. A class with a single example stays in train; a class with two or more
    keeps at least one example on each side."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    share = min(fraction, max_size / max(len(labels), 1))
    val = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        if len(members) >= 2:
            take = min(max(1, int(round(share * len(members)))), len(members) - 1)
            val.extend(members[:take])
    val = np.sort(np.array(val, dtype=int))
    train = np.setdiff1d(np.arange(len(labels)), val)
    return train, val
