"""Tests for challenge.data: round trip, clip sanitising and one clear error per malformed input."""

import json
import logging
import pickle

import numpy as np
import pytest

from challenge.data import DatasetError, load_dataset, sanitize_clip, write_dataset

Y3 = np.eye(2, dtype=int)[[0, 1, 0]]


def clips(n, length=50):
    return [np.full(length, 0.1 * i, dtype=np.float32) for i in range(n)]


@pytest.fixture
def ds(tmp_path):
    """A valid 2-class dataset: 3 train and 3 test clips."""
    return write_dataset(tmp_path / "ds", clips(3), Y3, clips(3), Y3, time_budget=60)


def test_round_trip(ds):
    d = load_dataset(ds)
    assert d.metadata == {"class_num": 2, "train_num": 3, "test_num": 3, "time_budget": 60}
    assert all(a.dtype == np.float32 and np.array_equal(a, b) for a, b in zip(d.x_train, clips(3)))
    np.testing.assert_array_equal(d.y_train, Y3)
    np.testing.assert_array_equal(d.y_test, Y3)


def test_test_solution_is_optional(tmp_path):
    d = load_dataset(write_dataset(tmp_path, clips(3), Y3, clips(2), None))
    assert d.y_test is None and len(d.x_test) == 2


@pytest.mark.parametrize("name", ["meta.json", "train.pkl", "test.pkl", "train.solution"])
def test_missing_file(ds, name):
    (ds / name).unlink()
    with pytest.raises(DatasetError, match=f"{name}: missing"):
        load_dataset(ds)


def test_corrupt_pickle(ds):
    (ds / "train.pkl").write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(DatasetError, match="train.pkl: cannot unpickle"):
        load_dataset(ds)


def test_pickle_not_a_list(ds):
    (ds / "test.pkl").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(DatasetError, match="test.pkl: expected a list of arrays, got dict"):
        load_dataset(ds)


def edit_meta(ds, **changes):
    meta = {k: v for k, v in json.loads((ds / "meta.json").read_text()).items() if k not in changes}
    meta.update({k: v for k, v in changes.items() if v is not None})
    (ds / "meta.json").write_text(json.dumps(meta))


def test_meta_missing_key(ds):
    edit_meta(ds, class_num=None, time_budget=None)
    with pytest.raises(DatasetError, match="meta.json: missing key.*class_num, time_budget"):
        load_dataset(ds)


def test_meta_invalid_json(ds):
    (ds / "meta.json").write_text("{class_num: 2")
    with pytest.raises(DatasetError, match="meta.json: invalid JSON"):
        load_dataset(ds)


def test_meta_bad_value(ds):
    edit_meta(ds, test_num="3")
    with pytest.raises(DatasetError, match="meta.json: test_num must be a positive integer"):
        load_dataset(ds)


def test_clip_count_disagrees_with_meta(ds):
    edit_meta(ds, train_num=4)
    with pytest.raises(DatasetError, match="train.pkl: 3 clips but meta.json says 4"):
        load_dataset(ds)


def test_solution_row_count_disagrees(ds):
    np.savetxt(ds / "test.solution", Y3[:2], fmt="%d")
    with pytest.raises(DatasetError, match="test.solution: 2 rows but meta.json says 3"):
        load_dataset(ds)


def test_solution_wrong_column_count(ds):
    np.savetxt(ds / "train.solution", np.eye(3, dtype=int), fmt="%d")
    with pytest.raises(DatasetError, match="train.solution: 3 columns but class_num is 2"):
        load_dataset(ds)


@pytest.mark.parametrize("row", [[1, 1], [0, 0], [2, -1], [0.5, 0.5]])
def test_solution_row_not_one_hot(ds, row):
    y = Y3.astype(float)
    y[1] = row
    np.savetxt(ds / "train.solution", y, fmt="%g")
    with pytest.raises(DatasetError, match="train.solution: row 1 is not one-hot"):
        load_dataset(ds)


def test_solution_not_numbers(ds):
    (ds / "train.solution").write_text("1 0\n0 x\n1 0\n")
    with pytest.raises(DatasetError, match="train.solution: not a matrix of numbers"):
        load_dataset(ds)


def replace_clip(ds, index, clip, split="test"):
    x = pickle.loads((ds / f"{split}.pkl").read_bytes())
    x[index] = clip
    (ds / f"{split}.pkl").write_bytes(pickle.dumps(x))


@pytest.mark.parametrize("clip, problem", [
    ([0.1, 0.2], "expected a numpy array, got list"),
    ("wave", "expected a numpy array, got str"),
    (np.zeros((2, 3, 40)), "got shape \\(2, 3, 40\\)"),
    (np.zeros((40, 40)), "got shape \\(40, 40\\)"),
    (np.zeros(40, dtype=np.uint8), "unsupported dtype uint8"),
])
def test_bad_clip_names_file_and_index(ds, clip, problem):
    replace_clip(ds, 2, clip)
    with pytest.raises(DatasetError, match=f"test.pkl: clip 2: .*{problem}"):
        load_dataset(ds)


def test_clip_fixes_are_applied_and_logged(ds, caplog):
    replace_clip(ds, 0, np.array([-32768, 0, 16384], dtype=np.int16), "train")
    replace_clip(ds, 1, np.array([[0.2, 0.4, 0.6], [0.0, 0.0, 0.2]]), "train")
    replace_clip(ds, 2, np.array([0.5, np.nan, np.inf, -np.inf], dtype=np.float32), "train")
    with caplog.at_level(logging.WARNING):
        x = load_dataset(ds).x_train
    assert all(c.dtype == np.float32 and c.ndim == 1 for c in x)
    np.testing.assert_allclose(x[0], [-1.0, 0.0, 0.5])
    np.testing.assert_allclose(x[1], [0.1, 0.2, 0.4])
    np.testing.assert_array_equal(x[2], [0.5, 0, 0, 0])
    for fix in ("integer PCM", "mixed down", "NaN/Inf"):
        assert any("train.pkl: 1 clip(s)" in m and fix in m for m in caplog.messages)


def test_sanitize_clip_int32_and_stereo_orientations(caplog):
    np.testing.assert_allclose(sanitize_clip(np.array([-2**31, 2**30], dtype=np.int32)), [-1, 0.5])
    stereo = np.array([[0.2, 0.4, 0.6, 0.8, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(sanitize_clip(stereo), [0.1, 0.2, 0.3, 0.4, 0.5])
    np.testing.assert_allclose(sanitize_clip(stereo.T), [0.1, 0.2, 0.3, 0.4, 0.5])
    assert sum("mixed down" in m for m in caplog.messages) == 2
    mono = np.array([0.25, -0.5])
    assert sanitize_clip(mono).dtype == np.float32 and len(caplog.messages) == 3
