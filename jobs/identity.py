"""spark-submit entry point of the ``identity`` stage.

Reads the silver records; writes silver.identity_edges and gold.identity_clusters (persistent
person_id).

Usage::

    spark-submit jobs/identity.py --conf-profile local --run-date 2026-03-01
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cdp_spark.jobs import job_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the identity stage; returns the process exit code.

    Example:
        >>> main(["--conf-profile", "local", "--run-date", "2026-03-01"])  # doctest: +SKIP
        0
    """
    return job_main("identity", argv)


if __name__ == "__main__":
    sys.exit(main())
