"""Bronze ingestion: quarantine reasons, incremental runs, late and changed files, crash safety.

Each test builds a tiny landing folder by hand and a lakehouse under ``tmp_path``, with
test-local source declarations (so the tests do not move when conf/sources.yaml evolves).
"""

from __future__ import annotations

import importlib.util
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from cdp_spark import ingest
from cdp_spark.config import CdpConfig, load_config
from cdp_spark.ingest import KnownFile, LandingFile, plan_batches, run_ingest
from cdp_spark.pipeline import RunContext
from cdp_spark.quality import FileCounts, ReconciliationError, check_reconciled
from cdp_spark.schemas import MANIFEST_TABLE, QUARANTINE_TABLE

REPO_CONF = Path(__file__).resolve().parent.parent / "conf"
RUN_DATE = date(2026, 3, 2)

CONTACTS = {
    "path": "crm",
    "pattern": "contacts_*.csv",
    "format": "csv",
    "columns": [
        {"name": "id", "required": True, "identifier": "customer_id"},
        {"name": "email", "identifier": "email"},
        {"name": "name"},
        {"name": "amount", "type": "decimal(10,2)"},
    ],
    "keys": ["id"],
}
EVENTS = {
    "path": "web",
    "pattern": "events_*.jsonl",
    "format": "jsonl",
    "columns": [
        {"name": "event_id", "required": True},
        {"name": "ts", "type": "timestamp", "required": True},
        {"name": "lines", "type": "array<struct<sku:string,qty:int>>"},
    ],
    "keys": ["event_id"],
}
LEGACY = {
    "path": "legacy",
    "pattern": "*.txt",
    "format": "csv",
    "encoding": "cp1251",
    "delimiter": ";",
    "columns": [{"name": "code", "required": True}, {"name": "city"}],
}
SNAPSHOT = {
    "path": "snap",
    "pattern": "*.parquet",
    "format": "parquet",
    "columns": [{"name": "sku", "required": True}, {"name": "price", "type": "double"}],
}
TEST_SOURCES = {"t_contacts": CONTACTS, "t_events": EVENTS, "t_legacy": LEGACY, "t_snap": SNAPSHOT}


def make_ctx(spark: SparkSession, tmp_path: Path, run_date: date = RUN_DATE) -> RunContext:
    cfg: CdpConfig = load_config(
        "local",
        conf_dir=REPO_CONF,
        environ={},
        overrides={
            "storage.root": str(tmp_path / "lake"),
            "paths.landing": str(tmp_path / "landing"),
            "storage.engine": "delta-rs",
            "sources": TEST_SOURCES,
        },
    )
    return RunContext.create(cfg, run_date=run_date, spark=spark, progress=lambda _m: None)


def write(path: Path, data: bytes | str, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def quarantine(ctx: RunContext, source: str) -> DataFrame:
    return ctx.lake.read(QUARANTINE_TABLE).where(F.col("source") == source)


# --- structural rejects ----------------------------------------------------------------------


def test_csv_malformed_lines_are_quarantined_with_reason_and_counts_reconcile(
    spark: SparkSession, tmp_path: Path
) -> None:
    ctx = make_ctx(spark, tmp_path)
    cp1251_row = "7,x@y.ru,Пётр,1.00".encode("cp1251")
    content = b"\n".join(
        [
            "\ufeffid,email,name,amount".encode(),  # header with a BOM
            b'1,ann@x.com,"Ann, A",10.50',
            b"2,too,many,columns,here",
            b"",
            cp1251_row,
            "3,c@x.com,\ufffd,1".encode(),  # already-mangled text
            b",d@x.com,Dee,2",  # required id missing
            b"id,email,name,amount",  # a second export glued on
            b"4,e@x.com,Eve,-5",  # negative: semantic, so bronze keeps it
            b"5,f@x.com",  # too few columns
        ]
    )
    write(tmp_path / "landing/crm/contacts_2026-03-01.csv", content + b"\n")

    report = run_ingest(ctx, sources=["t_contacts"])

    bronze = ctx.lake.read("bronze.t_contacts").select(
        "id", "email", "name", "amount", "_line", "_source_file", "_batch_id", "_raw"
    )
    expected_bronze = spark.createDataFrame(
        [
            ("1", "ann@x.com", "Ann, A", "10.50", 2, "crm/contacts_2026-03-01.csv", 1,
             '1,ann@x.com,"Ann, A",10.50'),
            ("4", "e@x.com", "Eve", "-5", 9, "crm/contacts_2026-03-01.csv", 1, "4,e@x.com,Eve,-5"),
        ],
        "id string, email string, name string, amount string, _line long, _source_file string,"
        " _batch_id long, _raw string",
    )  # fmt: skip
    assertDataFrameEqual(bronze, expected_bronze)

    q = quarantine(ctx, "t_contacts")
    expected_q = spark.createDataFrame(
        [
            ("wrong_column_count", 3, "2,too,many,columns,here"),
            ("blank_line", 4, ""),
            ("invalid_encoding", 5, cp1251_row.decode("utf-8", errors="replace")),
            ("invalid_encoding", 6, "3,c@x.com,\ufffd,1"),
            ("missing_required:id", 7, ",d@x.com,Dee,2"),
            ("repeated_header", 8, "id,email,name,amount"),
            ("wrong_column_count", 10, "5,f@x.com"),
        ],
        "reason string, line long, raw string",
    )
    assertDataFrameEqual(q.select("reason", "line", "raw"), expected_q)
    # The undecodable bytes are kept as they were, for a person to recover the row.
    raw_bytes = q.where("line = 5").select("raw_bytes").first()
    assert raw_bytes is not None and bytes(raw_bytes[0]) == cp1251_row
    assert q.select("layer").distinct().collect()[0][0] == "bronze"

    assert report.rows == [
        {"source": "t_contacts", "batch_id": 1, "files": 1, "read": 9, "bronze": 2,
         "quarantined": 7, "reconciled": True, "recovered": False}
    ]  # fmt: skip
    assert report.figures["quarantine_by_reason"]["wrong_column_count"] == 2
    manifest = ctx.lake.read(MANIFEST_TABLE).select(
        "file_path", "lines_total", "header_lines", "rows_read", "rows_bronze", "rows_quarantined"
    )
    assertDataFrameEqual(
        manifest,
        spark.createDataFrame(
            [("crm/contacts_2026-03-01.csv", 10, 1, 9, 2, 7)],
            "file_path string, lines_total long, header_lines long, rows_read long,"
            " rows_bronze long, rows_quarantined long",
        ),
    )


def test_jsonl_truncated_and_non_object_lines_are_malformed_json(
    spark: SparkSession, tmp_path: Path
) -> None:
    ctx = make_ctx(spark, tmp_path)
    good = {"event_id": "e1", "ts": "2026-03-01T10:00:00Z", "lines": [{"sku": "A", "qty": 2}]}
    lines = [
        json.dumps(good),
        '{"event_id": "e2", "ts": "2026-03-01T10:00:0',  # truncated
        "[1, 2]",
        json.dumps({"event_id": "e3"}),  # ts missing
        json.dumps({"event_id": "e4", "ts": "not a date", "lines": [{"sku": "B", "qty": "x"}]}),
    ]
    write(tmp_path / "landing/web/events_2026-03-01.jsonl", "\n".join(lines) + "\n")

    run_ingest(ctx, sources=["t_events"])

    bronze = ctx.lake.read("bronze.t_events").select("event_id", "ts", "lines", "_line")
    expected = spark.createDataFrame(
        [
            ("e1", "2026-03-01T10:00:00Z", [("A", "2")], 1),
            # Typing is silver's job: a bad date and a word in a number reach bronze as text.
            ("e4", "not a date", [("B", "x")], 5),
        ],
        "event_id string, ts string, lines array<struct<sku:string,qty:string>>, _line long",
    )
    assertDataFrameEqual(bronze, expected)
    assertDataFrameEqual(
        quarantine(ctx, "t_events").select("reason", "line"),
        spark.createDataFrame(
            [("malformed_json", 2), ("malformed_json", 3), ("missing_required:ts", 4)],
            "reason string, line long",
        ),
    )


def test_declared_cp1251_source_with_its_own_header_order(
    spark: SparkSession, tmp_path: Path
) -> None:
    ctx = make_ctx(spark, tmp_path)
    # The file orders its columns differently from the declaration; 0x98 is not cp1251.
    content = "city;code\nМосква;M1\nСанкт-Петербург;P2\n".encode("cp1251") + b"\x98;X3\n"
    write(tmp_path / "landing/legacy/cities.txt", content)
    # A file whose first line names no declared column has no header: declared order.
    write(tmp_path / "landing/legacy/more.txt", "K4;Казань\n".encode("cp1251"))
    run_ingest(ctx, sources=["t_legacy"])
    assertDataFrameEqual(
        ctx.lake.read("bronze.t_legacy").select("code", "city", "_line", "_source_file"),
        spark.createDataFrame(
            [
                ("M1", "Москва", 2, "legacy/cities.txt"),
                ("P2", "Санкт-Петербург", 3, "legacy/cities.txt"),
                ("K4", "Казань", 1, "legacy/more.txt"),
            ],
            "code string, city string, _line long, _source_file string",
        ),
    )
    assertDataFrameEqual(
        quarantine(ctx, "t_legacy").select("reason", "line"),
        spark.createDataFrame([("invalid_encoding", 4)], "reason string, line long"),
    )


def test_parquet_source_rows_are_numbered_and_required_fields_checked(
    spark: SparkSession, tmp_path: Path
) -> None:
    ctx = make_ctx(spark, tmp_path)
    (tmp_path / "landing/snap").mkdir(parents=True)
    table = pa.table({"sku": ["A", None, "C"], "price": [1.5, 2.0, None], "extra": [1, 2, 3]})
    pq.write_table(table, tmp_path / "landing/snap/products.parquet")
    run_ingest(ctx, sources=["t_snap"])
    assertDataFrameEqual(
        ctx.lake.read("bronze.t_snap").select("sku", "price", "_line"),
        spark.createDataFrame(
            [("A", "1.5", 1), ("C", None, 3)], "sku string, price string, _line long"
        ),
    )
    assertDataFrameEqual(
        quarantine(ctx, "t_snap").select("reason", "line"),
        spark.createDataFrame([("missing_required:sku", 2)], "reason string, line long"),
    )


# --- incremental runs ------------------------------------------------------------------------


def test_rerun_adds_nothing_late_and_changed_files_are_new_touched_files_are_not(
    spark: SparkSession, tmp_path: Path
) -> None:
    ctx = make_ctx(spark, tmp_path)
    landing = tmp_path / "landing/crm"
    write(landing / "contacts_2026-03-02.csv", "id,email,name,amount\n1,a@x.com,A,1\n", 1_000)
    first = run_ingest(ctx, sources=["t_contacts"])
    assert [r["batch_id"] for r in first.rows] == [1]

    again = run_ingest(ctx, sources=["t_contacts"])
    assert again.rows == []
    assert ctx.lake.read("bronze.t_contacts").count() == 1

    # Touched (new mtime, same bytes): not new. Late file (an older date): new.
    # Changed at the same path: new, ingested again as a whole.
    write(landing / "contacts_2026-03-02.csv", "id,email,name,amount\n1,a@x.com,A,1\n", 2_000)
    write(landing / "contacts_2026-02-27.csv", "id,email,name,amount\n2,b@x.com,B,2\n", 3_000)
    write(landing / "_tmp_upload.csv", "id,email\n9,z@x.com\n")  # temp names are ignored
    third = run_ingest(ctx, sources=["t_contacts"])
    assert [(r["batch_id"], r["files"], r["bronze"]) for r in third.rows] == [(2, 1, 1)]

    write(
        landing / "contacts_2026-03-02.csv",
        "id,email,name,amount\n1,a2@x.com,A,1\n3,c@x,C,3\n",
        4_000,
    )
    fourth = run_ingest(ctx, sources=["t_contacts"])
    assert [(r["batch_id"], r["files"], r["bronze"]) for r in fourth.rows] == [(3, 1, 2)]

    assertDataFrameEqual(
        ctx.lake.read("bronze.t_contacts").select("id", "email", "_batch_id"),
        spark.createDataFrame(
            [("1", "a@x.com", 1), ("2", "b@x.com", 2), ("1", "a2@x.com", 3), ("3", "c@x", 3)],
            "id string, email string, _batch_id long",
        ),
    )
    assertDataFrameEqual(
        ctx.lake.read(MANIFEST_TABLE).select("file_path", "batch_id"),
        spark.createDataFrame(
            [
                ("crm/contacts_2026-03-02.csv", 1),
                ("crm/contacts_2026-02-27.csv", 2),
                ("crm/contacts_2026-03-02.csv", 3),
            ],
            "file_path string, batch_id long",
        ),
    )


# --- crash safety ----------------------------------------------------------------------------


class Crash(RuntimeError):
    pass


def _crash(*_args: Any, **_kwargs: Any) -> None:
    raise Crash("simulated crash")


def test_crash_before_manifest_then_rerun_neither_duplicates_nor_loses(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(spark, tmp_path)
    landing = tmp_path / "landing/crm"
    write(landing / "contacts_2026-03-01.csv", "id,email,name,amount\n1,a@x.com,A,1\n2,b\n")

    # Bronze is written, then the job dies before quarantine and manifest.
    monkeypatch.setattr(ingest, "write_quarantine", _crash)
    with pytest.raises(Crash):
        run_ingest(ctx, sources=["t_contacts"])
    monkeypatch.undo()
    assert ctx.lake.read("bronze.t_contacts").count() == 1
    assert not ctx.lake.exists(MANIFEST_TABLE) or ctx.lake.read(MANIFEST_TABLE).count() == 0

    # A new file arrives before the retry: it must go to a new batch, not into the old one.
    write(landing / "contacts_2026-03-02.csv", "id,email,name,amount\n3,c@x.com,C,3\n")
    # Second crash, now after bronze and quarantine: only the manifest is missing.
    monkeypatch.setattr(ingest, "write_manifest", _crash)
    with pytest.raises(Crash):
        run_ingest(ctx, sources=["t_contacts"])
    monkeypatch.undo()

    report = run_ingest(ctx, sources=["t_contacts"])
    assert [(r["batch_id"], r["recovered"], r["read"], r["bronze"], r["quarantined"])
            for r in report.rows] == [(1, True, 2, 1, 1), (2, False, 1, 1, 0)]  # fmt: skip
    assertDataFrameEqual(
        ctx.lake.read("bronze.t_contacts").select("id", "_batch_id"),
        spark.createDataFrame([("1", 1), ("3", 2)], "id string, _batch_id long"),
    )
    assertDataFrameEqual(
        quarantine(ctx, "t_contacts").select("reason", "batch_id"),
        spark.createDataFrame([("wrong_column_count", 1)], "reason string, batch_id long"),
    )
    assert run_ingest(ctx, sources=["t_contacts"]).rows == []


def test_an_all_bad_batch_commits_nothing_to_bronze_then_crash_and_late_good_file(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(spark, tmp_path)
    write(tmp_path / "landing/crm/contacts_2026-03-01.csv", "id,email,name,amount\n1\n2\n")
    monkeypatch.setattr(ingest, "write_manifest", _crash)
    with pytest.raises(Crash):
        run_ingest(ctx, sources=["t_contacts"])
    monkeypatch.undo()
    # No empty bronze commit holds batch 1's Txn, so the good file that arrives before the
    # retry cannot be skipped as "already written".
    assert ctx.lake.version("bronze.t_contacts") == 0
    write(tmp_path / "landing/crm/contacts_2026-03-02.csv", "id,email,name,amount\n3,c,C,3\n")
    report = run_ingest(ctx, sources=["t_contacts"])
    assert [
        (r["batch_id"], r["recovered"], r["bronze"], r["quarantined"]) for r in report.rows
    ] == [
        (1, True, 0, 2),
        (2, False, 1, 0),
    ]


def test_a_lost_write_fails_the_reconciliation(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = make_ctx(spark, tmp_path)
    write(tmp_path / "landing/crm/contacts_2026-03-01.csv", "id,email,name,amount\n1,a,A,1\n2\n")
    monkeypatch.setattr(ingest, "write_quarantine", lambda *a, **k: None)  # silently lost
    with pytest.raises(ReconciliationError, match=r"read 2 != bronze 1 \+ quarantined 0"):
        run_ingest(ctx, sources=["t_contacts"])
    # Nothing recorded: the batch stays open and is redone by the next run.
    assert not ctx.lake.exists(MANIFEST_TABLE) or ctx.lake.read(MANIFEST_TABLE).count() == 0


# --- pure planning and checks (no Spark) -----------------------------------------------------


def _file(rel: str, size: int = 10, mtime: int = 1) -> LandingFile:
    return LandingFile(rel, f"file:///l/{rel}", f"/l/{rel}", size, mtime)


def test_plan_batches_hashes_only_files_whose_stat_changed() -> None:
    hashed: list[str] = []

    def sha(f: LandingFile) -> str:
        hashed.append(f.rel_path)
        return {"a": "h1", "b": "h2", "c": "h3"}[f.rel_path]

    known = [KnownFile("a", 10, 1, "h1", 1), KnownFile("b", 10, 1, "h2", 1)]
    listed = [_file("a"), _file("b", mtime=5), _file("c")]
    batches = plan_batches("s", listed, known, sha)
    assert hashed == ["b", "c"]  # a: same stat, not read; b: touched, same hash
    assert [(b.batch_id, [f.rel_path for f, _ in b.files]) for b in batches] == [(2, ["c"])]


def test_plan_batches_redoes_an_open_batch_first_and_refuses_a_vanished_file() -> None:
    listed = [_file("a"), _file("b"), _file("c")]
    batches = plan_batches("s", listed, [], lambda f: "h" + f.rel_path, open_batch=(1, {"a", "c"}))
    assert [(b.batch_id, b.recovered, [f.rel_path for f, _ in b.files]) for b in batches] == [
        (1, True, ["a", "c"]),
        (2, False, ["b"]),
    ]
    with pytest.raises(Exception, match="no longer in the landing folder"):
        plan_batches("s", [_file("a")], [], lambda f: "h", open_batch=(1, {"a", "gone"}))


def test_check_reconciled_names_the_file_that_does_not_add_up() -> None:
    assert check_reconciled("s", 1, [FileCounts("f1", 3, 2, 1)]) == []
    with pytest.raises(ReconciliationError, match="f2: read 5 != bronze 2 \\+ quarantined 2"):
        check_reconciled("s", 1, [FileCounts("f1", 3, 2, 1), FileCounts("f2", 5, 2, 2)])


# --- the spark-submit entry points -----------------------------------------------------------

JOBS = Path(__file__).resolve().parent.parent / "jobs"


def _load_job(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"job_{name}", JOBS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_per_source_job_names_a_declared_source() -> None:
    declared = set(load_config("local", conf_dir=REPO_CONF, environ={}).sources)
    named = {_load_job(p.stem).SOURCE for p in JOBS.glob("ingest_*.py")}
    assert named == declared


def test_per_source_job_ingests_its_source_and_reports_json(
    spark: SparkSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CDP__STORAGE__ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("CDP__PATHS__LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("CDP__STORAGE__ENGINE", "delta-rs")
    header = (
        "customer_id,first_name,last_name,email,phone,date_of_birth,street,city,postcode,"
        "country,created_at,updated_at\n"
    )
    write(
        tmp_path / "landing/crm/crm_contacts_2026-03-01.csv",
        header + "C1,Ann,Lee,a@x.com,,,,,,RU,2026-03-01T10:00:00Z,2026-03-01T10:00:00Z\n",
    )
    job = _load_job("ingest_crm_contacts")
    assert job.main(["--conf-profile", "local", "--run-date", "2026-03-01"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["stage"], summary["run_date"]) == ("ingest", "2026-03-01")
    assert [(r["source"], r["read"], r["bronze"]) for r in summary["rows"]] == [
        ("crm_contacts", 1, 1)
    ]
    # A bad argument is one clear line and exit code 2, not a stack trace.
    assert _load_job("ingest").main(["--run-date", "2026-03-01", "--source", "nope"]) == 2
    assert "unknown source(s): nope" in capsys.readouterr().err
