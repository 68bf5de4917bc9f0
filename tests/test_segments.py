"""Segments stage: schedules, membership, audience changes across runs, idempotence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)
from pyspark.testing import assertDataFrameEqual

from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.pipeline import RunContext
from cdp_spark.profiles.config import ActivationConfig, SegmentConfig
from cdp_spark.profiles.segments import (
    CHANGES_TABLE,
    MEMBERSHIP_TABLE,
    PROFILES_TABLE,
    RUNS_TABLE,
    SCORES_TABLE,
    check_segments,
    is_due,
    run_segments,
    segment_schema,
    with_scores,
)
from cdp_spark.storage import open_lakehouse

PROFILES = StructType(
    [
        StructField("person_id", StringType(), False),
        StructField("emails", ArrayType(StringType())),
        StructField("phones", ArrayType(StringType())),
        StructField("lifecycle_stage", StringType()),
        StructField("clv", DoubleType()),
        StructField("consent_email", BooleanType()),
        StructField("run_date", DateType()),
    ]
)
SCORES = StructType(
    [
        StructField("person_id", StringType()),
        StructField("churn_score", DoubleType()),
        StructField("churn_decile", IntegerType()),
        StructField("propensity_score", DoubleType()),
        StructField("propensity_decile", IntegerType()),
        StructField("score_date", DateType()),
    ]
)
D1, D2 = date(2026, 3, 2), date(2026, 3, 3)  # a Monday and a Tuesday

SEGMENTS = {
    "at_risk_high_value": SegmentConfig(
        where="lifecycle_stage = 'at_risk' and clv > 500 and consent_email"
    ),
    "churners": SegmentConfig(where="churn_decile = 10"),
    "mondays_only": SegmentConfig(where="clv > 0", schedule="weekly:mon"),
}


def profile(pid: str, stage: str, clv: float, consent: bool, day: date) -> tuple[Any, ...]:
    return (pid, [f"{pid}@x.ru"], [], stage, clv, consent, day)


def make_ctx(
    spark: SparkSession,
    test_config: CdpConfig,
    tmp_path: Path,
    day: date,
    segments: dict[str, SegmentConfig] | None = None,
) -> RunContext:
    cfg = test_config.model_copy(
        update={
            "segments": SEGMENTS if segments is None else segments,
            "activation": ActivationConfig(),
        }
    )
    lake = open_lakehouse(spark, str(tmp_path / "lake"), engine="delta-rs")
    return RunContext(spark, cfg, lake, day, lambda _m: None)


def put_profiles(ctx: RunContext, rows: Sequence[tuple[Any, ...]]) -> None:
    df = ctx.spark.createDataFrame(list(rows), PROFILES)
    if not ctx.lake.exists(PROFILES_TABLE):
        ctx.lake.create(PROFILES_TABLE, PROFILES)
    ctx.lake.overwrite(PROFILES_TABLE, df)


def table(ctx: RunContext, name: str, day: date) -> DataFrame:
    return ctx.lake.read(name).where(f"run_date = DATE'{day.isoformat()}'")


# --- schedules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "day", "due"),
    [
        ("daily", date(2026, 3, 3), True),
        ("weekly", date(2026, 3, 2), True),  # Monday
        ("weekly", date(2026, 3, 3), False),
        ("weekly:fri", date(2026, 3, 6), True),
        ("weekly:sun", date(2026, 3, 8), True),
        ("monthly", date(2026, 3, 1), True),
        ("monthly", date(2026, 3, 2), False),
        ("monthly:15", date(2026, 3, 15), True),
        ("0 6 * * *", date(2026, 3, 3), True),
        ("0 6 * * 1-5", date(2026, 3, 7), False),  # Saturday
        ("0 6 * * mon,thu", date(2026, 3, 5), True),
        ("0 6 * * 0", date(2026, 3, 8), True),
        ("0 6 * * 7", date(2026, 3, 8), True),  # 7 is Sunday too
        ("30 2 1 * *", date(2026, 3, 1), True),
        ("30 2 1 * *", date(2026, 3, 2), False),
        ("0 0 1,15 * mon", date(2026, 3, 9), True),  # dom and dow both set: either matches
        ("0 0 1,15 * mon", date(2026, 3, 10), False),
        ("0 0 */10 * *", date(2026, 3, 21), True),
        ("0 0 * jun-aug *", date(2026, 3, 3), False),
        ("0 0 * jun-aug *", date(2026, 7, 3), True),
    ],
)
def test_is_due(schedule: str, day: date, due: bool) -> None:
    assert is_due(schedule, day) is due


@pytest.mark.parametrize(
    "schedule", ["hourly", "weekly:funday", "monthly:31", "0 6 * *", "0 6 32 * *"]
)
def test_bad_schedules_are_refused(schedule: str) -> None:
    with pytest.raises(ValueError):
        is_due(schedule, D1)


# --- validation ------------------------------------------------------------------------------


def test_check_segments_reports_every_problem_at_once(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path
) -> None:
    segments = {
        "ok": SegmentConfig(where="clv > 1"),
        "Bad-Name": SegmentConfig(where="clv > 1"),
        "bad_schedule": SegmentConfig(where="clv > 1", schedule="fortnightly"),
        "bad_destination": SegmentConfig(where="clv > 1", destinations=["nowhere"]),
        "bad_expr": SegmentConfig(where="cvl > 1"),
    }
    ctx = make_ctx(spark, test_config, tmp_path, D1, segments)
    put_profiles(ctx, [])
    good, problems = check_segments(spark, ctx.cfg, segment_schema(ctx.lake))
    assert list(good) == ["ok"]
    assert [str(p) for p in problems] == [
        "segment 'Bad-Name': a name is lower case letters, digits and _ (it becomes a folder "
        "and a table value)",
        "segment 'bad_schedule': schedule: schedule 'fortnightly' is not daily, weekly[:day], "
        "monthly[:n] or a cron line of 5 fields (e.g. '0 6 * * mon')",
        "segment 'bad_destination': unknown destination(s) nowhere",
        "segment 'bad_expr': unknown column 'cvl'; did you mean clv?",
    ]


def test_the_stage_refuses_to_run_an_invalid_segment(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path
) -> None:
    ctx = make_ctx(
        spark, test_config, tmp_path, D1, {"drop": SegmentConfig(where="clv > 1; drop table x")}
    )
    put_profiles(ctx, [profile("p1", "new", 1.0, True, D1)])
    with pytest.raises(CdpError, match="segment 'drop': ';' at position 7"):
        run_segments(ctx)
    assert not ctx.lake.exists(MEMBERSHIP_TABLE)


def test_segment_schema_needs_the_profiles_table(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path
) -> None:
    ctx = make_ctx(spark, test_config, tmp_path, D1)
    with pytest.raises(CdpError, match=r"gold\.customer_profiles does not exist"):
        segment_schema(ctx.lake)


# --- scores ----------------------------------------------------------------------------------


def test_with_scores_takes_the_latest_score_up_to_the_run_date(spark: SparkSession) -> None:
    profiles = spark.createDataFrame([profile("p1", "new", 1.0, True, D1)], PROFILES).select(
        "person_id"
    )
    scores = spark.createDataFrame(
        [
            ("p1", 0.1, 1, 0.5, 5, date(2026, 3, 1)),
            ("p1", 0.9, 10, 0.7, 8, D2),
            ("p1", 0.3, 3, 0.2, 2, date(2026, 3, 4)),  # after the run date: not seen
        ],
        SCORES,
    )
    got = with_scores(profiles, scores, run_date=D2)
    expected = spark.createDataFrame(
        [("p1", 0.9, 10, 0.7, 8)],
        "person_id string, churn_score double, churn_decile int, propensity_score double, "
        "propensity_decile int",
    )
    assertDataFrameEqual(got, expected)
    no_scores = with_scores(profiles, None, run_date=D2)
    assertDataFrameEqual(
        no_scores,
        spark.createDataFrame([("p1", None, None, None, None)], expected.schema),
    )


# --- membership and changes ------------------------------------------------------------------


def test_membership_and_audience_changes_across_two_runs(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path
) -> None:
    day1 = make_ctx(spark, test_config, tmp_path, D1)
    put_profiles(
        day1,
        [
            profile("p1", "at_risk", 900.0, True, D1),  # in, stays in
            profile("p2", "at_risk", 800.0, True, D1),  # in, leaves (becomes active)
            profile("p3", "at_risk", 100.0, True, D1),  # out, enters (clv grows)
            profile("p4", "at_risk", 999.0, False, D1),  # no e-mail consent: never in
            profile("p5", "at_risk", None, True, D1),  # null clv: not a member
        ],
    )
    day1.lake.create(SCORES_TABLE, SCORES)
    day1.lake.append(SCORES_TABLE, spark.createDataFrame([("p2", 0.95, 10, 0.1, 1, D1)], SCORES))
    report1 = run_segments(day1)
    assert report1.figures == {
        "segments": 3,
        "skipped": 0,
        "members": 2 + 1 + 4,
        "entered": 7,
        "left": 0,
    }
    assertDataFrameEqual(
        table(day1, MEMBERSHIP_TABLE, D1).where("segment != 'mondays_only'"),
        spark.createDataFrame(
            [(D1, "at_risk_high_value", "p1"), (D1, "at_risk_high_value", "p2"),
             (D1, "churners", "p2")],
            "run_date date, segment string, person_id string",
        ),
    )  # fmt: skip

    day2 = make_ctx(spark, test_config, tmp_path, D2)
    put_profiles(
        day2,
        [
            profile("p1", "at_risk", 900.0, True, D2),
            profile("p2", "active", 800.0, True, D2),
            profile("p3", "at_risk", 600.0, True, D2),
            profile("p4", "at_risk", 999.0, False, D2),
            profile("p5", "at_risk", None, True, D2),
        ],
    )
    report2 = run_segments(day2)
    assert [(r["segment"], r["status"]) for r in report2.rows] == [
        ("at_risk_high_value", "ok"),
        ("churners", "ok"),
        ("mondays_only", "not due (weekly:mon)"),
    ]
    expected_changes = spark.createDataFrame(
        [(D2, "at_risk_high_value", "p3", "entered"), (D2, "at_risk_high_value", "p2", "left")],
        "run_date date, segment string, person_id string, change string",
    )
    assertDataFrameEqual(table(day2, CHANGES_TABLE, D2), expected_changes)
    # churners: p2 still has the same score row (score_date D1 <= D2): no change.
    assertDataFrameEqual(
        table(day2, MEMBERSHIP_TABLE, D2),
        spark.createDataFrame(
            [(D2, "at_risk_high_value", "p1"), (D2, "at_risk_high_value", "p3"),
             (D2, "churners", "p2")],
            "run_date date, segment string, person_id string",
        ),
    )  # fmt: skip

    # Re-running day 2 replaces its rows: same tables, no duplicates, day 1 untouched.
    before = day2.lake.read(MEMBERSHIP_TABLE).count(), day2.lake.read(CHANGES_TABLE).count()
    run_segments(day2)
    assertDataFrameEqual(table(day2, CHANGES_TABLE, D2), expected_changes)
    after = day2.lake.read(MEMBERSHIP_TABLE).count(), day2.lake.read(CHANGES_TABLE).count()
    assert before == after == (7 + 3, 7 + 2)
    runs = day2.lake.read(RUNS_TABLE).select("run_date", "segment", "members", "entered", "left")
    assertDataFrameEqual(
        runs.where(f"run_date = DATE'{D2.isoformat()}'"),
        spark.createDataFrame(
            [(D2, "at_risk_high_value", 2, 1, 1), (D2, "churners", 1, 0, 0)],
            "run_date date, segment string, members long, entered long, left long",
        ),
    )


def test_a_weekly_segment_is_compared_with_its_previous_run(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path
) -> None:
    segments = {"weekly_vip": SegmentConfig(where="clv > 100", schedule="weekly:mon")}
    week1 = make_ctx(spark, test_config, tmp_path, D1, segments)
    put_profiles(week1, [profile("p1", "active", 200.0, True, D1)])
    run_segments(week1)
    tuesday = make_ctx(spark, test_config, tmp_path, D2, segments)
    report = run_segments(tuesday)
    assert (report.status, report.figures) == ("skipped", {"segments": 0, "skipped": 1})
    week2 = make_ctx(spark, test_config, tmp_path, date(2026, 3, 9), segments)
    put_profiles(week2, [profile("p2", "active", 300.0, True, D1)])
    run_segments(week2)
    assertDataFrameEqual(
        week2.lake.read(CHANGES_TABLE),
        spark.createDataFrame(
            [(D1, "weekly_vip", "p1", "entered"), (date(2026, 3, 9), "weekly_vip", "p1", "left"),
             (date(2026, 3, 9), "weekly_vip", "p2", "entered")],
            "run_date date, segment string, person_id string, change string",
        ),
    )  # fmt: skip


def test_shipped_segments_are_valid_against_the_declared_profile_columns(
    spark: SparkSession, test_config: CdpConfig, tmp_path: Path
) -> None:
    # conf/segments.yaml as shipped (at_risk_high_value is declared in YAML alone) must pass
    # `cdp segments validate` on a fresh checkout, before any profile build.
    lake = open_lakehouse(spark, str(tmp_path / "empty"), engine="delta-rs")
    schema = segment_schema(lake, test_config)
    good, problems = check_segments(spark, test_config, schema)
    assert problems == []
    assert good["at_risk_high_value"].columns == ("clv", "consent_email", "lifecycle_stage")
    assert set(good) == set(test_config.segments)
