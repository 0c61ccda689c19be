"""Extraction throughput of the two engines on one dataset: local against Ray, in one run.

``--limit`` clips drawn (seeded) from a development dataset's train split are written as wav files,
the input a large corpus has, and extracted twice with the same settings: by
``extract(engine="local")`` and by ``extract(engine="ray")`` on a Ray cluster (a local one, or
``--address``). Each time covers listing, the model load(s), reading, embedding and writing; Ray's
start-up is timed apart. The table gives clips/s of both, the ratio Ray / local, and the largest
difference between the two outputs, row by row by id.

usage: python bench/extract_engines.py [--dataset fsdd_speaker] [--embedder spectral] [--limit 1000]
                                       [--shard-size 100] [--address auto] [--data-root DIR]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import ray
import soundfile

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from bench.embed_throughput import DATA_ROOT, markdown, materialized, sample  # noqa: E402
from challenge.data import load_dataset  # noqa: E402
from embedders import SAMPLE_RATE  # noqa: E402
from tools.extract import extract, read_embeddings  # noqa: E402
from tools.extract_ray import connect  # noqa: E402

log = logging.getLogger("bench")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fsdd_speaker", help="development dataset (default: %(default)s)")
    parser.add_argument("--embedder", default="spectral", help="registered embedder (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=1000, help="clips (default: %(default)s)")
    parser.add_argument("--shard-size", type=int, default=100, help="clips per shard (default: %(default)s)")
    parser.add_argument("--address", default=None, help="Ray cluster (default: start a local one)")
    parser.add_argument("--data-root", default=str(DATA_ROOT), help="dataset cache (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("embedders").setLevel(logging.WARNING)  # one line per shard otherwise

    folder = materialized([args.dataset], args.data_root)[args.dataset]
    waves = sample(load_dataset(folder).x_train, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "clips").mkdir()
        for i, wave in enumerate(waves):
            soundfile.write(tmp / "clips" / f"{i:06d}.wav", wave, SAMPLE_RATE)
        summaries = {"local": extract(tmp / "clips", args.embedder, tmp / "local", shard_size=args.shard_size)}

        tic = time.perf_counter()
        connect(args.address)
        startup = time.perf_counter() - tic
        summaries["ray"] = extract(tmp / "clips", args.embedder, tmp / "ray", shard_size=args.shard_size,
                                   engine="ray")
        cpus = ray.cluster_resources().get("CPU", 0)
        ray.shutdown()
        (local_ids, local), (ray_ids, remote) = read_embeddings(tmp / "local"), read_embeddings(tmp / "ray")
    assert local_ids == ray_ids, "the engines embedded different clips"
    audio = sum(map(len, waves)) / SAMPLE_RATE
    rows = [{"engine": engine, "embedder": args.embedder, "dataset": args.dataset, "clips": s["clips"],
             "audio_s": audio, "seconds": s["seconds"], "clips_per_s": s["clips_per_second"],
             "ratio_to_local": s["clips_per_second"] / summaries["local"]["clips_per_second"]}
            for engine, s in summaries.items()]
    print(markdown(rows))
    print(f"\nRay start-up (not in the table): {startup:.1f} s on {cpus:.0f} CPUs; "
          f"largest difference between the engines' embeddings: {float(np.abs(local - remote).max()):.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
