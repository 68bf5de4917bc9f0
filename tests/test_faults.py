"""Fault tolerance: SIGKILL in the middle of a commit, two writers on one table, a re-run.

- A job is killed with SIGKILL right before its Delta commit (Parquet files written, log not
  yet): every table stays readable at its last good version, a re-run completes the work with
  no duplicates, and vacuum removes the orphaned files.
- Two writers MERGE into one table from the same snapshot: one wins, the other gets a
  ConcurrentWriteError (nothing half-written), and its retry lands; the table is whole.
- Ingest + standardize of the same day twice gives the same tables.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from test_privacy_support import make_ctx, write

from cdp_spark.ingest import run_ingest
from cdp_spark.pipeline import RunContext
from cdp_spark.standardize import run_standardize
from cdp_spark.storage import ConcurrentWriteError, Txn
from cdp_spark.storage.deltars import PAUSE_BEFORE_COMMIT_ENV, DeltaRsLakehouse

TESTS = Path(__file__).resolve().parent
SOURCES = ["p_crm", "p_orders"]

CRM = (
    "customer_id,first_name,last_name,email,phone,country,updated_at\n"
    "C1,Ann,A,ann@x.ru,+79123450001,RU,2026-03-01T10:00:00Z\n"
    "C2,Bob,B,bob@x.ru,,RU,2026-03-01T10:00:00Z\n"
    "C2,Bob,B,bob@x.ru,,RU,2026-03-01T10:00:00Z\n"  # an exact re-send
    "C3,Cid,C,not-an-email,,RU,bad-time\n"  # silver reject
    "C4,too,many,columns,here,RU,x,y\n"  # bronze reject
)
ORDERS = (
    '{"order_id": "O1", "customer_id": "C1", "total_amount": "10.00"}\n'
    '{"order_id": "O2", "customer_id": "C2", "total_amount": "-1"}\n'
    "{not json\n"
)


def land(root: Path) -> None:
    write(root / "landing/crm/crm_20260301.csv", CRM)
    write(root / "landing/orders/orders_20260301.jsonl", ORDERS)


def contents(ctx: RunContext, table: str) -> list[tuple[object, ...]]:
    """A table's rows without the columns that say when they were written."""
    df = ctx.lake.read(table)
    times = {"_ingested_at", "_standardized_at", "quarantined_at", "ingested_at", "created_at"}
    times |= {"standardized_at", "file_mtime"}
    cols = [c for c in df.columns if c not in times]
    return sorted(tuple(str(v) for v in r) for r in df.select(*cols).collect())


CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from test_privacy_support import make_cfg
    from cdp_spark.ingest import run_ingest
    from cdp_spark.pipeline import RunContext
    from cdp_spark.session import build_session
    from cdp_spark.standardize import run_standardize

    cfg = make_cfg(Path({root!r}), **{{
        "spark.master": "local[1]", "spark.shuffle_partitions": 1,
        "spark.conf": {{"spark.ui.enabled": "false"}},
    }})
    ctx = RunContext.create(cfg, run_date=__import__("datetime").date(2026, 3, 2),
                            spark=build_session(cfg), progress=lambda m: None)
    run_ingest(ctx, sources={sources!r})
    run_standardize(ctx, sources={sources!r})
    print("finished")
    """
)


def run_child_until_pause(root: Path, table: str) -> None:
    """Start the pipeline in a child process; SIGKILL it when it is about to commit ``table``."""
    marker = root / "paused"
    env = {**os.environ, PAUSE_BEFORE_COMMIT_ENV: f"{table}={marker}"}
    code = CHILD.format(tests=str(TESTS), root=str(root), sources=SOURCES)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the JVM dies with it
    )
    try:
        deadline = time.monotonic() + 1500
        while not marker.exists():
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                pytest.fail(f"the child ended before the kill point ({proc.returncode}): {out}")
            if time.monotonic() > deadline:
                pytest.fail("the child never reached the kill point")
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("kill_at", ["bronze.p_crm", "silver.p_crm"])
def test_sigkill_before_a_commit_leaves_tables_readable_and_a_rerun_completes(
    spark: SparkSession, tmp_path: Path, kill_at: str
) -> None:
    land(tmp_path)
    run_child_until_pause(tmp_path, kill_at)
    ctx = make_ctx(spark, tmp_path)
    lake = ctx.lake
    table_dir = tmp_path / "lake" / kill_at.replace(".", "/")
    orphans = [p for p in table_dir.glob("part-*") if p.is_dir()]
    assert orphans, "the killed writer had written its Parquet files"
    # Every table is readable at its last committed version; the killed write is not in it.
    for info in lake.list_tables():
        assert lake.read(info.name).count() == (info.rows or 0)
    assert lake.read(kill_at).count() == 0

    run_ingest(ctx, sources=SOURCES)
    run_standardize(ctx, sources=SOURCES)
    # Exactly once: the bronze rows of the good lines, silver's deduplicated records.
    bronze = sorted(r[0] for r in lake.read("bronze.p_crm").select("customer_id").collect())
    assert bronze == ["C1", "C2", "C2", "C3"]
    silver = sorted(r[0] for r in lake.read("silver.p_crm").select("customer_id").collect())
    assert silver == ["C1", "C2"]
    manifest = lake.read("ops.ingest_manifest").where(F.col("source") == "p_crm").collect()
    assert [(m["rows_read"], m["rows_bronze"], m["rows_quarantined"]) for m in manifest] == [
        (5, 4, 1)
    ]
    quarantine = lake.read("quarantine.records").where(F.col("source") == "p_crm")
    assert sorted(r["reason"] for r in quarantine.collect()) == [
        "bad_type:updated_at",
        "wrong_column_count",
    ]
    # The orphaned files are not part of any version; a vacuum removes them.
    lake.vacuum(kill_at, retention_hours=0, enforce_retention=False)
    assert not any(p.exists() for p in orphans)
    assert lake.read(kill_at).count() == (4 if kill_at.startswith("bronze") else 2)


def test_two_writers_on_one_table_one_wins_the_other_retries(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = DeltaRsLakehouse(spark, str(tmp_path / "lake"))
    schema = "id string, v long"
    lake.create("silver.t", spark.createDataFrame([], schema).schema)
    lake.append("silver.t", spark.createDataFrame([("a", 0), ("b", 0)], schema))
    # Both writers read the same snapshot, then both try to commit: a real race, forced.
    barrier = threading.Barrier(2, timeout=300)
    original = DeltaRsLakehouse._commit_actions

    def racing_commit(self: DeltaRsLakehouse, *args: object, **kwargs: object) -> None:
        if threading.current_thread().name.startswith("writer"):
            # On the retry the barrier is broken: the other writer is done, go on.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DeltaRsLakehouse, "_commit_actions", racing_commit)
    outcomes: dict[str, list[str]] = {"w1": [], "w2": []}

    def writer(name: str, value: int) -> None:
        df = spark.createDataFrame([("a", value), (f"new_{name}", value)], schema)
        for _ in range(3):
            try:
                lake.merge("silver.t", df, keys=["id"], txn=Txn(f"merge:{name}", 1))
                outcomes[name].append("ok")
                return
            except ConcurrentWriteError:
                outcomes[name].append("conflict")
                barrier.abort()  # the retry must not wait for a partner

    threads = [
        threading.Thread(target=writer, args=(n, v), name=f"writer-{n}")
        for n, v in (("w1", 1), ("w2", 2))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    results = sorted(outcomes.values())
    assert results == [["conflict", "ok"], ["ok"]], outcomes
    rows = sorted(lake.read("silver.t").collect())
    winner_last = 1 if outcomes["w1"] == ["conflict", "ok"] else 2
    assert [tuple(r) for r in rows] == [
        ("a", winner_last),
        ("b", 0),
        ("new_w1", 1),
        ("new_w2", 2),
    ]
    # Readable by another Delta reader, each commit whole.
    assert DeltaTable(str(tmp_path / "lake/silver/t")).to_pyarrow_table().num_rows == 4
    assert lake.version("silver.t") == 3


def test_rerunning_a_day_gives_identical_tables(spark: SparkSession, tmp_path: Path) -> None:
    land(tmp_path)
    ctx = make_ctx(spark, tmp_path)
    run_ingest(ctx, sources=SOURCES)
    run_standardize(ctx, sources=SOURCES)
    tables = [t.name for t in ctx.lake.list_tables()]
    first = {t: contents(ctx, t) for t in tables}
    again = run_ingest(ctx, sources=SOURCES)
    run_standardize(ctx, sources=SOURCES)
    assert again.figures["read"] == 0
    assert {t: contents(ctx, t) for t in tables} == first
    # The source system re-sends the whole day under new names: bronze keeps the raw copies
    # (with their lineage), silver holds exactly the same records as before.
    write(tmp_path / "landing/crm/crm_20260301_resent.csv", CRM)
    write(tmp_path / "landing/orders/orders_20260301_resent.jsonl", ORDERS)
    resent = run_ingest(ctx, sources=SOURCES)
    assert resent.figures["read"] == 8
    run_standardize(ctx, sources=SOURCES)
    lineage = {"_source_file", "_line", "_batch_id", "_ingested_at", "_standardized_at"}
    for table in ("silver.p_crm", "silver.p_orders"):
        df = ctx.lake.read(table)
        cols = [c for c in df.columns if c not in lineage]
        now = sorted(tuple(str(v) for v in r) for r in df.select(*cols).collect())
        old = ctx.lake.read(table, version=1).select(*cols)  # after the first run
        assert now == sorted(tuple(str(v) for v in r) for r in old.collect()), table
