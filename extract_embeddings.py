"""Embed every clip of an audio folder, challenge dataset or CSV manifest into .npy shards.

usage: python extract_embeddings.py INPUT --embedder NAME [--layers 3,4|all] [--out DIR]
       [--device cpu|cuda] [--shard-size N] [--window-seconds S] [--max-seconds S]
       [--engine local|ray [--address auto|ray://HOST:10001]]
"""

import argparse
import json
import logging
import sys

from tools.extract import extract


def parse_layers(text: str):
    """``all`` -> None, ``3,4`` -> [3, 4]."""
    return None if text == "all" else [int(i) for i in text.split(",")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", help="audio folder, challenge dataset folder or CSV (path[,label])")
    parser.add_argument("--embedder", required=True, help="a name registered in embedders.REGISTRY")
    parser.add_argument("--layers", type=parse_layers, default=None,
                        help="comma-separated layer indices, or 'all' (default)")
    parser.add_argument("--out", default="runs/embeddings", help="output folder (default: %(default)s)")
    parser.add_argument("--device", default=None, help="torch device (default: the embedder's)")
    parser.add_argument("--shard-size", type=int, default=1000, help="clips per shard (default: %(default)s)")
    parser.add_argument("--window-seconds", type=float, default=None, help="window length for long clips")
    parser.add_argument("--max-seconds", type=float, default=None, help="use only the start of each clip")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: this machine (default); ray: a Ray cluster (pip install .[ray])")
    parser.add_argument("--address", default=None,
                        help="with --engine ray: the cluster (auto, ray://HOST:10001); "
                             "default: $RAY_ADDRESS or this machine's, else a new local one")
    args = parser.parse_args(argv)
    if args.address and args.engine != "ray":
        parser.error("--address needs --engine ray")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    summary = extract(args.input, args.embedder, args.out, layers=args.layers,
                      shard_size=args.shard_size, device=args.device,
                      window_seconds=args.window_seconds, max_seconds=args.max_seconds,
                      engine=args.engine, address=args.address)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
