"""The embedder interface: 1-D 16 kHz waveforms in, one fixed-size float32 vector per clip out.

`Embedder.embed(waves)` returns an ``(N, D)`` matrix; `Embedder.embed_layers(waves)` returns
``(N, L, D_layer)`` so heads can pick or weight layers (``L`` is 1 for single-layer encoders).

`TorchEmbedder` does the shared work for every neural encoder, so a new encoder only implements
`load()` and `encode()`:

- clips are sanitised, cropped to ``max_seconds`` and cut into windows of ``window_seconds``
  (memory stays bounded whatever the clip length); too-short clips are tiled to ``min_samples``;
- windows are sorted by length and batched by total padded audio seconds, then put back in order;
  encoders whose outputs change with zero padding (``pads_safely = False``, e.g. group-norm
  wav2vec2) only get windows of equal length in one batch;
- every layer is pooled to mean + standard deviation over its valid frames, and the windows of a
  clip are averaged, weighted by their length;
- CUDA runs under fp16 autocast; an out-of-memory batch is split in halves and retried.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np

from embedders.weights import weights_path

SAMPLE_RATE = 16000
log = logging.getLogger(__name__)


MAX_CHANNELS = 8  # a 2-D clip is multi-channel audio when one axis is at most this long


def repair_wave(wave) -> tuple[np.ndarray, list[str]]:
    """Return ``wave`` as a finite mono float32 1-D array in [-1, 1], and the fixes applied.

    Signed integer PCM is scaled to [-1, 1]; a 2-D clip with a channel axis of at most
    ``MAX_CHANNELS`` (either orientation) is averaged to mono; NaN/Inf become 0; a float clip whose
    peak exceeds 1 (PCM values stored as floats) is scaled to peak 1. Raises ValueError for other
    dtypes and shapes.
    """
    wave = np.asarray(wave)
    if not (np.issubdtype(wave.dtype, np.floating) or np.issubdtype(wave.dtype, np.signedinteger)):
        raise ValueError(f"unsupported dtype {wave.dtype}")
    if wave.ndim not in (1, 2) or (wave.ndim == 2 and min(wave.shape) > MAX_CHANNELS):
        raise ValueError(f"expected a 1-D waveform or a 2-D multi-channel one, got shape {wave.shape}")
    fixes = []
    if np.issubdtype(wave.dtype, np.signedinteger):
        wave = wave / -float(np.iinfo(wave.dtype).min)
        fixes.append("integer PCM converted to float32 in [-1, 1]")
    wave = wave.astype(np.float32, copy=False)
    if wave.ndim == 2:
        wave = wave.mean(axis=int(np.argmin(wave.shape)))
        fixes.append("multi-channel audio mixed down to mono")
    if not np.isfinite(wave).all():
        wave = np.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
        fixes.append("NaN/Inf samples replaced by 0")
    peak = float(np.abs(wave).max(initial=0.0))
    if peak > 1.0:
        wave = wave / np.float32(peak)
        fixes.append("samples beyond [-1, 1] scaled to peak 1")
    return wave, fixes


def sanitize_wave(wave) -> np.ndarray:
    """`repair_wave` without the report; a clip that cannot be repaired becomes silence."""
    try:
        return repair_wave(wave)[0]
    except ValueError as error:
        log.warning("clip replaced by silence: %s", error)
        return np.zeros(0, np.float32)


class Embedder:
    """Turns a list of waveforms into an ``(N, D)`` float32 matrix.

    Parameters shared by every embedder (all in seconds of 16 kHz audio):
    window_seconds: longer clips are cut into windows of this length whose embeddings are averaged.
    max_seconds: only the first ``max_seconds`` of each clip are used (None: all of it).
    batch_seconds: padded audio seconds per batch.
    """

    name = "embedder"
    sample_rate = SAMPLE_RATE

    def __init__(self, window_seconds: float = 30.0, max_seconds: float | None = None,
                 batch_seconds: float = 60.0):
        self.window_seconds = window_seconds
        self.max_seconds = max_seconds
        self.batch_seconds = batch_seconds

    def settings(self) -> dict:
        """The settings that change the output; part of every cache key and manifest."""
        return {"name": self.name, "window_seconds": self.window_seconds,
                "max_seconds": self.max_seconds}

    def embed(self, waves) -> np.ndarray:
        """``(N, D)`` float32 embeddings: all layers' pooled features, concatenated."""
        return flatten_layers(self.embed_layers(waves))

    def embed_layers(self, waves) -> np.ndarray:
        """``(N, L, D_layer)`` float32 pooled features of every layer."""
        raise NotImplementedError


class TorchEmbedder(Embedder):
    """Base class of neural encoders: subclasses implement `load` and `encode`."""

    min_samples = 400
    pads_safely = True
    pools_itself = False  # True: encode() returns pooled (B, L, D) features and no frame lengths

    default_weights: str | None = None  # the weights/ entry loaded when no other is given

    def __init__(self, weights: str | None = None, weights_dir=None, device: str | None = None, **settings):
        super().__init__(**settings)
        import torch

        self.weights = weights or self.default_weights
        self.weights_dir = weights_dir
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = None

    def settings(self) -> dict:
        return {**super().settings(), "weights": self.weights} if self.weights else super().settings()

    def weights_folder(self) -> Path:
        """The folder to load: ``weights_dir`` if given, else ``weights/<weights>`` (or
        `WeightsMissing`, naming the command that fetches it)."""
        return Path(self.weights_dir) if self.weights_dir else weights_path(self.weights)

    def load(self):
        """Load the weights into ``self.model`` (in eval mode, on ``self.device``)."""
        raise NotImplementedError

    def encode(self, batch, lengths):
        """Encode a zero-padded ``(B, S)`` float tensor whose rows have ``lengths`` valid samples.

        Returns ``(hidden, frame_lengths)``: hidden is ``(B, L, T, D)`` (every layer's frames),
        frame_lengths ``(B,)`` the number of valid frames per row. Encoders that pool themselves
        (``pools_itself``) return ``(pooled (B, L, D), None)``. Under CUDA autocast, keep
        overflow-prone steps (power spectra) in fp32.
        """
        raise NotImplementedError

    # -- the shared pipeline -------------------------------------------------------------------

    def windows(self, wave: np.ndarray) -> list[np.ndarray]:
        """Cut one clip into windows covering it (the last one is aligned to the clip's end)."""
        if self.max_seconds is not None and np.ndim(wave) == 1:  # crop first: cleaning costs per sample
            wave = wave[: int(self.max_seconds * SAMPLE_RATE)]
        wave = sanitize_wave(wave)
        if self.max_seconds is not None:
            wave = wave[: int(self.max_seconds * SAMPLE_RATE)]
        if len(wave) < self.min_samples:
            wave = np.resize(wave, self.min_samples) if len(wave) else np.zeros(self.min_samples, np.float32)
        size = max(int(self.window_seconds * SAMPLE_RATE), self.min_samples)
        starts = list(range(0, max(len(wave) - size, 0) + 1, size))
        if starts[-1] + size < len(wave):
            starts.append(len(wave) - size)
        return [wave[s:s + size] for s in starts]

    def batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped into batches of similar length, at most ``batch_seconds`` padded."""
        order = np.argsort(lengths, kind="stable")
        limit = self.batch_seconds * SAMPLE_RATE
        batches, current = [], []
        for i in order:
            longest = max(lengths[i], lengths[current[-1]] if current else 0)
            same_length = not current or self.pads_safely or lengths[current[0]] == lengths[i]
            if current and (not same_length or longest * (len(current) + 1) > limit):
                batches.append(current)
                current = []
            current.append(int(i))
        return batches + [current] if current else batches

    def embed_layers(self, waves) -> np.ndarray:
        if self.model is None:
            self.load()
        start = time.perf_counter()
        clip_of, pieces = [], []
        for i, wave in enumerate(waves):
            for window in self.windows(wave):
                clip_of.append(i)
                pieces.append(window)
        lengths = np.array([len(p) for p in pieces], np.float64)
        out = self._average_windows(np.array(clip_of, int), self.embed_windows(pieces) if pieces else None,
                                    lengths, len(waves))
        seconds = time.perf_counter() - start
        audio = lengths.sum() / SAMPLE_RATE
        log.info("%s: %d clips (%.0f s audio) in %.1f s: %.1f clips/s, %.0fx real time",
                 self.name, len(waves), audio, seconds, len(waves) / max(seconds, 1e-9),
                 audio / max(seconds, 1e-9))
        return out

    def embed_windows(self, pieces: list[np.ndarray]) -> np.ndarray:
        """Pooled ``(W, L, D)`` features of each window, computed in length-sorted batches."""
        from tqdm.auto import tqdm

        pooled = [None] * len(pieces)
        with tqdm(total=len(pieces), desc=self.name, unit="win", disable=not sys.stderr.isatty()) as bar:
            for batch in self.batches([len(p) for p in pieces]):
                for i, features in zip(batch, self._pool_batch([pieces[i] for i in batch])):
                    pooled[i] = features
                bar.update(len(batch))
        return np.stack(pooled)

    def _pool_batch(self, pieces: list[np.ndarray]) -> np.ndarray:
        """Pooled ``(B, L, 2D)`` features of one batch; halves the batch on CUDA out-of-memory."""
        import torch

        lengths = torch.tensor([len(p) for p in pieces])
        padded = np.zeros((len(pieces), int(lengths.max())), np.float32)
        for row, piece in enumerate(pieces):
            padded[row, : len(piece)] = piece
        batch = torch.from_numpy(padded)
        try:
            with torch.inference_mode(), torch.autocast("cuda", enabled=self.device.type == "cuda"):
                hidden, frame_lengths = self.encode(batch.to(self.device), lengths.to(self.device))
                pooled = hidden if self.pools_itself else mean_std_pool(hidden.float(), frame_lengths)
                return pooled.float().cpu().numpy()
        except torch.cuda.OutOfMemoryError:
            if len(pieces) == 1:
                raise
            torch.cuda.empty_cache()
            half = len(pieces) // 2
            log.warning("%s: CUDA out of memory on a batch of %d, retrying in halves", self.name, len(pieces))
            return np.concatenate([self._pool_batch(pieces[:half]), self._pool_batch(pieces[half:])])

    @staticmethod
    def _average_windows(clip_of, pooled, lengths, n_clips) -> np.ndarray:
        """Length-weighted mean of each clip's window features."""
        if pooled is None:
            return np.zeros((0, 0, 0), np.float32)
        total = np.zeros((n_clips,) + pooled.shape[1:])
        np.add.at(total, clip_of, pooled * lengths.reshape((-1,) + (1,) * (pooled.ndim - 1)))
        weight = np.bincount(clip_of, weights=lengths, minlength=n_clips)
        return (total / weight.reshape((-1,) + (1,) * (pooled.ndim - 1))).astype(np.float32)


def flatten_layers(layers: np.ndarray) -> np.ndarray:
    """``(N, L, D)`` per-layer features -> ``(N, L * D)``."""
    return layers.reshape(len(layers), int(np.prod(layers.shape[1:])))


def run_blocks(blocks, norm, x, lengths):
    """Every output ``(B, len(blocks), T, D)`` of transformer ``blocks`` run in turn on ``x``
    ``(B, T, D)`` whose rows have ``lengths`` valid frames; padded frames are masked out of
    attention (each block is called as ``block(x, additive (B, 1, 1, T) mask)``) and ``norm``
    follows the last block. This is the contract of a layered encoder's ``split_encoder``."""
    import torch

    padded = torch.arange(x.shape[1], device=x.device) >= lengths[:, None]
    mask = torch.zeros(padded.shape, dtype=x.dtype, device=x.device)
    mask = mask.masked_fill(padded, torch.finfo(x.dtype).min)[:, None, None, :]
    states = []
    for block in blocks:
        x = block(x, mask)
        states.append(x)
    if not states:
        return x.new_zeros((x.shape[0], 0) + tuple(x.shape[1:]))
    states[-1] = norm(states[-1])
    return torch.stack(states, dim=1)


def mean_std_pool(hidden, frame_lengths):
    """Mean and standard deviation over the valid frames: ``(B, L, T, D)`` -> ``(B, L, 2D)``."""
    import torch

    mask = (torch.arange(hidden.shape[2], device=hidden.device)[None, :] < frame_lengths[:, None])
    mask = mask[:, None, :, None].to(hidden.dtype)
    count = mask.sum(dim=2).clamp(min=1)
    mean = (hidden * mask).sum(dim=2) / count
    var = (((hidden - mean[:, :, None]) ** 2) * mask).sum(dim=2) / count
    return torch.cat([mean, var.sqrt()], dim=-1)
