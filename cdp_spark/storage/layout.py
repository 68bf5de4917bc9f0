"""Serving layout: gold tables read by one key are range-partitioned and sorted by that key.

The call-centre look-up (:mod:`cdp_spark.profiles.lookup`) reads one person's rows with
delta-rs and pyarrow, which skip a file only when its min/max statistics in the Delta log
exclude the value. A table written in whatever order its Spark plan produced has every key
in every file, so every file is read. Written through :func:`serving_layout`, each file
holds one contiguous, sorted key range of at most :data:`ROWS_PER_FILE` rows: a look-up
opens one file (per date partition) whatever the table size.

:data:`SERVING_TABLES` names the tables and their keys. Stages write them through
:func:`serving_layout` on full writes; incremental MERGEs add small unsorted files, which
``cdp optimize`` (:func:`optimize_serving`) rewrites into the layout again.

Example:
    >>> ordered = serving_layout(clusters, "gold.identity_clusters", rows=7_400_000)
    ...                                                                   # doctest: +SKIP
    >>> lake.overwrite("gold.identity_clusters", ordered)                   # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark.sql import DataFrame

from cdp_spark.errors import CdpError
from cdp_spark.storage.base import Lakehouse, WriteResult

# Rows per output file: one file of a few MB is read per look-up (tens of milliseconds),
# and even 68M rows of gold.identity_clusters (1M customers) stay a few hundred log entries.
ROWS_PER_FILE = 250_000
# gold.customer_profiles is wide (~60 columns) and a look-up decodes a whole file (one row
# group): smaller files. Not smaller still: delta-rs builds every file's fragment on each
# look-up, so the file count costs too (100 files ~ 0.1 s).
WIDE_ROWS_PER_FILE = 100_000


@dataclass(frozen=True)
class ServingTable:
    """How one gold table is laid out: its date partition column (if any) and look-up key.

    Example:
        >>> SERVING_TABLES["gold.segment_membership"].sort_columns
        ('run_date', 'person_id')
    """

    keys: tuple[str, ...]
    partition: str | None = None
    rows_per_file: int = ROWS_PER_FILE

    @property
    def sort_columns(self) -> tuple[str, ...]:
        return ((self.partition,) if self.partition else ()) + self.keys


SERVING_TABLES: dict[str, ServingTable] = {
    "gold.identity_identifiers": ServingTable(("id_type", "id_value")),
    "gold.identity_clusters": ServingTable(("person_id",)),
    "gold.customer_profiles": ServingTable(("person_id",), rows_per_file=WIDE_ROWS_PER_FILE),
    "gold.person_activity": ServingTable(("person_id",)),
    "gold.scored_profiles": ServingTable(("person_id",), partition="score_date"),
    "gold.segment_membership": ServingTable(("person_id",), partition="run_date"),
}


def serving_layout(
    df: DataFrame, table: str, *, rows: int, rows_per_file: int | None = None
) -> DataFrame:
    """``df`` range-partitioned into files of about ``rows_per_file`` rows, sorted by the key.

    ``rows_per_file`` defaults to the table's own (:data:`SERVING_TABLES`).

    ``rows`` is how many rows ``df`` has (a count the caller already made, or an estimate):
    it only sets the number of files. Within a date partition the key ranges of the files
    are disjoint, so the min/max statistics of the Delta log point a look-up to one file.

    Raises:
        CdpError: when ``table`` has no serving layout.

    Example:
        >>> lake.overwrite(PROFILES, serving_layout(profiles, PROFILES, rows=2143))
        ...                                                                # doctest: +SKIP
    """
    spec = SERVING_TABLES.get(table)
    if spec is None:
        raise CdpError(
            f"{table} has no serving layout",
            hint=f"tables with one: {', '.join(sorted(SERVING_TABLES))}",
        )
    files = max(1, math.ceil(rows / max(1, rows_per_file or spec.rows_per_file)))
    cols = spec.sort_columns
    return df.repartitionByRange(files, *cols).sortWithinPartitions(*cols)


@dataclass(frozen=True)
class OptimizeResult:
    """What :func:`optimize_serving` did to one table: rows before and after, new version.

    Example:
        >>> OptimizeResult("gold.identity_clusters", rows_before=3, rows_after=3,
        ...                version_before=6, version=7).version
        7
    """

    table: str
    rows_before: int
    rows_after: int
    version_before: int
    version: int | None


def optimize_serving(
    lake: Lakehouse, table: str, *, rows_per_file: int | None = None
) -> OptimizeResult:
    """Rewrite ``table`` into its serving layout: the same rows, one overwrite commit.

    Safe to re-run: the rows of the current version are read, laid out and written back over
    the whole table in a single Delta commit (a failed run leaves the old version current).
    The rows of the new version are counted and compared with the old one's.

    Raises:
        CdpError: no serving layout for ``table``, the table does not exist, or the row count
            changed.

    Example:
        >>> optimize_serving(lake, "gold.identity_clusters").rows_after    # doctest: +SKIP
        7400312
    """
    if table not in SERVING_TABLES:
        raise CdpError(
            f"{table} has no serving layout",
            hint=f"tables with one: {', '.join(sorted(SERVING_TABLES))}",
        )
    if not lake.exists(table):
        raise CdpError(f"{table} does not exist", hint="run the stage that writes it first")
    # Pinned to one version: the rows counted are exactly the rows rewritten.
    version_before = lake.version(table)
    current = lake.read(table, version=version_before)
    rows_before = current.count()
    written: WriteResult = lake.overwrite(
        table, serving_layout(current, table, rows=rows_before, rows_per_file=rows_per_file)
    )
    version = written.version if written.version is not None else lake.version(table)
    rows_after = lake.read(table, version=version).count()
    if rows_after != rows_before:
        raise CdpError(
            f"{table}: {rows_before:,} rows in version {version_before}, "
            f"{rows_after:,} after the rewrite (version {version})",
            hint="another job wrote to the table meanwhile; check it and run `cdp optimize` again",
        )
    return OptimizeResult(table, rows_before, rows_after, version_before, written.version)
