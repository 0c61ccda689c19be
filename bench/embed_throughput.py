"""Embedding throughput: the batched pipeline against a one-clip-at-a-time loop, side by side.

For each encoder and development dataset, the same clips are embedded in one run by
``embedder.embed(waves)`` and by ``[embedder.embed([w]) for w in waves]``, in alternating passes of
which the fastest of each counts; the table gives clips/s and times real time of both, their ratio,
and the largest difference between the two outputs. Load and warm-up are not timed. On CUDA the
embedders run under fp16 autocast, as in the entry.

usage: python bench/embed_throughput.py [--datasets fsdd_speaker,esc10] [--embedders spectral,...]
                                        [--limit 100] [--repeat 3] [--device cpu|cuda]
                                        [--data-root DIR] [--csv F]
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from challenge.data import load_dataset
from embedders import SAMPLE_RATE, available_embedders, get_embedder

log = logging.getLogger("bench")

DATASETS = ["fsdd_speaker", "fsdd_digit", "esc10", "synth_lid"]
SHARED_DATASETS = Path(os.environ.get("AUTOSPEECH_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))
DATA_ROOT = REPO_ROOT / ".cache" / "datasets"


def materialized(names, root=DATA_ROOT) -> dict[str, Path]:
    """Challenge-format folders of the development datasets ``names`` under ``root``; the missing
    ones are written first by the shared ``materialize.py``."""
    root = Path(root)
    missing = [name for name in names if not (root / name / "meta.json").is_file()]
    if missing:
        log.info("materialising %s from %s into %s", ", ".join(missing), SHARED_DATASETS, root)
        subprocess.run([sys.executable, str(SHARED_DATASETS / "materialize.py"), str(root), *missing],
                       check=True, stdout=subprocess.DEVNULL)
    return {name: root / name for name in names}


def sample(waves: list, limit: int, seed: int = 0) -> list:
    """At most ``limit`` of ``waves``, drawn at random (seeded) in their original order."""
    if len(waves) <= limit:
        return list(waves)
    keep = np.sort(np.random.default_rng(seed).choice(len(waves), limit, replace=False))
    return [waves[i] for i in keep]


def measure(embedder, waves, repeat: int = 3) -> dict:
    """Time the batched pipeline and the one-clip loop on ``waves``, alternately, ``repeat`` times
    each, keeping the fastest pass of each (other jobs only ever slow a pass down); one table row."""
    pipelines = {"batched": embedder.embed,
                 "naive": lambda waves: np.concatenate([embedder.embed([wave]) for wave in waves])}
    seconds, outputs = dict.fromkeys(pipelines, np.inf), {}
    for _ in range(repeat):
        for name, pipeline in pipelines.items():
            tic = time.perf_counter()
            outputs[name] = pipeline(waves)
            seconds[name] = min(seconds[name], time.perf_counter() - tic)
    audio = sum(len(wave) for wave in waves) / SAMPLE_RATE
    row = {"clips": len(waves), "audio_s": audio}
    for name in pipelines:
        row.update({f"{name}_clips_per_s": len(waves) / seconds[name],
                    f"{name}_x_realtime": audio / seconds[name]})
    return {**row, "speedup": seconds["naive"] / seconds["batched"],
            "max_abs_diff": float(np.abs(outputs["batched"] - outputs["naive"]).max())}


def markdown(rows: list[dict]) -> str:
    """A markdown table of ``rows`` (dicts with the same keys); floats to 4 significant digits."""
    def cell(value):
        if value is None:
            return "-"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(cell(v) for v in row.values()) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(rows: list[dict], path) -> None:
    """Write ``rows`` (dicts with the same keys) to the CSV file ``path``."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--embedders", default=None,
                        help="comma-separated (default: every available one)")
    parser.add_argument("--limit", type=int, default=100, help="clips per dataset (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed passes of each pipeline; the fastest counts (default: %(default)s)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None,
                        help="default: each embedder's own (CUDA when present, spectral on CPU)")
    parser.add_argument("--data-root", default=str(DATA_ROOT), help="dataset cache (default: %(default)s)")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("embedders").setLevel(logging.WARNING)  # one line per embed() call otherwise

    names = args.embedders.split(",") if args.embedders else available_embedders()
    folders = materialized(args.datasets.split(","), args.data_root)
    clips = {name: sample(load_dataset(folder).x_train, args.limit) for name, folder in folders.items()}
    log.info("load average at start: %.2f %.2f %.2f", *os.getloadavg())
    rows = []
    for name in names:
        embedder = get_embedder(name, **({"device": args.device} if args.device else {}))
        embedder.embed([np.zeros(SAMPLE_RATE, np.float32)])  # loads and warms up, not timed
        for dataset, waves in clips.items():
            log.info("%s on %d clips of %s", name, len(waves), dataset)
            rows.append({"embedder": name, "device": str(embedder.device), "dataset": dataset,
                         **measure(embedder, waves, args.repeat)})
    log.info("load average at end: %.2f %.2f %.2f", *os.getloadavg())
    print(markdown(rows))
    if args.csv:
        write_csv(rows, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
