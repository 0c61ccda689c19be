"""Run a submission on one dataset as the AutoSpeech challenge does, then score it.

usage: python run_local_test.py [--dataset_dir D] [--code_dir C] [--time_budget S] [--output_dir O]
"""

import argparse
import logging
import sys

from challenge.ingestion import DEFAULT_DATASET, REPO_ROOT, format_summary, run


def main(argv=None) -> int:
    """Parse arguments, run and print the summary; exit status 1 when the run had an error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset_dir", default=str(DEFAULT_DATASET),
                        help="challenge-format dataset (default: %(default)s)")
    parser.add_argument("--code_dir", default=str(REPO_ROOT),
                        help="directory holding model.py (default: %(default)s)")
    parser.add_argument("--time_budget", type=float, default=None,
                        help="seconds for train/test calls (default: meta.json's time_budget)")
    parser.add_argument("--output_dir", default=None,
                        help="where predictions and scores go (default: runs/<dataset>-<time>)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result = run(args.dataset_dir, args.code_dir, args.time_budget, args.output_dir)
    except (FileNotFoundError, ValueError) as e:  # bad inputs, DatasetError included
        parser.error(str(e))
    print(format_summary(result))
    return 1 if result["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
