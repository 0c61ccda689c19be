"""The challenge entry: a time-budgeted schedule of embedders and heads.

The schedule is a generator. Each train() call advances it until it has a better blend to show
(judged on a held-out validation split) or runs out of work; test() returns the best blend so far.
Every piece of work is sized by the clock, so no call outlives its budget, and a stage that fails
or cannot pay off in the time left is skipped with a log line.

    stage 0   spectral statistics of each clip's first seconds + logistic regression
    stage 1.. each available pretrained encoder: embed train and test once, linear and kNN heads,
              the concatenation of everything embedded so far
    then      other regularisation strengths of every linear head
    last      partial fine-tuning of a layered encoder while time remains (unless validation is
              already saturated)
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from budget import Clock, CostModel, crop_seconds
from embedders import SAMPLE_RATE, available_embedders, get_embedder, sanitize_wave
from embedders.base import flatten_layers
from heads import make_head
from heads.finetune import FineTuneHead
from heads.leaderboard import Candidate, Leaderboard, expand_columns
from heads.validation import validation_split

log = logging.getLogger("autospeech")

PRETRAINED_ORDER = ["whisper-tiny.en", "whisper-base", "resemblyzer", "ecapa", "wav2vec2-base"]
FIRST_ANSWER_SECONDS = 5.0  # stage 0 reads at most this much of each clip...
FIRST_ANSWER_COMPUTE = 3.0  # ...and less when embedding the training set would take longer than this
CHUNK_SECONDS = 10.0  # compute per embedding chunk between two looks at the clock
MIN_CROP_SECONDS = 1.0  # a pretrained stage that cannot afford this much of each clip is skipped
FINETUNE_ORDER = ["whisper-base", "whisper-tiny.en", "wav2vec2-base"]  # encoders worth fine-tuning
FINETUNE_SLICE = 30.0  # seconds of fine-tuning between two looks at the clock
SATURATED = 0.999  # a validation score past which fine-tuning cannot show a gain
WARM_UP = [np.random.default_rng(0).normal(0, 0.1, SAMPLE_RATE).astype(np.float32)] * 16
NEW_BEST = "new best"


def pretrained_embedders() -> list[str]:
    """The pretrained encoders this run will try, in order: ``submission.json``'s choice if the
    packager wrote one beside this file, else every available one in ``PRETRAINED_ORDER``."""
    config = Path(__file__).with_name("submission.json")
    wanted = json.loads(config.read_text())["embedders"] if config.is_file() else PRETRAINED_ORDER
    available = set(available_embedders())
    return [name for name in wanted if name in available and name != "spectral"]


class Model:
    """AutoSpeech interface: ``train((x, y_onehot), remaining)``, ``test(x, remaining)``, ``done_training``."""

    now = staticmethod(time.monotonic)  # the time source; tests inject a fake one

    def __init__(self, metadata: dict):
        self.class_num = int(metadata["class_num"])
        self.done_training = False
        self.costs = CostModel()
        self.clock = Clock(metadata.get("time_budget"), now=self.now)
        self.features: dict[str, dict[str, np.ndarray]] = {}  # embedder -> split -> (N, D)
        self.x_test: list[np.ndarray] | None = None
        self.schedule = None
        self.board = None
        self.published = None
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        # Set-up is not charged to the budget: load every embedder, choose the thread count and
        # measure each embedder's speed here, and import what the heads need.
        self.test_share = metadata.get("test_num", 0) / max(metadata.get("train_num", 1), 1)
        self.embedders = {}
        for name in ["spectral"] + pretrained_embedders():
            try:
                embedder = get_embedder(name, window_seconds=FIRST_ANSWER_SECONDS) if name == "spectral" \
                    else get_embedder(name)
                embedder.embed(WARM_UP[:2])
                self.embedders[name] = embedder
            except Exception:
                log.exception("embedder %s does not work here; it will not be used", name)
        self._choose_threads()
        for head in ("linear", "knn"):
            make_head(head).fit(np.eye(4), np.arange(4) % 2)

    def _choose_threads(self):
        """Use the torch thread count under which the embedders run fastest here (one thread wins
        by far when other processes compete for the cores), and record their speeds with it."""
        timings = {}
        for threads in sorted({torch.get_num_threads(), 1}, reverse=True):
            torch.set_num_threads(threads)
            timings[threads] = {}
            for name, embedder in self.embedders.items():
                tic = self.now()
                embedder.embed(WARM_UP)
                timings[threads][name] = (self.now() - tic) / len(WARM_UP)
        best = min(timings, key=lambda threads: sum(timings[threads].values()))
        torch.set_num_threads(best)
        for name, rate in timings[best].items():
            self.costs.record(name, rate, 1.0)
        log.info("embedders ready: %s; torch threads: %d (compute seconds per audio second: %s)",
                 ", ".join(self.embedders), best,
                 {threads: {n: round(r, 4) for n, r in rates.items()} for threads, rates in timings.items()})

    # -- the harness's two calls ---------------------------------------------------------------

    def train(self, dataset, remaining_time_budget: float | None = None):
        """Advance the schedule until it has a better prediction or nothing left to do."""
        self.clock = Clock(remaining_time_budget, now=self.now)
        if self.schedule is None:
            self._start(*dataset)
        while self.clock.left() > 0:
            try:
                if next(self.schedule) == NEW_BEST:
                    return
            except StopIteration:
                log.info("schedule finished: nothing left that can pay off")
                self.done_training = True
                return
        log.info("train(): out of time for this call")

    def test(self, x_test, remaining_time_budget: float | None = None) -> np.ndarray:
        """Scores ``(len(x_test), class_num)``: the best validated blend, uniform before any."""
        self.clock = Clock(remaining_time_budget, now=self.now)
        if self.x_test is None or len(self.x_test) != len(x_test):
            self.x_test = [sanitize_wave(x) for x in x_test]
            for splits in self.features.values():
                splits.pop("test", None)
            self.published = None
            if self.board is not None:
                self.board.forget_test()
        try:
            if self.board is not None:
                self.published = self.board.best_test(self._test_proba)
        except Exception:  # a failing head must not lose the last good answer
            log.exception("test(): could not build the blend; keeping the last prediction")
        if self.published is None:
            log.info("test(): no trained candidate yet; answering the uniform prior")
            return np.full((len(x_test), self.class_num), 1.0 / self.class_num, np.float32)
        return self.published

    # -- the schedule ------------------------------------------------------------------------

    def _start(self, x, y_onehot):
        self.x_train = [sanitize_wave(clip) for clip in x]
        self.y = np.asarray(y_onehot).argmax(axis=1)
        self.fit_idx, self.val_idx = validation_split(self.y)
        self.board = Leaderboard(self.y[self.val_idx], self.class_num)
        self.fit_seconds: dict[tuple[str, str], float] = {}  # (features, head) -> last fit time
        self.durations = np.array([len(clip) for clip in self.x_train]) / SAMPLE_RATE
        log.info("train: %d clips, %d classes, %.0f s of audio; validation: %d clips",
                 len(x), self.class_num, self.durations.sum(), len(self.val_idx))
        self.schedule = self._schedule()

    def _schedule(self):
        stages = [("spectral", self._spectral_stage())]
        stages += [(name, self._pretrained_stage(name)) for name in self.embedders if name != "spectral"]
        stages += [("regularisation", self._regularisation_stage()), ("finetune", self._finetune_stage())]
        for name, stage in stages:
            start = self.now()
            try:
                yield from stage
            except Exception:
                log.exception("stage %s failed; skipping it", name)
            log.info("stage %s: %.1f s", name, self.now() - start)

    def _spectral_stage(self):
        embedder = self.embedders["spectral"]
        seconds = min(FIRST_ANSWER_COMPUTE, self.clock.left() / 4) / (1 + self.test_share)
        affordable = self.costs.audio_for("spectral", seconds)
        embedder.max_seconds = crop_seconds(self.durations, affordable, floor=0.1, ceiling=FIRST_ANSWER_SECONDS)
        log.info("stage spectral: first %.1f s of each clip", embedder.max_seconds)
        tic = self.now()
        self.features["spectral"] = {"train": embedder.embed(self.x_train)}
        self.costs.record("spectral", self.now() - tic, np.minimum(self.durations, embedder.max_seconds).sum())
        yield from self._fit_heads("spectral", heads=[("linear", {}), ("knn", {})])

    def _pretrained_stage(self, name: str):
        waves = self.x_train + (self.x_test or [])
        durations = list(self.durations) + [len(w) / SAMPLE_RATE for w in self.x_test or []]
        affordable = self.costs.audio_for(name, 0.5 * self.clock.left())
        if np.minimum(durations, MIN_CROP_SECONDS).sum() > affordable:
            log.info("stage %s skipped: %.0f s left cannot embed %d clips", name, self.clock.left(), len(waves))
            return
        crop = crop_seconds(durations, affordable, floor=MIN_CROP_SECONDS)
        log.info("stage %s: embedding %d clips, crop %.1f s, estimated %.0f s", name, len(waves), crop,
                 self.costs.estimate(name, np.minimum(durations, crop).sum()))
        embedder = self.embedders[name]
        embedder.max_seconds = crop
        self.features[name] = {"train": (yield from self._embed_in_chunks(name, embedder, self.x_train))}
        if self.x_test is not None:
            self.features[name]["test"] = yield from self._embed_in_chunks(name, embedder, self.x_test)
        yield from self._fit_heads(name, heads=[("linear", {}), ("knn", {})])
        pretrained = [key for key in self.features if key != "spectral"]
        if len(pretrained) > 1:
            yield from self._fit_heads("+".join(pretrained), heads=[("linear", {})])

    def _regularisation_stage(self):
        """Other strengths of the linear head's regularisation, on every feature set fitted so far."""
        for key in list(self.fit_seconds.keys()):
            if key[1] == "linear":
                yield from self._fit_heads(key[0], heads=[("linear", {"C": 0.01}), ("linear", {"C": 1.0})])

    def _finetune_stage(self):
        """Partial fine-tuning of the top blocks of the best layered encoder embedded so far, in
        slices, while time remains and validation is not already saturated."""
        names = [name for name in FINETUNE_ORDER if name in self.features]
        if not names or len(self.val_idx) == 0 or self.board.best_score >= SATURATED:
            log.info("stage finetune skipped: no layered encoder embedded, no validation split, "
                     "or validation already saturated (%.4f)", self.board.best_score)
            return
        name = names[0]
        head = FineTuneHead(self.embedders[name])
        audio = np.minimum(self.durations, head.max_seconds).sum() * (1 + self.test_share)
        if not self.clock.fits(2 * self.costs.estimate(name, audio)):  # ~1.5 embedding passes to start
            log.info("stage finetune skipped: %.0f s left", self.clock.left())
            return
        clips = lambda idx: [self.x_train[i] for i in idx]  # noqa: E731
        for _ in head.start(clips(self.fit_idx), self.y[self.fit_idx], clips(self.val_idx),
                            self.y[self.val_idx], self.x_test):
            if self.clock.left() <= 0:
                raise TimeoutError("finetune: out of time while preparing")
            yield "working"
        yield self._add_finetuned(name, head)
        while not head.done_ and self.clock.fits(1.5 * head.min_step_seconds()):
            seconds = min(max(FINETUNE_SLICE, 3 * head.min_step_seconds()), self.clock.left() / 1.5)
            _, improved = head.step(seconds)
            yield self._add_finetuned(name, head) if improved else "working"

    def _add_finetuned(self, name: str, head) -> str:
        """Offer the fine-tuned head's current best state to the leaderboard (it is fitted on the
        fit split only, so its test answer is computed now, before the state moves on)."""
        candidate = Candidate(f"{name}/finetune", name, head, head.val_proba_, head.classes_)
        candidate.test_proba = expand_columns(head.predict_proba(), head.classes_, self.class_num)
        improved = self.board.add(candidate)
        log.info("candidate %s: validation %.4f%s", candidate.name, candidate.score,
                 " -> new best blend" if improved else "")
        return NEW_BEST if improved else "working"

    def _embed_in_chunks(self, name, embedder, waves):
        """Embed ``waves`` a chunk at a time, yielding between chunks; returns ``(N, D)``."""
        parts, start = [], 0
        while start < len(waves):
            budget = min(CHUNK_SECONDS, max(self.clock.left() / 3, 0.5))
            audio = np.cumsum([min(len(w) / SAMPLE_RATE, embedder.max_seconds or np.inf) for w in waves[start:]])
            stop = start + max(1, int(np.searchsorted(audio, self.costs.audio_for(name, budget))))
            chunk_audio = audio[stop - start - 1]
            if not self.clock.fits(self.costs.estimate(name, chunk_audio)):
                raise TimeoutError(f"{name}: no time left to embed clips {start}..{stop}")
            tic = self.now()
            parts.append(flatten_layers(embedder.embed_layers(waves[start:stop])))
            self.costs.record(name, self.now() - tic, chunk_audio)
            start = stop
            yield "working"
        return np.concatenate(parts)

    def _fit_heads(self, key: str, heads):
        """Fit each head on the fit split (scored on validation) and on all of train (for test).
        Skipped when time is short, except the very first, which gives the first answer."""
        X = self._features(key, "train")
        for head_name, params in heads:
            name = f"{key}/{head_name}" + "".join(f" {k}={v}" for k, v in params.items())
            if self.board.members and not self.clock.fits(self.fit_seconds.get((key, head_name), 0.0)):
                log.info("candidate %s skipped: %.0f s left", name, self.clock.left())
                continue
            tic = self.now()
            head = make_head(head_name, **params).fit(X[self.fit_idx], self.y[self.fit_idx])
            val_proba = head.predict_proba(X[self.val_idx]) if len(self.val_idx) else None
            full = make_head(head_name, **params).fit(X, self.y)
            self.fit_seconds[key, head_name] = self.now() - tic
            candidate = Candidate(name, key, full, val_proba, head.classes_)
            improved = self.board.add(candidate)
            log.info("candidate %s: validation %.4f (%.1f s)%s", name, candidate.score,
                     self.fit_seconds[key, head_name], " -> new best blend" if improved else "")
            yield NEW_BEST if improved else "working"

    def _features(self, key: str, split: str) -> np.ndarray:
        """Features of ``key`` (one embedder, or several joined by '+') for train or test."""
        parts = []
        for name in key.split("+"):
            if split not in self.features[name]:
                self.features[name][split] = self.embedders[name].embed(self.x_test)
            parts.append(self.features[name][split])
        return np.hstack(parts)

    def _test_proba(self, candidate: Candidate) -> np.ndarray:
        if isinstance(candidate.head, FineTuneHead):
            return candidate.head.predict_proba(self.x_test)
        return candidate.head.predict_proba(self._features(candidate.key, "test"))
