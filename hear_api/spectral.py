"""HEAR API of the weight-free spectral embedder: timestamp embeddings every 10 ms."""

from hear_api import core
from hear_api.core import get_scene_embeddings, get_timestamp_embeddings

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]


def load_model(model_file_path: str = "") -> core.HearModel:
    """The spectral embedder; it has no weights, so ``model_file_path`` is not used."""
    return core.load_model("spectral", model_file_path)
