"""The storage interface: named Delta tables by layer, whatever engine writes them.

Tables are named ``<layer>.<table>`` and live at ``<root>/<layer>/<table>``. Both engines
(:mod:`cdp_spark.storage.deltaspark` and :mod:`cdp_spark.storage.deltars`) write real Delta
tables at those paths, so any Delta reader (Spark, delta-rs, Polars, DuckDB) can read them.

Example:
    >>> lake = open_lakehouse(spark, "/data/lake")                        # doctest: +SKIP
    >>> lake.create("silver.crm_contacts", CONTACTS_SCHEMA, partition_by=["run_date"])
    >>> lake.merge("silver.crm_contacts", updates, keys=["contact_id"], txn=Txn("std_crm", 7))
    WriteResult(table='silver.crm_contacts', version=3, rows_written=120, files_added=2, ...)
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from cdp_spark.errors import CdpError, SchemaError

# ops holds the platform's own bookkeeping: run manifests, run reports.
LAYERS: tuple[str, ...] = ("bronze", "silver", "gold", "quarantine", "ops")
_TABLE_NAME = re.compile(r"^[a-z0-9_]+$")


class StorageError(CdpError):
    """A storage operation could not be done; the message says which table and why."""


class TableNotFoundError(StorageError):
    """The table has not been created (``Lakehouse.create``) at this lakehouse root."""


class TableSchemaError(StorageError, SchemaError):
    """The table exists with another schema, or a DataFrame does not fit the table's schema."""


class DuplicateKeyError(StorageError):
    """A MERGE source holds more than one row for the same key."""


class ConstraintViolationError(StorageError):
    """Rows break a rule of the write: NOT NULL columns, or the ``where`` of an overwrite."""


class ConcurrentWriteError(StorageError):
    """Another writer committed a conflicting change first; re-run the operation.

    Raised instead of the engine's own exception (delta-rs ``CommitFailedError``, delta-spark
    ``ConcurrentModificationException``), which is kept as ``__cause__``.
    """


@dataclass(frozen=True)
class Txn:
    """Idempotency key of a write: a job (``app_id``) and its run number (``version``).

    A write carrying ``Txn(app_id, v)`` is skipped when the table already holds a commit of
    ``app_id`` with a version >= ``v``, so a retried job never writes twice.

    Example:
        >>> Txn("ingest_crm", 20260101)
        Txn(app_id='ingest_crm', version=20260101)
    """

    app_id: str
    version: int

    def __post_init__(self) -> None:
        if not self.app_id:
            raise ValueError("Txn.app_id must not be empty")
        if self.version < 0:
            raise ValueError(f"Txn.version must be >= 0, got {self.version}")


@dataclass(frozen=True)
class WriteResult:
    """What a write committed.

    ``rows_written`` counts the rows of the caller's DataFrame that landed in the table (for a
    merge: inserted + updated rows), not rows copied unchanged out of rewritten files.
    ``skipped`` is True when the write's :class:`Txn` was already committed (a retry); then
    ``version`` is the table's current version and nothing was written.

    Example:
        >>> r = WriteResult("bronze.crm", version=4, rows_written=10, files_added=1, skipped=False)
        >>> (r.version, r.rows_written, r.skipped)
        (4, 10, False)
    """

    table: str
    version: int | None
    rows_written: int
    files_added: int
    skipped: bool
    files_removed: int = 0


@dataclass(frozen=True)
class TableInfo:
    """One table as :meth:`Lakehouse.list_tables` sees it, from the Delta log only (no data scan).

    ``engine`` is the engine that made the latest commit ("delta-rs", "delta-spark", or the
    writer's own engine string). ``rows`` is None when some file has no row count in the log.

    Example:
        >>> info = lake.list_tables()[0]          # doctest: +SKIP
        >>> (info.name, info.rows)
        ('bronze.crm_contacts', 2000)
    """

    name: str
    engine: str
    version: int
    rows: int | None
    size_bytes: int
    files: int
    last_write: datetime | None
    partition_by: tuple[str, ...]


def split_table_name(table: str) -> tuple[str, str]:
    """Check a ``<layer>.<table>`` name and return ``(layer, table)``.

    Only known layers and ``[a-z0-9_]+`` table names are accepted, so a name can never point
    outside the lakehouse (no ``..``, no ``/``).

    Example:
        >>> split_table_name("silver.crm_contacts")
        ('silver', 'crm_contacts')
        >>> split_table_name("silver/../etc")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: table name 'silver/../etc' must look like '<layer>.<table>' ...
    """
    layer, dot, name = table.partition(".")
    if not dot or not _TABLE_NAME.match(name) or layer not in LAYERS:
        raise ValueError(
            f"table name {table!r} must look like '<layer>.<table>' with layer one of "
            f"{', '.join(LAYERS)} and table matching [a-z0-9_]+ (e.g. 'silver.crm_contacts')"
        )
    return layer, name


class Lakehouse(ABC):
    """Named Delta tables under one root folder, for one Spark session.

    Get one with :func:`cdp_spark.storage.open_lakehouse`, which picks the engine. Writes take
    an optional :class:`Txn` that makes them idempotent; every write is one atomic commit.

    Example:
        >>> lake = open_lakehouse(spark, "lakehouse")          # doctest: +SKIP
        >>> lake.path("silver.crm_contacts")
        '/abs/lakehouse/silver/crm_contacts'
    """

    engine_name: str

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = root.rstrip("/") or "/"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={self.root!r}, engine={self.engine_name!r})"

    def path(self, table: str) -> str:
        """Where ``table`` lives: ``<root>/<layer>/<table>``.

        Example:
            >>> lake.path("gold.customer_profiles")            # doctest: +SKIP
            '/data/lake/gold/customer_profiles'
        """
        layer, name = split_table_name(table)
        return f"{self.root}/{layer}/{name}"

    @abstractmethod
    def exists(self, table: str) -> bool:
        """True when ``table`` is a Delta table.

        Example:
            >>> lake.exists("bronze.crm_contacts")             # doctest: +SKIP
            False
        """

    @abstractmethod
    def create(
        self,
        table: str,
        schema: StructType,
        *,
        partition_by: Sequence[str] = (),
        description: str | None = None,
    ) -> None:
        """Create an empty table; a no-op if it exists with the same schema and partitioning.

        Raises :class:`TableSchemaError` if it exists with another schema or partitioning.
        Partition columns must be string, integer, date or boolean columns.

        Example:
            >>> lake.create("bronze.crm", BRONZE_CRM, partition_by=["run_date"])  # doctest: +SKIP
        """

    @abstractmethod
    def append(self, table: str, df: DataFrame, *, txn: Txn | None = None) -> WriteResult:
        """Add the rows of ``df`` to ``table``.

        Example:
            >>> lake.append("bronze.crm", raw, txn=Txn("ingest_crm", 20260101))  # doctest: +SKIP
            WriteResult(table='bronze.crm', version=1, rows_written=500, files_added=2, ...)
        """

    @abstractmethod
    def overwrite(
        self,
        table: str,
        df: DataFrame,
        *,
        where: str | None = None,
        txn: Txn | None = None,
    ) -> WriteResult:
        """Replace the whole table, or exactly the rows matching ``where``, with ``df``.

        With ``where`` (a Spark SQL predicate over the table's columns) rows of the table that
        match it are replaced and all others kept, like Delta's ``replaceWhere``; a row of
        ``df`` that does not match ``where`` raises :class:`ConstraintViolationError` and
        nothing is committed.

        Example:
            >>> day = "run_date = '2026-01-01'"
            >>> lake.overwrite("silver.orders", day_df, where=day)    # doctest: +SKIP
        """

    @abstractmethod
    def merge(
        self,
        table: str,
        df: DataFrame,
        *,
        keys: Sequence[str],
        txn: Txn | None = None,
        delete_when: str | None = None,
    ) -> WriteResult:
        """Upsert ``df`` into ``table`` on ``keys``: matched rows take the source's values,
        unmatched source rows are inserted.

        ``delete_when`` is a Spark SQL predicate over the *source* columns: a matched target
        row whose source row satisfies it is deleted, and such a source row is never inserted.
        As in Delta's MERGE, a NULL key never matches (that source row is inserted). Source
        rows with the same non-NULL key raise :class:`DuplicateKeyError`. ``df`` is evaluated
        more than once: cache it if it is expensive or not deterministic.

        Example:
            >>> lake.merge("silver.contacts", changes, keys=["contact_id"],
            ...            delete_when="op = 'D'")                                # doctest: +SKIP
        """

    @abstractmethod
    def read(
        self,
        table: str,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
    ) -> DataFrame:
        """The table as a DataFrame: the latest version, or as of ``version`` / ``timestamp``.

        A naive ``datetime`` is taken as UTC; a string is ISO 8601 / RFC 3339.

        Example:
            >>> lake.read("silver.contacts", version=3).count()          # doctest: +SKIP
            1200
        """

    @abstractmethod
    def history(self, table: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first.

        Each entry has at least ``version`` (int), ``timestamp`` (aware UTC datetime),
        ``operation`` (str), ``operationParameters`` (dict) and ``engine`` (str).

        Example:
            >>> [h["operation"] for h in lake.history("bronze.crm", limit=2)]  # doctest: +SKIP
            ['WRITE', 'CREATE TABLE']
        """

    @abstractmethod
    def delete(self, table: str, where: str, *, txn: Txn | None = None) -> int:
        """Delete the rows matching ``where`` (Spark SQL); returns how many were deleted.

        Example:
            >>> lake.delete("silver.contacts", "person_id = 'p-42'")   # doctest: +SKIP
            3
        """

    @abstractmethod
    def vacuum(
        self,
        table: str,
        *,
        retention_hours: int = 168,
        dry_run: bool = False,
        enforce_retention: bool = True,
    ) -> list[str]:
        """Delete files no version younger than ``retention_hours`` needs; returns them.

        Versions older than the retention can no longer be read afterwards.
        ``enforce_retention=False`` allows a retention shorter than the table's
        ``delta.deletedFileRetentionDuration`` (7 days by default): only safe when no other
        job is writing to or reading an old version of the table.

        Example:
            >>> lake.vacuum("bronze.crm", dry_run=True)                # doctest: +SKIP
            []
        """

    @abstractmethod
    def optimize(self, table: str, *, target_file_mb: int = 128) -> dict[str, Any]:
        """Compact small files into files of about ``target_file_mb``; returns the metrics.

        The data does not change (the commit has ``dataChange=false``).

        Example:
            >>> lake.optimize("bronze.web_events")["numFilesRemoved"]   # doctest: +SKIP
            48
        """

    @abstractmethod
    def version(self, table: str) -> int:
        """The latest committed version of ``table``.

        Example:
            >>> lake.version("bronze.crm")                             # doctest: +SKIP
            4
        """

    @abstractmethod
    def list_tables(self) -> list[TableInfo]:
        """Every Delta table under the root, sorted by name, described from the log only.

        Example:
            >>> [t.name for t in lake.list_tables()]                   # doctest: +SKIP
            ['bronze.crm_contacts', 'silver.crm_contacts']
        """
