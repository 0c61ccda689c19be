"""ALC of our entry against the reference entry, side by side, under the local challenge runner.

Each entry runs on each development dataset through `challenge.ingestion.run` with the same time
budget, one after the other in this process. Per run: ALC, time and score of the first prediction,
final normalized AUC, number of predictions, the model process's peak memory and the wall time
(including the uncharged ``Model(metadata)``). Per dataset: the ALC ratio ours / reference, the
2019 winner's ALC measured here and our target. Both tables go to stdout and, with the CSV files
and every run's outputs, to ``--out``.

usage: python bench/alc.py [--datasets fsdd_speaker,...] [--time_budget 600]
                           [--entries ours,reference] [--data-root DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere

from bench.embed_throughput import DATA_ROOT, DATASETS, markdown, materialized, write_csv
from challenge.ingestion import run

log = logging.getLogger("bench")

ENTRIES = {"ours": REPO_ROOT, "reference": REPO_ROOT / "bench" / "reference_2019"}
# The 2019 winner's code run here under this protocol at T = 600 s, and what our entry aims for.
WINNER_2019 = {"fsdd_speaker": 0.981, "fsdd_digit": 0.948, "esc10": 0.936, "synth_lid": 0.734}
TARGETS = {"fsdd_speaker": 0.990, "fsdd_digit": 0.970, "esc10": 0.975, "synth_lid": 0.85}


def run_row(dataset: str, entry: str, result: dict, wall_s: float) -> dict:
    """One row of the runs table from a `challenge.ingestion.run` result."""
    times, scores = result["timestamps"], result["scores"] or []
    return {"dataset": dataset, "entry": entry, "alc": result["alc"],
            "first_prediction_s": times[0] if times else None,
            "first_score": scores[0] if scores else None,
            "final_score": scores[-1] if scores else None, "predictions": len(times),
            "peak_rss_mib": result["peak_rss_mib"], "wall_s": wall_s,
            "stop_reason": result["stop_reason"],
            "error": result["error"].splitlines()[0] if result["error"] else None}


def summary_row(dataset: str, alcs: dict) -> dict:
    """One row of the per-dataset table: ALC of each entry, ours / reference, winner, target."""
    ours, reference = alcs.get("ours"), alcs.get("reference")
    return {"dataset": dataset, "alc_ours": ours, "alc_reference": reference,
            "ours_over_reference": ours / reference if ours is not None and reference else None,
            "winner_2019": WINNER_2019.get(dataset), "target": TARGETS.get(dataset),
            "meets_target": None if ours is None or dataset not in TARGETS else ours >= TARGETS[dataset]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help="comma-separated (default: %(default)s)")
    parser.add_argument("--time_budget", type=float, default=600.0, help="seconds (default: %(default)s)")
    parser.add_argument("--entries", default=",".join(ENTRIES), help="comma-separated (default: %(default)s)")
    parser.add_argument("--data-root", default=str(DATA_ROOT), help="dataset cache (default: %(default)s)")
    parser.add_argument("--out", default=None, help="default: runs/bench-alc-<time>/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    entries = args.entries.split(",")
    unknown = set(entries) - set(ENTRIES)
    if unknown:
        parser.error(f"unknown entries {sorted(unknown)}; known: {', '.join(ENTRIES)}")
    out = Path(args.out or REPO_ROOT / "runs" / f"bench-alc-{datetime.now():%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)

    load_start = os.getloadavg()
    runs, summary = [], []
    for dataset, folder in materialized(args.datasets.split(","), args.data_root).items():
        alcs = {}
        for entry in entries:
            tic = time.perf_counter()
            result = run(folder, ENTRIES[entry], args.time_budget, out / f"{dataset}-{entry}")
            runs.append(run_row(dataset, entry, result, time.perf_counter() - tic))
            alcs[entry] = result["alc"]
        summary.append(summary_row(dataset, alcs))

    load = "load average (1, 5, 15 min): start {:.2f} {:.2f} {:.2f}, end {:.2f} {:.2f} {:.2f}".format(
        *load_start, *os.getloadavg())
    report = (f"# ALC at T = {args.time_budget:g} s\n\n{load}\n\n## Runs\n\n{markdown(runs)}\n\n"
              f"## Per dataset\n\n{markdown(summary)}\n")
    (out / "results.md").write_text(report)
    write_csv(runs, out / "runs.csv")
    write_csv(summary, out / "summary.csv")
    print(report)
    log.info("tables, CSV files and every run's outputs are in %s", out)
    return 1 if any(row["error"] for row in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
