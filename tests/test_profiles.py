"""Profile building blocks on tiny frames: survivorship rules, lifecycle, consent, sentiment."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from cdp_spark.config import CdpConfig
from cdp_spark.profiles.build import (
    consent_records,
    consent_state,
    lifecycle_stage,
    pick_survivors,
    run_end,
    survivorship_candidates,
    with_sentiment,
)
from cdp_spark.profiles.profile_config import FieldGroup, SentimentConfig

RUN = date(2026, 3, 1)
ADDRESS = ["street", "city", "postcode", "country"]


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def address_records(spark: SparkSession) -> dict[str, DataFrame]:
    """One person's addresses in two sources.

    r1 and r4 hold the same address (the most frequent), r2 is the most recent CRM record
    but has no postcode, o3 (orders) is the only complete one, r5 is after the run date.
    """
    crm = spark.createDataFrame(
        [
            ("P1", "r1", "A st 1", "Moscow", None, "RU", ts("2026-01-01 00:00:00")),
            ("P1", "r2", "B st 2", "Kazan", None, None, ts("2026-02-01 00:00:00")),
            ("P1", "r4", "A st 1", "Moscow", None, "RU", ts("2025-12-01 00:00:00")),
            ("P1", "r5", "E st 5", "Sochi", "354000", "RU", ts("2026-03-05 00:00:00")),
            ("P1", "r6", None, None, None, None, ts("2026-02-20 00:00:00")),  # no candidate
        ],
        "person_id string, record_id string, street string, city string, postcode_norm string, "
        "country_norm string, updated_at timestamp",
    )
    orders = spark.createDataFrame(
        [("P1", "o3", "C st 3", "Perm", "614000", "RU", ts("2026-01-15 00:00:00"))],
        "person_id string, record_id string, ship_street string, ship_city string, "
        "ship_postcode string, ship_country string, ordered_at timestamp",
    )
    return {"crm_contacts": crm, "orders": orders}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # The CRM comes first; among its records the most recent one, postcode null and all:
        # fields are never filled in from another record.
        ("source_priority", ("B st 2", "Kazan", None, None, "crm_contacts")),
        ("most_recent", ("B st 2", "Kazan", None, None, "crm_contacts")),
        ("most_frequent", ("A st 1", "Moscow", None, "RU", "crm_contacts")),
        ("most_complete", ("C st 3", "Perm", "614000", "RU", "orders")),
    ],
)
def test_each_survivorship_rule_takes_the_address_whole_from_one_record(
    spark: SparkSession,
    address_records: dict[str, DataFrame],
    rule: str,
    expected: tuple[str | None, ...],
) -> None:
    group = FieldGroup(
        fields=ADDRESS,
        rule=rule,  # type: ignore[arg-type]
        sources={
            "crm_contacts": {
                "street": "street", "city": "city", "postcode": "postcode_norm",
                "country": "country_norm",
            },
            "orders": {
                "street": "ship_street", "city": "ship_city", "postcode": "ship_postcode",
                "country": "ship_country",
            },
        },
    )  # fmt: skip
    candidates = survivorship_candidates(
        address_records,
        group,
        {"crm_contacts": "updated_at", "orders": "ordered_at"},
        run_end(RUN),
    )
    assert candidates is not None
    got = pick_survivors(candidates, group)
    assertDataFrameEqual(
        got,
        spark.createDataFrame([("P1", *expected)], got.schema),
    )


def test_source_priority_prefers_the_first_source_even_when_older(spark: SparkSession) -> None:
    crm = spark.createDataFrame(
        [("P1", "c1", "old@crm.ru", ts("2024-01-01 00:00:00"))],
        "person_id string, record_id string, email_norm string, updated_at timestamp",
    )
    web = spark.createDataFrame(
        [("P1", "w1", "new@web.ru", ts("2026-02-01 00:00:00"))],
        "person_id string, record_id string, email_norm string, ts timestamp",
    )
    records = {"crm_contacts": crm, "web_events": web}
    times = {"crm_contacts": "updated_at", "web_events": "ts"}
    mapping = {"email": "email_norm"}
    orders = [
        (["crm_contacts", "web_events"], "old@crm.ru"),
        (["web_events", "crm_contacts"], "new@web.ru"),
    ]
    for order, winner in orders:
        group = FieldGroup(
            fields=["email"], rule="source_priority", sources={s: mapping for s in order}
        )
        candidates = survivorship_candidates(records, group, times, run_end(RUN))
        assert candidates is not None
        assert [r["email"] for r in pick_survivors(candidates, group).collect()] == [winner]


def test_field_group_rejects_a_mapping_to_an_undeclared_field() -> None:
    with pytest.raises(ValueError, match="maps unknown field"):
        FieldGroup(fields=["city"], rule="most_recent", sources={"crm": {"town": "city"}})


def test_lifecycle_thresholds(spark: SparkSession, test_config: CdpConfig) -> None:
    # Thresholds of conf/profiles.yaml: new_days 30, active 30, at_risk 60, lapsed 120.
    lc = test_config.profiles.lifecycle
    assert (lc.new_days, lc.active_days, lc.at_risk_days, lc.lapsed_days) == (30, 30, 60, 120)
    rows = [
        # (person, orders, first purchase, days since last purchase, expected stage)
        ("never", 0, None, None, "prospect"),
        ("new_edge", 2, ts("2026-01-30 10:00:00"), 0, "new"),  # first purchase 30 days ago
        ("active_edge", 2, ts("2026-01-29 10:00:00"), 30, "active"),
        ("at_risk_low", 2, ts("2025-06-01 10:00:00"), 31, "at_risk"),
        ("at_risk_edge", 2, ts("2025-06-01 10:00:00"), 60, "at_risk"),
        ("lapsed_low", 2, ts("2025-06-01 10:00:00"), 61, "lapsed"),
        ("lapsed_edge", 2, ts("2025-06-01 10:00:00"), 120, "lapsed"),
        ("churned", 2, ts("2025-06-01 10:00:00"), 121, "churned"),
    ]
    df = spark.createDataFrame(
        [r[:4] for r in rows],
        "person_id string, orders long, first_purchase_at timestamp, recency_days int",
    )
    got = df.select("person_id", lifecycle_stage(test_config.profiles, RUN).alias("stage"))
    assertDataFrameEqual(got, spark.createDataFrame([(r[0], r[4]) for r in rows], got.schema))


def test_consent_revocation_on_any_identifier_wins(
    spark: SparkSession, test_config: CdpConfig
) -> None:
    consent = spark.createDataFrame(
        [
            # P1: granted on one e-mail, revoked on the other -> no e-mail consent.
            ("email", "a1@x.ru", "email", "marketing", "granted", ts("2025-01-01 00:00:00")),
            ("email", "a2@x.ru", "email", "marketing", "REVOKED", ts("2025-02-01 00:00:00")),
            # P2: revoked, then granted again later on the same identifier -> consent.
            ("email", "b@x.ru", "email", "marketing", "revoked", ts("2025-01-01 00:00:00")),
            ("email", "b@x.ru", "email", "marketing", "granted", ts("2025-03-01 00:00:00")),
            # P2: sms granted; ads needs profiling, a marketing grant is not enough.
            ("phone", "+79160000002", "sms", "marketing", "granted", ts("2025-01-01 00:00:00")),
            ("email", "b@x.ru", "ads", "marketing", "granted", ts("2025-01-01 00:00:00")),
            # P3: granted, then revoked after the run date -> still granted as of the run date.
            ("email", "c@x.ru", "email", "marketing", "granted", ts("2025-01-01 00:00:00")),
            ("email", "c@x.ru", "email", "marketing", "revoked", ts("2026-03-02 00:00:00")),
            # P4: granted, then an e-mail unsubscribe (below) -> no e-mail consent; ads granted.
            ("email", "d@x.ru", "email", "marketing", "granted", ts("2025-01-01 00:00:00")),
            ("email", "d@x.ru", "ads", "profiling", "granted", ts("2025-01-01 00:00:00")),
            # Same time, two states: the revocation wins the tie.
            ("email", "e@x.ru", "sms", "marketing", "granted", ts("2025-01-01 00:00:00")),
            ("email", "e@x.ru", "sms", "marketing", "revoked", ts("2025-01-01 00:00:00")),
        ],
        "identifier_type string, identifier_norm string, channel string, purpose string, "
        "status string, recorded_at timestamp",
    )
    email = spark.createDataFrame(
        [("d@x.ru", "cmp1", "unsubscribe", ts("2025-06-01 00:00:00"))],
        "email_norm string, campaign_id string, event string, event_at timestamp",
    )
    identifiers = spark.createDataFrame(
        [
            ("email", "a1@x.ru", "P1"),
            ("email", "a2@x.ru", "P1"),
            ("email", "b@x.ru", "P2"),
            ("phone", "+79160000002", "P2"),
            ("email", "c@x.ru", "P3"),
            ("email", "d@x.ru", "P4"),
            ("email", "e@x.ru", "P5"),
            ("email", "nobody@x.ru", "P6"),
        ],
        "id_type string, id_value string, person_id string",
    )
    records = consent_records(consent, email, test_config.profiles, run_end(RUN))
    got = consent_state(records, identifiers, test_config.profiles)
    expected = spark.createDataFrame(
        [
            ("P1", False, False, False),
            ("P2", True, True, False),
            ("P3", True, False, False),
            ("P4", False, False, True),
            ("P5", False, False, False),
            # P6 has no record at all: no row here, false in the profile (filled as no consent)
        ],
        got.schema,
    )
    assert got.columns == ["person_id", "consent_email", "consent_sms", "consent_ads"]
    assertDataFrameEqual(got, expected)


def test_ticket_sentiment_in_russian_and_english(spark: SparkSession) -> None:
    texts = [
        ("Товар сломался через два дня, ужасное качество", True),
        ("Опять проблема: курьер так и не приехал. Верните деньги!", True),
        ("Спасибо, всё пришло вовремя, отличный сервис", False),
        ("Хотела бы узнать статус заказа, спасибо", False),
        ("Подскажите, когда будет скидка?", False),  # neutral
        ("The parcel arrived damaged. Very disappointed.", True),
        ("Thanks, everything arrived on time, great service", False),
        ("Could you tell me the order status? Thanks", False),
        ("I translated the plate", False),  # "late" only counts at the start of a word
        (None, False),
    ]
    df = spark.createDataFrame([(t,) for t, _ in texts], "message string")
    got = with_sentiment(df, "message", SentimentConfig()).select("message", "is_negative")
    assertDataFrameEqual(got, spark.createDataFrame(texts, got.schema))
