"""The delta-rs engine: Spark writes the Parquet files, delta-rs commits them to the Delta log.

No Delta jar is needed. Every write is a two-phase commit:

1. the driver loads the table's snapshot (delta-rs reads the log) and, for a MERGE, DELETE or
   ``overwrite(where=...)``, finds with a Spark job the few files that hold affected rows
   (via ``_metadata.file_path``), collecting only file names and counts;
2. Spark tasks write the new Parquet files, in parallel, into a fresh folder inside the table
   (``<table>/part-<uuid>/...``, Hive-style partition folders below it): the unaffected rows
   of rewritten files plus the new rows;
3. the driver reads the new files' Parquet footers (row counts, min/max, null counts) and
   commits, in ONE Delta commit, ``add`` actions for the new files and ``remove`` actions for
   the rewritten ones through ``DeltaTable.create_write_transaction``.

delta-rs's conflict checker validates the commit against whatever other writers committed
since the snapshot (a conflict becomes :class:`ConcurrentWriteError`), and a :class:`Txn` is
committed with the data as a Delta ``txn`` action, so a retried job sees it and skips.
Files of a failed or conflicting write are deleted; files of a crashed driver are unreferenced
and removed by ``vacuum``.

Reads list the snapshot's files from delta-rs and hand them to Spark's Parquet reader; the
partition columns come from the log's partition values.

Example:
    >>> lake = DeltaRsLakehouse(spark, "/data/lake")                      # doctest: +SKIP
    >>> lake.append("bronze.crm_contacts", df, txn=Txn("ingest_crm", 20260101))
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound
from deltalake.transaction import AddAction, CommitProperties, RemoveAction, Transaction
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_spark.storage import _files
from cdp_spark.storage._schema import (
    check_keys,
    check_partition_columns,
    check_unique_keys,
    conform,
    from_delta_schema,
    parse_predicate,
    schema_differences,
    to_delta_schema,
    violation_from,
)
from cdp_spark.storage.base import (
    LAYERS,
    ConcurrentWriteError,
    Lakehouse,
    StorageError,
    TableInfo,
    TableNotFoundError,
    TableSchemaError,
    Txn,
    WriteResult,
    split_table_name,
)

log = logging.getLogger(__name__)

FILE_COL = "__cdp_file"
_DELETE_COL = "__cdp_delete"
_KEY_COL = "__cdp_file_key"
# A MERGE source of at most this many rows has its keys broadcast (some tens of MB).
MERGE_BROADCAST_MAX_ROWS = 1_000_000
TIMESTAMP_CONF = "spark.sql.parquet.outputTimestampType"
# Fault-injection hook for the crash tests (tests/test_faults.py): "<table>=<marker file>"
# makes a writer of <table> create the marker and sleep just before its Delta commit, with
# its Parquet files written, so the test can SIGKILL it at that exact point.
PAUSE_BEFORE_COMMIT_ENV = "CDP_TEST_PAUSE_BEFORE_COMMIT"


@dataclass(frozen=True)
class _File:
    rel: str  # relative to the table root, decoded (as on disk)
    size: int
    partition_values: dict[str, str | None]
    num_records: int | None


@dataclass
class _Snapshot:
    """One version of one table, and the DeltaTable commits must go through: delta-rs
    checks a commit for conflicts against the version the DeltaTable was loaded at."""

    table: str
    uri: str
    dt: DeltaTable
    schema: T.StructType
    partition_by: list[str]
    files: list[_File]

    @property
    def version(self) -> int:
        return self.dt.version()


@dataclass(frozen=True)
class _Hit:
    """A file with rows matched by a predicate or a merge key."""

    file: _File
    matched: int

    @property
    def full(self) -> bool:
        return self.file.num_records == self.matched


def engine_of(commit: dict[str, Any]) -> str:
    """Which engine wrote a commit, from its ``engineInfo`` / ``clientVersion``.

    Example:
        >>> engine_of({"engineInfo": "Apache-Spark/4.0.0 Delta-Lake/4.0.0"})
        'delta-spark'
    """
    info = str(commit.get("engineInfo") or commit.get("clientVersion") or "unknown")
    if info.startswith("delta-rs"):
        return "delta-rs"
    if "Delta-Lake" in info or "Databricks" in info:
        return "delta-spark"
    return info


def normalize_commit(commit: dict[str, Any], file_millis: int | None = None) -> dict[str, Any]:
    """A delta-rs history entry with an aware ``timestamp`` and an ``engine``.

    ``timestamp`` is the commit file's modification time when known, as in delta-spark's
    history: time travel by timestamp goes by that time, not by the writer's clock
    (kept as ``commitTimestamp``).

    Example:
        >>> c = normalize_commit({"version": 1, "timestamp": 0, "engineInfo": "delta-rs:py-1.6"})
        >>> (c["timestamp"].year, c["engine"])
        (1970, 'delta-rs')
    """
    out = dict(commit)
    millis = out.get("timestamp")
    if isinstance(millis, int | float):
        out["commitTimestamp"] = datetime.fromtimestamp(millis / 1000, tz=UTC)
    if file_millis is not None:
        millis = file_millis
    if isinstance(millis, int | float):
        out["timestamp"] = datetime.fromtimestamp(millis / 1000, tz=UTC)
    out.setdefault("operationParameters", {})
    out["engine"] = engine_of(commit)
    return out


class DeltaRsLakehouse(Lakehouse):
    """Delta tables written by Spark and committed by delta-rs (no Delta jar needed).

    ``storage_options`` go to delta-rs for object stores (e.g. ``AWS_REGION``); Spark uses
    its Hadoop configuration for the same paths.

    Example:
        >>> lake = DeltaRsLakehouse(spark, "lakehouse")                 # doctest: +SKIP
        >>> lake.engine_name
        'delta-rs'
    """

    engine_name = "delta-rs"

    def __init__(
        self,
        spark: SparkSession,
        root: str,
        *,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        check_session(spark)
        super().__init__(spark, _files.normalize_root(root))
        self._storage_options = storage_options

    @cached_property
    def _storage(self) -> _files.Storage:
        # Lazily: resolving an object store (e.g. the S3 region) may call the network.
        return _files.Storage.for_root(self.root)

    # ------------------------------------------------------------------ tables

    def exists(self, table: str) -> bool:
        return DeltaTable.is_deltatable(self._native(self.path(table)), self._storage_options)

    def create(
        self,
        table: str,
        schema: T.StructType,
        *,
        partition_by: Sequence[str] = (),
        description: str | None = None,
    ) -> None:
        partition_by = list(partition_by)
        check_partition_columns(table, schema, partition_by)
        if self.exists(table):
            self._check_same_schema(table, schema, partition_by)
            return
        uri = self.path(table)
        try:
            DeltaTable.create(
                self._native(uri),
                to_delta_schema(schema, table),
                mode="error",
                partition_by=partition_by or None,
                name=table,
                description=description,
                storage_options=self._storage_options,
            )
        except DeltaError:
            # Another job may have created it in the meantime: fine if it is the same table.
            if not self.exists(table):
                raise
            self._check_same_schema(table, schema, partition_by)

    def _check_same_schema(self, table: str, schema: T.StructType, partition_by: list[str]) -> None:
        snap = self._load(table, with_files=False)
        diffs = schema_differences(snap.schema, snap.partition_by, schema, partition_by)
        if diffs:
            raise TableSchemaError(
                f"{table} exists with another schema: {'; '.join(diffs)}",
                hint="migrate the table explicitly; create() never changes an existing table",
            )

    def version(self, table: str) -> int:
        return self._load(table, with_files=False).version

    def history(self, table: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first (read from the log by delta-rs).

        Commits of this engine record their logical operation (APPEND, OVERWRITE, MERGE,
        DELETE) in ``operationParameters["cdpOperation"]`` (Delta's own ``operation`` says
        ``WRITE`` for all of them) and Delta's metric names in ``operationMetrics``
        (numFiles, numOutputRows, numOutputBytes, numRemovedFiles, numDeletedRows...).

        Example:
            >>> lake.history("bronze.crm", limit=1)[0]["operation"]     # doctest: +SKIP
            'WRITE'
        """
        return self._commits(self._load(table, with_files=False), limit)

    def _commits(self, snap: _Snapshot, limit: int | None) -> list[dict[str, Any]]:
        commit_times = self._storage.file_times(f"{snap.uri}/_delta_log")
        return [
            normalize_commit(c, commit_times.get(f"{c['version']:020d}.json"))
            for c in snap.dt.history(limit)
        ]

    def list_tables(self) -> list[TableInfo]:
        infos: list[TableInfo] = []
        for layer in LAYERS:
            for name in self._storage.list_dirs(f"{self.root}/{layer}"):
                table = f"{layer}.{name}"
                try:
                    split_table_name(table)
                except ValueError:
                    continue
                if self.exists(table):
                    infos.append(self._table_info(table))
        return sorted(infos, key=lambda i: i.name)

    def _table_info(self, table: str) -> TableInfo:
        snap = self._load(table)
        latest = self._commits(snap, 1)[0]
        counts = [f.num_records for f in snap.files]
        return TableInfo(
            name=table,
            engine=latest["engine"],
            version=snap.version,
            rows=None if any(c is None for c in counts) else sum(c or 0 for c in counts),
            size_bytes=sum(f.size for f in snap.files),
            files=len(snap.files),
            last_write=latest.get("timestamp"),
            partition_by=tuple(snap.partition_by),
        )

    # ------------------------------------------------------------------ reads

    def read(
        self,
        table: str,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
    ) -> DataFrame:
        """The table, or one of its versions, as a Spark DataFrame.

        Partitioned tables whose files sit in Hive-style folders that agree with the log are
        read with Spark's partition discovery, so filters on partition columns prune files;
        other layouts get their partition values from the log through a broadcast join.

        Example:
            >>> lake.read("silver.orders", timestamp="2026-01-01T00:00:00Z")  # doctest: +SKIP
        """
        snap = self._load(table, version=version, timestamp=timestamp)
        return self._scan(snap)

    def _scan(
        self, snap: _Snapshot, files: list[_File] | None = None, *, with_file: bool = False
    ) -> DataFrame:
        """The rows of ``files`` (default: all of the snapshot), in the table's column order,
        plus the Spark path of each row's file as ``FILE_COL`` if asked."""
        files = snap.files if files is None else files
        names = snap.schema.fieldNames()
        extra = [FILE_COL] if with_file else []
        if not files:
            empty = self.spark.createDataFrame([], snap.schema)
            if with_file:
                empty = empty.withColumn(FILE_COL, F.lit(None).cast("string"))
            return empty
        uris = [f"{snap.uri}/{f.rel}" for f in files]
        data_schema = T.StructType(
            [f for f in snap.schema.fields if f.name not in snap.partition_by]
        )
        if not snap.partition_by or all(_in_hive_folder(f, snap.partition_by) for f in files):
            reader = self.spark.read.schema(data_schema if not snap.partition_by else snap.schema)
            if snap.partition_by:
                # Folders like part-<uuid> above the k=v folders are not partitions; without
                # ignoreInvalidPartitionPaths Spark takes each one for a different table root.
                reader = reader.option("basePath", snap.uri).option(
                    "ignoreInvalidPartitionPaths", "true"
                )
            df = reader.parquet(*uris)
            if with_file:
                df = df.select("*", F.col("_metadata.file_path").alias(FILE_COL))
            return df.select(*[F.col(f"`{n}`") for n in names + extra])
        # Files outside Hive-style folders (other writers' layouts): partition values from the
        # log, joined on the file's path. The file list is small; broadcast it.
        raw = (
            self.spark.read.schema(data_schema)
            .parquet(*uris)
            .select("*", F.col("_metadata.file_path").alias(FILE_COL))
        )
        values = self.spark.createDataFrame(
            [
                (
                    _files.log_file_key(snap.uri, f.rel),
                    *[f.partition_values[c] for c in snap.partition_by],
                )
                for f in files
            ],
            T.StructType(
                [T.StructField(_KEY_COL, T.StringType())]
                + [T.StructField(c, T.StringType()) for c in snap.partition_by]
            ),
        ).select(
            _KEY_COL,
            *[F.col(c).cast(snap.schema[c].dataType).alias(c) for c in snap.partition_by],
        )
        joined = raw.withColumn(_KEY_COL, _spark_key(F.col(FILE_COL))).join(
            F.broadcast(values), _KEY_COL
        )
        return joined.select(*[F.col(f"`{n}`") for n in names + extra])

    # ------------------------------------------------------------------ writes

    def append(self, table: str, df: DataFrame, *, txn: Txn | None = None) -> WriteResult:
        snap = self._load(table, with_files=False, write=True)
        if self._already_committed(snap, txn):
            return self._skipped(snap, txn)
        data = conform(df, snap.schema, table)
        folder, adds, rows = self._write(snap, data)
        # A blind append reads nothing: commit on the newest snapshot, so that writers who
        # committed while Spark was writing do not count as conflicts.
        fresh = self._load(table, with_files=False, write=True)
        if self._already_committed(fresh, txn):
            # The same job committed while this one was writing: drop this copy.
            self._storage.delete_dir(f"{fresh.uri}/{folder}")
            return self._skipped(fresh, txn)
        return self._commit(
            fresh, folder, adds, [], mode="append", operation="APPEND", txn=txn, rows=rows
        )

    def overwrite(
        self,
        table: str,
        df: DataFrame,
        *,
        where: str | None = None,
        txn: Txn | None = None,
    ) -> WriteResult:
        snap = self._load(table, write=True)
        if self._already_committed(snap, txn):
            return self._skipped(snap, txn)
        if where is None:
            data = conform(df, snap.schema, table)
            folder, adds, rows = self._write(snap, data)
            return self._commit(
                snap,
                folder,
                adds,
                snap.files,
                mode="append",
                operation="OVERWRITE",
                txn=txn,
                rows=rows,
            )
        predicate = parse_predicate(where, table)
        data = conform(
            df,
            snap.schema,
            table,
            checks=[(predicate, f"a row of the DataFrame does not match where: {where}")],
        )
        affected = self._affected_files(snap, predicate, where)
        partial = [a for a in affected if not a.full]
        new = data
        if partial:
            kept = self._scan(snap, [a.file for a in partial])
            new = data.unionByName(kept.where(~F.coalesce(predicate, F.lit(False))))
        folder, adds, rows = self._write(snap, new)
        return self._commit(
            snap,
            folder,
            adds,
            [a.file for a in affected],
            mode="append",
            operation="OVERWRITE",
            txn=txn,
            rows=rows - _unmatched_rows(partial, rows),
            params={"predicate": where},
        )

    def merge(
        self,
        table: str,
        df: DataFrame,
        *,
        keys: Sequence[str],
        txn: Txn | None = None,
        delete_when: str | None = None,
    ) -> WriteResult:
        keys = list(keys)
        # The snapshot the merge reads is the one it commits against.
        snap = self._load(table, write=True)
        check_keys(table, keys, snap.schema, df)
        if self._already_committed(snap, txn):
            return self._skipped(snap, txn)
        flag = (
            F.coalesce(parse_predicate(delete_when, table), F.lit(False))
            if delete_when
            else F.lit(False)
        )
        # Materialised once: the key check, the file matching and the write all read it.
        source = df.withColumn(_DELETE_COL, flag).localCheckpoint()
        check_unique_keys(table, source, keys)
        upserts = conform(source.where(~F.col(_DELETE_COL)), snap.schema, table, allow_extra=True)
        source_keys = source.select(*keys)
        if source.count() <= MERGE_BROADCAST_MAX_ROWS:
            # A small source filters the table where it is read instead of shuffling it.
            source_keys = F.broadcast(source_keys)
        matched = (
            self._scan(snap, with_file=True)
            .join(source_keys, keys, "left_semi")
            .groupBy(FILE_COL)
            .count()
            .collect()
        )
        touched = self._match_spark_files(snap, matched)
        new = upserts
        if touched:
            kept = self._scan(snap, [a.file for a in touched])
            new = upserts.unionByName(kept.join(source_keys, keys, "left_anti"))
        folder, adds, rows = self._write(snap, new)
        return self._commit(
            snap,
            folder,
            adds,
            [a.file for a in touched],
            mode="append",
            operation="MERGE",
            txn=txn,
            rows=rows - _unmatched_rows(touched, rows),
            params={"keys": ",".join(keys), "deleteWhen": delete_when or ""},
        )

    def delete(self, table: str, where: str, *, txn: Txn | None = None) -> int:
        snap = self._load(table, write=True)
        if self._already_committed(snap, txn):
            return 0
        predicate = parse_predicate(where, table)
        affected = self._affected_files(snap, predicate, where)
        if not affected and txn is None:
            return 0  # nothing to delete and no txn to record
        deleted = sum(a.matched for a in affected)
        partial = [a.file for a in affected if not a.full]
        folder: str | None = None
        adds: list[AddAction] = []
        if partial:
            kept = self._scan(snap, partial).where(~F.coalesce(predicate, F.lit(False)))
            folder, adds, _ = self._write(snap, kept)
        self._commit(
            snap,
            folder,
            adds,
            [a.file for a in affected],
            mode="append",
            operation="DELETE",
            txn=txn,
            rows=0,
            params={"predicate": where},
            metrics={"numDeletedRows": deleted},
        )
        return deleted

    # ------------------------------------------------------------------ maintenance

    def vacuum(
        self,
        table: str,
        *,
        retention_hours: int = 168,
        dry_run: bool = False,
        enforce_retention: bool = True,
    ) -> list[str]:
        """Delete unreferenced files older than ``retention_hours``; returns their paths.

        Runs in delta-rs, in the driver process (Rust: only file listings, no data passes
        through Python). A "full" vacuum: files that no version references (a crashed write)
        are removed too, and the folders left empty.

        Example:
            >>> lake.vacuum("bronze.crm", dry_run=True)                  # doctest: +SKIP
            ['part-1d0c.../part-00000-....snappy.parquet']
        """
        dt = self._load(table, with_files=False).dt
        removed = dt.vacuum(
            retention_hours=retention_hours,
            dry_run=dry_run,
            enforce_retention_duration=enforce_retention,
            full=True,
        )
        if not dry_run:
            self._storage.remove_empty_dirs(self.path(table), keep=["_delta_log"])
        return sorted(removed)

    def optimize(self, table: str, *, target_file_mb: int = 128) -> dict[str, Any]:
        """Bin-pack small files into files of about ``target_file_mb`` (delta-rs compaction).

        Runs in delta-rs, in the driver process (Rust, multi-threaded, streaming): the data
        passes through the driver machine but not through Python objects. Good for the
        bronze/silver tables of a CDP; for very large tables prefer delta-spark's OPTIMIZE.

        Example:
            >>> lake.optimize("bronze.web_events")["numFilesRemoved"]   # doctest: +SKIP
            48
        """
        dt = self._load(table, with_files=False).dt
        try:
            return dict(dt.optimize.compact(target_size=target_file_mb * 1024 * 1024))
        except CommitFailedError as exc:
            raise ConcurrentWriteError(
                f"{table}: optimize conflicted with a concurrent write: {exc}",
                hint="run optimize again",
            ) from exc

    # ------------------------------------------------------------------ internals

    def _native(self, uri: str) -> str:
        return _files.native_uri(uri)

    def _load(
        self,
        table: str,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
        with_files: bool = True,
        write: bool = False,
    ) -> _Snapshot:
        if version is not None and timestamp is not None:
            raise ValueError(f"{table}: give version or timestamp, not both")
        uri = self.path(table)
        try:
            dt = DeltaTable(
                self._native(uri), version=version, storage_options=self._storage_options
            )
            if timestamp is not None:
                dt.load_as_version(timestamp)
        except DeltaTableNotFound as exc:
            raise TableNotFoundError(
                f"{table} does not exist at {uri}",
                hint="create it first with Lakehouse.create(table, schema, ...)",
            ) from exc
        except DeltaError as exc:
            when = f"version {version}" if version is not None else f"timestamp {timestamp}"
            raise StorageError(f"{table}: cannot load {when}: {exc}") from exc
        check_protocol(table, dt, write=write)
        partition_by = list(dt.metadata().partition_columns)
        files = _snapshot_files(dt, partition_by) if with_files else []
        return _Snapshot(table, uri, dt, from_delta_schema(dt.schema()), partition_by, files)

    def _already_committed(self, snap: _Snapshot, txn: Txn | None) -> bool:
        if txn is None:
            return False
        done = snap.dt.transaction_version(txn.app_id)
        return done is not None and done >= txn.version

    def _skipped(self, snap: _Snapshot, txn: Txn | None) -> WriteResult:
        log.info("%s: %s already committed, write skipped", snap.table, txn)
        return WriteResult(snap.table, snap.version, 0, 0, skipped=True)

    def _write(self, snap: _Snapshot, df: DataFrame) -> tuple[str, list[AddAction], int]:
        """Phase one: Spark writes ``df`` as Parquet into a fresh folder of the table."""
        folder = f"part-{uuid.uuid4().hex}"
        target = f"{snap.uri}/{folder}"
        writer = (
            df.write.mode("errorifexists")
            # Per-write Hadoop setting: no _SUCCESS marker among the table's files.
            .option("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        )
        if snap.partition_by:
            writer = writer.partitionBy(*snap.partition_by)
        try:
            writer.parquet(target)
        except Exception as exc:
            self._storage.delete_dir(target)
            violation = violation_from(exc)
            if violation is not None:
                raise violation from exc
            raise
        adds, rows = _files.build_add_actions(
            self._storage, snap.uri, folder, snap.schema, snap.partition_by
        )
        return folder, adds, rows

    def _commit(
        self,
        snap: _Snapshot,
        folder: str | None,
        adds: list[AddAction],
        removed: list[_File],
        *,
        mode: str,
        operation: str,
        txn: Txn | None,
        rows: int,
        params: dict[str, str] | None = None,
        metrics: dict[str, int] | None = None,
    ) -> WriteResult:
        """Phase two: one Delta commit of the new files, the removed files and the txn."""
        write_id = uuid.uuid4().hex
        now = int(time.time() * 1000)
        actions: list[AddAction | RemoveAction] = [*adds]
        actions += [RemoveAction(f.rel, True, now, f.size, f.partition_values) for f in removed]
        # Delta's metric names (as delta-spark records them), as strings like Delta's.
        counts = {
            "numFiles": len(adds),
            "numOutputRows": sum(json.loads(a.stats)["numRecords"] for a in adds),
            "numOutputBytes": sum(a.size for a in adds),
            "numRemovedFiles": len(removed),
            "numSourceRowsWritten": rows,
            **(metrics or {}),
        }
        properties = CommitProperties(
            custom_metadata={
                "operationParameters": {"cdpOperation": operation, **(params or {})},
                "operationMetrics": {k: str(v) for k, v in counts.items()},
                "cdpWriteId": write_id,
            },
            app_transactions=[Transaction(txn.app_id, txn.version)] if txn else None,
        )
        try:
            self._commit_actions(snap, actions, mode, properties)
        except CommitFailedError as exc:
            # Certainly not committed: the new files are garbage.
            if folder is not None:
                self._storage.delete_dir(f"{snap.uri}/{folder}")
            if txn is not None:
                latest = self._load(snap.table, with_files=False)
                if self._already_committed(latest, txn):
                    # The same job committed concurrently (a retry racing its original).
                    return self._skipped(latest, txn)
            raise ConcurrentWriteError(
                f"{snap.table}: a concurrent write conflicts with this {operation} "
                f"(read at version {snap.version}): {exc}",
                hint="re-run the operation; it reads the table anew",
            ) from exc
        return WriteResult(
            table=snap.table,
            version=self._version_of(snap, write_id),
            rows_written=rows,
            files_added=len(adds),
            skipped=False,
            files_removed=len(removed),
        )

    def _commit_actions(
        self,
        snap: _Snapshot,
        actions: list[AddAction | RemoveAction],
        mode: str,
        properties: CommitProperties,
    ) -> None:
        # Kept separate so tests can interpose a competing writer just before the commit.
        _pause_point(snap.table)
        snap.dt.create_write_transaction(
            actions,
            mode,
            snap.dt.schema(),
            partition_by=snap.partition_by or None,
            commit_properties=properties,
        )

    def _version_of(self, snap: _Snapshot, write_id: str) -> int:
        # delta-rs may have rebased the commit past concurrent blind appends, so look for it.
        dt = DeltaTable(self._native(snap.uri), storage_options=self._storage_options)
        for commit in dt.history(20):
            if commit.get("cdpWriteId") == write_id:
                return int(commit["version"])
        return dt.version()

    def _affected_files(self, snap: _Snapshot, predicate: Column, sql: str) -> list[_Hit]:
        """The files holding rows that match ``predicate``, with how many match.

        A predicate over partition columns only is decided from the log alone (no data read);
        otherwise one Spark job counts the matching rows per file, with the predicate pushed
        down to the Parquet reader (and partition pruning, for Hive-style layouts).
        """
        if not snap.files:
            return []
        columns = referenced_columns(self.spark, sql)
        partition_columns = {c.lower() for c in snap.partition_by}
        if columns is not None and {c.lower() for c in columns} <= partition_columns:
            chosen = self._match_partitions(snap, predicate)
            if all(f.num_records is not None for f in chosen):
                return [_Hit(f, f.num_records or 0) for f in chosen]
        per_file = (
            self._scan(snap, with_file=True).where(predicate).groupBy(FILE_COL).count().collect()
        )
        return self._match_spark_files(snap, per_file)

    def _match_partitions(self, snap: _Snapshot, predicate: Column) -> list[_File]:
        """Files whose partition values satisfy ``predicate`` (over partition columns only),
        evaluated on a small in-memory table of the log's partition values."""
        schema = T.StructType(
            [T.StructField("__i", T.IntegerType())]
            + [T.StructField(c, T.StringType()) for c in snap.partition_by]
        )
        rows = [
            (i, *[f.partition_values.get(c) for c in snap.partition_by])
            for i, f in enumerate(snap.files)
        ]
        values = self.spark.createDataFrame(rows, schema).select(
            "__i", *[F.col(c).cast(snap.schema[c].dataType).alias(c) for c in snap.partition_by]
        )
        chosen = values.where(predicate).select("__i").collect()
        return [snap.files[r[0]] for r in chosen]

    def _match_spark_files(self, snap: _Snapshot, counts: list[Any]) -> list[_Hit]:
        """``(Spark file path, matched rows)`` rows -> hits on the snapshot's files."""
        by_key = {_files.log_file_key(snap.uri, f.rel): f for f in snap.files}
        return [_Hit(by_key[_files.spark_file_key(path)], int(n)) for path, n in counts]


def _pause_point(table: str) -> None:
    """The crash tests' kill point (see ``PAUSE_BEFORE_COMMIT_ENV``); a no-op otherwise."""
    spec = os.environ.get(PAUSE_BEFORE_COMMIT_ENV)
    if not spec:
        return
    target, _, marker = spec.partition("=")
    if target == table and marker:
        with open(marker, "w", encoding="utf-8") as fh:
            fh.write(str(os.getpid()))
        time.sleep(600)


def referenced_columns(spark: SparkSession, sql: str) -> set[str] | None:
    """The top-level columns a SQL predicate names, or None when that cannot be told (a
    subquery, a ``*``, a Spark Connect session).

    Spark's own parser is asked (through the JVM): trying the predicate on a DataFrame and
    catching the AnalysisException would also work, but PySpark logs every such exception
    at ERROR level.

    Example:
        >>> where = "run_date = '2026-01-01' AND id > 3"
        >>> sorted(referenced_columns(spark, where))  # doctest: +SKIP
        ['id', 'run_date']
    """
    try:
        node = spark._jsparkSession.sessionState().sqlParser().parseExpression(sql)
    except Exception:
        return None
    names: set[str] = set()
    pending = [node]
    while pending:
        node = pending.pop()
        kind = node.getClass().getSimpleName()
        if kind == "UnresolvedAttribute":
            names.add(str(node.nameParts().head()))
        elif "Subquery" in kind or kind in ("Exists", "ListQuery", "UnresolvedStar"):
            return None
        children = node.children()
        pending.extend(children.apply(i) for i in range(children.size()))
    return names


# What this engine's reads and writes handle. Other features (deletion vectors, column
# mapping, CHECK constraints, generated or identity columns, change data feed...) change how
# files must be read or what a writer must do, which plain Parquet files + add/remove actions
# do not honour: such tables are refused rather than read or written wrongly.
READER_FEATURES = frozenset({"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"})
WRITER_FEATURES = READER_FEATURES | {"appendOnly", "invariants"}
# Features implied by the legacy protocol versions (before table features).
_LEGACY_WRITER = {
    3: {"checkConstraints"},
    4: {"checkConstraints", "changeDataFeed", "generatedColumns"},
    5: {"checkConstraints", "changeDataFeed", "generatedColumns", "columnMapping"},
    6: {
        "checkConstraints",
        "changeDataFeed",
        "generatedColumns",
        "columnMapping",
        "identityColumns",
    },
}


def check_protocol(table: str, dt: DeltaTable, *, write: bool) -> None:
    """Refuse tables that need Delta features this engine does not implement.

    Example:
        >>> check_protocol("silver.contacts", DeltaTable(path), write=True)  # doctest: +SKIP
    """
    protocol = dt.protocol()
    readers = set(protocol.reader_features or [])
    if protocol.min_reader_version == 2:
        readers.add("columnMapping")
    unsupported = readers - READER_FEATURES
    if write:
        writers = set(protocol.writer_features or [])
        writers |= _LEGACY_WRITER.get(min(protocol.min_writer_version, 6), set())
        unsupported |= writers - WRITER_FEATURES
    if unsupported:
        raise StorageError(
            f"{table} uses Delta features the delta-rs engine does not implement: "
            f"{', '.join(sorted(unsupported))}",
            hint="use the delta-spark engine for this table (storage.engine: delta-spark)",
        )


def check_session(spark: SparkSession) -> None:
    """The delta-rs engine needs microsecond Parquet timestamps from Spark.

    Spark's default INT96 timestamps would make the table require the ``timestampNanos``
    reader feature, which delta-rs (and so every non-Spark reader) cannot read.

    Example:
        >>> check_session(spark)  # raises StorageError on an INT96 session  # doctest: +SKIP
    """
    value = (spark.conf.get(TIMESTAMP_CONF, "INT96") or "INT96").upper()
    if value != "TIMESTAMP_MICROS":
        raise StorageError(
            f"the delta-rs engine needs {TIMESTAMP_CONF}=TIMESTAMP_MICROS, the session has {value}",
            hint="build the session with cdp_spark.session.build_session, or "
            f"spark.conf.set('{TIMESTAMP_CONF}', 'TIMESTAMP_MICROS')",
        )


def _snapshot_files(dt: DeltaTable, partition_by: list[str]) -> list[_File]:
    actions = pa.table(dt.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return []
    columns = {name: actions.column(name).to_pylist() for name in actions.column_names}
    partitions = {c: columns[f"partition.{c}"] for c in partition_by}
    return [
        _File(
            rel=_files.decode_log_path(path),
            size=int(size),
            partition_values={c: _files.partition_string(partitions[c][i]) for c in partition_by},
            num_records=None if records is None else int(records),
        )
        for i, (path, size, records) in enumerate(
            zip(columns["path"], columns["size_bytes"], columns["num_records"], strict=True)
        )
    ]


def _in_hive_folder(file: _File, partition_by: list[str]) -> bool:
    """True when Spark's partition discovery would find the log's partition values in the
    file's folder names."""
    folder = file.rel.rsplit("/", 1)[0] if "/" in file.rel else ""
    return _files.hive_partition_values(folder, partition_by) == file.partition_values


def _spark_key(file_path: Column) -> Column:
    """:func:`_files.spark_file_key` as a Spark expression (for the partition-values join).

    ``url_decode`` follows HTML form rules ('+' means space), so a literal '+' is protected.
    """
    decoded = F.url_decode(F.regexp_replace(file_path, r"\+", "%2B"))
    return F.regexp_replace(decoded, r"^([A-Za-z][A-Za-z0-9+.-]*:)?/*", "")


def _unmatched_rows(hits: list[_Hit], written: int) -> int:
    """Rows copied unchanged out of rewritten files (so ``written`` minus them is the caller's
    rows). Files without a row count in the log make it unknown: then 0."""
    if any(h.file.num_records is None for h in hits):
        return 0
    return min(written, sum((h.file.num_records or 0) - h.matched for h in hits))
