"""Weight-free spectral statistics: log-mel, MFCC and delta-MFCC frames, mean + std pooled.

Cheap enough to embed thousands of short clips in a few seconds on two CPU cores, so it gives the
first answer of a challenge run and is the fallback when no pretrained weights are present.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import torch
from transformers.audio_utils import mel_filter_bank

from embedders.base import SAMPLE_RATE, TorchEmbedder


class SpectralEmbedder(TorchEmbedder):
    """Log-mel (``n_mels``), MFCC and delta-MFCC (``n_mfcc`` each) statistics: ``2 * (n_mels + 2 * n_mfcc)`` dims."""

    name = "spectral"

    def __init__(self, n_mels: int = 64, n_mfcc: int = 20, n_fft: int = 400, hop: int = 160,
                 device: str | None = "cpu", **settings):
        super().__init__(device=device, **settings)
        self.n_mels, self.n_mfcc, self.n_fft, self.hop = n_mels, n_mfcc, n_fft, hop
        self.min_samples = n_fft

    def settings(self) -> dict:
        return {**super().settings(), "n_mels": self.n_mels, "n_mfcc": self.n_mfcc,
                "n_fft": self.n_fft, "hop": self.hop}

    def load(self):
        mel = mel_filter_bank(num_frequency_bins=self.n_fft // 2 + 1, num_mel_filters=self.n_mels,
                              min_frequency=0.0, max_frequency=SAMPLE_RATE / 2,
                              sampling_rate=SAMPLE_RATE, norm="slaney", mel_scale="slaney")
        dct = scipy.fft.dct(np.eye(self.n_mels), type=2, norm="ortho", axis=0)[: self.n_mfcc]
        self.model = {
            "window": torch.hann_window(self.n_fft, device=self.device),
            "mel": torch.tensor(mel, dtype=torch.float32, device=self.device),
            "dct": torch.tensor(dct.T, dtype=torch.float32, device=self.device),
        }

    def encode(self, batch, lengths):
        spec = torch.stft(batch.float(), self.n_fft, self.hop, window=self.model["window"],
                          center=False, return_complex=True).abs() ** 2
        log_mel = torch.log(spec.transpose(1, 2) @ self.model["mel"] + 1e-6)
        mfcc = log_mel @ self.model["dct"]
        delta = torch.diff(mfcc, dim=1, prepend=mfcc[:, :1])
        frames = torch.cat([log_mel, mfcc, delta], dim=-1)
        frame_lengths = ((lengths - self.n_fft) // self.hop + 1).clamp(min=1)
        return frames[:, None], frame_lengths
