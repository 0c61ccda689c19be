"""Resemblyzer's GE2E speaker encoder: one 256-d, L2-normalised speaker embedding per clip.

A 3-layer LSTM over 40-band mel frames trained with the generalised end-to-end loss (Wan et al.,
2018); the weights (``pretrained.pt``, Apache-2.0) ship in the ``resemblyzer`` wheel. Resemblyzer's
own recipe is kept: loudness raised to -30 dBFS, long silences trimmed with webrtcvad, 1.6 s partial
utterances at 1.3 per second whose embeddings are averaged and L2-normalised (`embed_utterance`).
"""

from __future__ import annotations

import functools
import logging
import sys

import librosa
import numpy as np
import torch
from resemblyzer import VoiceEncoder, audio, hparams

from embedders.base import SAMPLE_RATE, TorchEmbedder

log = logging.getLogger(__name__)

PARTIAL_SECONDS = hparams.partials_n_frames * hparams.mel_window_step / 1000
N_FFT = SAMPLE_RATE * hparams.mel_window_length // 1000
HOP = SAMPLE_RATE * hparams.mel_window_step // 1000
PARTIALS_PER_SECOND, MIN_COVERAGE = 1.3, 0.75  # embed_utterance's defaults


def preprocess(wave: np.ndarray) -> np.ndarray:
    """Resemblyzer's `preprocess_wav` made total: silent clips are left as they are and a clip in
    which the VAD finds no voice is kept whole instead of trimmed to nothing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        louder = audio.normalize_volume(wave, hparams.audio_norm_target_dBFS, increase_only=True)
    if np.isfinite(louder).all():
        wave = louder
    voiced = audio.trim_long_silences(wave)
    return voiced if len(voiced) else wave


@functools.cache
def mel_basis() -> torch.Tensor:
    """The ``(40, 201)`` filters of resemblyzer's `audio.wav_to_mel_spectrogram` (librosa's defaults)."""
    return torch.from_numpy(librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=hparams.mel_n_channels))


def mel_partials(wave: np.ndarray) -> torch.Tensor:
    """The ``(n, 160, 40)`` mel frames of a preprocessed clip's partial utterances, cut as
    `VoiceEncoder.embed_utterance` cuts them (the clip is zero-padded to cover the last one).

    The frames equal `audio.wav_to_mel_spectrogram`'s, computed with torch 40x faster than librosa.
    """
    wav_slices, mel_slices = VoiceEncoder.compute_partial_slices(len(wave), PARTIALS_PER_SECOND,
                                                                 MIN_COVERAGE)
    wave = np.pad(wave.astype(np.float32, copy=False), (0, max(wav_slices[-1].stop - len(wave), 0)))
    spec = torch.stft(torch.from_numpy(wave), N_FFT, HOP, window=torch.hann_window(N_FFT), center=True,
                      pad_mode="constant", return_complex=True).abs() ** 2
    mel = (mel_basis() @ spec).T
    return torch.stack([mel[s] for s in mel_slices])


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class ResemblyzerEmbedder(TorchEmbedder):
    """GE2E speaker embeddings, ``(N, 1, 256)`` from `embed_layers`.

    Overrides `embed_windows` rather than `encode`: preprocessing (loudness, VAD) is per clip in
    numpy, every partial utterance has the same 160 frames (so batches need no length buckets) and
    the output is the L2-normalised mean of partial embeddings, not the base's mean + std pooling.
    Clips longer than ``window_seconds`` are embedded per window, weighted by length, re-normalised.
    ``batch_seconds`` of partial utterances go through the LSTM at once.
    """

    name = "resemblyzer"
    default_weights = "resemblyzer"

    def __init__(self, window_seconds: float = 10.0, batch_seconds: float = 240.0, **settings):
        super().__init__(window_seconds=window_seconds, batch_seconds=batch_seconds, **settings)

    def load(self):
        folder = self.weights_folder()
        self.model = VoiceEncoder(self.device, verbose=False, weights_fpath=folder / "pretrained.pt").eval()

    def embed_layers(self, waves) -> np.ndarray:
        """``(N, 1, 256)``: windows averaged by length, then re-normalised to unit length."""
        return l2_normalize(super().embed_layers(waves))

    def embed_windows(self, windows: list[np.ndarray]) -> np.ndarray:
        """``(W, 1, 256)``: each window's `embed_utterance`, ``batch_seconds`` of partials per LSTM call."""
        from tqdm.auto import tqdm

        per_batch = max(int(self.batch_seconds / PARTIAL_SECONDS), 1)
        embeddings, queue = [], []
        bar = tqdm(windows, desc=self.name, unit="win", disable=not sys.stderr.isatty())
        for i, window in enumerate(bar):
            queue.append(mel_partials(preprocess(window)))
            if sum(map(len, queue)) >= per_batch or i == len(windows) - 1:
                partials = self._encode_partials(torch.cat(queue))
                splits = np.cumsum([len(q) for q in queue])[:-1]
                embeddings.extend(l2_normalize(p.mean(axis=0)) for p in np.split(partials, splits))
                queue = []
        return np.stack(embeddings)[:, None]

    def _encode_partials(self, mels: torch.Tensor) -> np.ndarray:
        """``(P, 256)`` L2-normalised embeddings of ``(P, 160, 40)`` partial utterances: the
        encoder's forward, but an all-zero output stays zero instead of becoming NaN."""
        with torch.inference_mode(), torch.autocast("cuda", enabled=self.device.type == "cuda"):
            _, (hidden, _) = self.model.lstm(mels.to(self.device))
            raw = self.model.relu(self.model.linear(hidden[-1]))
        return l2_normalize(raw.float().cpu().numpy())
