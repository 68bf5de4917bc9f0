"""The files the generator writes: folder, name pattern, columns and how records break.

This is the single list the writers, the tests and ``conf/sources.yaml`` agree on.

Example:
    >>> SOURCES["orders"].filename(date(2026, 1, 5))
    'orders/orders_2026-01-05.jsonl'
    >>> SOURCES["pos_sales"].filename(date(2026, 1, 5), late=True)
    'pos/pos_2026-01-05_late.csv'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# Kinds of malformed records (see docs/sources.md).
BAD_DATE = "bad_date"
NEGATIVE_AMOUNT = "negative_amount"
TRUNCATED_JSON = "truncated_json"
WRONG_COLUMN_COUNT = "wrong_column_count"
BAD_ENCODING = "bad_encoding"  # one row written in cp1251 inside a UTF-8 file
CP1251_FILE = "cp1251_file"  # a whole file written in cp1251 (not counted in the rate)
MALFORMED_KINDS = (BAD_DATE, NEGATIVE_AMOUNT, TRUNCATED_JSON, WRONG_COLUMN_COUNT, BAD_ENCODING)


@dataclass(frozen=True)
class SourceSpec:
    """One exported source: where its files go and what a record looks like."""

    name: str  # key in conf/sources.yaml
    folder: str
    prefix: str
    ext: str  # "csv" or "jsonl"
    columns: tuple[str, ...]
    key: str  # the record key column (for the ground truth)
    time_column: str  # the column ``bad_date`` corrupts
    amount_column: str | None = None  # the column ``negative_amount`` corrupts
    has_text: bool = False  # holds Cyrillic text, so a cp1251 row is visibly broken

    @property
    def malformed_kinds(self) -> tuple[str, ...]:
        kinds = [BAD_DATE]
        if self.amount_column:
            kinds.append(NEGATIVE_AMOUNT)
        kinds.append(TRUNCATED_JSON if self.ext == "jsonl" else WRONG_COLUMN_COUNT)
        if self.has_text:
            kinds.append(BAD_ENCODING)
        return tuple(kinds)

    def filename(self, day: date, *, late: bool = False) -> str:
        """Path of the file for ``day`` relative to the output folder."""
        return f"{self.folder}/{self.prefix}{day.isoformat()}{'_late' if late else ''}.{self.ext}"

    @property
    def pattern(self) -> str:
        return f"{self.prefix}*.{self.ext}"


SOURCES: dict[str, SourceSpec] = {
    s.name: s
    for s in (
        SourceSpec(
            "crm_contacts", "crm", "crm_contacts_", "csv",
            ("customer_id", "first_name", "last_name", "email", "phone", "date_of_birth",
             "street", "city", "postcode", "country", "created_at", "updated_at"),
            key="customer_id", time_column="updated_at", has_text=True,
        ),
        SourceSpec(
            "orders", "orders", "orders_", "jsonl",
            ("order_id", "customer_id", "guest_email", "ordered_at", "updated_at", "status",
             "currency", "total_amount", "lines", "channel"),
            key="order_id", time_column="ordered_at", amount_column="total_amount",
        ),
        SourceSpec(
            "web_events", "web", "events_", "jsonl",
            ("event_id", "ts", "cookie_id", "device_id", "event_type", "customer_id", "email",
             "sku", "query", "page", "utm_source", "session_id"),
            key="event_id", time_column="ts",
        ),
        SourceSpec(
            "email_events", "email", "email_events_", "csv",
            ("email", "campaign_id", "event", "event_at"),
            key="email", time_column="event_at",
        ),
        SourceSpec(
            "support_tickets", "support", "tickets_", "csv",
            ("ticket_id", "contact_email", "contact_phone", "channel", "topic", "message",
             "opened_at", "resolved_at", "updated_at"),
            key="ticket_id", time_column="opened_at", has_text=True,
        ),
        SourceSpec(
            "pos_sales", "pos", "pos_", "csv",
            ("transaction_id", "line_no", "store_id", "loyalty_card", "phone", "sku", "qty",
             "amount", "currency", "purchased_at"),
            key="transaction_id", time_column="purchased_at", amount_column="amount",
        ),
        SourceSpec(
            "consent_events", "consent", "consent_", "csv",
            ("identifier", "identifier_type", "channel", "purpose", "status", "recorded_at",
             "source"),
            key="identifier", time_column="recorded_at",
        ),
    )
}  # fmt: skip

CATALOG_FILES = {
    "products": ("catalog/products.csv", ("sku", "name", "category", "brand", "price", "margin")),
    "stores": ("catalog/stores.csv", ("store_id", "name", "city", "country", "timezone")),
}
TRUTH_RECORDS = ("_truth/records.csv", ("source", "key_type", "key", "person_id"))
TRUTH_MALFORMED = ("_truth/malformed.csv", ("source", "file", "kind", "record_key"))
TRUTH_PEOPLE = "_truth/people.csv"
