"""The challenge Model, driven in-process the way the harness drives it.

Tones of a class-specific pitch make tasks whose answers are known; most tests use only the
weight-free spectral stage so they run in seconds.
"""

import time

import numpy as np
import pytest

import model as model_module
from embedders import REGISTRY, TorchEmbedder
from heads.leaderboard import Candidate, Leaderboard
from heads.metrics import normalized_auc

RATE = 16000


def tones(labels, seconds=0.5, seed=0):
    """One noisy tone per label, pitch 200 Hz * (label + 1), random length around ``seconds``."""
    rng = np.random.default_rng(seed)
    clips = []
    for label in labels:
        n = max(int(seconds * RATE * rng.uniform(0.5, 1.5)), 1)
        t = np.arange(n) / RATE
        clips.append((0.5 * np.sin(2 * np.pi * 200 * (label + 1) * t) + 0.05 * rng.normal(size=n)).astype(np.float32))
    return clips


def task(class_num, per_class=8, test_per_class=4, seed=0):
    y = np.repeat(np.arange(class_num), per_class)
    y_test = np.repeat(np.arange(class_num), test_per_class)
    return tones(y, seed=seed), np.eye(class_num)[y], tones(y_test, seed=seed + 1), y_test


@pytest.fixture
def spectral_only(monkeypatch):
    monkeypatch.setattr(model_module, "pretrained_embedders", lambda: [])


def run_protocol(m, x, y, x_test, budget=60.0, rounds=20):
    """The harness loop: train/test rounds until done_training or the budget is spent."""
    spent, predictions = 0.0, []
    for _ in range(rounds):
        if m.done_training or spent >= budget:
            break
        for call in (lambda r: m.train((x, y), remaining_time_budget=r),
                     lambda r: predictions.append(m.test(x_test, remaining_time_budget=r))):
            tic = time.monotonic()
            call(budget - spent)
            spent += time.monotonic() - tic
    return predictions, spent


def metadata(class_num, x, x_test, budget=60):
    return {"class_num": class_num, "train_num": len(x), "test_num": len(x_test), "time_budget": budget}


def test_first_prediction_comes_from_the_spectral_stage(spectral_only):
    x, y, x_test, y_test = task(4)
    m = model_module.Model(metadata(4, x, x_test))
    m.train((x, y), remaining_time_budget=60)
    first = m.test(x_test, remaining_time_budget=59)
    assert [m.board.candidates[i].name for i in m.board.members] == ["spectral/linear"]
    assert first.shape == (len(x_test), 4) and normalized_auc(y_test, first, range(4)) > 0.9


def test_prediction_only_changes_when_validation_improves(spectral_only):
    x, y, x_test, _ = task(5, per_class=10)
    m = model_module.Model(metadata(5, x, x_test))
    previous, best, changes = None, -np.inf, 0
    while not m.done_training:
        m.train((x, y), remaining_time_budget=60)
        prediction = m.test(x_test, remaining_time_budget=60)
        if previous is not None and not np.array_equal(prediction, previous):
            assert m.board.best_score > best  # a new answer only with a better validation score
            changes += 1
        previous, best = prediction, m.board.best_score
    assert len(m.board.candidates) > changes + 1  # some candidates did not replace the answer


def test_leaderboard_keeps_the_best_blend():
    y_val = np.array([0, 1, 0, 1])
    board = Leaderboard(y_val, class_num=2)
    good = np.eye(2)[y_val]

    class Fixed:
        def __init__(self, proba):
            self.proba = proba

    noisy = np.array([[0.6, 0.4], [0.45, 0.55], [0.4, 0.6], [0.3, 0.7]])
    head = Fixed(noisy)
    assert board.add(Candidate("improving", "k", head, noisy, np.arange(2)))
    assert not board.add(Candidate("bad", "k", Fixed(good[::-1]), good[::-1], np.arange(2)))
    head.proba = good  # the same head and name again, now better (as fine-tuning offers its states)
    assert board.add(Candidate("improving", "k", head, good, np.arange(2)))
    assert board.best_test(lambda c: c.head.proba).argmax(axis=1).tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("budget", [3.0, 5.0])
def test_a_budget_of_seconds_is_never_exceeded(spectral_only, budget):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=1500)
    x = tones(labels, seconds=3.0)
    x_test = x[:500]
    m = model_module.Model(metadata(5, x, x_test, budget))
    predictions, spent = run_protocol(m, x, np.eye(5)[labels], x_test, budget=budget, rounds=3)
    assert spent <= budget and predictions[0].shape == (500, 5)


class FakeTime:
    """A clock on which every look costs ``step`` seconds."""

    def __init__(self, step):
        self.t, self.step = 0.0, step

    def __call__(self):
        self.t += self.step
        return self.t


def test_an_injected_slow_clock_stops_the_schedule(spectral_only, monkeypatch):
    x, y, x_test, _ = task(3)
    fake = FakeTime(step=5.0)
    monkeypatch.setattr(model_module.Model, "now", staticmethod(fake))
    m = model_module.Model(metadata(3, x, x_test, 20))
    m.train((x, y), remaining_time_budget=20)
    fitted = len(m.board.candidates)
    m.train((x, y), remaining_time_budget=2)  # less than one look at the clock costs
    assert len(m.board.candidates) == fitted
    assert m.test(x_test, remaining_time_budget=1).shape == (len(x_test), 3)


def valid(prediction, n, class_num):
    return prediction.shape == (n, class_num) and np.isfinite(prediction).all()


@pytest.mark.parametrize("case", ["single example class", "class absent from train", "2 classes",
                                  "99 classes", "5000 clips", "empty, 10-minute, NaN and silent clips"])
def test_awkward_tasks_give_valid_predictions(spectral_only, case):
    class_num, x, y, x_test, _ = 4, *task(4)
    if case == "single example class":
        keep = np.r_[np.flatnonzero(y.argmax(1) != 3), np.flatnonzero(y.argmax(1) == 3)[:1]]
        x, y = [x[i] for i in keep], y[keep]
    elif case == "class absent from train":
        keep = np.flatnonzero(y.argmax(1) != 3)
        x, y = [x[i] for i in keep], y[keep]
    elif case == "2 classes":
        class_num, x, y, x_test, _ = 2, *task(2)
    elif case == "99 classes":
        class_num, x, y, x_test, _ = 99, *task(99, per_class=2, test_per_class=1)
    elif case == "5000 clips":
        labels = np.arange(5000) % 4
        x, y = tones(labels, seconds=0.05), np.eye(4)[labels]
    else:
        x = [np.zeros(0, np.float32), np.random.default_rng(0).normal(size=600 * RATE).astype(np.float32),
             np.full(RATE, np.nan, np.float32), np.zeros(RATE, np.float32)] + x[4:]
        x_test = [np.zeros(0, np.float32), np.full(100, np.inf, np.float32)] + x_test[2:]
    m = model_module.Model(metadata(class_num, x, x_test))
    predictions, _ = run_protocol(m, x, y, x_test, rounds=4)
    assert predictions and all(valid(p, len(x_test), class_num) for p in predictions)


def test_test_before_train_answers_the_prior(spectral_only):
    x, y, x_test, _ = task(3)
    m = model_module.Model(metadata(3, x, x_test))
    np.testing.assert_allclose(m.test(x_test, remaining_time_budget=10), 1 / 3)
    m.train((x, y), remaining_time_budget=10)
    assert not np.allclose(m.test(x_test, remaining_time_budget=9), 1 / 3)


def test_no_pretrained_weights_falls_back_to_spectral(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOSPEECH_WEIGHTS", str(tmp_path))
    assert model_module.pretrained_embedders() == []
    x, y, x_test, _ = task(3)
    predictions, _ = run_protocol(model_module.Model(metadata(3, x, x_test)), x, y, x_test)
    assert valid(predictions[-1], len(x_test), 3)


class OutOfMemoryEncoder(TorchEmbedder):
    """A pretrained encoder whose every batch runs out of GPU memory."""

    name = "oom"

    def load(self):
        self.model = object()

    def encode(self, batch, lengths):
        import torch

        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")


def test_an_encoder_out_of_memory_is_skipped(monkeypatch):
    monkeypatch.setitem(REGISTRY, "oom", ("tests.test_model", "OutOfMemoryEncoder", {}))
    monkeypatch.setattr(model_module, "pretrained_embedders", lambda: ["oom"])
    x, y, x_test, y_test = task(3)
    m = model_module.Model(metadata(3, x, x_test))  # warm-up fails: the encoder is dropped
    assert list(m.embedders) == ["spectral"]
    m.embedders["oom"] = OutOfMemoryEncoder()  # and if it only fails later, its stage is skipped
    predictions, _ = run_protocol(m, x, y, x_test)
    assert m.done_training and normalized_auc(y_test, predictions[-1], range(3)) > 0.9


@pytest.mark.slow
def test_a_pretrained_stage_adds_candidates_on_real_weights(monkeypatch):
    if "whisper-tiny.en" not in model_module.available_embedders():
        pytest.skip("whisper-tiny.en weights are not present (python download_weights.py whisper-tiny.en)")
    monkeypatch.setattr(model_module, "pretrained_embedders", lambda: ["whisper-tiny.en"])
    x, y, x_test, y_test = task(4, per_class=6, test_per_class=3)
    m = model_module.Model(metadata(4, x, x_test))
    predictions, _ = run_protocol(m, x, y, x_test)
    names = [c.name for c in m.board.candidates]
    assert "whisper-tiny.en/linear" in names and m.done_training
    assert normalized_auc(y_test, predictions[-1], range(4)) > 0.9
