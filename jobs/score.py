"""spark-submit entry point of the ``score`` stage.

Reads gold.features and the registered champion models; writes gold.scored_profiles.

Usage::

    spark-submit jobs/score.py --conf-profile local --run-date 2026-03-01
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cdp_spark.jobs import job_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the score stage; returns the process exit code.

    Example:
        >>> main(["--conf-profile", "local", "--run-date", "2026-03-01"])  # doctest: +SKIP
        0
    """
    return job_main("score", argv)


if __name__ == "__main__":
    sys.exit(main())
