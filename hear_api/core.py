"""The HEAR API (https://hearbenchmark.com/hear-api.html) over any registered `TorchEmbedder`
that implements `encode` (not resemblyzer, which pools inside `embed_layers`).

Scene embeddings are the embedder's usual clip vectors (every layer's mean + std, concatenated).
Timestamp embeddings are the encoder's frames, averaged over its layers, at the encoder's own
hop (10 ms for spectral, 20 ms for whisper and wav2vec2), measured once at load time; the frames
are taken to tile each sound evenly, so their timestamps (ms) are centered on it with constant
spacing. Each sound is encoded in one pass: long sounds need an encoder that accepts their length.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

from embedders import SAMPLE_RATE, TorchEmbedder
from tools.extract import build_embedder, layer_shape

log = logging.getLogger(__name__)


class HearModel(torch.nn.Module):
    """An embedder with the attributes HEAR asks for; its weights stay in ``embedder.model``."""

    sample_rate = SAMPLE_RATE

    def __init__(self, embedder: TorchEmbedder):
        super().__init__()
        if not isinstance(embedder, TorchEmbedder) or type(embedder).encode is TorchEmbedder.encode:
            raise TypeError(f"{embedder.name}: HEAR timestamp embeddings need the frames of a "
                            "TorchEmbedder's encode(), which it does not implement")
        self.embedder = embedder
        layers, dim = layer_shape(embedder)
        self.scene_embedding_size = layers * dim
        short, long = (frames(embedder, torch.zeros(1, seconds * SAMPLE_RATE)) for seconds in (2, 4))
        self.hop = 2 * SAMPLE_RATE / (long.shape[1] - short.shape[1])  # samples between frames
        self.timestamp_embedding_size = int(long.shape[2])
        log.info("HEAR %s: scene %d dims, timestamps %d dims every %.1f ms", embedder.name,
                 self.scene_embedding_size, self.timestamp_embedding_size, 1000 * self.hop / SAMPLE_RATE)


def frames(embedder: TorchEmbedder, audio: Tensor) -> Tensor:
    """Layer-averaged frames ``(n_sounds, n_frames, D)`` float32 of equal-length sounds, on the CPU,
    computed in batches of at most ``embedder.batch_seconds`` of audio."""
    audio = audio.float().cpu()
    if audio.shape[1] < embedder.min_samples:
        audio = torch.nn.functional.pad(audio, (0, embedder.min_samples - audio.shape[1]))
    rows = max(1, int(embedder.batch_seconds * SAMPLE_RATE // audio.shape[1]))
    lengths = torch.full((audio.shape[0],), audio.shape[1])
    parts = []
    with torch.inference_mode(), torch.autocast("cuda", enabled=embedder.device.type == "cuda"):
        for start in range(0, len(audio), rows):
            hidden, frame_lengths = embedder.encode(audio[start:start + rows].to(embedder.device),
                                                    lengths[start:start + rows].to(embedder.device))
            parts.append(hidden[:, :, : int(frame_lengths[0])].float().mean(dim=1).cpu())
    return torch.cat(parts)


def load_model(name: str, model_file_path: str = "", **settings) -> HearModel:
    """The embedder registered as ``name`` as a HEAR model; ``settings`` as in `build_embedder`.
    Weights come from weights/ (or ``AUTOSPEECH_WEIGHTS``); ``model_file_path`` is not used."""
    if model_file_path:
        log.warning("model_file_path %r ignored: weights are read from the weights folder", model_file_path)
    embedder = build_embedder(name, **settings)
    if embedder.model is None:
        embedder.load()
    return HearModel(embedder)


def get_scene_embeddings(audio: Tensor, model: HearModel) -> Tensor:
    """audio: ``(n_sounds, n_samples)`` mono 16 kHz in [-1, 1].
    Returns ``(n_sounds, model.scene_embedding_size)`` float32, on the audio's device."""
    waves = list(audio.detach().float().cpu().numpy())
    return torch.from_numpy(model.embedder.embed(waves)).to(audio.device)


def get_timestamp_embeddings(audio: Tensor, model: HearModel) -> tuple[Tensor, Tensor]:
    """audio: ``(n_sounds, n_samples)`` mono 16 kHz in [-1, 1].

    Returns ``(embeddings, timestamps)``: ``(n_sounds, n_timestamps,
    model.timestamp_embedding_size)`` float32 and ``(n_sounds, n_timestamps)`` frame centers in ms,
    both on the audio's device.
    """
    embeddings = frames(model.embedder, audio.detach())
    n_frames = embeddings.shape[1]
    first = max(audio.shape[1] - (n_frames - 1) * model.hop, 0) / 2
    centers = (first + model.hop * np.arange(n_frames)) * 1000 / SAMPLE_RATE
    timestamps = torch.tensor(centers, dtype=torch.float32).expand(len(audio), n_frames)
    return embeddings.to(audio.device), timestamps.to(audio.device)
