"""Build the challenge submission zip and check that it runs offline on the sample data.

usage: python make_submission.py [--embedders a,b] [--out submission.zip] [--no-check]
       [--dataset DIR] [--time-budget S]
"""

import argparse
import logging
import sys

from challenge.ingestion import format_summary
from embedders import available_embedders
from tools.package import SAMPLE_DATA, PackagingError, build, check


def main(argv=None) -> int:
    """Build (and check) the zip; exit status 2 when it cannot be built or fails its check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedders", type=lambda s: s.split(","), default=None,
                        help="comma-separated embedder names (default: every available one)")
    parser.add_argument("--out", default="submission.zip", help="zip to write (default: %(default)s)")
    parser.add_argument("--no-check", action="store_true", help="skip the offline test run")
    parser.add_argument("--dataset", default=str(SAMPLE_DATA), help="check dataset (default: %(default)s)")
    parser.add_argument("--time-budget", type=float, default=30.0,
                        help="check run budget in seconds (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        summary = build(args.embedders or available_embedders(), args.out)
        print(f"{summary['zip']}: {summary['bytes'] / 1e6:.1f} MB")
        for name, files in summary["weights"].items():
            print(f"  {name}: {len(files)} weight file(s){': ' if files else ''}{', '.join(files)}")
        if not args.no_check:
            print("check:", format_summary(check(args.out, args.dataset, args.time_budget)))
    except PackagingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
