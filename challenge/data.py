"""Read and write datasets in the AutoSpeech challenge format.

A dataset directory holds ``train.pkl`` and ``test.pkl`` (pickled lists of 1-D float arrays,
16 kHz), ``train.solution`` and optionally ``test.solution`` (one one-hot row of space-separated
integers per clip) and ``meta.json`` (``class_num``, ``train_num``, ``test_num``, ``time_budget``).
"""

from __future__ import annotations

import json
import logging
import pickle
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedders.base import repair_wave

log = logging.getLogger(__name__)

META_KEYS = ("class_num", "train_num", "test_num", "time_budget")


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message names the file."""


@dataclass
class Dataset:
    """One challenge dataset; ``y_test`` is None when ``test.solution`` is absent."""

    x_train: list[np.ndarray]
    y_train: np.ndarray
    x_test: list[np.ndarray]
    y_test: np.ndarray | None
    metadata: dict


def _repaired(x) -> tuple[np.ndarray, list[str]]:
    """`embedders.base.repair_wave` for numpy arrays only."""
    if not isinstance(x, np.ndarray):
        raise ValueError(f"expected a numpy array, got {type(x).__name__}")
    return repair_wave(x)


def sanitize_clip(x) -> np.ndarray:
    """Return clip ``x`` as a finite mono float32 1-D array, logging a warning for each fix
    (see `embedders.base.repair_wave`). Raises ValueError for non-arrays, other dtypes and shapes.
    """
    x, fixes = _repaired(x)
    for fix in fixes:
        log.warning("clip: %s", fix)
    return x


def _opened(path: Path, mode: str):
    """Open ``path``, turning a missing file into a DatasetError naming it."""
    try:
        return open(path, mode)
    except FileNotFoundError:
        raise DatasetError(f"{path.name}: missing file in {path.parent}") from None


def _read_clips(path: Path, expected: int) -> list[np.ndarray]:
    """Load and sanitise the pickled clip list at ``path``; one warning per kind of fix."""
    with _opened(path, "rb") as f:
        try:
            clips = pickle.load(f)
        except Exception as e:  # a corrupt pickle can raise almost anything
            raise DatasetError(f"{path.name}: cannot unpickle ({type(e).__name__}: {e})") from e
    if not isinstance(clips, list):
        raise DatasetError(f"{path.name}: expected a list of arrays, got {type(clips).__name__}")
    if len(clips) != expected:
        raise DatasetError(f"{path.name}: {len(clips)} clips but meta.json says {expected}")
    fixed, counts = [], Counter()
    for i, clip in enumerate(clips):
        try:
            clip, fixes = _repaired(clip)
        except ValueError as e:
            raise DatasetError(f"{path.name}: clip {i}: {e}") from e
        fixed.append(clip)
        counts.update(fixes)
    for fix, n in counts.items():
        log.warning("%s: %d clip(s): %s", path.name, n, fix)
    return fixed


def _read_solution(path: Path, rows: int, class_num: int) -> np.ndarray:
    """Load the one-hot label matrix at ``path`` and check its shape and values."""
    with _opened(path, "r") as f:
        try:
            y = np.loadtxt(f, ndmin=2)
        except ValueError as e:
            raise DatasetError(f"{path.name}: not a matrix of numbers ({e})") from e
    if y.shape[0] != rows:
        raise DatasetError(f"{path.name}: {y.shape[0]} rows but meta.json says {rows} clips")
    if y.shape[1] != class_num:
        raise DatasetError(f"{path.name}: {y.shape[1]} columns but class_num is {class_num}")
    bad = np.flatnonzero(~(np.isin(y, (0, 1)).all(axis=1) & (y.sum(axis=1) == 1)))
    if bad.size:
        raise DatasetError(f"{path.name}: row {bad[0]} is not one-hot "
                           f"(needs exactly one 1, the rest 0): {y[bad[0]].tolist()}")
    return y


def _read_meta(path: Path) -> dict:
    """Load ``meta.json`` and check its keys and values."""
    with _opened(path, "r") as f:
        try:
            meta = json.load(f)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path.name}: invalid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise DatasetError(f"{path.name}: expected a JSON object")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise DatasetError(f"{path.name}: missing key(s) {', '.join(missing)}")
    for key in META_KEYS:
        value, number = meta[key], key == "time_budget"
        if isinstance(value, bool) or not isinstance(value, (int, float) if number else int) \
                or value <= 0:
            kind = "number" if number else "integer"
            raise DatasetError(f"{path.name}: {key} must be a positive {kind}, got {value!r}")
    return meta


def load_dataset(directory) -> Dataset:
    """Load and validate the challenge dataset in ``directory``.

    Raises DatasetError naming the offending file for a missing file, a corrupt pickle, missing
    meta keys, counts that disagree with ``meta.json`` or labels that are not one-hot.
    """
    d = Path(directory)
    meta = _read_meta(d / "meta.json")
    x_train = _read_clips(d / "train.pkl", meta["train_num"])
    y_train = _read_solution(d / "train.solution", meta["train_num"], meta["class_num"])
    x_test = _read_clips(d / "test.pkl", meta["test_num"])
    test_solution = d / "test.solution"
    y_test = (_read_solution(test_solution, meta["test_num"], meta["class_num"])
              if test_solution.exists() else None)
    return Dataset(x_train, y_train, x_test, y_test, meta)


def write_dataset(directory, x_train, y_train, x_test, y_test=None, time_budget=1800) -> Path:
    """Write a dataset in the challenge format to ``directory`` and return its path.

    ``y_train``/``y_test`` are one-hot ``(n, class_num)`` arrays; ``y_test=None`` writes no
    ``test.solution``.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, clips in (("train", x_train), ("test", x_test)):
        with open(d / f"{name}.pkl", "wb") as f:
            pickle.dump(list(clips), f, protocol=4)
    np.savetxt(d / "train.solution", np.asarray(y_train), fmt="%d")
    if y_test is not None:
        np.savetxt(d / "test.solution", np.asarray(y_test), fmt="%d")
    meta = {"class_num": int(np.shape(y_train)[1]), "train_num": len(x_train),
            "test_num": len(x_test), "time_budget": time_budget}
    (d / "meta.json").write_text(json.dumps(meta))
    return d
