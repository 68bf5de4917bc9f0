"""spark-submit entry point of the ``train`` stage (churn and/or purchase propensity).

Usage::

    spark-submit jobs/train.py --model all --conf-profile local --run-date 2026-03-01

``--model churn|propensity|all`` (default all); the other arguments are every job's
(:func:`cdp_spark.jobs.parse_job_args`). A model with too little labelled data is an error
here (exit code 2), unlike in ``cdp run all``, where it is skipped with a warning.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cdp_spark.jobs import job_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the train stage for the chosen model(s); returns the process exit code."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model", choices=["churn", "propensity", "all"], default="all")
    args, rest = parser.parse_known_args(list(argv) if argv is not None else None)
    models = ["churn", "propensity"] if args.model == "all" else [args.model]
    return job_main("train", rest, models=models, strict=True)


if __name__ == "__main__":
    sys.exit(main())
