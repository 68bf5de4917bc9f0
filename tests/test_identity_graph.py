"""Identity graph, guards and clusters on tiny silver-like DataFrames with explicit clusters."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_spark.config import CdpConfig
from cdp_spark.identity.clusters import cluster_records
from cdp_spark.identity.config import IdentityConfig, OversizeConfig
from cdp_spark.identity.graph import build_links, records_of_source
from cdp_spark.identity.guards import drop_junk, drop_shared, shared_identifiers
from cdp_spark.identity.oversize import split_oversized

CRM = "customer_id string, email_norm string, phone_e164 string, updated_at timestamp"
WEB = (
    "event_id string, ts timestamp, cookie_id_norm string, device_id_norm string, "
    "customer_id_norm string, email_norm string"
)
ORDERS = "order_id string, customer_id_norm string, guest_email_norm string, ordered_at timestamp"
POS = (
    "transaction_id string, line_no int, loyalty_card_norm string, phone_e164 string, "
    "purchased_at timestamp"
)
CONSENT = (
    "identifier string, identifier_type string, channel string, purpose string, "
    "identifier_norm string, recorded_at timestamp"
)


def _records(
    spark: SparkSession, cfg: CdpConfig, source: str, schema: str, rows: Iterable[tuple]
) -> DataFrame:
    df = spark.createDataFrame(list(rows), schema)
    src = cfg.sources[source]
    if source == "crm_contacts":
        df = df.withColumn("customer_id_norm", F.col("customer_id"))
    return records_of_source(df, source, src)


def _graph(
    spark: SparkSession, cfg: CdpConfig, data: dict[str, tuple[str, list[tuple]]]
) -> tuple[DataFrame, DataFrame]:
    records, links = None, None
    for source, (schema, rows) in data.items():
        recs = _records(spark, cfg, source, schema, rows)
        lk = build_links(recs, source, cfg.identity)
        slim = recs.select("source", "record_id", "rec", "event_time")
        records = slim if records is None else records.unionByName(slim)
        links = lk if links is None else links.unionByName(lk)
    assert records is not None and links is not None
    return records, links


def _no_pairs(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([], "rec_l string, rec_r string, score double, rule string")


def _groups(clusters: DataFrame) -> set[frozenset[str]]:
    """The clusters as a set of sets of record nodes (independent of component labels)."""
    by: dict[str, set[str]] = {}
    for r in clusters.collect():
        by.setdefault(r["component"], set()).add(r["rec"])
    return {frozenset(v) for v in by.values()}


def _resolve(
    spark: SparkSession, cfg: CdpConfig, records: DataFrame, links: DataFrame
) -> tuple[set[frozenset[str]], set[str]]:
    clean, _junk = drop_junk(links, cfg)
    clean = clean.localCheckpoint()
    pairs = _no_pairs(spark)
    shared = shared_identifiers(clean, pairs, cfg.identity, engine="local")
    linking = drop_shared(clean, shared)
    clusters = cluster_records(records, linking, pairs, engine="local")
    return _groups(clusters), {r["node"] for r in shared.collect()}


def test_deterministic_rules_join_one_person_across_channels(
    spark: SparkSession, test_config: CdpConfig
) -> None:
    # Ilya: CRM account, a logged-in order, a login on cookie K1 then an anonymous page view on
    # it, a guest order with his e-mail in another case, and consent on his phone. Anna: alone.
    records, links = _graph(
        spark,
        test_config,
        {
            "crm_contacts": (
                CRM,
                [("C1", "ilya@x.ru", "+79120000001", None), ("C2", "anna@y.ru", None, None)],
            ),
            "orders": (
                ORDERS,
                [("O1", "C1", None, None), ("O2", None, "ilya@x.ru", None)],
            ),
            "web_events": (
                WEB,
                [
                    ("E1", None, "K1", None, "C1", None),
                    ("E2", None, "K1", None, None, None),
                    ("E3", None, "K9", None, None, None),
                ],
            ),
            "consent_events": (
                CONSENT,
                [("8 912 000-00-01", "phone", "sms", "marketing", "+79120000001", None)],
            ),
        },
    )
    groups, shared = _resolve(spark, test_config, records, links)
    consent = "rec:consent_events:8 912 000-00-01|phone|sms|marketing"
    assert groups == {
        frozenset(
            {
                "rec:crm_contacts:C1",
                "rec:orders:O1",
                "rec:orders:O2",
                "rec:web_events:E1",
                "rec:web_events:E2",
                consent,
            }
        ),
        frozenset({"rec:crm_contacts:C2"}),
        frozenset({"rec:web_events:E3"}),
    }
    assert shared == set()


def test_edges_carry_rule_and_identifier_type(spark: SparkSession, test_config: CdpConfig) -> None:
    _records_df, links = _graph(
        spark,
        test_config,
        {"web_events": (WEB, [("E1", None, "K1", None, "C1", "ilya@x.ru")])},
    )
    got = {(r["node"], r["id_type"], r["rule"]) for r in links.collect()}
    assert got == {
        ("cookie_id:K1", "cookie_id", "web_login"),
        ("customer_id:C1", "customer_id", "web_login"),
        ("email:ilya@x.ru", "email", "web_login"),
    }


def test_shared_tablet_does_not_merge_a_family(spark: SparkSession, test_config: CdpConfig) -> None:
    # Mother (C1) and son (C2) each log in on their own phone and on the household tablet T.
    records, links = _graph(
        spark,
        test_config,
        {
            "crm_contacts": (CRM, [("C1", "mum@x.ru", None, None), ("C2", "son@x.ru", None, None)]),
            "web_events": (
                WEB,
                [
                    ("E1", None, "T", None, "C1", None),
                    ("E2", None, "T", None, "C2", None),
                    ("E3", None, "M", None, "C1", None),
                    ("E4", None, "S", None, "C2", None),
                    ("E5", None, "T", None, None, None),
                ],
            ),
        },
    )
    groups, shared = _resolve(spark, test_config, records, links)
    assert shared == {"cookie_id:T"}
    assert groups == {
        frozenset({"rec:crm_contacts:C1", "rec:web_events:E1", "rec:web_events:E3"}),
        frozenset({"rec:crm_contacts:C2", "rec:web_events:E2", "rec:web_events:E4"}),
        frozenset({"rec:web_events:E5"}),  # an anonymous tablet event belongs to nobody
    }


def test_second_account_with_same_email_and_phone_is_kept(
    spark: SparkSession, test_config: CdpConfig
) -> None:
    # One person, two CRM accounts sharing e-mail and phone: the phone touches one anchor group.
    records, links = _graph(
        spark,
        test_config,
        {
            "crm_contacts": (
                CRM,
                [("C1", "a@x.ru", "+79120000001", None), ("C2", "a@x.ru", "+79120000001", None)],
            )
        },
    )
    groups, shared = _resolve(spark, test_config, records, links)
    assert groups == {frozenset({"rec:crm_contacts:C1", "rec:crm_contacts:C2"})}
    assert shared == set()


def test_junk_email_and_store_card_are_blocked(spark: SparkSession, test_config: CdpConfig) -> None:
    # Two strangers typed test@test.com; the cashier scanned the store's own card for both
    # (each gave their phone at the till).
    records, links = _graph(
        spark,
        test_config,
        {
            "crm_contacts": (
                CRM,
                [
                    ("C1", "test@test.com", "+79120000001", None),
                    ("C2", "test@test.com", "+79120000002", None),
                ],
            ),
            "pos_sales": (
                POS,
                [
                    ("T1", 1, "2000000000017", "+79120000001", None),
                    ("T2", 1, "2000000000017", "+79120000002", None),
                ],
            ),
        },
    )
    clean, junk = drop_junk(links, test_config)
    assert {r["node"] for r in junk.collect()} == {"email:test@test.com"}
    groups, shared = _resolve(spark, test_config, records, links)
    assert shared == {"loyalty_card:2000000000017"}
    assert groups == {
        frozenset({"rec:crm_contacts:C1", "rec:pos_sales:T1|1"}),
        frozenset({"rec:crm_contacts:C2", "rec:pos_sales:T2|1"}),
    }
    assert clean.where(F.col("node") == "email:test@test.com").count() == 0


def test_configured_blocklist_value_is_junk(spark: SparkSession, test_config: CdpConfig) -> None:
    identity = test_config.identity
    policies = dict(identity.identifiers)
    policies["loyalty_card"] = policies["loyalty_card"].model_copy(
        update={"blocklist": ["2000000000017"], "blocklist_patterns": ["0+"]}
    )
    cfg = test_config.model_copy(
        update={"identity": identity.model_copy(update={"identifiers": policies})}
    )
    _r, links = _graph(
        spark,
        cfg,
        {
            "pos_sales": (
                POS,
                [
                    ("T1", 1, "2000000000017", None, None),
                    ("T2", 1, "0000", None, None),
                    ("T3", 1, "123", None, None),
                ],
            )
        },
    )
    clean, junk = drop_junk(links, cfg)
    assert {r["node"] for r in junk.collect()} == {
        "loyalty_card:2000000000017",
        "loyalty_card:0000",
    }
    kept = clean.where(F.col("id_type") != "group")  # receipts' own group nodes aside
    assert {r["node"] for r in kept.collect()} == {"loyalty_card:123"}


@pytest.fixture()
def unlimited(test_config: CdpConfig) -> CdpConfig:
    """No cardinality limits, and small oversize limits: only the oversize guard acts."""
    identity = test_config.identity
    policies = {
        t: p.model_copy(update={"max_links": None}) for t, p in identity.identifiers.items()
    }
    new = identity.model_copy(
        update={
            "identifiers": policies,
            "oversize": OversizeConfig(max_identifiers=60, max_customer_ids=2),
        }
    )
    return test_config.model_copy(update={"identity": new})


def test_oversized_cluster_is_split_along_weakest_links(
    spark: SparkSession, unlimited: CdpConfig
) -> None:
    # Three accounts glued by one cookie (a kiosk) and two by a phone: 3 customer ids > 2.
    # The cookie is the weakest type: cutting it leaves {C1, C2} (joined by the phone) and C3.
    records, links = _graph(
        spark,
        unlimited,
        {
            "crm_contacts": (
                CRM,
                [
                    ("C1", None, "+79120000001", None),
                    ("C2", None, "+79120000001", None),
                    ("C3", None, None, None),
                ],
            ),
            "web_events": (
                WEB,
                [
                    ("E1", None, "K", None, "C1", None),
                    ("E2", None, "K", None, "C3", None),
                    ("E3", None, "K3", None, "C3", None),
                ],
            ),
        },
    )
    pairs = _no_pairs(spark)
    clusters = cluster_records(records, links, pairs, engine="local")
    assert len(_groups(clusters)) == 1
    split, report = split_oversized(clusters, links, pairs, unlimited.identity, engine="local")
    assert _groups(split) == {
        frozenset({"rec:crm_contacts:C1", "rec:crm_contacts:C2", "rec:web_events:E1"}),
        frozenset({"rec:crm_contacts:C3", "rec:web_events:E2", "rec:web_events:E3"}),
    }
    assert {r["node"] for r in report.collect()} == {"rec:crm_contacts:C1"}
    assert report.count() == 6


def test_identity_config_defaults_are_valid() -> None:
    cfg = IdentityConfig()
    assert cfg.anchor_types() == ["customer_id", "email"]
    assert cfg.policy("phone").max_links == 1
