"""spark-submit entry point of the ``standardize`` stage (every declared source).

Usage::

    spark-submit jobs/standardize.py --conf-profile local --run-date 2026-03-01
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cdp_spark.jobs import job_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the standardize stage; returns the process exit code."""
    return job_main("standardize", argv)


if __name__ == "__main__":
    sys.exit(main())
