"""Activation: consent at export time, hashed identifiers, CSV injection, idempotent re-publish."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DoubleType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)
from pyspark.testing import assertDataFrameEqual

from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.pipeline import RunContext
from cdp_spark.profiles.activation import (
    PUBLISH_LOG_TABLE,
    consent_records,
    consenting_people,
    export_path,
    neutralize_csv_formula,
    person_identifiers,
    publish_pairs,
    run_publish,
)
from cdp_spark.profiles.config import ActivationConfig, ConsentRule, SegmentConfig
from cdp_spark.profiles.segments import MEMBERSHIP_SCHEMA, MEMBERSHIP_TABLE, PROFILES_TABLE
from cdp_spark.standardize import CONSENT_CURRENT
from cdp_spark.storage import open_lakehouse

PROFILES = StructType(
    [
        StructField("person_id", StringType(), False),
        StructField("email", StringType()),
        StructField("phone", StringType()),
        StructField("first_name", StringType()),
        StructField("emails", ArrayType(StringType())),
        StructField("phones", ArrayType(StringType())),
        StructField("lifecycle_stage", StringType()),
        StructField("clv", DoubleType()),
        StructField("consent_email", BooleanType()),
    ]
)
CONSENT = StructType(
    [
        StructField("identifier", StringType()),
        StructField("identifier_type", StringType()),
        StructField("channel", StringType()),
        StructField("purpose", StringType()),
        StructField("status", StringType()),
        StructField("recorded_at", TimestampType()),
        StructField("identifier_norm", StringType()),
    ]
)
EMAIL_EVENTS = StructType(
    [
        StructField("email_norm", StringType()),
        StructField("event", StringType()),
        StructField("event_at", TimestampType()),
    ]
)
D1, D2 = date(2026, 3, 2), date(2026, 3, 3)
EMAIL_MKT = ConsentRule(channel="email", purpose="marketing")
SMS_MKT = ConsentRule(channel="sms", purpose="marketing")
ADS = ConsentRule(channel="ads", purpose="profiling")


def ts(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour)


def person(pid: str, emails: Sequence[str], phones: Sequence[str] = (), **kw: Any) -> tuple:
    return (
        pid,
        emails[0] if emails else None,
        phones[0] if phones else None,
        kw.get("first_name", pid.upper()),
        list(emails),
        list(phones),
        "at_risk",
        kw.get("clv", 900.0),
        True,  # the profile said yes when it was built; export time decides
    )


def grant(ident: str, kind: str, channel: str, purpose: str, at: datetime, status: str = "granted"):
    return (ident, kind, channel, purpose, status, at, ident)


# --- pure functions --------------------------------------------------------------------------


def test_neutralize_csv_formula(spark: SparkSession) -> None:
    cases = {
        "=1+1": "'=1+1",
        '=HYPERLINK("http://e")': '\'=HYPERLINK("http://e")',
        "+7 916 x": "'+7 916 x",
        "-2+3": "'-2+3",
        "-1+cmd|' /C calc'!A0": "'-1+cmd|' /C calc'!A0",
        "@SUM(A1)": "'@SUM(A1)",
        "\tx": "'\tx",
        "\rx": "'\rx",
        # plain numbers and E.164 phones cannot run anything: left as they are
        "+79160000001": "+79160000001",
        "-2": "-2",
        "-2.5": "-2.5",
        "Anna": "Anna",
        "a=b": "a=b",
        "": "",
        None: None,
    }
    df = spark.createDataFrame([(v,) for v in cases], "v string")
    got = [r[0] for r in df.select(neutralize_csv_formula(F.col("v"))).collect()]
    assert got == list(cases.values())


def test_consent_rule_per_person(spark: SparkSession) -> None:
    profiles = spark.createDataFrame(
        [
            person("granted", ["g@x.ru"]),
            person("revoked_later", ["r@x.ru"]),
            person("regranted", ["rg@x.ru"]),
            person("two_emails_one_revoked", ["a@x.ru", "b@x.ru"]),
            person("no_record", ["n@x.ru"]),
            person("tie", ["t@x.ru"]),
            person("sms_only", ["s@x.ru"], ["+79160000001"]),
            person("unsubscribed", ["u@x.ru"]),
            person("other_purpose", ["o@x.ru"]),
        ],
        PROFILES,
    )
    consent = spark.createDataFrame(
        [
            grant("g@x.ru", "email", "email", "marketing", ts(1)),
            grant("r@x.ru", "email", "email", "marketing", ts(1)),
            grant("r@x.ru", "email", "email", "marketing", ts(2), "revoked"),
            grant("rg@x.ru", "email", "email", "marketing", ts(1), "revoked"),
            grant("rg@x.ru", "email", "email", "marketing", ts(2)),
            grant("a@x.ru", "EMAIL", "Email", "marketing", ts(1)),
            grant("b@x.ru", "email", "email", "marketing", ts(1), " Revoked "),
            grant("t@x.ru", "email", "email", "marketing", ts(1)),
            grant("t@x.ru", "email", "email", "marketing", ts(1), "revoked"),
            grant("s@x.ru", "email", "email", "marketing", ts(1), "revoked"),
            grant("+79160000001", "phone", "sms", "marketing", ts(1)),
            grant("u@x.ru", "email", "email", "marketing", ts(1)),
            grant("o@x.ru", "email", "email", "transactional", ts(1)),
        ],
        CONSENT,
    )
    unsubscribes = spark.createDataFrame(
        [("u@x.ru", "unsubscribe", ts(2)), ("g@x.ru", "open", ts(3))], EMAIL_EVENTS
    )
    records = consent_records(consent, unsubscribes, email_purposes=["marketing"])
    ids = person_identifiers(profiles)

    def people(rule: ConsentRule) -> set[str]:
        return {r[0] for r in consenting_people(ids, records, rule=rule).collect()}

    assert people(EMAIL_MKT) == {"granted", "regranted"}
    assert people(SMS_MKT) == {"sms_only"}
    assert people(ADS) == set()


# --- the stage -------------------------------------------------------------------------------

DESTINATIONS = {
    "esp": {
        "type": "csv",
        "consent": {"channel": "email", "purpose": "marketing"},
        "columns": ["email", "first_name", "clv"],
    },
    "esp_pq": {
        "type": "parquet",
        "consent": {"channel": "email", "purpose": "marketing"},
        "columns": ["email", "emails"],
    },
    "sms": {
        "type": "csv",
        "consent": {"channel": "sms", "purpose": "marketing"},
        "columns": ["phone"],
    },
    "ads": {"type": "hashed", "consent": {"channel": "ads", "purpose": "profiling"}},
    "feed": {
        "type": "delta",
        "consent": {"channel": "email", "purpose": "marketing"},
        "table": "gold.audience_feed",
        "columns": ["clv"],
    },
}


def make_ctx(spark: SparkSession, test_config: CdpConfig, tmp_path: Path, day: date) -> RunContext:
    cfg = test_config.model_copy(
        update={
            "segments": {
                "vip": SegmentConfig(where="clv > 500", destinations=list(DESTINATIONS)),
                "later": SegmentConfig(where="clv > 1", destinations=["esp"]),
            },
            "activation": ActivationConfig.model_validate({"destinations": DESTINATIONS}),
            "paths": test_config.paths.model_copy(update={"exports": str(tmp_path / "exports")}),
            "privacy": test_config.privacy.model_copy(
                update={"raw_pii_destinations": ["esp", "esp_pq", "sms"]}
            ),
        }
    )
    lake = open_lakehouse(spark, str(tmp_path / "lake"), engine="delta-rs")
    return RunContext(spark, cfg, lake, day, lambda _m: None)


def put(ctx: RunContext, table: str, schema: StructType, rows: Sequence[tuple]) -> None:
    if not ctx.lake.exists(table):
        ctx.lake.create(table, schema)
    ctx.lake.overwrite(table, ctx.spark.createDataFrame(list(rows), schema))


def add_members(ctx: RunContext, segment: str, people: Sequence[str]) -> None:
    if not ctx.lake.exists(MEMBERSHIP_TABLE):
        ctx.lake.create(MEMBERSHIP_TABLE, MEMBERSHIP_SCHEMA, partition_by=["run_date"])
    rows = [(ctx.run_date, segment, p) for p in people]
    ctx.lake.append(MEMBERSHIP_TABLE, ctx.spark.createDataFrame(rows, MEMBERSHIP_SCHEMA))


def read_csv(folder: str) -> list[dict[str, str]]:
    files = sorted(Path(folder).glob("*.csv"))
    assert len(files) == 1, files
    with files[0].open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def published(
    spark: SparkSession, test_config: CdpConfig, tmp_path_factory: pytest.TempPathFactory
) -> RunContext:
    """Day 1: profiles built with everyone consenting; consent changed since for some.

    Built once for the module (a publish is several Spark jobs); the tests that publish again
    re-publish day 1 (idempotent) or publish day 2, and read only their own day.
    """
    ctx = make_ctx(spark, test_config, tmp_path_factory.mktemp("published"), D1)
    put(
        ctx,
        PROFILES_TABLE,
        PROFILES,
        [
            person("p1", ["ann@x.ru"], ["+79160000001"], first_name='=HYPERLINK("http://e")'),
            person("p2", ["bob@x.ru"], ["+79160000002"]),  # revoked e-mail after the build
            person("p3", ["cat@x.ru", "cat2@x.ru"], ["+79160000003"]),
            person("p4", ["dan@x.ru"]),  # not in the segment
        ],
    )
    put(
        ctx,
        CONSENT_CURRENT,
        CONSENT,
        [
            grant("ann@x.ru", "email", "email", "marketing", ts(1)),
            grant("bob@x.ru", "email", "email", "marketing", ts(2, 18), "revoked"),
            grant("cat2@x.ru", "email", "email", "marketing", ts(1)),
            grant("dan@x.ru", "email", "email", "marketing", ts(1)),
            grant("+79160000002", "phone", "sms", "marketing", ts(1)),
            grant("ann@x.ru", "email", "ads", "profiling", ts(1)),
            grant("+79160000003", "phone", "ads", "profiling", ts(1)),
        ],
    )
    add_members(ctx, "vip", ["p1", "p2", "p3"])
    report = run_publish(ctx)
    assert [(r["segment"], r["destination"], r["status"]) for r in report.rows] == [
        ("vip", "esp", "ok"),
        ("vip", "esp_pq", "ok"),
        ("vip", "sms", "ok"),
        ("vip", "ads", "ok"),
        ("vip", "feed", "ok"),
        ("later", "esp", f"skipped: segment not run on {D1}"),
    ]
    return ctx


def test_csv_export_honours_consent_and_neutralises_formulas(published: RunContext) -> None:
    rows = read_csv(export_path(published.cfg, "esp", "vip", D1))
    assert rows == [
        {"person_id": "p1", "email": "ann@x.ru", "first_name": "'=HYPERLINK(\"http://e\")",
         "clv": "900.0"},
        {"person_id": "p3", "email": "cat@x.ru", "first_name": "P3", "clv": "900.0"},
    ]  # fmt: skip
    sms = read_csv(export_path(published.cfg, "sms", "vip", D1))
    assert sms == [{"person_id": "p2", "phone": "+79160000002"}]


def test_parquet_export_keeps_types(published: RunContext) -> None:
    got = published.spark.read.parquet(export_path(published.cfg, "esp_pq", "vip", D1))
    expected = published.spark.createDataFrame(
        [("p1", "ann@x.ru", ["ann@x.ru"]), ("p3", "cat@x.ru", ["cat2@x.ru", "cat@x.ru"])],
        "person_id string, email string, emails array<string>",
    )
    assertDataFrameEqual(got.select("person_id", "email", F.array_sort("emails").alias("emails")),
                         expected)  # fmt: skip


def test_hashed_file_holds_exactly_the_hashes_and_no_pii(published: RunContext) -> None:
    folder = export_path(published.cfg, "ads", "vip", D1)
    rows = read_csv(folder)
    assert list(rows[0]) == ["email_sha256", "phone_sha256"]

    def sha(value: str) -> str:
        return hashlib.sha256(value.encode("utf-8")).hexdigest()

    got = {(r["email_sha256"] or None, r["phone_sha256"] or None) for r in rows}
    # p1 (ads granted on the e-mail) and p3 (on the phone): every identifier of each.
    assert got == {
        (sha("ann@x.ru"), None),
        (None, sha("+79160000001")),
        (sha("cat@x.ru"), None),
        (sha("cat2@x.ru"), None),
        (None, sha("+79160000003")),
    }
    text = "".join(p.read_text() for p in Path(folder).glob("*.csv"))
    for raw in ("@", "+7916", "p1", "p3", "ann", "cat"):
        assert raw not in text


def test_republishing_a_run_date_replaces_files_feed_and_log(published: RunContext) -> None:
    ctx = published
    esp = export_path(ctx.cfg, "esp", "vip", D1)
    before = sorted(p.name for p in Path(esp).iterdir())
    run_publish(ctx, segments=["vip"])
    after = sorted(p.name for p in Path(esp).iterdir())
    assert len([n for n in after if n.endswith(".csv")]) == 1
    assert len(before) == len(after)
    assert [r["person_id"] for r in read_csv(esp)] == ["p1", "p3"]
    log = (
        ctx.lake.read(PUBLISH_LOG_TABLE)
        .where(F.col("run_date") == D1)
        .select("run_date", "segment", "destination", "rows")
    )
    assertDataFrameEqual(
        log,
        ctx.spark.createDataFrame(
            [(D1, "vip", "esp", 2), (D1, "vip", "esp_pq", 2), (D1, "vip", "sms", 1),
             (D1, "vip", "ads", 5), (D1, "vip", "feed", 2)],
            "run_date date, segment string, destination string, rows long",
        ),
    )  # fmt: skip
    assert ctx.lake.read("gold.audience_feed").where(F.col("run_date") == D1).count() == 2


def test_delta_feed_lets_a_revoking_member_leave(published: RunContext) -> None:
    spark = published.spark
    day2 = RunContext(spark, published.cfg, published.lake, D2, lambda _m: None)
    add_members(day2, "vip", ["p1", "p2", "p3"])
    consent = day2.lake.read(CONSENT_CURRENT).collect()
    put(
        day2,
        CONSENT_CURRENT,
        CONSENT,
        [tuple(r) for r in consent if r["identifier"] != "ann@x.ru" or r["channel"] != "email"]
        + [grant("ann@x.ru", "email", "email", "marketing", ts(3), "revoked")],
    )
    run_publish(day2, destinations=["feed", "esp"])
    run_publish(day2, destinations=["feed"])  # again: no duplicate
    assertDataFrameEqual(
        day2.lake.read("gold.audience_feed"),
        spark.createDataFrame(
            [(D1, "vip", "p1", "entered", 900.0), (D1, "vip", "p3", "entered", 900.0),
             (D2, "vip", "p1", "left", None)],
            "run_date date, segment string, person_id string, _change_type string, clv double",
        ),
    )  # fmt: skip
    assert [r["person_id"] for r in read_csv(export_path(day2.cfg, "esp", "vip", D2))] == ["p3"]


def test_a_segment_that_ran_empty_is_published_empty(published: RunContext) -> None:
    from cdp_spark.profiles.segments import RUNS_SCHEMA, RUNS_TABLE

    ctx = published
    if not ctx.lake.exists(RUNS_TABLE):
        ctx.lake.create(RUNS_TABLE, RUNS_SCHEMA, partition_by=["run_date"])
    row = (D1, "later", 0, 0, 0, "clv > 1", datetime(2026, 3, 2, 6))
    ctx.lake.append(RUNS_TABLE, ctx.spark.createDataFrame([row], RUNS_SCHEMA))
    report = run_publish(ctx, segments=["later"])
    assert [(r["destination"], r["status"], r["rows"]) for r in report.rows] == [("esp", "ok", 0)]
    assert read_csv(export_path(ctx.cfg, "esp", "later", D1)) == []


def test_publish_pairs_refuses_unknown_names(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path
) -> None:
    cfg = make_ctx(spark, test_config, tmp_path, D1).cfg
    assert publish_pairs(cfg, destinations=["ads"]) == [("vip", "ads")]
    assert publish_pairs(cfg, segments=["later"], destinations=["esp"]) == [("later", "esp")]
    with pytest.raises(CdpError, match="unknown destination 'nope'"):
        publish_pairs(cfg, destinations=["nope"])
    with pytest.raises(CdpError, match="unknown segment 'nope'"):
        publish_pairs(cfg, segments=["nope"])
    with pytest.raises(CdpError, match="not declared in conf: later -> ads"):
        publish_pairs(cfg, segments=["later"], destinations=["ads"])


def test_publish_refuses_raw_pii_to_an_undeclared_destination(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path
) -> None:
    cfg = make_ctx(spark, test_config, tmp_path, D1).cfg
    cfg = cfg.model_copy(
        update={"privacy": cfg.privacy.model_copy(update={"raw_pii_destinations": ["esp_pq"]})}
    )
    with pytest.raises(CdpError, match=r"'esp' exports raw personal data \(email, first_name\)"):
        publish_pairs(cfg, destinations=["esp"])
    with pytest.raises(CdpError, match=r"'sms' exports raw personal data \(phone\)"):
        publish_pairs(cfg, segments=["vip"], destinations=["sms"])
    # Declared, hashed-only and PII-free destinations pass.
    assert publish_pairs(cfg, destinations=["esp_pq", "feed", "ads"]) == [
        ("vip", "esp_pq"),
        ("vip", "ads"),
        ("vip", "feed"),
    ]
    # The shipped conf declares its ESP and SMS destinations.
    assert publish_pairs(test_config)


def test_publish_without_consent_table_fails_closed(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path
) -> None:
    ctx = make_ctx(spark, test_config, tmp_path, D1)
    put(ctx, PROFILES_TABLE, PROFILES, [person("p1", ["ann@x.ru"])])
    add_members(ctx, "vip", ["p1"])
    with pytest.raises(CdpError, match=r"silver\.consent does not exist"):
        run_publish(ctx)
    assert not Path(ctx.cfg.paths.exports).exists()


def test_unknown_export_column_is_named(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path, published: RunContext
) -> None:
    cfg = published.cfg.model_copy(
        update={
            "activation": ActivationConfig.model_validate(
                {
                    "destinations": {
                        **DESTINATIONS,
                        "esp": {**DESTINATIONS["esp"], "columns": ["mail"]},
                    }
                }
            )
        }
    )
    ctx = RunContext(spark, cfg, published.lake, D1, lambda _m: None)
    with pytest.raises(CdpError, match="exports unknown profile column\\(s\\) mail"):
        run_publish(ctx, segments=["vip"], destinations=["esp"])
