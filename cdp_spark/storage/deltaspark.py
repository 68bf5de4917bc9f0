"""The delta-spark engine: Delta Lake's own Spark connector (needs the delta-spark jar).

Chosen by :func:`cdp_spark.storage.open_lakehouse` when the Delta JVM classes are on the
classpath and the session registers Delta's extension (clusters with Maven access, Databricks,
images with the jar). Every operation maps onto the documented Delta API:

- writes: ``df.write.format("delta")`` (``replaceWhere`` for ``overwrite(where=...)``),
  ``DeltaTable.merge`` and ``DeltaTable.delete``;
- idempotency: the ``txnAppId`` / ``txnVersion`` writer options, and for MERGE / DELETE the
  session settings ``spark.databricks.delta.write.txnAppId`` / ``txnVersion``;
- what a write did: each commit carries a unique ``userMetadata``; it is looked up in the
  history for the version and the operation metrics (absent: the txn made Delta skip it).

Example:
    >>> lake = DeltaSparkLakehouse(spark, "s3a://lake/cdp")              # doctest: +SKIP
    >>> lake.merge("silver.contacts", changes, keys=["contact_id"], txn=Txn("std_crm", 7))
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_spark.storage import _files
from cdp_spark.storage._schema import (
    check_keys,
    check_partition_columns,
    check_unique_keys,
    conform,
    parse_predicate,
    schema_differences,
    violation_from,
)
from cdp_spark.storage.base import (
    LAYERS,
    ConcurrentWriteError,
    ConstraintViolationError,
    Lakehouse,
    TableInfo,
    TableNotFoundError,
    TableSchemaError,
    Txn,
    WriteResult,
    split_table_name,
)

_DELETE_COL = "__cdp_delete"
_TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
_TXN_VERSION = "spark.databricks.delta.write.txnVersion"
_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
_RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
_OPTIMIZE_MAX_FILE_SIZE = "spark.databricks.delta.optimize.maxFileSize"


class DeltaSparkLakehouse(Lakehouse):
    """Delta tables through Delta Lake's Spark connector.

    Example:
        >>> lake = DeltaSparkLakehouse(spark, "/data/lake")              # doctest: +SKIP
        >>> lake.engine_name
        'delta-spark'
    """

    engine_name = "delta-spark"

    def __init__(self, spark: SparkSession, root: str) -> None:
        super().__init__(spark, _files.normalize_root(root))

    # ------------------------------------------------------------------ tables

    def exists(self, table: str) -> bool:
        from delta.tables import DeltaTable

        return bool(DeltaTable.isDeltaTable(self.spark, self.path(table)))

    def create(
        self,
        table: str,
        schema: T.StructType,
        *,
        partition_by: Sequence[str] = (),
        description: str | None = None,
    ) -> None:
        from delta.tables import DeltaTable

        partition_by = list(partition_by)
        check_partition_columns(table, schema, partition_by)
        if not self.exists(table):
            builder = (
                DeltaTable.createIfNotExists(self.spark)
                .location(self.path(table))
                .addColumns(schema)
            )
            if partition_by:
                builder = builder.partitionedBy(*partition_by)
            if description:
                builder = builder.comment(description)
            builder.execute()
        # createIfNotExists leaves an existing table alone: check it is the one asked for.
        current, current_partitions = self._schema(table)
        diffs = schema_differences(current, current_partitions, schema, partition_by)
        if diffs:
            raise TableSchemaError(
                f"{table} exists with another schema: {'; '.join(diffs)}",
                hint="migrate the table explicitly; create() never changes an existing table",
            )

    def version(self, table: str) -> int:
        return int(self.history(table, limit=1)[0]["version"])

    def history(self, table: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first (``DeltaTable.history``).

        Example:
            >>> lake.history("bronze.crm", limit=1)[0]["operation"]     # doctest: +SKIP
            'WRITE'
        """
        frame = self._table(table).history(limit)
        # Collected timestamps would be naive local times: take epoch microseconds instead.
        rows = frame.withColumn("__micros", F.unix_micros("timestamp")).collect()
        commits = []
        for row in rows:
            commit = row.asDict(recursive=True)
            commit["timestamp"] = datetime.fromtimestamp(commit.pop("__micros") / 1e6, tz=UTC)
            commit["operationParameters"] = dict(commit.get("operationParameters") or {})
            commit["operationMetrics"] = dict(commit.get("operationMetrics") or {})
            commit["engine"] = (
                "delta-spark"
                if "Delta-Lake" in str(commit.get("engineInfo"))
                else (str(commit.get("engineInfo") or "unknown"))
            )
            commits.append(commit)
        return commits

    def list_tables(self) -> list[TableInfo]:
        infos = []
        for layer in LAYERS:
            for name in self._list_dirs(f"{self.root}/{layer}"):
                table = f"{layer}.{name}"
                try:
                    split_table_name(table)
                except ValueError:
                    continue
                if self.exists(table):
                    infos.append(self._table_info(table))
        return sorted(infos, key=lambda i: i.name)

    def _table_info(self, table: str) -> TableInfo:
        detail = self._table(table).detail().first()
        assert detail is not None
        latest = self.history(table, limit=1)[0]
        # count() on a Delta table is answered from the log's statistics (no data scan).
        rows = self.spark.read.format("delta").load(self.path(table)).count()
        return TableInfo(
            name=table,
            engine=latest["engine"],
            version=int(latest["version"]),
            rows=int(rows),
            size_bytes=int(detail["sizeInBytes"] or 0),
            files=int(detail["numFiles"] or 0),
            last_write=latest["timestamp"],
            partition_by=tuple(detail["partitionColumns"] or ()),
        )

    # ------------------------------------------------------------------ reads

    def read(
        self,
        table: str,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
    ) -> DataFrame:
        if version is not None and timestamp is not None:
            raise ValueError(f"{table}: give version or timestamp, not both")
        self._table(table)  # a clear error for a missing table
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if timestamp is not None:
            if isinstance(timestamp, datetime):
                aware = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
                timestamp = aware.astimezone(UTC).isoformat()
            reader = reader.option("timestampAsOf", timestamp)
        return reader.load(self.path(table))

    # ------------------------------------------------------------------ writes

    def append(self, table: str, df: DataFrame, *, txn: Txn | None = None) -> WriteResult:
        schema, _ = self._schema(table)
        return self._write(table, conform(df, schema, table), "append", txn=txn)

    def overwrite(
        self,
        table: str,
        df: DataFrame,
        *,
        where: str | None = None,
        txn: Txn | None = None,
    ) -> WriteResult:
        schema, _ = self._schema(table)
        checks = []
        if where is not None:
            checks = [
                (
                    parse_predicate(where, table),
                    f"a row of the DataFrame does not match where: {where}",
                )
            ]
        data = conform(df, schema, table, checks=checks)
        return self._write(table, data, "overwrite", txn=txn, where=where)

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
        target = self._table(table)
        schema, _ = self._schema(table)
        check_keys(table, keys, schema, df)
        flag = (
            F.coalesce(parse_predicate(delete_when, table), F.lit(False))
            if delete_when
            else F.lit(False)
        )
        source = df.withColumn(_DELETE_COL, flag)
        check_unique_keys(table, source, keys)
        # Types are fitted here; NOT NULL is left to Delta, which checks only rows it writes
        # (a delete record may well have NULLs).
        fitted = conform(source, schema, table, allow_extra=True, not_null=False)
        source = fitted.withColumn(_DELETE_COL, source[_DELETE_COL])
        columns = {f"`{c}`": f"s.`{c}`" for c in schema.fieldNames()}
        on = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        builder = target.alias("t").merge(source.alias("s"), on)
        if delete_when:
            builder = builder.whenMatchedDelete(condition=f"s.`{_DELETE_COL}`")
        builder = builder.whenMatchedUpdate(set=columns).whenNotMatchedInsert(
            condition=f"NOT s.`{_DELETE_COL}`", values=columns
        )
        write_id = uuid.uuid4().hex
        with self._txn_settings(table, write_id, txn):
            builder.execute()
        commit = self._find_commit(table, write_id)
        if commit is None:
            return self._skipped(table)
        metrics = commit["operationMetrics"]
        return WriteResult(
            table=table,
            version=int(commit["version"]),
            rows_written=_metric(metrics, "numTargetRowsInserted")
            + _metric(metrics, "numTargetRowsUpdated"),
            files_added=_metric(metrics, "numTargetFilesAdded"),
            skipped=False,
            files_removed=_metric(metrics, "numTargetFilesRemoved"),
        )

    def delete(self, table: str, where: str, *, txn: Txn | None = None) -> int:
        target = self._table(table)
        write_id = uuid.uuid4().hex
        with self._txn_settings(table, write_id, txn):
            target.delete(parse_predicate(where, table))
        commit = self._find_commit(table, write_id)
        if commit is None:
            return 0
        return _metric(commit["operationMetrics"], "numDeletedRows")

    # ------------------------------------------------------------------ maintenance

    def vacuum(
        self,
        table: str,
        *,
        retention_hours: int = 168,
        dry_run: bool = False,
        enforce_retention: bool = True,
    ) -> list[str]:
        """Delete unreferenced files older than ``retention_hours`` (Delta's VACUUM).

        Example:
            >>> lake.vacuum("bronze.crm", dry_run=True)                  # doctest: +SKIP
            []
        """
        target = self._table(table)
        settings = {} if enforce_retention else {_RETENTION_CHECK: "false"}
        location = self.path(table).replace("`", "``")
        with self._session_settings(settings):
            planned = self.spark.sql(
                f"VACUUM delta.`{location}` RETAIN {int(retention_hours)} HOURS DRY RUN"
            ).collect()
            if not dry_run:
                target.vacuum(float(retention_hours))
        return sorted(str(r[0]) for r in planned)

    def optimize(self, table: str, *, target_file_mb: int = 128) -> dict[str, Any]:
        """Bin-pack small files (``DeltaTable.optimize().executeCompaction()``).

        Example:
            >>> lake.optimize("bronze.web_events")["numFilesRemoved"]   # doctest: +SKIP
            48
        """
        target = self._table(table)
        size = {_OPTIMIZE_MAX_FILE_SIZE: str(target_file_mb * 1024 * 1024)}
        with self._session_settings(size):
            result = target.optimize().executeCompaction().first()
        if result is None:
            return {}
        return dict(result["metrics"].asDict(recursive=True))

    # ------------------------------------------------------------------ internals

    def _table(self, table: str) -> Any:
        from delta.tables import DeltaTable

        if not self.exists(table):
            raise TableNotFoundError(
                f"{table} does not exist at {self.path(table)}",
                hint="create it first with Lakehouse.create(table, schema, ...)",
            )
        return DeltaTable.forPath(self.spark, self.path(table))

    def _schema(self, table: str) -> tuple[T.StructType, list[str]]:
        target = self._table(table)
        detail = target.detail().first()
        return target.toDF().schema, list(detail["partitionColumns"] or [])

    def _write(
        self,
        table: str,
        data: DataFrame,
        mode: str,
        *,
        txn: Txn | None,
        where: str | None = None,
    ) -> WriteResult:
        write_id = uuid.uuid4().hex
        writer = (
            data.write.format("delta")
            .mode(mode)
            .option("userMetadata", json.dumps({"cdpWriteId": write_id}))
        )
        if where is not None:
            writer = writer.option("replaceWhere", where)
        if txn is not None:
            writer = writer.option("txnAppId", txn.app_id).option("txnVersion", txn.version)
        with _translated_errors(table):
            writer.save(self.path(table))
        commit = self._find_commit(table, write_id)
        if commit is None:
            return self._skipped(table)
        metrics = commit["operationMetrics"]
        return WriteResult(
            table=table,
            version=int(commit["version"]),
            rows_written=_metric(metrics, "numOutputRows"),
            files_added=_metric(metrics, "numFiles") or _metric(metrics, "numAddedFiles"),
            skipped=False,
            files_removed=_metric(metrics, "numRemovedFiles"),
        )

    def _skipped(self, table: str) -> WriteResult:
        return WriteResult(table, self.version(table), 0, 0, skipped=True)

    def _find_commit(self, table: str, write_id: str) -> dict[str, Any] | None:
        """Our commit among the latest ones (None: Delta skipped the write for its txn)."""
        for commit in self.history(table, limit=20):
            try:
                meta = json.loads(commit.get("userMetadata") or "{}")
            except (TypeError, ValueError):
                continue
            if isinstance(meta, dict) and meta.get("cdpWriteId") == write_id:
                return commit
        return None

    @contextmanager
    def _txn_settings(self, table: str, write_id: str, txn: Txn | None) -> Iterator[None]:
        settings = {_USER_METADATA: json.dumps({"cdpWriteId": write_id})}
        if txn is not None:
            settings |= {_TXN_APP_ID: txn.app_id, _TXN_VERSION: str(txn.version)}
        with self._session_settings(settings), _translated_errors(table):
            yield

    @contextmanager
    def _session_settings(self, settings: dict[str, str]) -> Iterator[None]:
        # DeltaTable.merge/delete/vacuum take these only as session settings: set them for
        # the one operation and put the previous values back.
        previous = {key: self.spark.conf.get(key, None) for key in settings}
        for key, value in settings.items():
            self.spark.conf.set(key, value)
        try:
            yield
        finally:
            for key, old in previous.items():
                if old is None:
                    self.spark.conf.unset(key)
                else:
                    self.spark.conf.set(key, old)

    def _list_dirs(self, uri: str) -> list[str]:
        # Through Hadoop's file system: the same credentials and schemes Spark uses.
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        path = jvm.org.apache.hadoop.fs.Path(uri)
        fs = path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())
        if not fs.exists(path):
            return []
        return sorted(s.getPath().getName() for s in fs.listStatus(path) if s.isDirectory())


@contextmanager
def _translated_errors(table: str) -> Iterator[None]:
    """Delta's conflict exceptions -> ConcurrentWriteError; NOT NULL and replaceWhere
    violations -> ConstraintViolationError."""
    from delta.exceptions import (
        ConcurrentAppendException,
        ConcurrentDeleteDeleteException,
        ConcurrentDeleteReadException,
        ConcurrentTransactionException,
        ConcurrentWriteException,
        DeltaConcurrentModificationException,
        MetadataChangedException,
        ProtocolChangedException,
    )

    conflicts = (
        ConcurrentAppendException,
        ConcurrentDeleteDeleteException,
        ConcurrentDeleteReadException,
        ConcurrentTransactionException,
        ConcurrentWriteException,
        DeltaConcurrentModificationException,
        MetadataChangedException,
        ProtocolChangedException,
    )
    try:
        yield
    except conflicts as exc:
        raise ConcurrentWriteError(
            f"{table}: a concurrent write conflicts with this one: {exc}",
            hint="re-run the operation; it reads the table anew",
        ) from exc
    except Exception as exc:
        violation = violation_from(exc)
        if violation is not None:
            raise violation from exc
        text = str(exc)
        if "NOT NULL constraint violated" in text or "DELTA_REPLACE_WHERE_MISMATCH" in text:
            raise ConstraintViolationError(f"{table}: {text.splitlines()[0]}") from exc
        raise


def _metric(metrics: dict[str, Any], name: str) -> int:
    value = metrics.get(name)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0
