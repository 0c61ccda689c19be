"""Few-shot evaluation: N-way K-shot episodes, accuracy and normalized AUC with 95 % intervals.

usage: python fewshot.py DATASET --embedders a,b [--shots 1,5,10,20] [--episodes 100] [--ways N]
       [--heads linear,knn,prototype] [--seed 0] [--out DIR]
"""

import argparse
import logging
import sys

from tools import fewshot


def comma_list(cast):
    return lambda text: [cast(part) for part in text.split(",")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="challenge dataset folder (train+test pooled) "
                                        "or a folder with a subfolder of audio files per class")
    parser.add_argument("--embedders", type=comma_list(str), required=True, help="comma-separated names")
    parser.add_argument("--shots", type=comma_list(int), default=[1, 5, 10, 20],
                        help="K values (default: 1,5,10,20)")
    parser.add_argument("--episodes", type=int, default=100, help="episodes per K (default: %(default)s)")
    parser.add_argument("--ways", type=int, default=None, help="classes per episode (default: all)")
    parser.add_argument("--heads", type=comma_list(str), default=["linear", "knn", "prototype"],
                        help="heads from heads.REGISTRY (default: linear,knn,prototype)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/fewshot",
                        help="folder for fewshot.csv and fewshot.png (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rows = fewshot.run(args.dataset, args.embedders, args.shots, args.episodes, args.out,
                       ways=args.ways, heads=args.heads, seed=args.seed)
    print(fewshot.format_table(rows))
    print(f"written: {args.out}/fewshot.csv, {args.out}/fewshot.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
