"""Reference entry for `bench/alc.py`: the first stage of the AutoSpeech 2019 winner, alone.

Each clip's first 5 s become a librosa-style log-mel spectrogram (16 kHz, 512-sample Hann frames,
hop 256, 64 slaney mel bands, power in dB floored 80 dB below the clip's peak), summarised by the
mean and standard deviation of each band over time. A logistic regression (C = 1) on standardised
features is trained once on all of train, predicts once, and sets ``done_training``.

It imports nothing from this project, so it runs as a submission of its own.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import get_window
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from transformers.audio_utils import mel_filter_bank

SAMPLE_RATE = 16000
SECONDS = 5.0
N_FFT, HOP, N_MELS = 512, 256, 64
WINDOW = get_window("hann", N_FFT).astype(np.float32)
MEL = mel_filter_bank(num_frequency_bins=N_FFT // 2 + 1, num_mel_filters=N_MELS, min_frequency=0.0,
                      max_frequency=SAMPLE_RATE / 2, sampling_rate=SAMPLE_RATE, norm="slaney",
                      mel_scale="slaney").astype(np.float32)


def log_mel_stats(wave) -> np.ndarray:
    """``(2 * N_MELS,)``: per-band mean and std over time of the log-mel of the clip's first 5 s."""
    wave = np.asarray(wave, np.float32)[: int(SECONDS * SAMPLE_RATE)]
    padded = np.pad(wave, N_FFT // 2)  # centred frames, as librosa's center=True
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * WINDOW, axis=1)) ** 2
    db = 10 * np.log10(np.maximum(power @ MEL, 1e-10))
    db = np.maximum(db, db.max() - 80.0)
    return np.concatenate([db.mean(axis=0), db.std(axis=0)])


class Model:
    """AutoSpeech interface: ``train((x, y_onehot), remaining)``, ``test(x, remaining)``,
    ``done_training``."""

    def __init__(self, metadata: dict):
        self.class_num = int(metadata["class_num"])
        self.done_training = False
        self.classifier = None

    def train(self, dataset, remaining_time_budget: float | None = None):
        """Fit the logistic regression on every training clip."""
        x, y_onehot = dataset
        features = np.stack([log_mel_stats(wave) for wave in x])
        self.classifier = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
        self.classifier.fit(features, np.asarray(y_onehot).argmax(axis=1))

    def test(self, x_test, remaining_time_budget: float | None = None) -> np.ndarray:
        """Class probabilities ``(len(x_test), class_num)`` (0 for classes absent from train)."""
        proba = self.classifier.predict_proba(np.stack([log_mel_stats(wave) for wave in x_test]))
        scores = np.zeros((len(x_test), self.class_num), np.float32)
        scores[:, self.classifier.classes_] = proba
        self.done_training = True
        return scores
