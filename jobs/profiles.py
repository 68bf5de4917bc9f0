"""spark-submit entry point of the ``profiles`` stage.

Reads gold.identity_clusters and silver; writes gold.customer_profiles and gold.kpis.

Usage::

    spark-submit jobs/profiles.py --conf-profile local --run-date 2026-03-01
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cdp_spark.jobs import job_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the profiles stage; returns the process exit code.

    Example:
        >>> main(["--conf-profile", "local", "--run-date", "2026-03-01"])  # doctest: +SKIP
        0
    """
    return job_main("profiles", argv)


if __name__ == "__main__":
    sys.exit(main())
