"""Where pretrained weights live: ``weights/<name>/`` beside this package, listed in
``weights/manifest.json``; ``AUTOSPEECH_WEIGHTS`` points elsewhere."""

from __future__ import annotations

import json
import os
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "weights"


class WeightsMissing(RuntimeError):
    """Raised when an encoder's weights are not on disk; the message says how to get them."""


def weights_root() -> Path:
    return Path(os.environ.get("AUTOSPEECH_WEIGHTS", DEFAULT_ROOT))


def load_manifest() -> dict:
    """The manifest: ``{name: {source..., files: {relative path: sha256}}}``."""
    return json.loads((DEFAULT_ROOT / "manifest.json").read_text())


def weights_path(name: str) -> Path:
    """The folder holding ``name``'s weights, or `WeightsMissing` naming the command that fetches them."""
    folder = weights_root() / name
    files = load_manifest().get(name, {}).get("files", {})
    missing = [f for f in files if not (folder / f).is_file()]
    if not folder.is_dir() or missing:
        raise WeightsMissing(
            f"weights {name!r} are not in {folder} (missing: {', '.join(missing) or 'the folder'}); "
            f"fetch them with: python download_weights.py {name}")
    return folder
