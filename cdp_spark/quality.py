"""Data-quality checks shared by ingest and standardise: reconciliation and DQ figures.

Two promises of the platform live here (DESIGN.md, "Quality bar"):

- *counts reconcile*: for every ingest batch, the lines read from the landing files equal the
  rows that landed in bronze plus the rows that landed in quarantine, file by file. The check
  compares counts taken independently (physical lines counted while reading, rows counted by
  reading the tables back), so it catches a lost or duplicated write, not just arithmetic.
- *nothing is silently dropped*: every rejected record is in ``quarantine.records`` with a
  reason, and the per-run DQ report (``ops.dq_report``) shows the counts by reason.

Example:
    >>> check_reconciled("crm", 3, [FileCounts("crm/a.csv", read=5, bronze=4, quarantined=1)])
    []
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp_spark.errors import CdpError


class ReconciliationError(CdpError):
    """Records read do not equal records in bronze plus records in quarantine."""


@dataclass(frozen=True)
class FileCounts:
    """Counts of one landing file within one batch."""

    file_path: str
    read: int
    bronze: int
    quarantined: int

    @property
    def reconciled(self) -> bool:
        return self.read == self.bronze + self.quarantined


def check_reconciled(source: str, batch_id: int, counts: Sequence[FileCounts]) -> list[str]:
    """Raise :class:`ReconciliationError` unless every file of the batch reconciles.

    Returns the (empty) list of problems so callers can log it; the raise is the point.

    Example:
        >>> check_reconciled("crm", 1, [FileCounts("crm/a.csv", 5, 3, 1)])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        cdp_spark.quality.ReconciliationError: source crm batch 1 does not reconcile: ...
    """
    problems = [
        f"{c.file_path}: read {c.read} != bronze {c.bronze} + quarantined {c.quarantined}"
        for c in counts
        if not c.reconciled
    ]
    if problems:
        raise ReconciliationError(
            f"source {source} batch {batch_id} does not reconcile: " + "; ".join(problems),
            hint=(
                "a write was lost or duplicated, or a file of an interrupted batch changed "
                "before the retry; inspect ops.ingest_manifest and the batch in bronze"
            ),
        )
    return problems


def is_blank(col: Column) -> Column:
    """True where ``col`` is null or only whitespace (a missing value for a required field).

    Example:
        >>> df.where(is_blank(F.col("email")))   # doctest: +SKIP
    """
    return col.isNull() | (F.trim(col.cast("string")) == "")


def null_rates(df: DataFrame, columns: Iterable[str]) -> Column:
    """A ``map<string,double>`` aggregate: the share of null values of each column.

    Use inside ``df.agg``; an empty input gives rates of 0.0 rather than a division by zero.

    Example:
        >>> df.agg(null_rates(df, ["email"]).alias("r")).first().r   # doctest: +SKIP
        {'email': 0.25}
    """
    cols = list(columns)
    total = F.count(F.lit(1))
    pairs: list[Column] = []
    for name in cols:
        nulls = F.sum(F.when(F.col(name).isNull(), 1).otherwise(0))
        rate = F.when(total == 0, F.lit(0.0)).otherwise(nulls / total).cast("double")
        pairs += [F.lit(name), rate]
    if not pairs:
        return F.create_map().cast("map<string,double>")
    return F.create_map(*pairs)
