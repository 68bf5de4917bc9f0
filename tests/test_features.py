"""Point-in-time features and labels: hand-made events, leakage, missing sources."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from cdp_spark.config import CdpConfig, load_config
from cdp_spark.ml.config import FeaturesConfig
from cdp_spark.ml.features import (
    FEATURES_TABLE,
    FeatureInputs,
    build_features,
    feature_columns,
    labels_complete,
    with_person_id,
    write_features,
)
from cdp_spark.storage import open_lakehouse

AS_OF = date(2026, 2, 1)
FCFG = FeaturesConfig(windows_days=[30, 90], horizon_days=30)
REPO = Path(__file__).resolve().parent.parent


def t(days: float) -> int:
    """Epoch seconds ``days`` after the cutoff (negative: before it)."""
    cut = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC)
    return int((cut + timedelta(days=days)).timestamp())


def purchases(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(
        rows,
        "person_id string, t long, amount double, cancelled_t long, returned_t long, store double",
    )


def base_inputs(spark: SparkSession) -> FeatureInputs:
    return FeatureInputs(
        purchases=purchases(
            spark,
            [
                # p1: two purchases (5 and 40 days ago), buys again in the horizon.
                ("p1", t(-5), 100.0, None, None, 0.0),
                ("p1", t(-40), 50.0, None, None, 1.0),
                ("p1", t(3), 70.0, None, None, 0.0),
                # p2: bought 10 days ago; an order cancelled before the cutoff does not count;
                # an order returned before the cutoff counts as a purchase and a return.
                ("p2", t(-10), 30.0, None, None, 0.0),
                ("p2", t(-3), 99.0, t(-2), None, 0.0),
                ("p2", t(-20), 10.0, None, t(-15), 0.0),
                # p2 orders in the horizon but cancels: no purchase.
                ("p2", t(5), 99.0, t(6), None, 0.0),
                # p3 never bought before the cutoff, buys in the horizon.
                ("p3", t(10), 20.0, None, None, 1.0),
                # p4 appears only after the cutoff: not a row at this cutoff.
                ("p4", t(1), 20.0, None, None, 0.0),
            ],
        ),
        web=spark.createDataFrame(
            [
                ("p3", t(-1), "add_to_cart", "s1"),
                ("p3", t(-1), "product_view", "s1"),
                ("p3", t(-50), "product_view", "s2"),
                ("p1", t(2), "add_to_cart", "s3"),  # after the cutoff: not counted
            ],
            "person_id string, t long, event_type string, session_id string",
        ),
        email=spark.createDataFrame(
            [
                ("p1", t(-3), "sent"),
                ("p1", t(-3), "open"),
                ("p1", t(-60), "sent"),
                ("p2", t(-4), "sent"),
                ("p2", t(-2), "unsubscribe"),
            ],
            "person_id string, t long, event string",
        ),
        support=spark.createDataFrame(
            [("p2", t(-7), True), ("p2", t(-80), False)],
            "person_id string, t long, negative boolean",
        ),
        crm=spark.createDataFrame([("p1", t(-400))], "person_id string, t long"),
    )


COLUMNS = [
    "person_id",
    "as_of",
    "tenure_days",
    "days_since_last_purchase",
    "purchases_30d",
    "purchases_90d",
    "monetary_30d",
    "monetary_90d",
    "purchase_trend_30d",
    "store_share",
    "returns_90d",
    "cancellations_90d",
    "web_sessions_90d",
    "cart_adds_30d",
    "emails_sent_90d",
    "email_open_rate_90d",
    "email_unsubscribed",
    "negative_tickets_30d",
    "tickets_90d",
    "label_churn",
    "label_purchase",
]
SCHEMA = (
    "person_id string, as_of date, "
    + ", ".join(f"{c} double" for c in COLUMNS[2:-2])
    + ", label_churn int, label_purchase int"
)


def test_features_and_labels_on_hand_made_events(spark: SparkSession) -> None:
    got = build_features(base_inputs(spark), as_of=AS_OF, fcfg=FCFG, labels_complete=True)
    expected = spark.createDataFrame(
        [
            # p1: 2 purchases (one in the last 30 days), trend 1 - 1 (one 30-60 days ago)
            ("p1", AS_OF, 400.0, 5.0, 1.0, 2.0, 100.0, 150.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0,
             2.0, 0.5, 0.0, 0.0, 0.0, 0, 1),
            # p2: the cancelled order is out, the returned one is in
            ("p2", AS_OF, 80.0, 10.0, 2.0, 2.0, 40.0, 40.0, 2.0, 0.0, 1.0, 1.0, 0.0, 0.0,
             1.0, 0.0, 1.0, 1.0, 2.0, 1, 0),
            # p3: web only before the cutoff; no purchase -> churn label null
            ("p3", AS_OF, 50.0, None, 0.0, 0.0, 0.0, 0.0, 0.0, None, 0.0, 0.0, 2.0, 1.0,
             0.0, None, 0.0, 0.0, 0.0, None, 1),
        ],
        SCHEMA,
    )  # fmt: skip
    assertDataFrameEqual(got.select(*COLUMNS), expected)


def test_labels_are_null_when_the_horizon_is_not_complete(spark: SparkSession) -> None:
    got = build_features(base_inputs(spark), as_of=AS_OF, fcfg=FCFG, labels_complete=False)
    assert (
        got.where(F.col("label_churn").isNotNull() | F.col("label_purchase").isNotNull()).count()
        == 0
    )
    assert labels_complete(date(2026, 1, 31), 30, date(2026, 3, 1), date(2026, 3, 1))
    assert not labels_complete(date(2026, 2, 1), 30, date(2026, 3, 1), date(2026, 3, 1))
    # The data ends before the run date: the horizon is cut by the data.
    assert not labels_complete(date(2026, 1, 31), 30, date(2026, 2, 27), date(2026, 3, 1))


def test_data_after_the_cutoff_does_not_change_the_features(spark: SparkSession) -> None:
    before = base_inputs(spark)
    after = base_inputs(spark)
    assert before.purchases is not None and before.web is not None and before.email is not None
    assert before.support is not None
    # New purchases, a status change and new events, all at or after the cutoff; p5 is new.
    changed = purchases(
        spark,
        [
            ("p1", t(-5), 100.0, None, t(0.5), 0.0),  # returned after the cutoff
            ("p1", t(-40), 50.0, t(1), None, 1.0),  # cancelled after the cutoff
            ("p1", t(0), 500.0, None, None, 0.0),  # at the cutoff instant
            ("p5", t(2), 1.0, None, None, 0.0),
        ],
    )
    others = before.purchases.where(~F.col("person_id").isin("p1"))
    p1_rest = before.purchases.where((F.col("person_id") == "p1") & (F.col("t") >= t(0)))
    after.purchases = others.unionByName(p1_rest).unionByName(changed)
    after.web = before.web.unionByName(
        spark.createDataFrame([("p2", t(0), "add_to_cart", "s9")], before.web.schema)
    )
    after.email = before.email.unionByName(
        spark.createDataFrame([("p1", t(1), "unsubscribe")], before.email.schema)
    )
    after.support = before.support.unionByName(
        spark.createDataFrame([("p1", t(0), True)], before.support.schema)
    )
    features = ["person_id", "as_of", *feature_columns(FCFG)]
    got_before = build_features(before, as_of=AS_OF, fcfg=FCFG, labels_complete=True)
    got_after = build_features(after, as_of=AS_OF, fcfg=FCFG, labels_complete=True)
    assertDataFrameEqual(got_after.select(*features), got_before.select(*features))
    # ...while the labels, which look after the cutoff, do see it.
    assert got_after.where("person_id = 'p1'").first()["label_purchase"] == 1


def test_records_reach_people_through_identity_on_the_joined_source_keys(
    spark: SparkSession,
) -> None:
    pos = spark.createDataFrame(
        [("T1", 1, 5.0), ("T1", 2, 6.0)], "transaction_id string, line_no int, amount double"
    )
    clusters = spark.createDataFrame(
        [("pos_sales", "T1|1", "P1"), ("pos_sales", "T1|2", "P1"), ("orders", "T1|1", "PX")],
        "source string, record_id string, person_id string",
    )
    got = with_person_id(pos, clusters, source="pos_sales", keys=["transaction_id", "line_no"])
    assertDataFrameEqual(
        got.select("record_id", "person_id", "amount"),
        spark.createDataFrame(
            [("T1|1", "P1", 5.0), ("T1|2", "P1", 6.0)],
            "record_id string, person_id string, amount double",
        ),
    )


def test_a_shop_with_only_an_order_export_gets_purchase_features_and_null_others(
    spark: SparkSession, tmp_path: Path
) -> None:
    cfg: CdpConfig = load_config(
        "local",
        conf_dir=REPO / "conf",
        environ={},
        overrides={"storage.root": str(tmp_path / "lake")},
    )
    lake = open_lakehouse(spark, cfg.lakehouse_root, engine="delta-rs")
    ts = lambda d: datetime(2026, 1, 1) + timedelta(days=d)  # noqa: E731
    # A minimal export: order id, customer id, timestamp, amount. No status, no currency.
    orders = spark.createDataFrame(
        [
            ("O1", "C1", ts(10), 100.0),
            ("O2", "C1", ts(40), 50.0),
            ("O3", "C2", ts(5), 30.0),
            ("O4", "C3", ts(59), 10.0),  # the data reaches the run date: the horizon is complete
        ],
        "order_id string, customer_id string, ordered_at timestamp, total_amount double",
    )
    lake.create("silver.orders", orders.schema)
    lake.append("silver.orders", orders)
    clusters = spark.createDataFrame(
        [
            ("orders", "O1", "P1"),
            ("orders", "O2", "P1"),
            ("orders", "O3", "P2"),
            ("orders", "O4", "P3"),
        ],
        "source string, record_id string, person_id string",
    )
    lake.create("gold.identity_clusters", clusters.schema)
    lake.append("gold.identity_clusters", clusters)

    written = write_features(lake, cfg, as_of=date(2026, 1, 16), run_date=date(2026, 3, 1))

    assert written.missing_roles == ("web", "email", "support")
    got = lake.read(FEATURES_TABLE).where("as_of = DATE'2026-01-16'")
    assertDataFrameEqual(
        got.select(
            "person_id",
            "purchases_all",
            "monetary_all",
            "label_churn",
            "label_purchase",
            "web_sessions_30d",
            "email_open_rate_90d",
            "negative_tickets_30d",
        ),
        spark.createDataFrame(
            [("P1", 1.0, 100.0, 0, 1, None, None, None), ("P2", 1.0, 30.0, 1, 0, None, None, None)],
            "person_id string, purchases_all double, monetary_all double, label_churn int, "
            "label_purchase int, web_sessions_30d double, email_open_rate_90d double, "
            "negative_tickets_30d double",
        ),
    )
    # Idempotent per as_of: writing the same cutoff again replaces it.
    write_features(lake, cfg, as_of=date(2026, 1, 16), run_date=date(2026, 3, 1))
    assert lake.read(FEATURES_TABLE).count() == 2


@pytest.mark.parametrize("windows", [[7], [14, 60]])
def test_feature_columns_follow_the_configured_windows(windows: list[int]) -> None:
    cols = feature_columns(FeaturesConfig(windows_days=windows))
    assert [c for c in cols if c.startswith("purchases_")] == [
        *[f"purchases_{w}d" for w in windows],
        "purchases_all",
    ]
    assert len(cols) == len(set(cols))
