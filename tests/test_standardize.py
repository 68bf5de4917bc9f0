"""Silver standardisation: types, normalised ids, semantic rejects, dedup, MERGE, consent, DQ.

Landing files are handwritten, ingested with the real ingest stage, then standardised; the
source declarations are test-local so the expectations do not move with conf/sources.yaml.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from cdp_spark import standardize
from cdp_spark.config import load_config
from cdp_spark.ingest import run_ingest
from cdp_spark.pipeline import RunContext, StageReport
from cdp_spark.schemas import DQ_REPORT_TABLE, QUARANTINE_TABLE, STANDARDIZE_LOG_TABLE
from cdp_spark.standardize import run_standardize

REPO_CONF = Path(__file__).resolve().parent.parent / "conf"

SOURCES: dict[str, Any] = {
    "t_crm": {
        "path": "crm",
        "pattern": "crm_*.csv",
        "format": "csv",
        "columns": [
            {"name": "customer_id", "required": True, "identifier": "customer_id"},
            {"name": "first_name"},
            {"name": "last_name"},
            {"name": "email", "identifier": "email"},
            {"name": "phone", "identifier": "phone"},
            {"name": "date_of_birth", "type": "date"},
            {"name": "updated_at", "type": "timestamp", "required": True},
        ],
        "keys": ["customer_id"],
        "order_by": "updated_at",
    },
    "t_pos": {
        "path": "pos",
        "pattern": "pos_*.csv",
        "format": "csv",
        "timezone": "Asia/Yekaterinburg",  # store wall-clock time, UTC+5
        "columns": [
            {"name": "transaction_id", "required": True},
            {"name": "line_no", "type": "int", "required": True},
            {"name": "amount", "type": "decimal(12,2)"},
            {"name": "purchased_at", "type": "timestamp", "required": True},
        ],
        "keys": ["transaction_id", "line_no"],
        "event_time": "purchased_at",
    },
    "t_email": {
        "path": "email",
        "pattern": "email_*.csv",
        "format": "csv",
        "columns": [
            {"name": "email", "required": True, "identifier": "email"},
            {"name": "campaign_id"},
            {"name": "event"},
            {"name": "event_at", "type": "timestamp"},
        ],
    },
    "consent_t": {
        "path": "consent",
        "pattern": "consent_*.csv",
        "format": "csv",
        "columns": [
            {"name": "identifier", "required": True},
            {"name": "identifier_type", "required": True},
            {"name": "channel", "required": True},
            {"name": "purpose", "required": True},
            {"name": "status", "required": True},
            {"name": "recorded_at", "type": "timestamp", "required": True},
        ],
        "order_by": "recorded_at",
    },
}

CRM_HEADER = "customer_id,first_name,last_name,email,phone,date_of_birth,updated_at\n"


def make_ctx(spark: SparkSession, tmp_path: Path, run_date: date) -> RunContext:
    cfg = load_config(
        "local",
        conf_dir=REPO_CONF,
        environ={},
        overrides={
            "storage.root": str(tmp_path / "lake"),
            "paths.landing": str(tmp_path / "landing"),
            "storage.engine": "delta-rs",
            "standardize.default_timezone": "UTC",
            "standardize.junk_phones": ["+79001112233"],
            "sources": SOURCES,
        },
    )
    return RunContext.create(cfg, run_date=run_date, spark=spark, progress=lambda _m: None)


def land(tmp_path: Path, rel: str, text: str) -> None:
    path = tmp_path / "landing" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def run_day(ctx: RunContext, sources: list[str]) -> StageReport:
    run_ingest(ctx, sources=sources)
    return run_standardize(ctx, sources=sources)


def silver_rejects(ctx: RunContext, source: str) -> Any:
    return (
        ctx.lake.read(QUARANTINE_TABLE)
        .where((F.col("source") == source) & (F.col("layer") == "silver"))
        .select("reason", "line", "batch_id")
    )


def test_crm_types_ids_rejects_merge_updates_and_dq_report(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day1 = make_ctx(spark, tmp_path, date(2026, 3, 1))
    land(
        tmp_path,
        "crm/crm_2026-03-01.csv",
        CRM_HEADER
        + "C1,Анна,Ли, Ann.Lee@GMail.com ,8 (912) 345-67-89,05.01.1990,2026-03-01 10:00:00\n"
        + "C2,Bob,Smith,bob@x,+7 900 111-22-33,1985-02-03,2026-03-01T09:00:00Z\n"
        + "C3,Eve,Doe,eve@x.com,,1990-13-01,2026-03-01 08:00:00\n"  # bad date of birth
        + "C4,Max,Mo,max@x.com,,,yesterday\n"  # bad timestamp
        + "C5,Ida,Ek,ida@x.com\n",  # structural: bronze quarantine
    )
    run_day(day1, ["t_crm"])

    crm = day1.lake.read("silver.t_crm")
    cols = [
        "customer_id", "customer_id_norm", "email_norm", "phone_e164", "name_key",
        "date_of_birth", "updated_at", "_batch_id",
    ]  # fmt: skip
    schema = (
        "customer_id string, customer_id_norm string, email_norm string, phone_e164 string,"
        " name_key string, date_of_birth date, updated_at timestamp, _batch_id long"
    )
    assertDataFrameEqual(
        crm.select(*cols),
        spark.createDataFrame(
            [
                (
                    "C1",
                    "C1",
                    "annlee@gmail.com",
                    "+79123456789",
                    "ana li",
                    date(1990, 1, 5),
                    datetime(2026, 3, 1, 10, 0),
                    1,
                ),
                # Invalid email (optional): kept, raw email stays, normalised is null.
                # Junk phone (from standardize.junk_phones): nulled.
                ("C2", "C2", None, None, "bob smith", date(1985, 2, 3), datetime(2026, 3, 1, 9), 1),
            ],
            schema,
        ),
    )
    assert crm.where("customer_id = 'C2'").select("email", "phone").first() == (
        "bob@x",
        "+7 900 111-22-33",
    )
    assertDataFrameEqual(
        silver_rejects(day1, "t_crm"),
        spark.createDataFrame(
            [("bad_type:date_of_birth", 4, 1), ("bad_type:updated_at", 5, 1)],
            "reason string, line long, batch_id long",
        ),
    )

    # Day 2: C1 re-exported with a new email (newer), C2 resent unchanged, and a late file
    # with an older version of C1 that must not roll it back.
    day2 = make_ctx(spark, tmp_path, date(2026, 3, 2))
    land(
        tmp_path,
        "crm/crm_2026-03-02.csv",
        CRM_HEADER
        + "C1,Анна,Ли,anna.li@mail.ru,8 (912) 345-67-89,05.01.1990,2026-03-02 10:00:00\n"
        + "C2,Bob,Smith,bob@x,+7 900 111-22-33,1985-02-03,2026-03-01T09:00:00Z\n",
    )
    land(
        tmp_path,
        "crm/crm_2026-02-28.csv",
        CRM_HEADER + "C1,Анна,Ли,old@mail.ru,,05.01.1990,2026-02-28 10:00:00\n",
    )
    # A crash after the silver writes, before the watermark: the re-run must not duplicate.
    monkeypatch.setattr(standardize, "write_watermark", _crash)
    with pytest.raises(RuntimeError, match="simulated"):
        run_day(day2, ["t_crm"])
    monkeypatch.undo()
    report = run_standardize(day2, sources=["t_crm"])
    assert report.rows == [
        {"source": "t_crm", "batches": "2-2", "rows_in": 3, "rows_out": 2, "duplicates": 1,
         "quarantined": 0}
    ]  # fmt: skip
    assert run_standardize(day2, sources=["t_crm"]).rows == []  # nothing new

    assertDataFrameEqual(
        day2.lake.read("silver.t_crm").select("customer_id", "email_norm", "updated_at"),
        spark.createDataFrame(
            [
                ("C1", "anna.li@mail.ru", datetime(2026, 3, 2, 10)),
                ("C2", None, datetime(2026, 3, 1, 9)),
            ],
            "customer_id string, email_norm string, updated_at timestamp",
        ),
    )
    assert day2.lake.read(STANDARDIZE_LOG_TABLE).count() == 2

    dq = day2.lake.read(DQ_REPORT_TABLE).where("run_date = DATE'2026-03-01'").first()
    assert dq is not None
    assert (dq.rows_read, dq.rows_bronze, dq.rows_in, dq.rows_out, dq.rows_quarantined) == (
        5, 4, 4, 2, 3,
    )  # fmt: skip
    assert dq.quarantine_by_reason == {
        "bad_type:date_of_birth": 1,
        "bad_type:updated_at": 1,
        "wrong_column_count": 1,
    }
    assert dq.invalid_identifiers == {"invalid:email_norm": 1, "junk:phone_e164": 1}
    assert dq.null_rates["email_norm"] == pytest.approx(0.5)
    assert dq.null_rates["customer_id"] == 0.0
    assert day2.lake.read(DQ_REPORT_TABLE).where("run_date = DATE'2026-03-02'").count() == 1


def _crash(*_args: Any, **_kwargs: Any) -> None:
    raise RuntimeError("simulated crash")


def test_pos_local_time_negative_amounts_and_keyless_dedup(
    spark: SparkSession, tmp_path: Path
) -> None:
    ctx = make_ctx(spark, tmp_path, date(2026, 3, 1))
    land(
        tmp_path,
        "pos/pos_2026-03-01.csv",
        "transaction_id,line_no,amount,purchased_at\n"
        'T1,1,"1 234,50",2026-03-01 12:00:00\n'
        "T1,2,-5.00,2026-03-01 12:00:00\n"
        "T2,1,10,2026-03-01T12:00:00+03:00\n",
    )
    row = "a@x.com,cmp1,open,2026-03-01T08:00:00Z\n"
    land(tmp_path, "email/email_2026-03-01.csv", "email,campaign_id,event,event_at\n" + row * 2)
    land(tmp_path, "email/email_2026-03-01_resent.csv", "email,campaign_id,event,event_at\n" + row)
    report = run_day(ctx, ["t_pos", "t_email"])
    assert report.figures["quarantine_by_reason"] == {"negative:amount": 1}

    assertDataFrameEqual(
        ctx.lake.read("silver.t_pos").select("transaction_id", "line_no", "amount", "purchased_at"),
        spark.createDataFrame(
            [
                ("T1", 1, Decimal("1234.50"), datetime(2026, 3, 1, 7, 0)),  # 12:00 at UTC+5
                ("T2", 1, Decimal("10.00"), datetime(2026, 3, 1, 9, 0)),  # its own offset wins
            ],
            "transaction_id string, line_no int, amount decimal(12,2), purchased_at timestamp",
        ),
    )
    assertDataFrameEqual(
        silver_rejects(ctx, "t_pos"),
        spark.createDataFrame(
            [("negative:amount", 3, 1)], "reason string, line long, batch_id long"
        ),
    )
    # Three copies of one event (twice in a file, once in a re-sent file): one silver row.
    emails = ctx.lake.read("silver.t_email")
    assert emails.select("email_norm", "event").collect() == [("a@x.com", "open")]
    land(tmp_path, "email/email_2026-03-02.csv", "email,campaign_id,event,event_at\n" + row)
    run_day(ctx, ["t_email"])
    assert ctx.lake.read("silver.t_email").count() == 1


def test_consent_current_state_after_grant_then_revoke_and_history(
    spark: SparkSession, tmp_path: Path
) -> None:
    ctx = make_ctx(spark, tmp_path, date(2026, 3, 1))
    header = "identifier,identifier_type,channel,purpose,status,recorded_at\n"
    land(
        tmp_path,
        "consent/consent_2026-03-01.csv",
        header
        + "Ann@X.com,email,email,marketing,granted,2026-03-01T09:00:00Z\n"
        + "8 912 345 67 89,phone,sms,marketing,granted,2026-03-01T09:00:00Z\n",
    )
    run_day(ctx, ["consent_t"])
    land(
        tmp_path,
        "consent/consent_2026-03-02.csv",
        header + " ann@x.com ,email,email,marketing,revoked,2026-03-02T09:00:00Z\n",
    )
    run_day(ctx, ["consent_t"])

    cols = ["identifier_type", "identifier_norm", "channel", "purpose", "status", "recorded_at"]
    schema = (
        "identifier_type string, identifier_norm string, channel string, purpose string,"
        " status string, recorded_at timestamp"
    )
    assertDataFrameEqual(
        ctx.lake.read("silver.consent").select(*cols),
        spark.createDataFrame(
            [
                ("email", "ann@x.com", "email", "marketing", "revoked", datetime(2026, 3, 2, 9)),
                ("phone", "+79123456789", "sms", "marketing", "granted", datetime(2026, 3, 1, 9)),
            ],
            schema,
        ),
    )
    assertDataFrameEqual(
        ctx.lake.read("silver.consent_history").select(*cols),
        spark.createDataFrame(
            [
                ("email", "ann@x.com", "email", "marketing", "granted", datetime(2026, 3, 1, 9)),
                ("phone", "+79123456789", "sms", "marketing", "granted", datetime(2026, 3, 1, 9)),
                ("email", "ann@x.com", "email", "marketing", "revoked", datetime(2026, 3, 2, 9)),
            ],
            schema,
        ),
    )


def test_judged_records_keep_the_raw_line_only_when_rejected(spark: SparkSession) -> None:
    judged = spark.createDataFrame(
        [("a", "2026-13-01", None, "line a", "x"), ("b", "oops", "bad_type:ts", "line b", "y")],
        "id string, __raw__ts string, _reason string, _raw string, other string",
    )
    expected = spark.createDataFrame(
        [("a", None, "x", None), ("b", "bad_type:ts", "y", "line b")],
        "id string, _reason string, other string, _raw string",
    )
    assertDataFrameEqual(standardize.without_judged_text(judged), expected)
