"""Tests for challenge.ingestion: the train/test protocol, budgets, failures and outputs.

Each test writes a tiny model.py into a temporary code directory. The dataset encodes each clip's
class in its samples, so `perfect(x)` predicts it exactly."""

import json
import textwrap
import time

import numpy as np
import pytest

import run_local_test
from challenge.data import write_dataset
from challenge.ingestion import GRACE, run
from challenge.scoring import transform_time

LABELS = [0, 1, 2, 2, 1, 0]
HEADER = '''
import json, os, time
import numpy as np

def perfect(x):
    return np.eye(3)[[int(round(c[0] * 10)) for c in x]]

'''


@pytest.fixture
def dataset(tmp_path):
    """3 classes, 6 train and 6 test clips whose samples are all label / 10."""
    x = [np.full(100, k / 10, dtype=np.float32) for k in LABELS]
    y = np.eye(3, dtype=int)[LABELS]
    return write_dataset(tmp_path / "data", x, y, x, y, time_budget=30)


def submission(tmp_path, body):
    """A code directory whose model.py is HEADER + ``body``."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "model.py").write_text(HEADER + textwrap.dedent(body))
    return code


def test_predictions_are_saved_and_scored(tmp_path, dataset):
    code = submission(tmp_path, """
        class Model:
            def __init__(self, metadata):
                json.dump(metadata, open(os.path.join(os.path.dirname(__file__), "meta"), "w"))
                self.done_training, self.rounds = False, 0
            def train(self, train_set, remaining_time_budget):
                assert np.array_equal(perfect(train_set[0]), train_set[1])
            def test(self, x, remaining_time_budget):
                self.rounds += 1
                self.done_training = self.rounds == 2
                return perfect(x) * 0.9
    """)
    out = tmp_path / "out"
    result = run(dataset, code, time_budget=20, output_dir=out)
    assert json.loads((code / "meta").read_text()) == {
        "class_num": 3, "train_num": 6, "test_num": 6, "time_budget": 20.0}
    assert (result["stop_reason"], result["error"]) == ("done_training", None)
    assert result["scores"] == [1.0, 1.0]
    assert result["alc"] == pytest.approx(1 - transform_time(result["timestamps"][0], 20))
    np.testing.assert_array_equal(np.loadtxt(out / "predictions" / "1.predict"),
                                  np.eye(3)[LABELS] * 0.9)
    assert json.loads((out / "timestamps.json").read_text()) == result["timestamps"]
    assert json.loads((out / "scores.json").read_text())["alc"] == result["alc"]
    assert (out / "learning_curve.png").stat().st_size > 0


def test_remaining_budget_decreases(tmp_path, dataset):
    code = submission(tmp_path, """
        class Model:
            def __init__(self, metadata):
                self.done_training, self.calls = False, []
            def train(self, train_set, remaining_time_budget):
                self.calls.append(remaining_time_budget)
                time.sleep(0.2)
            def test(self, x, remaining_time_budget):
                self.calls.append(remaining_time_budget)
                self.done_training = len(self.calls) == 6
                json.dump(self.calls, open(os.path.join(os.path.dirname(__file__), "calls"), "w"))
                return perfect(x)
    """)
    result = run(dataset, code, time_budget=20, output_dir=tmp_path / "out")
    calls = json.loads((code / "calls").read_text())
    assert calls[0] == 20 and np.all(np.diff(calls) < 0)
    assert np.all(np.diff(calls)[::2] <= -0.2)  # each train call slept 0.2 s
    assert np.all(np.diff(result["timestamps"]) >= 0.2)
    assert result["timestamps"][-1] == pytest.approx(20 - calls[-1], abs=0.2)


def test_call_past_budget_is_killed_and_earlier_predictions_count(tmp_path, dataset):
    code = submission(tmp_path, """
        class Model:
            def __init__(self, metadata):
                self.done_training, self.trained = False, 0
            def train(self, train_set, remaining_time_budget):
                self.trained += 1
                if self.trained == 2:
                    time.sleep(600)
            def test(self, x, remaining_time_budget):
                return perfect(x)
    """)
    start = time.monotonic()
    result = run(dataset, code, time_budget=2, output_dir=tmp_path / "out")
    assert time.monotonic() - start < 2 + GRACE + 10  # 10 s to start the child process
    assert result["stop_reason"] == "time budget spent, train() interrupted"
    assert result["error"] is None
    assert result["scores"] == [1.0] and result["alc"] > 0.9


def test_prediction_finished_after_budget_is_dropped(tmp_path, dataset):
    code = submission(tmp_path, """
        class Model:
            def __init__(self, metadata):
                self.done_training, self.tested = False, 0
            def train(self, train_set, remaining_time_budget):
                pass
            def test(self, x, remaining_time_budget):
                self.tested += 1
                if self.tested == 2:
                    time.sleep(remaining_time_budget + 0.2)
                return perfect(x)
    """)
    result = run(dataset, code, time_budget=1, output_dir=tmp_path / "out")
    assert result["stop_reason"] == "time budget spent during test()"
    assert len(result["timestamps"]) == 1 and result["scores"] == [1.0]
    assert not (tmp_path / "out" / "predictions" / "1.predict").exists()


@pytest.mark.parametrize("bad, message", [
    ("perfect(x)[:, :2]", "test() returned shape (6, 2), expected (test_num, class_num) = (6, 3)"),
    ("perfect(x) / 0", "test() returned NaN or Inf values"),
    ("'oops'", "test() returned a str, not a numeric array"),
])
def test_bad_prediction_ends_run_and_earlier_ones_count(tmp_path, dataset, bad, message):
    code = submission(tmp_path, f"""
        class Model:
            def __init__(self, metadata):
                self.done_training, self.tested = False, 0
            def train(self, train_set, remaining_time_budget):
                pass
            def test(self, x, remaining_time_budget):
                self.tested += 1
                with np.errstate(all="ignore"):
                    return perfect(x) if self.tested == 1 else {bad}
    """)
    result = run(dataset, code, time_budget=20, output_dir=tmp_path / "out")
    assert result["stop_reason"] == "error"
    assert result["error"].startswith(message)
    assert result["scores"] == [1.0] and result["alc"] > 0.9


def test_test_returning_none_ends_run(tmp_path, dataset):
    code = submission(tmp_path, """
        class Model:
            done_training = False
            def __init__(self, metadata):
                self.tested = 0
            def train(self, train_set, remaining_time_budget):
                pass
            def test(self, x, remaining_time_budget):
                self.tested += 1
                return perfect(x) if self.tested == 1 else None
    """)
    result = run(dataset, code, time_budget=20, output_dir=tmp_path / "out")
    assert (result["stop_reason"], result["error"]) == ("test() returned None", None)
    assert result["scores"] == [1.0]


def test_crashing_init_is_reported(tmp_path, dataset):
    code = submission(tmp_path, """
        class Model:
            def __init__(self, metadata):
                raise ValueError("bad config")
    """)
    result = run(dataset, code, time_budget=20, output_dir=tmp_path / "out")
    assert result["error"].startswith(
        "importing model.py and Model(metadata) raised ValueError: bad config\n")
    assert 'model.py", line' in result["error"] and "ValueError: bad config" in result["error"]
    assert (result["timestamps"], result["scores"], result["alc"]) == ([], [], 0.0)


def test_dying_model_process_is_reported(tmp_path, dataset):
    code = submission(tmp_path, """
        class Model:
            done_training = False
            def __init__(self, metadata):
                pass
            def train(self, train_set, remaining_time_budget):
                os._exit(3)
    """)
    result = run(dataset, code, time_budget=20, output_dir=tmp_path / "out")
    assert result["error"] == "the model process died during train() (exit code 3)"


def test_cli_on_unscored_dataset(tmp_path, capsys):
    x = [np.full(100, k / 10, dtype=np.float32) for k in LABELS]
    data = write_dataset(tmp_path / "data", x, np.eye(3, dtype=int)[LABELS], x, None, 30)
    code = submission(tmp_path, """
        class Model:
            done_training = False
            def __init__(self, metadata):
                pass
            def train(self, train_set, remaining_time_budget):
                self.done_training = True
            def test(self, x, remaining_time_budget):
                return perfect(x)
    """)
    out = tmp_path / "out"
    assert run_local_test.main(["--dataset_dir", str(data), "--code_dir", str(code),
                                "--output_dir", str(out)]) == 0
    assert capsys.readouterr().out == "data | 1 prediction(s) | stopped: done_training\n"
    scores = json.loads((out / "scores.json").read_text())
    assert scores["time_budget"] == 30 and scores["alc"] is None
    assert not (out / "learning_curve.png").exists()
