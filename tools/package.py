"""The challenge submission: a zip with ``model.py`` at its root, the repository code it imports,
the chosen embedders' weights under ``weights/`` and ``submission.json`` naming those embedders.

`check` unzips it into a temporary folder and runs the local runner on it there, offline, with
neither the repository nor ``AUTOSPEECH_WEIGHTS`` visible, so a missing file fails the check.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from embedders import REGISTRY, unavailable_reason, weights_path
from embedders.weights import DEFAULT_ROOT, load_manifest

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
# Everything model.py imports from the repository, transitively (tests/test_make_submission.py
# checks this list against the imports).
CODE = ["model.py", "budget.py", "embedders", "heads"]
SKIPPED_DIRS = {"__pycache__", "tests"}
CONFIG = "submission.json"
SAMPLE_DATA = REPO / "sample_data" / "fsdd_speaker_sample"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class PackagingError(RuntimeError):
    """The submission cannot be built or failed its check; the message says why."""


def code_files() -> list[Path]:
    """The files of `CODE`, without caches, compiled files and tests."""
    files = []
    for entry in CODE:
        path = REPO / entry
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files += [p for p in found
                  if p.suffix != ".pyc" and not SKIPPED_DIRS & set(p.relative_to(REPO).parts)]
    return files


def weight_files(name: str) -> dict[str, Path]:
    """``{path in the zip: file}`` of embedder ``name``'s weights (none for weight-free ones)."""
    weights = REGISTRY[name][2].get("weights")
    if not weights:
        return {}
    folder = weights_path(weights)
    return {f"weights/{weights}/{relative}": folder / relative
            for relative in load_manifest()[weights]["files"]}


def build(embedders: list[str], out) -> dict:
    """Write the zip to ``out``; returns ``{"zip", "bytes", "weights": {embedder: [paths]}}``.

    Raises PackagingError when an embedder cannot run here (unknown, or its weights are missing).
    """
    for name in embedders:
        reason = unavailable_reason(name)
        if reason:
            raise PackagingError(f"cannot package {name!r}: {reason}")
    weights = {name: weight_files(name) for name in embedders}
    out = Path(out)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in code_files():
            zf.write(path, path.relative_to(REPO).as_posix())
        zf.writestr(CONFIG, json.dumps({"embedders": embedders}) + "\n")
        zf.write(DEFAULT_ROOT / "manifest.json", "weights/manifest.json")
        for arcname, path in sorted({a: p for files in weights.values() for a, p in files.items()}.items()):
            zf.write(path, arcname, compress_type=zipfile.ZIP_STORED)  # weights barely compress
    summary = {"zip": str(out), "bytes": out.stat().st_size,
               "weights": {name: sorted(files) for name, files in weights.items()}}
    log.info("wrote %s: %.1f MB, embedders %s", out, summary["bytes"] / 1e6, ", ".join(embedders))
    return summary


# Imports model.py first to refuse modules found outside the zip (e.g. through an editable install
# of the repository), then runs the challenge runner on the unzipped folder.
RUNNER = """
import json, sys
from pathlib import Path
dataset, code, budget, out, repo = sys.argv[1:]
import model
outside = sorted(name for name, module in sys.modules.items()
                 if Path(getattr(module, "__file__", None) or "/").resolve().is_relative_to(repo))
if outside:
    sys.exit(f"model.py imports {', '.join(outside)} from {repo}, not from the zip")
from challenge.ingestion import run
result = run(dataset, code, float(budget), out)
result.pop("predictions")
print(json.dumps(result))
"""


def check(zip_path, dataset=SAMPLE_DATA, time_budget: float = 30.0) -> dict:
    """Run the zipped submission on ``dataset`` from a temporary folder, offline; returns the
    runner's result. Raises PackagingError unless it made a prediction without an error."""
    with tempfile.TemporaryDirectory() as tmp:
        code, runner = Path(tmp) / "submission", Path(tmp) / "runner"
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(code)
        shutil.copytree(REPO / "challenge", runner / "challenge",
                        ignore=shutil.ignore_patterns("__pycache__"))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "AUTOSPEECH_WEIGHTS")}
        env.update(OFFLINE, PYTHONPATH=str(runner))
        log.info("checking %s on %s with a %g s budget", zip_path, Path(dataset).name, time_budget)
        proc = subprocess.run([sys.executable, "-c", RUNNER, str(Path(dataset).resolve()), str(code),
                               str(time_budget), str(Path(tmp) / "run"), str(REPO)],
                              cwd=code, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PackagingError(f"the check run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["error"] or not result["timestamps"]:
        raise PackagingError(f"the check run made no valid prediction ({result['stop_reason']}): "
                             f"{result['error'] or proc.stderr[-3000:]}")
    return result
