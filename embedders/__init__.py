"""Registry of embedders: ``get_embedder(name)`` builds one, ``unavailable_reason(name)`` says
why one cannot run here (e.g. its weights are missing).

Adding an encoder is one file in this folder plus one line in ``REGISTRY``:
``name: ("module", "Class", {constructor keyword arguments})``. Modules are imported lazily, so
the weight-free spectral embedder never imports torch-heavy libraries it does not need.
"""

from __future__ import annotations

import importlib

from embedders.base import SAMPLE_RATE, Embedder, TorchEmbedder, sanitize_wave
from embedders.weights import WeightsMissing, weights_path

REGISTRY = {
    "spectral": ("embedders.spectral", "SpectralEmbedder", {}),
    "resemblyzer": ("embedders.resemblyzer_ge2e", "ResemblyzerEmbedder", {"weights": "resemblyzer"}),
    "wav2vec2-base": ("embedders.wav2vec2", "Wav2Vec2Embedder", {"weights": "wav2vec2-base"}),
    "ecapa": ("embedders.ecapa", "EcapaEmbedder", {"weights": "ecapa-voxceleb"}),
    "whisper-tiny.en": ("embedders.whisper", "WhisperEmbedder", {"weights": "whisper-tiny.en"}),
    "whisper-base": ("embedders.whisper", "WhisperEmbedder", {"weights": "whisper-base"}),
}


def get_embedder(name: str, **settings) -> Embedder:
    """Build the embedder registered as ``name``; ``settings`` override its defaults."""
    if name not in REGISTRY:
        raise KeyError(f"unknown embedder {name!r}; known: {', '.join(REGISTRY)}")
    module, cls, defaults = REGISTRY[name]
    return getattr(importlib.import_module(module), cls)(**{**defaults, **settings})


def unavailable_reason(name: str) -> str | None:
    """None when ``name`` can run here, else a message saying what is missing and how to get it."""
    if name not in REGISTRY:
        return f"unknown embedder {name!r}"
    weights = REGISTRY[name][2].get("weights")
    try:
        if weights:
            weights_path(weights)
        importlib.import_module(REGISTRY[name][0])
    except Exception as error:  # missing weights, or a dependency that does not import here
        return f"{type(error).__name__}: {error}" if not isinstance(error, WeightsMissing) else str(error)
    return None


def available_embedders() -> list[str]:
    """Registered embedders that can run here, in registry order."""
    return [name for name in REGISTRY if unavailable_reason(name) is None]


__all__ = ["REGISTRY", "SAMPLE_RATE", "Embedder", "TorchEmbedder", "WeightsMissing",
           "available_embedders", "get_embedder", "sanitize_wave", "unavailable_reason",
           "weights_path"]
