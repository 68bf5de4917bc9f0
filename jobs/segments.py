"""spark-submit entry point of the ``segments`` stage.

Reads gold.customer_profiles and gold.scored_profiles; writes gold.segment_membership and
gold.audience_changes.

Usage::

    spark-submit jobs/segments.py --conf-profile local --run-date 2026-03-01
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cdp_spark.jobs import job_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the segments stage; returns the process exit code.

    Example:
        >>> main(["--conf-profile", "local", "--run-date", "2026-03-01"])  # doctest: +SKIP
        0
    """
    return job_main("segments", argv)


if __name__ == "__main__":
    sys.exit(main())
