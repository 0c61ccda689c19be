"""The clips of an input, and their audio as 16 kHz mono float32.

An input is a folder of audio files (wav, flac, ogg; a first-level subfolder names the label), a
challenge dataset folder (``train.pkl``/``test.pkl``, rows named ``train/000123``) or a CSV
manifest of ``path[,label]`` rows (paths relative to the CSV; an optional ``path,label`` header).
Listing is cheap and ordered; audio is read only for the items asked for, so a caller holds one
shard of audio at a time.
"""

from __future__ import annotations

import csv
import json
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
from scipy.signal import resample_poly

from embedders import SAMPLE_RATE, sanitize_wave

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


@dataclass(frozen=True)
class Item:
    """One clip: ``id`` names it in outputs; its audio is the file ``path``, or entry ``index`` of
    the pickled clip list ``path``; ``label`` is None when unknown."""

    id: str
    path: str
    index: int | None = None
    label: str | None = None

    @property
    def source(self) -> str:
        """Where the audio comes from: the file, or ``pickle:index``."""
        return self.path if self.index is None else f"{self.path}:{self.index}"


def read_audio(path) -> np.ndarray:
    """An audio file as 16 kHz mono float32: channels averaged, other rates resampled."""
    wave, rate = soundfile.read(path, dtype="float32", always_2d=True)
    wave = wave.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = math.gcd(rate, SAMPLE_RATE)
        wave = resample_poly(wave, SAMPLE_RATE // g, rate // g)
    return wave.astype(np.float32, copy=False)


def list_items(source) -> list[Item]:
    """The clips of an audio folder, a challenge dataset folder or a CSV manifest, in a fixed order."""
    source = Path(source)
    if source.is_dir():
        return _challenge_items(source) if (source / "train.pkl").is_file() else _folder_items(source)
    if source.suffix.lower() == ".csv":
        return _csv_items(source)
    raise ValueError(f"{source}: expected a folder of audio files, a challenge dataset folder "
                     "or a .csv manifest")


def _challenge_items(folder: Path) -> list[Item]:
    meta = json.loads((folder / "meta.json").read_text())
    items = []
    for split in ("train", "test"):
        solution = folder / f"{split}.solution"
        labels = (np.loadtxt(solution, ndmin=2).argmax(axis=1) if solution.is_file()
                  else [None] * meta[f"{split}_num"])
        items += [Item(f"{split}/{i:06d}", str(folder / f"{split}.pkl"), i,
                       None if label is None else str(label)) for i, label in enumerate(labels)]
    return items


def _folder_items(folder: Path) -> list[Item]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    items = []
    for path in files:
        relative = path.relative_to(folder)
        label = relative.parts[0] if len(relative.parts) > 1 else None
        items.append(Item(relative.as_posix(), str(path), label=label))
    return items


def _csv_items(manifest: Path) -> list[Item]:
    with open(manifest, newline="") as f:
        rows = [row for row in csv.reader(f) if row and row[0].strip()]
    if rows and rows[0][0].strip().lower() == "path":
        rows = rows[1:]
    return [Item(row[0], str(manifest.parent / row[0]),
                 label=row[1] if len(row) > 1 and row[1] else None) for row in rows]


def read_items(items: list[Item]) -> list[np.ndarray | Exception]:
    """The audio of each item, or the exception that made it unreadable (never raised).

    A challenge split's pickle is loaded once per call and dropped after it."""
    pickles: dict[str, list] = {}
    waves = []
    for item in items:
        try:
            if item.index is None:
                waves.append(read_audio(item.path))
                continue
            if item.path not in pickles:
                with open(item.path, "rb") as f:
                    pickles[item.path] = pickle.load(f)
            waves.append(sanitize_wave(pickles[item.path][item.index]))
        except Exception as error:  # any unreadable clip is reported by the caller and skipped
            waves.append(error)
    return waves
