"""spark-submit entry point of the right to erasure (the Airflow erasure DAG runs it).

Usage::

    spark-submit jobs/erase.py --conf-profile local --email ivan@mail.ru --dry-run
    CDP_ERASE_EMAIL=ivan@mail.ru spark-submit jobs/erase.py --from-env
    spark-submit jobs/erase.py --vacuum-only            # scheduled, after the retention
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from cdp_spark.privacy.job import erase_main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the erasure; returns the process exit code."""
    return erase_main(argv)


if __name__ == "__main__":
    sys.exit(main())
