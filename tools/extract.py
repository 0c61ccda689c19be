"""Embedding extraction into ``.npy`` shards with a manifest, resumable and in constant memory.

The steps are separate functions so another engine can drive them: `list_items` (tools.audio_io)
-> per shard (`extract_shard`): `read_shard` -> `embed_shard` -> `write_shard`; `write_manifest`
merges the shards' records. ``engine="ray"`` runs the same steps on a Ray cluster
(`tools.extract_ray`). A shard is done when its record ``shard-NNNNN.json`` exists (written,
like the ``.npy``, to a temporary file then renamed), so a rerun skips it and the outputs are
identical.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from embedders import REGISTRY, SAMPLE_RATE, Embedder, get_embedder
from embedders.base import flatten_layers
from embedders.weights import load_manifest
from tools.audio_io import Item, list_items, read_items

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
ERRORS = "errors.csv"


def build_embedder(name: str, device=None, window_seconds=None, max_seconds=None) -> Embedder:
    """``get_embedder(name)`` with only the settings that were given overriding its defaults."""
    given = {"device": device, "window_seconds": window_seconds, "max_seconds": max_seconds}
    return get_embedder(name, **{k: v for k, v in given.items() if v is not None})


def layer_shape(embedder: Embedder) -> tuple[int, int]:
    """``(layers, dimension per layer)`` of ``embedder.embed_layers``, from one second of a tone."""
    tone = np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32)
    _, layers, dim = embedder.embed_layers([tone]).shape
    return layers, dim


def weights_info(name: str) -> dict | None:
    """The weights an embedder uses, ``{"name", "files": {path: sha256}}`` from weights/manifest.json."""
    weights = REGISTRY[name][2].get("weights")
    entry = load_manifest().get(weights) if weights else None
    return {"name": weights, "files": entry.get("files", {})} if entry else None


def embed_shard(embedder: Embedder, waves: list[np.ndarray], layers: list[int] | None,
                dimension: int) -> np.ndarray:
    """``(len(waves), dimension)`` float32: the selected layers (all when None), concatenated."""
    if not waves:
        return np.zeros((0, dimension), np.float32)
    pooled = embedder.embed_layers(waves)
    if layers is not None:
        pooled = pooled[:, layers]
    return flatten_layers(pooled).astype(np.float32, copy=False)


def _write_atomic(path: Path, data: bytes):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _json_bytes(value) -> bytes:
    return (json.dumps(value) + "\n").encode()


def shard_name(index: int) -> str:
    """``shard-00012`` for index 12: the stem of the shard's ``.npy`` and ``.json``."""
    return f"shard-{index:05d}"


def write_shard(out_dir: Path, index: int, embeddings: np.ndarray, items: list[Item],
                errors: list[tuple[Item, str]]):
    """Write shard ``index``: its embeddings ``.npy``, then its record ``.json`` (rows and errors)."""
    buffer = io.BytesIO()
    np.save(buffer, embeddings)
    _write_atomic(out_dir / f"{shard_name(index)}.npy", buffer.getvalue())
    record = {"file": f"{shard_name(index)}.npy",
              "ids": [item.id for item in items],
              "sources": [item.source for item in items],
              "labels": [item.label for item in items] if any(i.label for i in items) else None,
              "errors": [{"path": item.source, "error": error} for item, error in errors]}
    _write_atomic(out_dir / f"{shard_name(index)}.json", _json_bytes(record))


def shard_done(out_dir: Path, index: int) -> bool:
    """Whether shard ``index`` was written completely (its record is written last)."""
    return all((out_dir / f"{shard_name(index)}{suffix}").is_file() for suffix in (".npy", ".json"))


def write_manifest(out_dir: Path, header: dict, n_shards: int) -> dict:
    """Merge the header and the finished shards' records into ``manifest.json`` and their errors
    into ``errors.csv``; returns the manifest."""
    shards = [json.loads((out_dir / f"{shard_name(i)}.json").read_text())
              for i in range(n_shards) if shard_done(out_dir, i)]
    manifest = {**header, "complete": len(shards) == n_shards, "shards": shards}
    _write_atomic(out_dir / MANIFEST, _json_bytes(manifest))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "error"])
    writer.writerows([e["path"], e["error"]] for shard in shards for e in shard["errors"])
    _write_atomic(out_dir / ERRORS, text.getvalue().encode())
    return manifest


def read_embeddings(out_dir) -> tuple[list[str], np.ndarray]:
    """The ids and ``(n, D)`` float32 embeddings of an output folder's finished shards, in order."""
    manifest = json.loads((Path(out_dir) / MANIFEST).read_text())
    ids = [i for shard in manifest["shards"] for i in shard["ids"]]
    arrays = [np.load(Path(out_dir) / shard["file"]) for shard in manifest["shards"]]
    return ids, np.concatenate([np.zeros((0, manifest["dimension"]), np.float32), *arrays])


def read_shard(items: list[Item]) -> tuple[list[Item], list[np.ndarray], list[tuple[Item, str]]]:
    """The readable items and their audio, and the unreadable ones with their error message."""
    good, waves, errors = [], [], []
    for item, wave in zip(items, read_items(items)):
        if isinstance(wave, Exception):
            log.warning("skipped %s: %s", item.source, wave)
            errors.append((item, f"{type(wave).__name__}: {wave}"))
        else:
            good.append(item)
            waves.append(wave)
    return good, waves, errors


def extract_shard(embedder: Embedder, items: list[Item], index: int, out_dir: Path,
                  layers: list[int] | None, dimension: int) -> int:
    """Read, embed and write shard ``index`` of ``items``; returns the number of clips embedded."""
    good, waves, errors = read_shard(items)
    write_shard(out_dir, index, embed_shard(embedder, waves, layers, dimension), good, errors)
    return len(good)


def _check_resumable(out_dir: Path, header: dict):
    """Refuse to mix two different extractions in one folder."""
    path = out_dir / MANIFEST
    if not path.is_file():
        return
    header = json.loads(json.dumps(header))  # as it reads back from JSON (tuples become lists)
    old = {k: v for k, v in json.loads(path.read_text()).items() if k in header}
    if old != header:
        changed = sorted(k for k in header if old.get(k) != header[k])
        raise ValueError(f"{out_dir} holds another extraction (different {', '.join(changed)}); "
                         "choose another output folder")


def extract(input, embedder_name: str, out_dir, layers: list[int] | None = None,
            shard_size: int = 1000, device: str | None = None, window_seconds: float | None = None,
            max_seconds: float | None = None, engine: str = "local", address: str | None = None) -> dict:
    """Embed every clip of ``input`` into ``out_dir``; returns the run's summary.

    input: an audio folder, a challenge dataset folder or a CSV manifest (see tools.audio_io).
    layers: indices into ``embed_layers``' layer axis (negative counts from the end); None: all.
    engine: ``local`` embeds the shards here, one after the other; ``ray`` runs them on the Ray
    cluster at ``address`` (see `tools.extract_ray.connect`). Both write the same files.
    Unreadable clips are listed in ``errors.csv`` and skipped. Shards finished by an earlier run
    with the same settings are kept, so an interrupted run resumes where it stopped.
    """
    if engine not in ("local", "ray"):
        raise ValueError(f"unknown engine {engine!r}: expected 'local' or 'ray'")
    start = time.perf_counter()
    out_dir = Path(out_dir).resolve()
    input = Path(input).resolve()
    items = list_items(input)
    embedder = build_embedder(embedder_name, device, window_seconds, max_seconds)
    n_layers, layer_dim = layer_shape(embedder)
    if layers is not None and not all(-n_layers <= i < n_layers for i in layers):
        raise ValueError(f"layers {layers}: {embedder_name} has {n_layers} layer(s)")
    n_shards = -(-len(items) // shard_size)
    header = {"embedder": embedder_name, "weights": weights_info(embedder_name),
              "settings": embedder.settings(), "layers": "all" if layers is None else list(layers),
              "n_layers": n_layers, "layer_dimension": layer_dim,
              "dimension": layer_dim * (n_layers if layers is None else len(layers)),
              "input": str(input), "items": len(items), "shard_size": shard_size}
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_resumable(out_dir, header)
    write_manifest(out_dir, header, n_shards)

    pending = {index: items[index * shard_size:(index + 1) * shard_size]
               for index in range(n_shards) if not shard_done(out_dir, index)}
    if engine == "ray":
        from tools.extract_ray import extract_shards  # Ray is an optional dependency

        make_embedder = partial(build_embedder, embedder_name, device, window_seconds, max_seconds)
        embedded = extract_shards(pending, make_embedder, out_dir, layers, header["dimension"], address,
                                  use_gpus=device != "cpu")
    else:
        embedded = 0
        with tqdm(total=len(items), initial=len(items) - sum(map(len, pending.values())), unit="clip",
                  desc=embedder_name, disable=not sys.stderr.isatty()) as bar:
            for index, shard in pending.items():
                embedded += extract_shard(embedder, shard, index, out_dir, layers, header["dimension"])
                bar.update(len(shard))
    manifest = write_manifest(out_dir, header, n_shards)
    seconds = time.perf_counter() - start
    summary = {"clips": embedded, "seconds": round(seconds, 2),
               "clips_per_second": round(embedded / max(seconds, 1e-9), 2), "shards": n_shards,
               "shards_resumed": n_shards - len(pending), "engine": engine,
               "errors": sum(len(shard["errors"]) for shard in manifest["shards"]),
               "out_dir": str(out_dir)}
    log.info("extracted %(clips)d clips in %(seconds).1f s (%(clips_per_second).1f clips/s): "
             "%(shards)d shards (%(shards_resumed)d resumed), %(errors)d unreadable -> %(out_dir)s",
             summary)
    return summary
