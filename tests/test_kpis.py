"""KPI formulas (docs/profiles.md, "KPIs") on hand-made profiles with known answers."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from cdp_spark.config import CdpConfig
from cdp_spark.profiles.build import latest_scores, with_clv
from cdp_spark.profiles.kpis import KPI_SCHEMA, build_kpis, kpi_figures, previous_lifecycle

RUN = date(2026, 3, 1)
PROFILE = (
    "person_id string, orders long, first_purchase_at timestamp, source_records long, "
    "revenue double, aov double, purchase_frequency double, lifecycle_stage string, "
    "churn_rate double, clv double"
)


@pytest.fixture(scope="module")
def profiles(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [
            # a repeat customer acquired long ago, a new one (acquired in the last 30 days),
            # another repeat customer, and two prospects.
            ("A", 4, datetime(2025, 5, 1), 10, 4000.0, 1000.0, 4.0, "active", 0.25, 4800.0),
            ("B", 1, datetime(2026, 2, 15), 3, 500.0, 500.0, 1.0, "new", 0.5, 300.0),
            ("C", 2, datetime(2025, 9, 1), 5, 3000.0, 1500.0, 2.0, "at_risk", 0.5, 1800.0),
            ("D", 0, None, 1, None, None, None, "prospect", 1.0, 0.0),
            ("E", 0, None, 1, None, None, None, "prospect", 1.0, 0.0),
        ],
        PROFILE,
    )


def test_kpi_formulas(profiles: DataFrame, test_config: CdpConfig) -> None:
    got = {
        k: v for k, v, _ in kpi_figures(profiles, test_config.profiles, run_date=RUN, previous=None)
    }
    clv_avg = (4800.0 + 300.0 + 1800.0) / 3  # over the 3 customers, not the 5 persons
    assert got == {
        "persons": 5.0,
        "customers": 3.0,
        "unification_rate": 20 / 5,  # source records per person
        "repeat_purchase_rate": round(2 / 3, 6),  # customers with >= 2 orders / customers
        "revenue": 7500.0,
        "aov": round(7500.0 / 7, 6),  # revenue / orders
        "purchase_frequency": round(7 / 3, 6),
        "churn_rate": round((0.25 + 0.5 + 0.5) / 3, 6),
        "clv_avg": round(clv_avg, 2),
        "clv_total": 6900.0,
        "customers_acquired": 1.0,  # first purchase in the last 30 days: B
        "customer_equity": round(clv_avg * 1, 2),  # CLV x customers acquired
        **{f"lifecycle_count:{s}": n for s, n in [
            ("prospect", 2.0), ("new", 1.0), ("active", 1.0), ("at_risk", 1.0), ("lapsed", 0.0),
            ("churned", 0.0)]},
        **{f"lifecycle_share:{s}": n for s, n in [
            ("prospect", 0.4), ("new", 0.2), ("active", 0.2), ("at_risk", 0.2), ("lapsed", 0.0),
            ("churned", 0.0)]},
        **{f"lifecycle_change:{s}": None for s in [
            "prospect", "new", "active", "at_risk", "lapsed", "churned"]},
    }  # fmt: skip


def test_lifecycle_change_against_the_previous_run(
    spark: SparkSession, profiles: DataFrame, test_config: CdpConfig
) -> None:
    earlier = spark.createDataFrame(
        [
            (date(2026, 2, 27), "lifecycle_count:active", 5.0, "{}"),
            (date(2026, 2, 28), "lifecycle_count:active", 3.0, "{}"),
            (date(2026, 2, 28), "lifecycle_count:prospect", 2.0, "{}"),
            (date(2026, 2, 28), "clv_avg", 10.0, "{}"),
            (RUN, "lifecycle_count:active", 99.0, "{}"),  # this run's own rows do not count
        ],
        KPI_SCHEMA,
    )
    prev = previous_lifecycle(earlier, RUN)
    assert prev == (
        {"lifecycle_count:active": 3.0, "lifecycle_count:prospect": 2.0},
        date(2026, 2, 28),
    )
    kpis = build_kpis(
        profiles, test_config.profiles, run_date=RUN, previous=prev[0], previous_date=prev[1]
    )
    got = kpis.where("kpi like 'lifecycle_change:%'").select("kpi", "value", "detail")
    detail = '{"previous_run_date": "2026-02-28"}'
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            [
                ("lifecycle_change:prospect", 0.0, detail),
                ("lifecycle_change:new", 1.0, detail),  # absent before: counted as 0
                ("lifecycle_change:active", -2.0, detail),
                ("lifecycle_change:at_risk", 1.0, detail),
                ("lifecycle_change:lapsed", 0.0, detail),
                ("lifecycle_change:churned", 0.0, detail),
            ],
            got.schema,
        ),
    )
    assert previous_lifecycle(earlier, date(2026, 2, 27)) is None
    assert previous_lifecycle(None, RUN) is None


def test_clv_uses_the_model_score_when_there_is_one(
    spark: SparkSession, test_config: CdpConfig
) -> None:
    people = spark.createDataFrame(
        [
            ("A", 1000.0, 4.0, "active"),  # model score 0.4
            ("B", 1000.0, 4.0, "active"),  # no score: lifecycle rate 0.25
            ("C", 1000.0, 4.0, "active"),  # model score 0.01: floored at 0.05
            ("D", None, None, "prospect"),  # no purchase: 0
        ],
        "person_id string, aov double, purchase_frequency double, lifecycle_stage string",
    )
    scores = spark.createDataFrame(
        [
            ("A", 0.9, date(2026, 2, 1)),
            ("A", 0.4, date(2026, 2, 28)),  # the latest score on or before the run date
            ("A", 0.1, date(2026, 3, 5)),  # after the run date: ignored
            ("C", 0.01, date(2026, 2, 28)),
        ],
        "person_id string, churn_score double, score_date date",
    )
    got = with_clv(people, test_config.profiles, latest_scores(scores, RUN)).select(
        "person_id", "churn_rate", "churn_source", "clv"
    )
    # clv = aov x frequency x margin (0.3) / churn
    expected = spark.createDataFrame(
        [
            ("A", 0.4, "model", 3000.0),
            ("B", 0.25, "lifecycle", 4800.0),
            ("C", 0.05, "model", 24000.0),
            ("D", 1.0, "lifecycle", 0.0),
        ],
        got.schema,
    )
    assertDataFrameEqual(got, expected)
