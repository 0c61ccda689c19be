"""The reference entry of `bench/alc.py` is a real model: it learns, and it runs under the harness."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from challenge.data import write_dataset
from challenge.ingestion import run

CODE_DIR = Path(__file__).resolve().parents[1] / "bench" / "reference_2019"
FREQUENCIES = [300.0, 1200.0, 4000.0]  # one tone per class


def load_reference():
    """The reference ``model`` module, imported from its file (it is not on the path)."""
    spec = importlib.util.spec_from_file_location("reference_2019_model", CODE_DIR / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tones(labels, seed):
    """Noisy tones of 0.02 to 7 s (shorter than one frame to longer than the 5 s read), one
    frequency per label."""
    rng = np.random.default_rng(seed)
    clips = []
    for label in labels:
        t = np.arange(int(rng.uniform(0.02, 7.0) * 16000)) / 16000
        clips.append((0.3 * np.sin(2 * np.pi * FREQUENCIES[label] * t)
                      + 0.05 * rng.standard_normal(len(t))).astype(np.float32))
    return clips


@pytest.fixture
def labels():
    return np.tile(np.arange(len(FREQUENCIES)), 8)


def test_reference_learns_and_keeps_class_num_columns(labels):
    reference = load_reference()
    model = reference.Model({"class_num": 4})  # class 3 never occurs in train
    model.train((tones(labels, seed=0), np.eye(4)[labels]), remaining_time_budget=60)
    assert not model.done_training
    scores = model.test(tones(labels, seed=1), remaining_time_budget=60)
    assert model.done_training
    assert scores.shape == (len(labels), 4)
    np.testing.assert_allclose(scores.sum(axis=1), 1, rtol=1e-5)
    assert (scores[:, 3] == 0).all()
    assert (scores.argmax(axis=1) == labels).all()


def test_reference_runs_under_the_harness(tmp_path, labels):
    y = np.eye(len(FREQUENCIES), dtype=int)[labels]
    data = write_dataset(tmp_path / "data", tones(labels, 0), y, tones(labels, 1), y, time_budget=60)
    result = run(data, CODE_DIR, output_dir=tmp_path / "out")
    assert result["error"] is None
    assert result["stop_reason"] == "done_training"
    assert result["scores"] == [1.0]
    assert 0.9 < result["alc"] < 1.0
    assert result["peak_rss_mib"] > 50  # numpy, scipy, sklearn and the clips
