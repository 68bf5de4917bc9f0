"""Right to erasure: a person is gone from every table, every reachable version, every Delta
log file and every export file; others are untouched; the log and the suppression list hold
no personal data; a late file does not re-create the person.

One module-scoped lakehouse (ingest + standardize of four tiny sources, hand-made gold-like
tables with the columns of docs/tables.md, export files) is erased once; the tests check it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from test_privacy_support import PiiProbe, log_text, make_ctx, table_text, write

from cdp_spark.ingest import run_ingest
from cdp_spark.pipeline import RunContext, StageReport
from cdp_spark.privacy.erasure import (
    ERASURE_LOG_TABLE,
    ErasureRequest,
    email_key,
    row_hash_sql,
    run_erase,
)
from cdp_spark.privacy.suppression import SUPPRESSION_TABLE
from cdp_spark.schemas import QUARANTINE_TABLE
from cdp_spark.standardize import run_standardize

IVAN_EMAIL = "Ivan.Petrov+shop@GoogleMail.com"
IVAN_NORM = "ivanpetrov@gmail.com"
IVAN_PHONE = "+79123456789"
SHA = lambda v: hashlib.sha256(v.encode()).hexdigest()  # noqa: E731
HMAC = lambda v: hmac.new(b"test-privacy-key", v.encode(), hashlib.sha256).hexdigest()  # noqa: E731

# Everything that would betray Ivan: name, every written form of his e-mail and phone, his
# customer id, record ids, person ids, and the hashes an ads file would carry.
PROBE = PiiProbe(
    words=["ivan", "petrov", SHA(IVAN_NORM), SHA(IVAN_PHONE)],
    digits=["9123456789"],
    exact=["C001", "O1", "O2", "T1", "p1", "p0"],
)

CRM_DAY1 = "\n".join(
    [
        "customer_id,first_name,last_name,email,phone,country,updated_at",
        f"C001,Ivan,Petrov,{IVAN_EMAIL},8 (912) 345-67-89,RU,2026-03-01T10:00:00Z",
        "C002,Anna,Smirnova,anna@x.ru,+442079460958,GB,2026-03-01T11:00:00Z",
        # structural reject (too many columns): bronze quarantine keeps the raw line
        "C001,Ivan,Petrov,ivan.petrov@gmail.com,x,RU,2026-03-01T10:00:00Z,extra,extra",
        # semantic reject (bad time) holding his phone: silver quarantine keeps the raw line
        "C009,I.,P.,,+7 912 345 67 89,RU,not-a-time",
    ]
)
ORDERS_DAY1 = "\n".join(
    json.dumps(r)
    for r in [
        {"order_id": "O1", "customer_id": "C001", "guest_email": None, "total_amount": "10.00"},
        {
            "order_id": "O2",
            "customer_id": None,
            "guest_email": "IVANPETROV@gmail.com",
            "total_amount": "5",
        },
        {"order_id": "O3", "customer_id": "C002", "guest_email": None, "total_amount": "7.5"},
    ]
)
TICKETS_DAY1 = "\n".join(
    [
        "ticket_id,contact_email,contact_phone,message",
        'T1,,+79123456789,"hello, I am IVAN.PETROV@gmail.com, call 8-912-345-67-89"',
        "T2,anna@x.ru,,all good",
    ]
)
CONSENT_DAY1 = "\n".join(
    [
        "identifier,identifier_type,channel,purpose,status,recorded_at",
        "ivan.petrov@gmail.com,email,email,marketing,granted,2026-03-01T10:00:00Z",
        "89123456789,phone,sms,marketing,granted,2026-03-01T10:00:00Z",
        "anna@x.ru,email,email,marketing,granted,2026-03-01T10:00:00Z",
    ]
)


def land_day1(root: Path) -> None:
    write(root / "landing/crm/crm_20260301.csv", CRM_DAY1)
    write(root / "landing/orders/orders_20260301.jsonl", ORDERS_DAY1)
    write(root / "landing/support/tickets_20260301.csv", TICKETS_DAY1)
    write(root / "landing/consent/consent_20260301.csv", CONSENT_DAY1)


def add_gold_like_tables(ctx: RunContext) -> None:
    """Tables of the later stages with the columns of docs/tables.md, two versions each."""
    lake, spark = ctx.lake, ctx.spark
    d = ctx.run_date
    tables = {
        "gold.identity_identifiers": (
            "id_type string, id_value string, person_id string, run_date date",
            [
                ("email", IVAN_NORM, "p1", d),
                ("phone", IVAN_PHONE, "p1", d),
                ("customer_id", "C001", "p1", d),
            ],
            [("email", "anna@x.ru", "p2", d), ("customer_id", "C002", "p2", d)],
        ),
        "gold.identity_clusters": (
            "source string, record_id string, person_id string, run_date date",
            [
                ("p_crm", "C001", "p1", d),
                ("p_orders", "O1", "p1", d),
                ("p_orders", "O2", "p1", d),
            ],
            [("p_crm", "C002", "p2", d), ("p_orders", "O3", "p2", d)],
        ),
        "gold.person_id_history": (
            "run_id string, event string, old_person_id string, new_person_id string, "
            "records long, run_date date",
            [("r1", "merge", "p0", "p1", 2, d)],
            [("r1", "merge", "p7", "p2", 1, d)],
        ),
        "silver.identity_edges": (
            "src string, dst string, rule string, score double, source string, "
            "record_id string, run_date date",
            [(f"email:{IVAN_NORM}", "rec:p_crm:C001", "email", 1.0, "p_crm", "C001", d)],
            [("email:anna@x.ru", "rec:p_crm:C002", "email", 1.0, "p_crm", "C002", d)],
        ),
        "gold.customer_profiles": (
            "person_id string, first_name string, emails array<string>, "
            "phones array<string>, clv double, run_date date",
            [("p1", "Ivan", [IVAN_NORM], [IVAN_PHONE], 10.0, d)],
            [("p2", "Anna", ["anna@x.ru"], [], 7.5, d)],
        ),
        "gold.segment_membership": (
            "run_date date, segment string, person_id string",
            [(d, "vip", "p1"), (d, "vip", "p0")],
            [(d, "vip", "p2")],
        ),
        "gold.scored_profiles": (
            "person_id string, churn_score double, churn_decile int, score_date date",
            [("p1", 0.9, 10, d)],
            [("p2", 0.1, 1, d)],
        ),
        "gold.ads_audience": (
            "segment string, email_sha256 string, phone_sha256 string, run_date date",
            [("vip", SHA(IVAN_NORM), SHA(IVAN_PHONE), d)],
            [("vip", SHA("anna@x.ru"), None, d)],
        ),
    }
    for name, (ddl, ivan, others) in tables.items():
        schema = spark.createDataFrame([], ddl).schema
        # Partitioned like a daily table would be: the delete prefilters on partitions.
        lake.create(name, schema, partition_by=["run_date"] if "run_date" in ddl else [])
        lake.append(name, spark.createDataFrame(others, schema))
        lake.append(name, spark.createDataFrame(ivan, schema))


def add_export_files(root: Path) -> None:
    exports = root / "exports"
    write(
        exports / "esp/vip/run_date=2026-03-02/part-00000.csv",
        "person_id,email,phone,first_name\n"
        f"p1,{IVAN_NORM},'{IVAN_PHONE},Ivan\n"
        "p2,anna@x.ru,,Anna\n",
    )
    write(
        exports / "ads/vip/run_date=2026-03-02/hashes.csv",
        f"hashed_email,hashed_phone\n{SHA(IVAN_NORM)},{SHA(IVAN_PHONE)}\n{SHA('anna@x.ru')},\n",
    )
    write(
        exports / "crm/vip/run_date=2026-03-02/part-00000.jsonl",
        json.dumps({"person_id": "p1", "segment": "vip"})
        + "\n"
        + json.dumps({"person_id": "p2", "segment": "vip"})
        + "\n",
    )
    path = exports / "callcentre/vip/run_date=2026-03-02/part-00000.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table({"person_id": ["p1", "p2"], "phones": [[IVAN_PHONE], []], "score": [0.9, 0.1]}),
        path,
    )


@dataclass
class Erased:
    ctx: RunContext
    root: Path
    report: StageReport


KEY = "test-privacy-key"


@pytest.fixture(scope="module")
def erased(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Erased]:
    # As in production: the suppression list and the log hold keyed hashes (HMAC).
    saved = os.environ.get("CDP_PRIVACY_KEY")
    os.environ["CDP_PRIVACY_KEY"] = KEY
    try:
        yield _erase_once(spark, tmp_path_factory)
    finally:
        if saved is None:
            os.environ.pop("CDP_PRIVACY_KEY", None)
        else:
            os.environ["CDP_PRIVACY_KEY"] = saved


def _erase_once(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Erased:
    root = tmp_path_factory.mktemp("erasure")
    ctx = make_ctx(spark, root)
    land_day1(root)
    run_ingest(ctx, sources=["p_crm", "p_orders", "p_tickets", "consent_p"])
    run_standardize(ctx, sources=["p_crm", "p_orders", "p_tickets", "consent_p"])
    add_gold_like_tables(ctx)
    add_export_files(root)
    report = run_erase(ctx, ErasureRequest(email=IVAN_EMAIL))
    return Erased(ctx, root, report)


def test_the_person_was_found_in_every_layer(erased: Erased) -> None:
    # He was in all of these before (the searches below would pass on an empty fixture).
    seen = {r["table"] for r in erased.report.rows if not r["table"].startswith("export:")}
    assert {
        "bronze.p_crm",
        "bronze.p_orders",
        "bronze.p_tickets",
        "bronze.consent_p",
        "quarantine.records",
        "silver.p_crm",
        "silver.p_orders",
        "silver.p_tickets",
        "silver.consent",
        "silver.consent_history",
        "silver.identity_edges",
        "gold.identity_identifiers",
        "gold.identity_clusters",
        "gold.person_id_history",
        "gold.customer_profiles",
        "gold.segment_membership",
        "gold.scored_profiles",
        "gold.ads_audience",
    } <= seen
    exports = [r for r in erased.report.rows if r["table"].startswith("export:")]
    assert len(exports) == 4
    assert erased.report.figures["persons"] == 2  # p1 and the id p0 merged into it
    assert erased.report.figures["export_rows_removed"] == 4


def test_dry_run_reports_and_changes_nothing(spark: SparkSession, tmp_path: Path) -> None:
    ctx = make_ctx(spark, tmp_path)
    schema = spark.createDataFrame([], "run_date date, segment string, person_id string").schema
    ctx.lake.create("gold.segment_membership", schema)
    ctx.lake.append(
        "gold.segment_membership",
        spark.createDataFrame([(ctx.run_date, "vip", "p1"), (ctx.run_date, "vip", "p2")], schema),
    )
    export = write(tmp_path / "exports/esp/vip/part-0.csv", "person_id,score\np1,1\np2,2\n")
    report = run_erase(ctx, ErasureRequest(person_id="p1"), dry_run=True)
    assert report.figures["dry_run"] is True
    assert report.figures["rows_removed"] == 1
    assert [(r["table"], r["rows"]) for r in report.rows] == [
        ("gold.segment_membership", 1),
        (f"export:{export}", 1),
    ]
    assert ctx.lake.version("gold.segment_membership") == 1
    assert export.read_text() == "person_id,score\np1,1\np2,2\n"
    assert not ctx.lake.exists(ERASURE_LOG_TABLE) and not ctx.lake.exists(SUPPRESSION_TABLE)


def test_no_table_and_no_reachable_version_holds_the_person(erased: Erased) -> None:
    lake = erased.ctx.lake
    checked = 0
    for info in lake.list_tables():
        # Every version the log still lists, and the ones before it (time travel attempts).
        for version in range(info.version + 1):
            try:
                values = table_text(lake, info.name, version)
            except Exception:  # vacuumed away: not reachable, which is the point
                continue
            checked += 1
            found = PROBE.found_in_values(values)
            assert not found, f"{info.name}@v{version} still holds {found}"
    assert checked > len(lake.list_tables())


def test_no_delta_log_file_holds_the_person(erased: Erased) -> None:
    # Commit statistics (min/max) and delete predicates would leak identifiers.
    for info in erased.ctx.lake.list_tables():
        layer, name = info.name.split(".")
        text = log_text(erased.root / "lake" / layer / name)
        assert not PROBE.found(text), f"{info.name} log: {PROBE.found(text)}"


def test_no_export_file_holds_the_person_and_others_remain(erased: Erased) -> None:
    exports = erased.root / "exports"
    for path in exports.rglob("*"):
        if path.is_file():
            text = (
                str(pq.read_table(path).to_pylist())
                if path.suffix == ".parquet"
                else path.read_text()
            )
            assert not PROBE.found_in_values(text.replace(",", "\n").splitlines()), path
    esp = (exports / "esp/vip/run_date=2026-03-02/part-00000.csv").read_text()
    assert esp == "person_id,email,phone,first_name\np2,anna@x.ru,,Anna\n"
    ads = (exports / "ads/vip/run_date=2026-03-02/hashes.csv").read_text()
    assert ads == f"hashed_email,hashed_phone\n{SHA('anna@x.ru')},\n"
    parquet = pq.read_table(exports / "callcentre/vip/run_date=2026-03-02/part-00000.parquet")
    assert parquet.column("person_id").to_pylist() == ["p2"]


def test_other_people_are_untouched(erased: Erased) -> None:
    lake = erased.ctx.lake
    assert sorted(r[0] for r in lake.read("silver.p_crm").select("customer_id").collect()) == [
        "C002"
    ]
    assert sorted(r[0] for r in lake.read("silver.p_orders").select("order_id").collect()) == ["O3"]
    assert [r[0] for r in lake.read("gold.segment_membership").select("person_id").collect()] == [
        "p2"
    ]
    assert [r[0] for r in lake.read("silver.consent").select("identifier").collect()] == [
        "anna@x.ru"
    ]


def test_erasure_log_holds_hashes_and_counts_only(erased: Erased) -> None:
    lake = erased.ctx.lake
    rows = lake.read(ERASURE_LOG_TABLE).collect()
    assert len(rows) == 1
    row = rows[0]
    assert row["identifier_type"] == "email"
    assert row["identifier_hash"] == HMAC(IVAN_EMAIL.lower())
    assert row["hash_scheme"] == "hmac-sha256"
    assert row["persons"] == 2
    assert row["rows_removed"]["gold.segment_membership"] == 2
    assert row["rows_removed"]["silver.p_orders"] == 2
    assert row["export_files_rewritten"] == 4
    assert set(row["tables_touched"]) == set(row["rows_removed"])
    assert not PROBE.found_in_values(table_text(lake, ERASURE_LOG_TABLE))
    suppressed = {(r[0], r[1]) for r in lake.read(SUPPRESSION_TABLE).collect()}
    assert ("email", HMAC(IVAN_NORM)) in suppressed
    assert ("phone", HMAC(IVAN_PHONE)) in suppressed
    assert ("id", HMAC("C001")) in suppressed


def test_idempotency_markers_survive_the_log_expiry(erased: Erased) -> None:
    # Ingest's retries rely on the txn actions, which the checkpoint must carry over.
    dt = DeltaTable(str(erased.root / "lake/bronze/p_crm"))
    assert dt.transaction_version("ingest:p_crm") == 1
    assert erased.ctx.lake.history("bronze.p_crm")  # history still readable


def test_a_late_file_does_not_recreate_the_person(erased: Erased) -> None:
    ctx, root = erased.ctx, erased.root
    write(
        root / "landing/crm/crm_20260303_late.csv",
        "customer_id,first_name,last_name,email,phone,country,updated_at\n"
        "C777,Ivan,Petrov,IVAN.PETROV@gmail.com,,RU,2026-03-03T10:00:00Z\n"
        "C003,Olga,Ivanova,olga@x.ru,,RU,2026-03-03T10:00:00Z\n",
    )
    ingest = run_ingest(ctx, sources=["p_crm"])
    std = run_standardize(ctx, sources=["p_crm"])
    lake = ctx.lake
    ids = sorted(r[0] for r in lake.read("silver.p_crm").select("customer_id").collect())
    assert ids == ["C002", "C003"]
    # Counted (reconciles: read = silver + quarantine), without the raw text.
    assert ingest.figures["read"] == 2
    assert std.figures["rows_out"] + std.figures["quarantined"] == 2
    q = lake.read(QUARANTINE_TABLE).where(F.col("reason") == "suppressed").collect()
    assert len(q) == 1 and q[0]["raw"] is None and q[0]["line"] == 2
    # And gone from bronze (the late batch's row), with Olga kept.
    bronze = [r["customer_id"] for r in lake.read("bronze.p_crm").collect()]
    assert sorted(bronze) == ["C002", "C003"]


def test_email_key_and_row_hash_sql() -> None:
    assert email_key("<IVAN.PETROV+x@googlemail.com>") == IVAN_NORM
    schema = T.StructType([T.StructField("a", T.StringType()), T.StructField("b", T.LongType())])
    assert row_hash_sql(schema) == "sha2(to_json(struct(`a`, `b`)), 256)"


def test_a_request_needs_exactly_one_identifier() -> None:
    from cdp_spark.errors import CdpError

    with pytest.raises(CdpError, match="exactly one"):
        ErasureRequest(email="a@b.c", phone="1")
    with pytest.raises(CdpError, match="exactly one"):
        ErasureRequest()
    assert ErasureRequest(phone=" +7 912 ").value == "+7 912"


def test_log_expiry_keeps_time_travel_within_the_retention(tmp_path: Path) -> None:
    import os
    import time

    from deltalake import write_deltalake

    from cdp_spark.privacy.erasure import expire_log

    path = str(tmp_path / "t")
    for i in range(3):
        write_deltalake(path, pa.table({"a": [i]}), mode="append")
    ten_days_ago = time.time() - 10 * 86400
    for name in os.listdir(f"{path}/_delta_log"):
        os.utime(f"{path}/_delta_log/{name}", (ten_days_ago, ten_days_ago))
    DeltaTable(path).create_checkpoint()  # at version 2: versions 0-1 are old
    for i in range(2):
        write_deltalake(path, pa.table({"a": [10 + i]}), mode="append")  # 3, 4: recent

    def readable() -> list[int]:
        out = []
        for v in range(5):
            try:
                DeltaTable(path, version=v).to_pyarrow_table()
                out.append(v)
            except Exception:
                pass
        return out

    assert expire_log(path, retention_hours=168) == 2  # the JSON of versions 0 and 1
    assert readable() == [2, 3, 4]
    assert expire_log(path, retention_hours=0) > 0
    assert readable() == [4]
    assert DeltaTable(path).to_pyarrow_table().num_rows == 5
