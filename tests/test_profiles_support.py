"""A tiny hand-made lakehouse for the profile tests: three people, every source, known figures.

Not a test module of its own: test_profiles_stage.py, test_lookup.py and
test_profiles_notebook.py import :func:`profiles_lakehouse`, which builds the silver and
identity tables and runs the ``profiles`` stage once per test session.

The people (run date 2026-03-01, so "as of" 2026-03-02 00:00 UTC):

- P1 Anna: two CRM records, three online orders (one cancelled, one after the run date) and a
  till receipt, web sessions, e-mail events, three tickets, consent granted on one e-mail and
  revoked on the other;
- P2 Boris: one CRM record and e-mails, unsubscribed; never bought (prospect);
- P3: one order 9 days before the run date (new customer), nothing else.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from cdp_spark.config import CdpConfig, load_config
from cdp_spark.pipeline import RunContext
from cdp_spark.storage import Lakehouse, open_lakehouse

REPO_CONF = Path(__file__).resolve().parent.parent / "conf"
RUN_DATE = date(2026, 3, 1)


def ts(text: str) -> datetime:
    """A naive UTC timestamp (the test session's time zone is UTC)."""
    return datetime.fromisoformat(text)


CRM = (
    "customer_id string, first_name string, last_name string, email string, phone string, "
    "date_of_birth date, street string, city string, postcode string, country string, "
    "created_at timestamp, updated_at timestamp, customer_id_norm string, email_norm string, "
    "phone_e164 string, postcode_norm string, country_norm string"
)
CRM_ROWS = [
    ("C1", "Anna", "Petrova", "Anna@X.ru", "+7 916 123-45-67", date(1990, 5, 1), "Lenina 1",
     "Moscow", "101000", "RU", ts("2020-01-01 00:00:00"), ts("2026-01-10 00:00:00"), "C1",
     "anna@x.ru", "+79161234567", "101000", "RU"),
    ("C1B", "Anya", "Petrova", "anna.p@y.ru", None, date(1990, 5, 1), "Mira 5", "Kazan", None,
     "Россия", ts("2021-01-01 00:00:00"), ts("2026-02-20 00:00:00"), "C1B", "anna.p@y.ru", None,
     None, "RU"),
    ("C2", "Boris", "Ivanov", "boris@x.ru", None, None, "Tverskaya 2", "Moscow", None, "RU",
     ts("2022-01-01 00:00:00"), ts("2025-11-01 00:00:00"), "C2", "boris@x.ru", None, None, "RU"),
]  # fmt: skip

LINES = "array<struct<sku:string,qty:int,unit_price:double>>"
ORDERS = (
    f"order_id string, customer_id string, guest_email string, ordered_at timestamp, "
    f"updated_at timestamp, status string, currency string, total_amount decimal(12,2), "
    f"lines {LINES}, channel string, customer_id_norm string, guest_email_norm string"
)
ORDER_ROWS = [
    ("O1", "C1", None, ts("2026-01-05 12:00:00"), ts("2026-01-05 12:00:00"), "paid", "RUB",
     D(1500), [("A", 3, 500.0)], "web", "C1", None),
    ("O2", "C1", None, ts("2026-02-10 09:00:00"), ts("2026-02-10 09:00:00"), "paid", "EUR", D(20),
     [("B", 1, 20.0)], "app", "C1", None),
    ("O3", "C1", None, ts("2026-02-11 09:00:00"), ts("2026-02-12 09:00:00"), "cancelled", "RUB",
     D(5000), [("B", 1, 5000.0)], "web", "C1", None),
    ("O4", "C1", None, ts("2026-03-05 09:00:00"), ts("2026-03-05 09:00:00"), "paid", "RUB",
     D(3000), [("A", 1, 3000.0)], "web", "C1", None),
    ("O5", "C3", None, ts("2026-02-20 10:00:00"), ts("2026-02-20 10:00:00"), "paid", "GBP", D(10),
     [("C", 1, 10.0)], "web", "C3", None),
]  # fmt: skip

POS = (
    "transaction_id string, line_no int, store_id string, loyalty_card string, phone string, "
    "sku string, qty int, amount decimal(12,2), currency string, purchased_at timestamp, "
    "loyalty_card_norm string, phone_e164 string"
)
POS_ROWS = [
    ("T1", 1, "MSK-01", None, "89990000001", "A", 1, D(700), "RUB", ts("2026-02-25 15:00:00"), None,
     "+79990000001"),
    ("T1", 2, "MSK-01", None, "89990000001", "C", 1, D(300), "RUB", ts("2026-02-25 15:00:00"), None,
     "+79990000001"),
]  # fmt: skip

WEB = (
    "event_id string, ts timestamp, cookie_id string, device_id string, event_type string, "
    "customer_id string, email string, sku string, session_id string, cookie_id_norm string, "
    "device_id_norm string, customer_id_norm string, email_norm string"
)


def _web(eid: str, when: str, kind: str, session: str, sku: str | None = None) -> tuple[Any, ...]:
    return (eid, ts(when), "ck1", None, kind, None, None, sku, session, "ck1", None, None, None)


WEB_ROWS = [
    _web("w1", "2026-02-27 10:00:00", "product_view", "s1", "A"),
    _web("w2", "2026-02-27 10:05:00", "add_to_cart", "s1", "A"),
    _web("w3", "2026-02-10 08:00:00", "add_to_cart", "s2", "B"),
    _web("w4", "2025-12-15 08:00:00", "product_view", "s3", "C"),
    _web("w5", "2026-03-03 08:00:00", "product_view", "s4", "C"),  # after the run date
]

EMAIL = "email string, campaign_id string, event string, event_at timestamp, email_norm string"


def _mail(addr: str, cmp: str, event: str, when: str) -> tuple[Any, ...]:
    return (addr, cmp, event, ts(when), addr)


EMAIL_ROWS = [
    *[
        _mail("anna@x.ru", c, e, f"2026-02-0{i} 08:00:00")
        for i, c in enumerate(["cmp1", "cmp2", "cmp3", "cmp4"], start=1)
        for e in ("sent", "delivered")
    ],
    _mail("anna@x.ru", "cmp1", "open", "2026-02-01 09:10:00"),
    _mail("anna@x.ru", "cmp1", "click", "2026-02-01 09:12:00"),
    _mail("anna@x.ru", "cmp2", "open", "2026-02-08 09:30:00"),
    _mail("anna@x.ru", "cmp3", "open", "2026-02-15 18:00:00"),
    _mail("boris@x.ru", "cmp1", "sent", "2026-01-20 08:00:00"),
    _mail("boris@x.ru", "cmp1", "delivered", "2026-01-20 08:01:00"),
    _mail("boris@x.ru", "cmp2", "sent", "2026-01-27 08:00:00"),
    _mail("boris@x.ru", "cmp2", "unsubscribe", "2026-02-01 10:00:00"),
]

TICKETS = (
    "ticket_id string, contact_email string, contact_phone string, channel string, "
    "topic string, message string, opened_at timestamp, resolved_at timestamp, "
    "updated_at timestamp, contact_email_norm string, contact_phone_e164 string"
)
TICKET_ROWS = [
    ("K1", "anna@x.ru", None, "chat", "product_quality",
     "Товар сломался через два дня, ужасное качество", ts("2026-02-01 10:00:00"),
     ts("2026-02-02 10:00:00"), ts("2026-02-02 10:00:00"), "anna@x.ru", None),
    ("K2", "anna@x.ru", None, "chat", "other", "Спасибо, всё отлично",
     ts("2026-02-26 10:00:00"), None, ts("2026-02-26 10:00:00"), "anna@x.ru", None),
    ("K3", "anna@x.ru", None, "email", "delivery", "My order is a week late and nobody answers",
     ts("2026-02-28 10:00:00"), ts("2026-03-04 10:00:00"), ts("2026-03-04 10:00:00"),
     "anna@x.ru", None),
]  # fmt: skip

CONSENT = (
    "identifier string, identifier_type string, channel string, purpose string, status string, "
    "recorded_at timestamp, source string, identifier_norm string"
)
CONSENT_ROWS = [
    ("anna@x.ru", "email", "email", "marketing", "granted", ts("2025-06-01 00:00:00"), "web",
     "anna@x.ru"),
    ("anna.p@y.ru", "email", "email", "marketing", "revoked", ts("2026-01-15 00:00:00"), "web",
     "anna.p@y.ru"),
    ("+79161234567", "phone", "sms", "marketing", "granted", ts("2025-06-01 00:00:00"), "paper",
     "+79161234567"),
    ("boris@x.ru", "email", "email", "marketing", "granted", ts("2025-10-01 00:00:00"), "web",
     "boris@x.ru"),
    ("boris@x.ru", "email", "ads", "profiling", "granted", ts("2025-10-01 00:00:00"), "web",
     "boris@x.ru"),
]  # fmt: skip

PRODUCTS = "sku string, name string, category string, brand string, price decimal(12,2)"
PRODUCT_ROWS = [
    ("A", "Pan", "kitchen", "X", D(500)),
    ("B", "Hose", "garden", "Y", D(2000)),
    ("C", "Rake", "garden", "Y", D(300)),
]

# (source, record_id, person_id): record_id is the source keys joined with "|".
CLUSTER_ROWS = [
    ("crm_contacts", "C1", "P1"),
    ("crm_contacts", "C1B", "P1"),
    ("crm_contacts", "C2", "P2"),
    *[("orders", o, "P1") for o in ("O1", "O2", "O3", "O4")],
    ("orders", "O5", "P3"),
    ("pos_sales", "T1|1", "P1"),
    ("pos_sales", "T1|2", "P1"),
    *[("web_events", f"w{i}", "P1") for i in range(1, 6)],
    *[
        ("email_events", f"{r[0]}|{r[1]}|{r[2]}", "P1" if r[0] == "anna@x.ru" else "P2")
        for r in EMAIL_ROWS
    ],
    *[("support_tickets", f"K{i}", "P1") for i in range(1, 4)],
]
IDENTIFIER_ROWS = [
    ("email", "anna@x.ru", "P1"),
    ("email", "anna.p@y.ru", "P1"),
    ("phone", "+79161234567", "P1"),
    ("phone", "+79990000001", "P1"),
    ("customer_id", "C1", "P1"),
    ("customer_id", "C1B", "P1"),
    ("cookie_id", "ck1", "P1"),
    ("email", "boris@x.ru", "P2"),
    ("customer_id", "C2", "P2"),
    ("customer_id", "C3", "P3"),
]

SILVER: dict[str, tuple[str, list[tuple[Any, ...]]]] = {
    "silver.crm_contacts": (CRM, CRM_ROWS),
    "silver.orders": (ORDERS, ORDER_ROWS),
    "silver.pos_sales": (POS, POS_ROWS),
    "silver.web_events": (WEB, WEB_ROWS),
    "silver.email_events": (EMAIL, EMAIL_ROWS),
    "silver.support_tickets": (TICKETS, TICKET_ROWS),
    "silver.consent_history": (CONSENT, CONSENT_ROWS),
    "silver.products": (PRODUCTS, PRODUCT_ROWS),
}


def write(lake: Lakehouse, table: str, df: DataFrame) -> None:
    """Create ``table`` with ``df``'s schema and put ``df`` in it."""
    lake.create(table, df.schema)
    lake.overwrite(table, df)


def write_inputs(spark: SparkSession, lake: Lakehouse) -> None:
    """The silver and identity tables of the three people."""
    for table, (schema, rows) in SILVER.items():
        write(lake, table, spark.createDataFrame(rows, schema))
    clusters = spark.createDataFrame(
        [(*r, RUN_DATE, ts("2026-03-01 01:00:00")) for r in CLUSTER_ROWS],
        "source string, record_id string, person_id string, run_date date, "
        "updated_at timestamp",
    )
    write(lake, "gold.identity_clusters", clusters)
    identifiers = spark.createDataFrame(
        [(*r, RUN_DATE) for r in IDENTIFIER_ROWS],
        "id_type string, id_value string, person_id string, run_date date",
    )
    write(lake, "gold.identity_identifiers", identifiers)


def profiles_config(root: Path) -> CdpConfig:
    """The repo's configuration pointed at ``root``, small Spark settings."""
    return load_config(
        "local",
        conf_dir=REPO_CONF,
        environ={},
        overrides={
            "storage.root": str(root),
            "storage.engine": "delta-rs",
            "spark.master": "local[2]",
            "spark.shuffle_partitions": 2,
        },
    )


_BUILT: dict[str, CdpConfig] = {}


def profiles_lakehouse(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> CdpConfig:
    """A lakehouse with the inputs and the profiles stage run for RUN_DATE (once per session).

    Returns the configuration pointing at it; callers must not change its tables.
    """
    if "cfg" not in _BUILT:
        from cdp_spark.profiles.stage import run_profiles

        root = tmp_path_factory.mktemp("profiles_lake")
        cfg = profiles_config(root)
        lake = open_lakehouse(spark, str(root), engine="delta-rs")
        write_inputs(spark, lake)
        run_profiles(RunContext(spark, cfg, lake, RUN_DATE))
        _BUILT["cfg"] = cfg
    return _BUILT["cfg"]
