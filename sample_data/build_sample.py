"""Build sample_data/fsdd_speaker_sample: a small stratified subset of the fsdd_speaker dataset
in the exact challenge format (see sample_data/README.md for its source and license).

usage (from the repository root):
    python -m sample_data.build_sample [SOURCE_DIR] [OUT_DIR]
SOURCE_DIR holds fsdd_speaker's {train,test}.npz (int16 16 kHz audio, clip offsets, labels).
"""

import sys
from pathlib import Path

import numpy as np

from challenge.data import write_dataset

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fsdd_speaker"
OUT = Path(__file__).resolve().parent / "fsdd_speaker_sample"
PER_CLASS = {"train": 40, "test": 15}
TIME_BUDGET = 120
SEED = 0


def sample_split(npz_path: Path, per_class: int, rng) -> tuple[list, np.ndarray]:
    """Pick ``per_class`` random clips of each class, in shuffled order: (float32 clips, one-hot)."""
    z = np.load(npz_path)
    audio, offsets, labels = z["audio"], z["offsets"], z["labels"]
    classes = np.unique(labels)
    picked = np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
                             for c in classes])
    picked = rng.permutation(picked)
    clips = [audio[offsets[i]:offsets[i + 1]].astype(np.float32) / 32768.0 for i in picked]
    return clips, np.eye(len(classes), dtype=int)[labels[picked]]


def main(source=SOURCE, out=OUT):
    """Write the sample dataset to ``out``."""
    rng = np.random.RandomState(SEED)
    x_train, y_train = sample_split(Path(source) / "train.npz", PER_CLASS["train"], rng)
    x_test, y_test = sample_split(Path(source) / "test.npz", PER_CLASS["test"], rng)
    write_dataset(out, x_train, y_train, x_test, y_test, time_budget=TIME_BUDGET)
    size = sum(f.stat().st_size for f in Path(out).iterdir()) / 2**20
    print(f"wrote {len(x_train)} train + {len(x_test)} test clips ({size:.1f} MiB) to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
