"""HEAR API of the Whisper encoder ``whisper-base``: timestamp embeddings every 20 ms, sounds of
at most 30 s (Whisper's longest input)."""

from hear_api import core
from hear_api.core import get_scene_embeddings, get_timestamp_embeddings

__all__ = ["get_scene_embeddings", "get_timestamp_embeddings", "load_model"]


def load_model(model_file_path: str = "") -> core.HearModel:
    """The whisper-base encoder, weights read from weights/; ``model_file_path`` is not used."""
    return core.load_model("whisper-base", model_file_path)
