"""The clock and the cost model that decide what a challenge run can still afford.

`Clock` turns the harness's remaining budget into a deadline (minus a safety margin) on an
injectable time source, so tests can drive it. `CostModel` learns, per piece of work, how many
seconds one second of audio costs and estimates what a stage will take; `crop_seconds` picks how
much of each clip an embedder can afford to read.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

# Seconds of compute per second of audio on 2 CPU cores, before anything was measured here.
PRIOR_COST = {"spectral": 0.001, "whisper-tiny.en": 0.025, "whisper-base": 0.05,
              "resemblyzer": 0.02, "wav2vec2-base": 0.06, "ecapa": 0.04}
DEFAULT_PRIOR = 0.05


class Clock:
    """Time left in the current train()/test() call.

    remaining: the budget the harness passed (seconds), or None for no limit.
    margin: seconds kept back for returning a prediction and the harness's own overhead: at least
    ``margin_fraction`` of the remaining budget, at most half of it.
    """

    def __init__(self, remaining: float | None, margin: float = 2.0, margin_fraction: float = 0.05,
                 now: Callable[[], float] = time.monotonic):
        self.now = now
        self.start = now()
        self.remaining = float("inf") if remaining is None else float(remaining)
        keep = min(max(margin, margin_fraction * self.remaining), 0.5 * self.remaining) if remaining is not None else 0.0
        self.deadline = self.start + self.remaining - keep

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.deadline - self.now()

    def elapsed(self) -> float:
        return self.now() - self.start

    def fits(self, seconds: float) -> bool:
        """Whether work estimated at ``seconds`` ends before the deadline."""
        return seconds <= self.left()


class CostModel:
    """Seconds per second of audio, per piece of work; priors replaced by measurements."""

    def __init__(self, priors: dict | None = None):
        self.rate = dict(PRIOR_COST if priors is None else priors)
        self.measured: set[str] = set()

    def record(self, key: str, seconds: float, audio_seconds: float):
        """Learn from one measured run (an exponential average once something was measured)."""
        if audio_seconds <= 0:
            return
        rate = seconds / audio_seconds
        old = self.rate.get(key)
        self.rate[key] = rate if key not in self.measured or old is None else 0.5 * (old + rate)
        self.measured.add(key)

    def estimate(self, key: str, audio_seconds: float) -> float:
        """Estimated seconds to process ``audio_seconds`` of audio."""
        return self.rate.get(key, DEFAULT_PRIOR) * audio_seconds

    def audio_for(self, key: str, seconds: float) -> float:
        """How many seconds of audio fit into ``seconds`` of compute."""
        return seconds / max(self.rate.get(key, DEFAULT_PRIOR), 1e-9)


def crop_seconds(durations, affordable_audio: float, floor: float = 1.0, ceiling: float = 30.0) -> float:
    """The longest crop (between ``floor`` and ``ceiling`` seconds) such that the clips, each cut
    to it, add up to at most ``affordable_audio`` seconds."""
    durations = np.asarray(durations, dtype=float)
    low, high = floor, ceiling
    if np.minimum(durations, high).sum() <= affordable_audio:
        return high
    for _ in range(30):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if np.minimum(durations, mid).sum() <= affordable_audio else (low, mid)
    return low
