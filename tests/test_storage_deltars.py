"""The delta-rs engine: every Lakehouse operation against explicit expected tables.

Spark writes the Parquet files, delta-rs commits them; the tables must also read back without
Spark (plain ``deltalake``), because downstream systems read them that way.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.transaction import AddAction
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from cdp_spark.storage import (
    ConcurrentWriteError,
    ConstraintViolationError,
    DuplicateKeyError,
    StorageError,
    TableNotFoundError,
    TableSchemaError,
    Txn,
    open_lakehouse,
)
from cdp_spark.storage.deltars import DeltaRsLakehouse

CONTACTS = T.StructType(
    [
        T.StructField("contact_id", T.LongType(), False),
        T.StructField("email", T.StringType(), True),
        T.StructField("score", T.DoubleType(), True),
        T.StructField("updated_at", T.TimestampType(), True),
        T.StructField("run_date", T.DateType(), True),
    ]
)
D1, D2, D3 = date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3)


def ts(hour: int, micro: int = 0) -> datetime:
    return datetime(2026, 1, 1, hour, 0, 0, micro, tzinfo=UTC)


ROWS = [
    (1, "a@x.ru", 0.1, ts(1, 123456), D1),
    (2, "b@x.ru", 0.9, ts(2), D1),
    (3, None, None, None, D2),
]


@pytest.fixture
def lake(spark: SparkSession, tmp_path: Path) -> DeltaRsLakehouse:
    lake = open_lakehouse(spark, str(tmp_path / "lake"), engine="delta-rs")
    assert isinstance(lake, DeltaRsLakehouse)
    return lake


def frame(
    spark: SparkSession, rows: list[tuple[Any, ...]], schema: T.StructType = CONTACTS
) -> DataFrame:
    return spark.createDataFrame(rows, schema)


def contacts(lake: DeltaRsLakehouse, *, partitioned: bool = True, rows: list[Any] = ROWS) -> str:
    table = "silver.contacts"
    lake.create(table, CONTACTS, partition_by=["run_date"] if partitioned else [])
    if rows:
        lake.append(table, frame(lake.spark, rows).coalesce(1))  # one file per partition
    return table


def data_files(path: str) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, f), path)
        for d, _, names in os.walk(path)
        if "_delta_log" not in d
        for f in names
    )


# ---------------------------------------------------------------- names and tables


def test_path_maps_names_to_layer_folders_and_refuses_others(lake: DeltaRsLakehouse) -> None:
    assert lake.path("silver.crm_contacts") == f"{lake.root}/silver/crm_contacts"
    assert lake.path("ops.run_reports") == f"{lake.root}/ops/run_reports"
    for bad in [
        "silver/../x",
        "platinum.x",
        "silver.X",
        "silver.a-b",
        "silver",
        "silver.a.b",
        ".x",
    ]:
        with pytest.raises(ValueError, match="layer"):
            lake.path(bad)


def test_create_is_a_no_op_for_the_same_schema_and_refuses_another(
    lake: DeltaRsLakehouse,
) -> None:
    table = "bronze.contacts"
    assert not lake.exists(table)
    lake.create(table, CONTACTS, partition_by=["run_date"], description="CRM contacts")
    lake.create(table, CONTACTS, partition_by=["run_date"])
    assert lake.exists(table)
    assert lake.version(table) == 0
    assert DeltaTable(lake.path(table)).metadata().description == "CRM contacts"
    with pytest.raises(TableSchemaError, match="column email: string -> int"):
        changed = T.StructType(
            [f if f.name != "email" else T.StructField("email", T.IntegerType()) for f in CONTACTS]
        )
        lake.create(table, changed, partition_by=["run_date"])
    with pytest.raises(TableSchemaError, match="partition_by"):
        lake.create(table, CONTACTS)
    with pytest.raises(TableSchemaError, match="cannot partition by score of type double"):
        lake.create("bronze.other", CONTACTS, partition_by=["score"])
    assertDataFrameEqual(lake.read(table), frame(lake.spark, []))


def test_missing_table_and_bad_session_give_clear_errors(
    lake: DeltaRsLakehouse, spark: SparkSession
) -> None:
    with pytest.raises(TableNotFoundError, match=r"silver.nope does not exist"):
        lake.read("silver.nope")
    spark.conf.set("spark.sql.parquet.outputTimestampType", "INT96")
    try:
        with pytest.raises(StorageError, match="TIMESTAMP_MICROS"):
            open_lakehouse(spark, lake.root, engine="delta-rs")
    finally:
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")


def test_tables_needing_delta_features_the_engine_lacks_are_refused(
    lake: DeltaRsLakehouse,
) -> None:
    table = contacts(lake, rows=[])
    # A CHECK constraint (added by another writer) would not be enforced by plain Parquet
    # writes: writes are refused, reads still work.
    DeltaTable(lake.path(table)).alter.add_constraint({"positive_id": "contact_id > 0"})
    assertDataFrameEqual(lake.read(table), frame(lake.spark, []))
    with pytest.raises(StorageError, match="checkConstraints") as caught:
        lake.append(table, frame(lake.spark, ROWS))
    assert "delta-spark" in (caught.value.hint or "")


# ---------------------------------------------------------------- writes and reads


def test_append_then_read_partitioned_table(lake: DeltaRsLakehouse) -> None:
    table = "silver.contacts"
    lake.create(table, CONTACTS, partition_by=["run_date"])
    result = lake.append(table, frame(lake.spark, ROWS))
    assert (result.version, result.rows_written, result.skipped) == (1, 3, False)
    assert result.files_added == len(DeltaTable(lake.path(table)).file_uris()) >= 2
    assertDataFrameEqual(lake.read(table), frame(lake.spark, ROWS))
    # Only data files and the log: no _SUCCESS markers, no .crc checksums, Hive-style folders.
    files = data_files(lake.path(table))
    assert all(f.endswith(".parquet") and "/run_date=2026-01-0" in f for f in files), files
    # Partition filters prune files (Spark's partition discovery on the log's files).
    plan = lake.read(table).where("run_date = '2026-01-02'")._jdf.queryExecution().toString()
    assert "PartitionFilters: [isnotnull(run_date" in plan


def test_append_fits_the_dataframe_to_the_table(lake: DeltaRsLakehouse) -> None:
    table = contacts(lake, partitioned=False, rows=[])
    loose = lake.spark.createDataFrame(
        [(D1, 0.5, "c@x.ru", 7, ts(3))],
        "run_date date, score double, email string, contact_id int, updated_at timestamp",
    )
    lake.append(table, loose)  # other column order, int -> long
    assertDataFrameEqual(lake.read(table), frame(lake.spark, [(7, "c@x.ru", 0.5, ts(3), D1)]))
    with pytest.raises(TableSchemaError, match=r"missing columns \['updated_at'\]"):
        lake.append(table, loose.drop("updated_at"))
    with pytest.raises(TableSchemaError, match="score: table has double, DataFrame has string"):
        lake.append(table, loose.withColumn("score", loose.score.cast("string")))
    before = data_files(lake.path(table))
    with pytest.raises(ConstraintViolationError, match="NULL in NOT NULL column contact_id"):
        lake.append(table, loose.withColumn("contact_id", loose.contact_id * None))
    assert lake.version(table) == 1
    assert data_files(lake.path(table)) == before  # the failed write left nothing behind


def test_overwrite_whole_table(lake: DeltaRsLakehouse) -> None:
    table = contacts(lake)
    new = [(9, "z@x.ru", 0.5, ts(9), D3)]
    result = lake.overwrite(table, frame(lake.spark, new))
    assert (result.rows_written, result.files_removed) == (1, 2)
    assertDataFrameEqual(lake.read(table), frame(lake.spark, new))


def test_overwrite_where_on_a_partition_replaces_only_that_partition(
    lake: DeltaRsLakehouse,
) -> None:
    table = contacts(lake)
    day1 = [(4, "d@x.ru", 0.4, ts(4), D1)]
    result = lake.overwrite(table, frame(lake.spark, day1), where="run_date = '2026-01-01'")
    assert (result.rows_written, result.files_removed) == (1, 1)
    assertDataFrameEqual(lake.read(table), frame(lake.spark, [*day1, ROWS[2]]))
    with pytest.raises(
        ConstraintViolationError, match="does not match where: run_date = '2026-01-01'"
    ):
        lake.overwrite(table, frame(lake.spark, [ROWS[2]]), where="run_date = '2026-01-01'")
    assert lake.version(table) == 2


def test_overwrite_where_on_a_data_column_keeps_the_other_rows_of_rewritten_files(
    lake: DeltaRsLakehouse,
) -> None:
    table = contacts(lake, partitioned=False)
    low = [(5, "e@x.ru", 0.2, ts(5), D2), (6, "f@x.ru", 0.3, ts(6), D2)]
    result = lake.overwrite(table, frame(lake.spark, low), where="score < 0.5")
    assert result.rows_written == 2
    # Row 3 has a NULL score: it does not match the predicate, so it stays.
    assertDataFrameEqual(lake.read(table), frame(lake.spark, [ROWS[1], ROWS[2], *low]))


def test_merge_updates_inserts_and_deletes(lake: DeltaRsLakehouse) -> None:
    table = contacts(lake)
    lake.append(table, frame(lake.spark, [(4, "d@x.ru", 0.4, ts(4), D3)]))
    op = T.StructField("op", T.StringType())
    changes = lake.spark.createDataFrame(
        [
            (2, "b2@x.ru", 0.8, ts(12), D1, "U"),  # update
            (4, None, None, None, D3, "D"),  # delete
            (5, "e@x.ru", 0.5, ts(5), D2, "U"),  # insert
            (6, "f@x.ru", 0.6, ts(6), D2, "D"),  # delete of an unknown key: nothing
        ],
        T.StructType([*CONTACTS.fields, op]),
    )
    result = lake.merge(table, changes, keys=["contact_id"], delete_when="op = 'D'")
    assert result.rows_written == 2
    expected = [ROWS[0], (2, "b2@x.ru", 0.8, ts(12), D1), ROWS[2], (5, "e@x.ru", 0.5, ts(5), D2)]
    assertDataFrameEqual(lake.read(table), frame(lake.spark, expected))
    # The D2 file was untouched by the merge: it is still referenced.
    assert result.files_removed == 2


def test_merge_refuses_duplicate_source_keys(lake: DeltaRsLakehouse) -> None:
    table = contacts(lake, rows=[])
    dupes = frame(lake.spark, [(1, "a@x.ru", 0.1, None, D1), (1, "b@x.ru", 0.2, None, D1)])
    with pytest.raises(DuplicateKeyError, match=r"\(contact_id=1\) x2"):
        lake.merge(table, dupes, keys=["contact_id"])
    with pytest.raises(TableSchemaError, match="merge keys"):
        lake.merge(table, dupes, keys=["nope"])
    assert lake.version(table) == 0


def test_read_at_version_and_timestamp_and_history(lake: DeltaRsLakehouse) -> None:
    table = contacts(lake)
    lake.delete(table, "contact_id = 1")
    lake.merge(table, frame(lake.spark, [(3, "c@x.ru", 0.3, None, D2)]), keys=["contact_id"])
    history = lake.history(table)
    assert [h["version"] for h in history] == [3, 2, 1, 0]
    assert [h["operationParameters"].get("cdpOperation") for h in history] == [
        "MERGE",
        "DELETE",
        "APPEND",
        None,
    ]
    assert history[-1]["operation"] == "CREATE TABLE"
    assert history[1]["operationMetrics"]["numDeletedRows"] == "1"
    assert history[2]["operationMetrics"]["numOutputRows"] == "3"
    assert {h["engine"] for h in history} == {"delta-rs"}
    assert len(lake.history(table, limit=2)) == 2
    assertDataFrameEqual(lake.read(table, version=1), frame(lake.spark, ROWS))
    assertDataFrameEqual(lake.read(table, version=0), frame(lake.spark, []))
    at_delete = history[1]["timestamp"]
    assertDataFrameEqual(lake.read(table, timestamp=at_delete), frame(lake.spark, ROWS[1:]))
    assertDataFrameEqual(
        lake.read(table, timestamp=at_delete.isoformat()), frame(lake.spark, ROWS[1:])
    )
    with pytest.raises(StorageError, match="cannot load version 9"):
        lake.read(table, version=9)
    with pytest.raises(ValueError, match="not both"):
        lake.read(table, version=1, timestamp=at_delete)


def test_delete_by_partition_and_by_data_predicate(lake: DeltaRsLakehouse) -> None:
    table = contacts(lake)
    assert lake.delete(table, "run_date = '2026-01-02'") == 1  # whole file, from the log only
    assert lake.delete(table, "email = 'a@x.ru'") == 1  # rewrites the D1 file without row 1
    assert lake.delete(table, "email = 'nobody'") == 0
    assert lake.version(table) == 3  # a delete that matches nothing commits nothing
    assertDataFrameEqual(lake.read(table), frame(lake.spark, [ROWS[1]]))


# ---------------------------------------------------------------- idempotency and concurrency


def test_a_retried_write_with_the_same_txn_is_skipped(lake: DeltaRsLakehouse) -> None:
    table = contacts(lake, rows=[])
    first = lake.append(table, frame(lake.spark, ROWS), txn=Txn("ingest_crm", 1))
    again = lake.append(table, frame(lake.spark, ROWS), txn=Txn("ingest_crm", 1))
    assert (first.skipped, again.skipped, again.version, again.rows_written) == (False, True, 1, 0)
    change = frame(lake.spark, [(1, "new@x.ru", 0.1, None, D1)])
    assert not lake.merge(table, change, keys=["contact_id"], txn=Txn("std_crm", 5)).skipped
    assert lake.merge(table, change, keys=["contact_id"], txn=Txn("std_crm", 4)).skipped
    assert lake.delete(table, "contact_id = 2", txn=Txn("erasure", 1)) == 1
    assert lake.delete(table, "contact_id = 3", txn=Txn("erasure", 1)) == 0
    assert DeltaTable(lake.path(table)).transaction_version("ingest_crm") == 1
    expected = [(1, "new@x.ru", 0.1, None, D1), ROWS[2]]
    assertDataFrameEqual(lake.read(table), frame(lake.spark, expected))


def race(lake: DeltaRsLakehouse, rival: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``rival()`` commit just before ``lake``'s next commit, after its snapshot."""
    original = lake._commit_actions

    def commit_after_rival(*args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(lake, "_commit_actions", original)
        rival()
        original(*args, **kwargs)

    monkeypatch.setattr(lake, "_commit_actions", commit_after_rival)


def test_conflicting_writers_one_wins_one_gets_concurrent_write_error(
    lake: DeltaRsLakehouse, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = contacts(lake)
    other = DeltaRsLakehouse(spark, lake.root)  # a second job on the same table
    change = frame(spark, [(1, "new@x.ru", 0.1, None, D1)])
    race(lake, lambda: other.delete(table, "contact_id = 2"), monkeypatch)
    with pytest.raises(ConcurrentWriteError, match="concurrent write conflicts with this MERGE"):
        lake.merge(table, change, keys=["contact_id"])
    assert lake.version(table) == 2  # only the delete
    race(lake, lambda: other.delete(table, "contact_id = 1"), monkeypatch)
    with pytest.raises(ConcurrentWriteError):
        lake.delete(table, "run_date = '2026-01-01'")
    # An append racing with a delete that removed files it might have read: delta-rs refuses.
    race(lake, lambda: other.delete(table, "contact_id = 3"), monkeypatch)
    with pytest.raises(ConcurrentWriteError, match="APPEND"):
        lake.append(table, frame(spark, [(8, None, None, None, D3)]))
    assertDataFrameEqual(lake.read(table), frame(spark, []))
    assert data_files(lake.path(table)) == data_files(lake.path(table))  # nothing half-written
    referenced = {
        os.path.relpath(p, lake.path(table)) for p in DeltaTable(lake.path(table)).file_uris()
    }
    assert set(data_files(lake.path(table))) >= referenced


def test_blind_appends_both_commit_and_a_racing_retry_is_skipped(
    lake: DeltaRsLakehouse, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = contacts(lake, rows=[])
    other = DeltaRsLakehouse(spark, lake.root)
    race(lake, lambda: other.append(table, frame(spark, ROWS[:1])), monkeypatch)
    assert lake.append(table, frame(spark, ROWS[1:])).version == 2
    # The same job twice at once (a retry racing its original): one commit, no duplicates.
    late = [(8, "h@x.ru", 0.8, None, D3)]
    race(lake, lambda: other.append(table, frame(spark, late), txn=Txn("job", 1)), monkeypatch)
    assert lake.append(table, frame(spark, late), txn=Txn("job", 1)).skipped
    assertDataFrameEqual(lake.read(table), frame(spark, [*ROWS, *late]))
    assert len(data_files(lake.path(table))) == len(DeltaTable(lake.path(table)).file_uris())


# ---------------------------------------------------------------- maintenance


def test_vacuum_removes_unreferenced_files_and_old_versions(lake: DeltaRsLakehouse) -> None:
    table = contacts(lake)
    lake.overwrite(table, frame(lake.spark, ROWS[:1]))
    old = set(data_files(lake.path(table))) - {
        os.path.relpath(p, lake.path(table)) for p in DeltaTable(lake.path(table)).file_uris()
    }
    assert lake.vacuum(table) == []  # within the 7-day retention
    with pytest.raises(Exception, match="retention"):
        lake.vacuum(table, retention_hours=0)
    planned = lake.vacuum(table, retention_hours=0, enforce_retention=False, dry_run=True)
    assert len(planned) == len(old) == 2
    assert len(data_files(lake.path(table))) == 3
    assert len(lake.vacuum(table, retention_hours=0, enforce_retention=False)) == 2
    assert len(data_files(lake.path(table))) == 1
    assertDataFrameEqual(lake.read(table), frame(lake.spark, ROWS[:1]))
    with pytest.raises(Exception, match=r"(?i)not exist|not found"):
        lake.read(table, version=1).collect()


def test_optimize_compacts_small_files_without_changing_the_data(lake: DeltaRsLakehouse) -> None:
    table = contacts(lake, partitioned=False)
    lake.append(table, frame(lake.spark, [(4, "d@x.ru", 0.4, ts(4), D3)]))
    lake.append(table, frame(lake.spark, [(5, "e@x.ru", 0.5, ts(5), D3)]))
    before = len(DeltaTable(lake.path(table)).file_uris())
    metrics = lake.optimize(table)
    after = len(DeltaTable(lake.path(table)).file_uris())
    assert (metrics["numFilesRemoved"], metrics["numFilesAdded"], after) == (before, 1, 1)
    expected = [*ROWS, (4, "d@x.ru", 0.4, ts(4), D3), (5, "e@x.ru", 0.5, ts(5), D3)]
    assertDataFrameEqual(lake.read(table), frame(lake.spark, expected))


def test_list_tables_reads_the_log_only(lake: DeltaRsLakehouse) -> None:
    table = contacts(lake)
    lake.create("bronze.raw", CONTACTS)
    os.makedirs(f"{lake.root}/gold/not_a_table")
    infos = lake.list_tables()
    assert [i.name for i in infos] == ["bronze.raw", table]
    raw, silver = infos
    assert (raw.engine, raw.version, raw.rows, raw.files, raw.size_bytes) == (
        "delta-rs",
        0,
        0,
        0,
        0,
    )
    assert (silver.version, silver.rows, silver.partition_by) == (1, 3, ("run_date",))
    assert silver.files == 2 and silver.size_bytes > 0
    assert silver.last_write is not None and silver.last_write.tzinfo is not None


# ---------------------------------------------------------------- other readers, other layouts


def test_tables_read_the_same_without_spark(lake: DeltaRsLakehouse) -> None:
    table = contacts(lake)
    arrow = DeltaTable(lake.path(table)).to_pyarrow_table()
    rows = sorted(arrow.to_pylist(), key=lambda r: r["contact_id"])
    del arrow  # pyarrow threads alive at interpreter exit abort the process (arrow#34314)
    assert rows == [dict(zip(CONTACTS.fieldNames(), r, strict=True)) for r in ROWS]
    # The log's statistics are usable for data skipping by other engines.
    stats = pa.table(DeltaTable(lake.path(table)).get_add_actions(flatten=True)).to_pylist()
    day1 = next(s for s in stats if s["partition.run_date"] == D1)
    assert (day1["num_records"], day1["min.contact_id"], day1["max.contact_id"]) == (2, 1, 2)
    assert (day1["min.email"], day1["max.email"], day1["null_count.score"]) == (
        "a@x.ru",
        "b@x.ru",
        0,
    )
    # Timestamps: millisecond bounds, rounded outwards.
    assert day1["min.updated_at"] == datetime(2026, 1, 1, 1, 0, 0, 123000, tzinfo=UTC)
    assert day1["max.updated_at"] == ts(2)
    pruned = DeltaTable(lake.path(table)).file_uris(file_pruning_predicate="contact_id > 2")
    assert len(pruned) == 1


def test_files_outside_hive_folders_get_partition_values_from_the_log(
    lake: DeltaRsLakehouse,
) -> None:
    table = contacts(lake)
    path = lake.path(table)
    # Another writer's layout: a file whose folder says nothing about its partition.
    source = next(p for p in DeltaTable(path).file_uris() if "run_date=2026-01-02" in p)
    os.makedirs(f"{path}/elsewhere")
    shutil.copy(source, f"{path}/elsewhere/x + y.parquet")
    dt = DeltaTable(path)
    add = AddAction(
        "elsewhere/x + y.parquet",
        os.path.getsize(source),
        {"run_date": "2026-01-03"},
        0,
        True,
        json.dumps({"numRecords": 1}),
    )
    dt.create_write_transaction([add], "append", dt.schema(), partition_by=["run_date"])
    copied = (3, None, None, None, D3)
    assertDataFrameEqual(lake.read(table), frame(lake.spark, [*ROWS, copied]))
    assert lake.delete(table, "run_date = '2026-01-03'") == 1
    assert lake.delete(table, "contact_id = 3") == 1
    assertDataFrameEqual(lake.read(table), frame(lake.spark, ROWS[:2]))


def test_partition_values_with_nulls_and_special_characters_round_trip(
    lake: DeltaRsLakehouse,
) -> None:
    schema = T.StructType(
        [T.StructField("id", T.LongType()), T.StructField("segment", T.StringType())]
    )
    table = "gold.segments"
    lake.create(table, schema, partition_by=["segment"])
    odd = "a b+c%d:e/f=g"
    # Spark (and Delta) store an empty partition string as NULL.
    lake.append(table, frame(lake.spark, [(1, None), (2, odd), (3, "")], schema))
    assertDataFrameEqual(
        lake.read(table), frame(lake.spark, [(1, None), (2, odd), (3, None)], schema)
    )
    arrow = DeltaTable(lake.path(table)).to_pyarrow_table()
    rows = sorted(arrow.to_pylist(), key=lambda r: r["id"])
    del arrow
    assert rows == [
        {"id": 1, "segment": None},
        {"id": 2, "segment": odd},
        {"id": 3, "segment": None},
    ]
    assert lake.delete(table, "segment IS NULL") == 2
    assertDataFrameEqual(lake.read(table), frame(lake.spark, [(2, odd)], schema))
