"""spark-submit entry point of the ``publish`` stage.

Writes consent-filtered exports of profiles and audiences for downstream systems.

Usage::

    spark-submit jobs/publish.py --conf-profile local --run-date 2026-03-01
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cdp_spark.jobs import job_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the publish stage; returns the process exit code.

    Example:
        >>> main(["--conf-profile", "local", "--run-date", "2026-03-01"])  # doctest: +SKIP
        0
    """
    return job_main("publish", argv)


if __name__ == "__main__":
    sys.exit(main())
