"""Embedding extraction on a Ray cluster: the shards of `tools.extract` as a Ray Data pipeline.

Each pending shard is one row. A Ray task reads its audio (`read_shard`, on CPUs); a pool of
actors, each holding one embedder loaded once (one GPU per actor on a GPU cluster), embeds it
(`embed_shard`) and writes it (`write_shard`). The output folder is therefore the one the
single-machine engine writes: the same ``.npy`` shards, records, ``manifest.json`` and
``errors.csv``, resumable the same way.

The project's code is shipped to the workers as the job's working directory; the input, the
output folder and the weights (``AUTOSPEECH_WEIGHTS``, passed on) must be at the same path on
every node. Ray is an optional dependency (the ``ray`` extra), imported only by this module.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

try:
    import ray
    from ray.data import ActorPoolStrategy
except ImportError as error:
    raise ImportError("the Ray engine needs Ray: pip install '.[ray]'") from error

from embedders import Embedder
from embedders.weights import weights_root
from tools.audio_io import Item
from tools.extract import embed_shard, read_shard, write_shard

log = logging.getLogger(__name__)

RAY_VERSION = "2.60.0"  # pinned by pyproject.toml's `ray` extra; `embed_options` follows its API
ROOT = Path(__file__).resolve().parent.parent
NOT_SHIPPED = ["sample_data", "tests"]  # besides .git and what .gitignore leaves out (weights, runs)


def runtime_env() -> dict:
    """The workers' environment: this project's code as working directory, the driver's weights.

    Give it to ``ray.init`` when starting Ray yourself before calling `extract_shards`."""
    return {"working_dir": str(ROOT), "excludes": NOT_SHIPPED,
            "env_vars": {"AUTOSPEECH_WEIGHTS": str(weights_root().resolve())}}


def connect(address: str | None) -> bool:
    """Join the Ray cluster at ``address`` (``auto``, ``ray://host:10001``; None: as ``ray.init``,
    ``RAY_ADDRESS`` or this machine's, else a new local one) unless this process already did;
    returns whether it connected (and so should disconnect)."""
    if ray.__version__ != RAY_VERSION:
        log.warning("ray %s is installed; this code is written for ray %s", ray.__version__, RAY_VERSION)
    if ray.is_initialized():
        return False
    ray.init(address=address, runtime_env=runtime_env())
    return True


def _read(batch: dict) -> dict:
    """Ray task: the audio of each shard of the batch, its readable items and its errors."""
    out = {"shard": [], "items": [], "waves": [], "failed": [], "errors": []}
    for shard, items in zip(batch["shard"], batch["items"]):
        good, waves, errors = read_shard([Item(**item) for item in items])
        out["shard"].append(shard)
        out["items"].append([asdict(item) for item in good])
        out["waves"].append(waves)
        out["failed"].append([asdict(item) for item, _ in errors])
        out["errors"].append([error for _, error in errors])
    return out


class _ShardEmbedder:
    """Ray actor: loads the embedder once, then embeds and writes the shards it is given."""

    def __init__(self, make_embedder: Callable[[], Embedder], out_dir: str, layers, dimension: int):
        self.embedder = make_embedder()
        self.out_dir, self.layers, self.dimension = Path(out_dir), layers, dimension

    def __call__(self, batch: dict) -> dict:
        clips = []
        for shard, items, waves, failed, errors in zip(batch["shard"], batch["items"], batch["waves"],
                                                       batch["failed"], batch["errors"]):
            waves = [np.array(wave) for wave in waves]  # writable copies of Arrow's read-only views
            embeddings = embed_shard(self.embedder, waves, self.layers, self.dimension)
            write_shard(self.out_dir, int(shard), embeddings, [Item(**item) for item in items],
                        list(zip([Item(**item) for item in failed], errors)))
            clips.append(len(items))
        return {"shard": batch["shard"], "clips": clips}


def embed_options(resources: dict, use_gpus: bool) -> dict:
    """`map_batches` arguments of the embedding stage: an actor pool of one actor per GPU, or per
    CPU, growing from one as work queues up; one shard per call.

    How to ask for an actor pool changed across Ray versions: ``concurrency=`` replaced
    ``compute=ActorPoolStrategy(...)`` in 2.9 and is deprecated again in the pinned version, which
    takes ``compute``. CPU actors hold one model copy each.
    """
    gpus = int(resources.get("GPU", 0)) if use_gpus else 0
    size = gpus or max(1, int(resources.get("CPU", 1)))
    return {"compute": ActorPoolStrategy(min_size=1, max_size=size), "batch_size": 1,
            "num_gpus": 1 if gpus else 0, "num_cpus": 1}


def extract_shards(shards: dict[int, list[Item]], make_embedder: Callable[[], Embedder], out_dir,
                   layers: list[int] | None, dimension: int, address: str | None = None,
                   use_gpus: bool = True) -> int:
    """Read, embed and write ``shards`` (index -> items) on a Ray cluster; returns the clips embedded.

    make_embedder: builds the embedder in each actor (it must pickle, e.g. a `functools.partial`).
    use_gpus: give each actor one GPU when the cluster has GPUs.
    """
    if not shards:
        return 0
    connected = connect(address)
    try:
        options = embed_options(ray.cluster_resources(), use_gpus)
        log.info("ray: %d shards on %s, embedding stage %s", len(shards), ray.cluster_resources(), options)
        rows = [{"shard": index, "items": [asdict(item) for item in items]} for index, items in shards.items()]
        dataset = (ray.data.from_items(rows, override_num_blocks=len(rows))
                   .map_batches(_read, batch_size=1, num_cpus=1)
                   .map_batches(_ShardEmbedder, fn_constructor_args=(make_embedder, os.fspath(out_dir),
                                                                     layers, dimension), **options))
        embedded = 0
        for row in dataset.iter_rows():
            embedded += int(row["clips"])
            log.info("ray: shard %d written (%d clips)", row["shard"], row["clips"])
        return embedded
    finally:
        if connected:
            ray.shutdown()
