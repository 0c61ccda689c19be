"""Local ingestion: run a submission's ``model.py`` on one dataset as the AutoSpeech challenge does.

Protocol (after the official AutoSpeech 2019 ingestion program):

- ``model.py`` is imported from ``code_dir`` and ``Model(metadata)`` is built within
  ``INIT_TIME_LIMIT`` seconds, which do not count in the time budget;
- rounds of ``train((x_train, y_train), remaining_time_budget=R)`` then
  ``test(x_test, remaining_time_budget=R)`` run until ``done_training`` is true, ``test`` returns
  None or the budget is spent, where R is the budget minus the time spent inside train/test;
- each prediction is saved with '{:g}' (6 significant digits) and timestamped with the train/test
  time spent when its ``test`` call ended;
- a call still running when the budget is spent is killed and a prediction finished after it is
  dropped; a prediction of the wrong shape or a crash ends the run; earlier predictions still count.

The model lives in a child process (spawn) that answers one call at a time over a pipe, so a hang
or a crash in user code cannot take the runner down.
"""

from __future__ import annotations

import importlib
import json
import logging
import multiprocessing
import shutil
import sys
import time
import traceback
from contextlib import suppress
from datetime import datetime
from pathlib import Path

import numpy as np

from challenge.data import load_dataset

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO_ROOT / "sample_data" / "fsdd_speaker_sample"
INIT_TIME_LIMIT = 20 * 60  # seconds to import model.py and build Model(metadata)
GRACE = 2.0  # seconds past the remaining budget to wait for a call's answer before killing it


class _Stop(Exception):
    """Ends the train/test loop; ``error`` is set when the model misbehaved."""

    def __init__(self, reason: str, error: str | None = None):
        super().__init__(reason)
        self.reason, self.error = reason, error


def _serve(conn, code_dir, metadata, train_set, x_test, log_level):
    """Child process: build the model, then answer each ``(method, remaining)`` request with
    ``("ok", seconds spent in the call, test output, done_training)`` or ``("error", traceback)``,
    until asked to ``"stop"``."""
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        sys.path.insert(0, code_dir)
        sys.modules.pop("model", None)  # code_dir's model.py, even if the main script imported one
        model = importlib.import_module("model").Model(metadata)
        conn.send(("ok", 0.0, None, bool(getattr(model, "done_training", False))))
        while True:
            method, remaining = conn.recv()
            if method == "stop":
                return
            start = time.perf_counter()
            out = None
            if method == "train":
                model.train(train_set, remaining_time_budget=remaining)
            else:
                out = model.test(x_test, remaining_time_budget=remaining)
            elapsed = time.perf_counter() - start
            conn.send(("ok", elapsed, out, bool(getattr(model, "done_training", False))))
    except Exception:
        conn.send(("error", traceback.format_exc()))


class _ModelProcess:
    """The submission's ``Model`` in a child process; each answer is awaited with a deadline."""

    def __init__(self, code_dir, data, metadata):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(
            child_conn, str(Path(code_dir).resolve()), metadata, (data.x_train, data.y_train),
            data.x_test, logging.getLogger().getEffectiveLevel()))
        self.process.start()
        child_conn.close()

    def answer(self, what: str, timeout: float, late: _Stop) -> tuple[float, object, bool]:
        """Wait up to ``timeout`` s for the answer about ``what``: (elapsed, output, done_training).
        Raises ``late`` on timeout and a `_Stop` with the error when the model failed."""
        if not self.conn.poll(timeout):
            raise late
        try:
            status, *answer = self.conn.recv()
        except EOFError:
            self.process.join(timeout=5)
            raise _Stop("error", f"the model process died during {what} "
                                 f"(exit code {self.process.exitcode})") from None
        if status == "error":
            trace = answer[0].strip()
            raise _Stop("error", f"{what} raised {trace.splitlines()[-1]}\n"
                                 f"traceback from the model process:\n{trace}")
        return tuple(answer)

    def call(self, method: str, remaining: float) -> tuple[float, object, bool]:
        """Run ``model.<method>`` with ``remaining`` seconds; kill it GRACE s after they are spent."""
        with suppress(BrokenPipeError):  # a dead child is reported by answer()
            self.conn.send((method, remaining))
        return self.answer(f"{method}()", remaining + GRACE,
                           _Stop(f"time budget spent, {method}() interrupted"))

    def close(self) -> float | None:
        """Stop the child process (killed if it does not exit within a few seconds, e.g. while a
        call is still running); return its peak resident memory in MiB (see `_peak_rss_mib`)."""
        peak = _peak_rss_mib(self.process.pid)
        with suppress(BrokenPipeError, OSError):
            self.conn.send(("stop", None))
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
        return peak


def _peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory of a live process in MiB (VmHWM; None without Linux's /proc).

    Not ``getrusage(RUSAGE_CHILDREN)``: a spawned child inherits the parent's peak across exec,
    and that figure is the largest of all children the runner ever had."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    peak = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(peak[0]) / 1024 if peak else None


def _checked(out, shape: tuple[int, int]) -> np.ndarray:
    """Return the output of ``test()`` as a float array of ``shape`` with finite values."""
    try:
        prediction = np.asarray(out, dtype=float)
    except (TypeError, ValueError) as e:
        raise _Stop("error", f"test() returned a {type(out).__name__}, not a numeric array ({e})")
    if prediction.shape != shape:
        raise _Stop("error", f"test() returned shape {prediction.shape}, "
                             f"expected (test_num, class_num) = {shape}")
    if not np.isfinite(prediction).all():
        raise _Stop("error", "test() returned NaN or Inf values")
    return prediction


def _train_and_test(model: _ModelProcess, budget: float, shape, save) -> tuple[str, str | None]:
    """Run train/test rounds, passing each prediction and its time to ``save``; return
    (why the loop stopped, error message or None)."""
    try:
        what = "importing model.py and Model(metadata)"
        *_, done = model.answer(what, INIT_TIME_LIMIT,
                                _Stop("error", f"{what} took over {INIT_TIME_LIMIT} s"))
        spent = 0.0
        while not done:
            for method in ("train", "test"):
                elapsed, out, done = model.call(method, budget - spent)
                spent += elapsed
                if spent >= budget:
                    raise _Stop(f"time budget spent during {method}()")
            if out is None:
                return "test() returned None", None
            save(_checked(out, shape), spent)
        return "done_training", None
    except _Stop as stop:
        return stop.reason, stop.error


def run(dataset_dir=DEFAULT_DATASET, code_dir=REPO_ROOT, time_budget=None, output_dir=None) -> dict:
    """Run the submission in ``code_dir`` on ``dataset_dir`` and score it if ``test.solution`` exists.

    ``time_budget`` defaults to meta.json's; ``output_dir`` to ``runs/<dataset>-<timestamp>``.
    Writes ``predictions/<i>.predict``, ``timestamps.json``, ``scores.json`` and, when scored,
    ``learning_curve.png``. Returns a dict with dataset, output_dir, time_budget, timestamps,
    predictions (as written), scores and alc (None when unscored), stop_reason, error and
    peak_rss_mib (the model process's peak resident memory).
    """
    # Imported here: the model's process imports this module and need not load scipy/matplotlib.
    from challenge.scoring import alc, as_written, normalized_auc, plot_learning_curve

    if not (Path(code_dir) / "model.py").is_file():
        raise FileNotFoundError(f"no model.py in {code_dir}")
    data = load_dataset(dataset_dir)
    name = Path(dataset_dir).resolve().name
    budget = float(time_budget or data.metadata["time_budget"])
    if budget <= 0:
        raise ValueError(f"the time budget must be positive, got {budget}")
    out = Path(output_dir or REPO_ROOT / "runs" / f"{name}-{datetime.now():%Y%m%d-%H%M%S}")
    shutil.rmtree(out / "predictions", ignore_errors=True)
    (out / "predictions").mkdir(parents=True)
    metadata = dict(data.metadata, time_budget=budget)
    predictions, timestamps = [], []

    def save(prediction, t):
        np.savetxt(out / "predictions" / f"{len(predictions)}.predict", prediction, fmt="%g")
        predictions.append(as_written(prediction))
        timestamps.append(t)
        log.info("prediction %d saved at %.2f s of %g s", len(predictions) - 1, t, budget)

    log.info("running %s on %s with a %g s budget", code_dir, name, budget)
    model = _ModelProcess(code_dir, data, metadata)
    try:
        reason, error = _train_and_test(
            model, budget, (metadata["test_num"], metadata["class_num"]), save)
    finally:
        peak_rss_mib = model.close()
    if error:
        log.error("%s", error)
    (out / "timestamps.json").write_text(json.dumps(timestamps))
    result = {"dataset": name, "output_dir": str(out), "time_budget": budget,
              "timestamps": timestamps, "scores": None, "alc": None,
              "stop_reason": reason, "error": error, "peak_rss_mib": peak_rss_mib}
    if data.y_test is not None:
        scores = [normalized_auc(data.y_test, p) for p in predictions]
        result.update(scores=scores, alc=alc(timestamps, scores, budget))
        plot_learning_curve(timestamps, scores, budget, out / "learning_curve.png",
                            f"{name}: ALC = {result['alc']:.4f}")
    (out / "scores.json").write_text(json.dumps(result, indent=2))
    return dict(result, predictions=predictions)


def format_summary(result: dict) -> str:
    """A one-line summary of a `run` result, plus the first line of its error (logged in full)."""
    times, scores = result["timestamps"], result["scores"]
    parts = [result["dataset"]]
    if result["alc"] is not None:
        parts.append(f"ALC {result['alc']:.4f}")
    if scores:
        parts += [f"first prediction at {times[0]:.1f} s scored {scores[0]:.4f}",
                  f"final score {scores[-1]:.4f}"]
    parts += [f"{len(times)} prediction(s)", f"stopped: {result['stop_reason']}"]
    text = " | ".join(parts)
    return f"{text}\nerror: {result['error'].splitlines()[0]}" if result["error"] else text
