"""The profiles stage end to end on three hand-made people (see test_profiles_support.py)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from test_profiles_support import RUN_DATE, profiles_lakehouse, ts

from cdp_spark.errors import CdpError
from cdp_spark.pipeline import RunContext
from cdp_spark.profiles.stage import run_profiles
from cdp_spark.storage import open_lakehouse


@pytest.fixture(scope="module")
def built(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    cfg = profiles_lakehouse(spark, tmp_path_factory)
    return cfg, open_lakehouse(spark, cfg.lakehouse_root, engine="delta-rs")


def test_golden_record_follows_each_groups_rule(built, spark: SparkSession) -> None:  # type: ignore[no-untyped-def]
    _, lake = built
    got = lake.read("gold.customer_profiles").select(
        "person_id", "first_name", "last_name", "date_of_birth", "email", "phone",
        "street", "city", "postcode", "country", "golden_sources",
    )  # fmt: skip
    expected = spark.createDataFrame(
        [
            # name: most recent CRM record (C1B); e-mail: CRM first, the most recent of its
            # two; phone: most recent anywhere (the till); address: the most complete, whole.
            (
                "P1",
                "Anya",
                "Petrova",
                date(1990, 5, 1),
                "anna.p@y.ru",
                "+79990000001",
                "Lenina 1",
                "Moscow",
                "101000",
                "RU",
                {
                    "name": "crm_contacts",
                    "birth_date": "crm_contacts",
                    "email": "crm_contacts",
                    "phone": "pos_sales",
                    "address": "crm_contacts",
                },
            ),
            (
                "P2",
                "Boris",
                "Ivanov",
                None,
                "boris@x.ru",
                None,
                "Tverskaya 2",
                "Moscow",
                None,
                "RU",
                {"name": "crm_contacts", "email": "crm_contacts", "address": "crm_contacts"},
            ),
            ("P3", None, None, None, None, None, None, None, None, None, {}),
        ],
        got.schema,
    )
    assertDataFrameEqual(got, expected)


def test_identifiers_and_purchase_aggregates_of_a_known_person(built, spark: SparkSession) -> None:  # type: ignore[no-untyped-def]
    _, lake = built
    cols = [
        "person_id", "emails", "phones", "customer_ids", "loyalty_cards", "cookie_ids",
        "source_records", "first_purchase_at", "last_purchase_at", "orders", "online_orders",
        "store_orders", "revenue", "aov", "purchase_frequency", "recency_days", "rfm_score",
        "preferred_channel", "preferred_category", "lifecycle_stage", "churn_rate", "clv",
        "run_date",
    ]  # fmt: skip
    got = lake.read("gold.customer_profiles").select(*cols)
    expected = spark.createDataFrame(
        [
            # O3 is cancelled and O4 after the run date; O2 is 20 EUR = 2000 RUB; T1's lines
            # make one receipt of 1000. CLV = 1500 x 3 x 0.3 / 0.25 (active).
            (
                "P1",
                ["anna.p@y.ru", "anna@x.ru"],
                ["+79161234567", "+79990000001"],
                ["C1", "C1B"],
                [],
                ["ck1"],
                28,
                ts("2026-01-05 12:00:00"),
                ts("2026-02-25 15:00:00"),
                3,
                2,
                1,
                4500.0,
                1500.0,
                3.0,
                4,
                "555",
                "store",
                "kitchen",
                "active",
                0.25,
                5400.0,
                RUN_DATE,
            ),
            (
                "P2",
                ["boris@x.ru"],
                [],
                ["C2"],
                [],
                [],
                5,
                None,
                None,
                0,
                0,
                0,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                "prospect",
                1.0,
                0.0,
                RUN_DATE,
            ),
            # 10 GBP = 1150 RUB; first purchase 9 days ago: new, churn 0.5.
            (
                "P3",
                [],
                [],
                ["C3"],
                [],
                [],
                1,
                ts("2026-02-20 10:00:00"),
                ts("2026-02-20 10:00:00"),
                1,
                1,
                0,
                1150.0,
                1150.0,
                1.0,
                9,
                "111",
                "web",
                "garden",
                "new",
                0.5,
                690.0,
                RUN_DATE,
            ),
        ],
        got.schema,
    )
    assertDataFrameEqual(got, expected)


def test_web_email_support_and_consent_aggregates(built, spark: SparkSession) -> None:  # type: ignore[no-untyped-def]
    _, lake = built
    cols = [
        "person_id", "web_sessions_7d", "web_sessions_30d", "web_sessions_90d",
        "product_views_7d", "product_views_30d", "product_views_90d", "cart_abandons_7d",
        "cart_abandons_30d", "cart_abandons_90d", "last_web_at", "emails_sent",
        "emails_delivered", "email_opens", "email_clicks", "email_open_rate",
        "email_click_rate", "email_unsubscribed", "best_send_hour", "tickets", "open_tickets",
        "negative_tickets", "negative_ticket_share", "consent_email", "consent_sms",
        "consent_ads",
    ]  # fmt: skip
    got = lake.read("gold.customer_profiles").select(*cols)
    expected = spark.createDataFrame(
        [
            # s1 (abandoned: no order within 24 h), s2 (converted by O2), s3 (90 days only),
            # s4 after the run date. E-mail: 3 of 4 delivered campaigns opened, mostly at 9.
            # Tickets: K1 and K3 negative; K3 resolved after the run date, so still open.
            # Consent: the revocation on anna.p@y.ru wins over the grant on anna@x.ru.
            (
                "P1",
                1,
                2,
                3,
                1,
                1,
                2,
                1,
                1,
                1,
                ts("2026-02-27 10:05:00"),
                4,
                4,
                3,
                1,
                0.75,
                0.25,
                False,
                9,
                3,
                2,
                2,
                0.6667,
                False,
                True,
                False,
            ),
            # Boris unsubscribed after granting: no e-mail consent; ads granted.
            (
                "P2",
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                None,
                2,
                1,
                0,
                0,
                0.0,
                0.0,
                True,
                None,
                0,
                0,
                0,
                None,
                False,
                False,
                True,
            ),
            (
                "P3",
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                None,
                0,
                0,
                0,
                0,
                None,
                None,
                False,
                None,
                0,
                0,
                0,
                None,
                False,
                False,
                False,
            ),
        ],
        got.schema,
    )
    assertDataFrameEqual(got, expected)


def test_kpis_of_the_run(built) -> None:  # type: ignore[no-untyped-def]
    _, lake = built
    rows = lake.read("gold.kpis").where(F.col("run_date") == RUN_DATE).collect()
    values = {r["kpi"]: r["value"] for r in rows}
    assert len(rows) == len(values)  # one row per KPI
    assert {k: values[k] for k in (
        "persons", "customers", "unification_rate", "repeat_purchase_rate", "revenue", "aov",
        "purchase_frequency", "churn_rate", "clv_avg", "clv_total", "customers_acquired",
        "customer_equity", "lifecycle_count:prospect", "lifecycle_count:new",
        "lifecycle_count:active", "lifecycle_count:at_risk", "lifecycle_share:new",
    )} == {
        "persons": 3.0, "customers": 2.0, "unification_rate": 11.333333,
        "repeat_purchase_rate": 0.5, "revenue": 5650.0, "aov": 1412.5,
        "purchase_frequency": 2.0, "churn_rate": 0.375, "clv_avg": 3045.0, "clv_total": 6090.0,
        "customers_acquired": 1.0, "customer_equity": 3045.0, "lifecycle_count:prospect": 1.0,
        "lifecycle_count:new": 1.0, "lifecycle_count:active": 1.0,
        "lifecycle_count:at_risk": 0.0, "lifecycle_share:new": 0.333333,
    }  # fmt: skip
    assert values["lifecycle_change:new"] is None  # no earlier run
    detail = json.loads(next(r["detail"] for r in rows if r["kpi"] == "customer_equity"))
    assert detail == {"acquisition_days": 30, "clv_avg": 3045.0, "customers_acquired": 1}


def test_rerun_of_the_same_day_changes_nothing(built, spark: SparkSession) -> None:  # type: ignore[no-untyped-def]
    cfg, lake = built
    profiles, kpis = lake.read("gold.customer_profiles"), lake.read("gold.kpis")
    before_profiles, before_kpis = profiles.collect(), kpis.collect()
    report = run_profiles(RunContext(spark, cfg, lake, RUN_DATE))
    assert report.figures["persons"] == 3
    assertDataFrameEqual(
        lake.read("gold.customer_profiles"), spark.createDataFrame(before_profiles, profiles.schema)
    )
    assertDataFrameEqual(lake.read("gold.kpis"), spark.createDataFrame(before_kpis, kpis.schema))


def test_missing_identity_tables_give_a_clear_error(spark: SparkSession, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from test_profiles_support import profiles_config

    cfg = profiles_config(tmp_path)
    lake = open_lakehouse(spark, str(tmp_path), engine="delta-rs")
    with pytest.raises(CdpError, match=r"gold\.identity_clusters does not exist") as info:
        run_profiles(RunContext(spark, cfg, lake, RUN_DATE))
    assert "cdp run identity" in (info.value.hint or "")
