"""spark-submit entry point: the ``web_events`` source's new landing files into bronze.

One job per source lets a scheduler run, retry and backfill sources independently; the code
path is the same as ``jobs/ingest.py --source web_events``.

Usage::

    spark-submit jobs/ingest_web_events.py --conf-profile local --run-date 2026-03-01
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cdp_spark.jobs import job_main

SOURCE = "web_events"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ingest stage for this source only; returns the process exit code.

    Example:
        >>> main(["--conf-profile", "local", "--run-date", "2026-03-01"])  # doctest: +SKIP
        0
    """
    return job_main("ingest", argv, sources=[SOURCE])


if __name__ == "__main__":
    sys.exit(main())
