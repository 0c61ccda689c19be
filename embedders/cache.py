"""On-disk cache of embeddings, keyed by the embedder's settings and a fingerprint of the audio."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from embedders.base import Embedder, flatten_layers

log = logging.getLogger(__name__)


def fingerprint(waves) -> str:
    """A hash of the clips' samples (and their boundaries): equal audio gives an equal key."""
    digest = hashlib.blake2b(digest_size=16)
    for wave in waves:
        wave = np.ascontiguousarray(wave)
        digest.update(np.int64(wave.size).tobytes())
        digest.update(wave.tobytes())
    return digest.hexdigest()


class EmbeddingCache:
    """``cache.embed_layers(embedder, waves)`` computes once per (embedder settings, audio)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, embedder: Embedder, waves) -> Path:
        settings = json.dumps(embedder.settings(), sort_keys=True)
        key = hashlib.blake2b(f"{settings}|{fingerprint(waves)}".encode(), digest_size=16).hexdigest()
        return self.root / embedder.name / f"{key}.npy"

    def embed_layers(self, embedder: Embedder, waves) -> np.ndarray:
        """``embedder.embed_layers(waves)``, read from the cache when it was computed before."""
        path = self.path(embedder, waves)
        if path.is_file():
            log.info("%s: embeddings read from cache %s", embedder.name, path)
            return np.load(path)
        layers = embedder.embed_layers(waves)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, layers)
        tmp.replace(path)
        return layers

    def embed(self, embedder: Embedder, waves) -> np.ndarray:
        """``embedder.embed(waves)`` through the cache."""
        return flatten_layers(self.embed_layers(embedder, waves))
