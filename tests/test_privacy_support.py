"""Shared bits of the privacy tests (no tests here): tiny test sources, a context on a
lakehouse under ``tmp_path``, landing-file writers and an independent PII search.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from cdp_spark.config import CdpConfig, load_config
from cdp_spark.pipeline import RunContext
from cdp_spark.storage import Lakehouse

REPO_CONF = Path(__file__).resolve().parent.parent / "conf"
RUN_DATE = date(2026, 3, 2)

CRM = {
    "path": "crm",
    "pattern": "crm_*.csv",
    "format": "csv",
    "columns": [
        {"name": "customer_id", "required": True, "identifier": "customer_id"},
        {"name": "first_name"},
        {"name": "last_name"},
        {"name": "email", "identifier": "email"},
        {"name": "phone", "identifier": "phone"},
        {"name": "country"},
        {"name": "updated_at", "type": "timestamp"},
    ],
    "keys": ["customer_id"],
    "order_by": "updated_at",
    "event_time": "updated_at",
}
ORDERS = {
    "path": "orders",
    "pattern": "orders_*.jsonl",
    "format": "jsonl",
    "columns": [
        {"name": "order_id", "required": True},
        {"name": "customer_id", "identifier": "customer_id"},
        {"name": "guest_email", "identifier": "email"},
        {"name": "total_amount", "type": "decimal(12,2)"},
    ],
    "keys": ["order_id"],
}
TICKETS = {
    "path": "support",
    "pattern": "tickets_*.csv",
    "format": "csv",
    "columns": [
        {"name": "ticket_id", "required": True},
        {"name": "contact_email", "identifier": "email"},
        {"name": "contact_phone", "identifier": "phone"},
        {"name": "message"},
    ],
    "keys": ["ticket_id"],
}
CONSENT = {
    "path": "consent",
    "pattern": "consent_*.csv",
    "format": "csv",
    "columns": [
        {"name": "identifier", "required": True},
        {"name": "identifier_type", "required": True},
        {"name": "channel", "required": True},
        {"name": "purpose", "required": True},
        {"name": "status", "required": True},
        {"name": "recorded_at", "type": "timestamp"},
    ],
    "keys": ["identifier", "identifier_type", "channel", "purpose"],
    "order_by": "recorded_at",
    "event_time": "recorded_at",
}
SOURCES = {"p_crm": CRM, "p_orders": ORDERS, "p_tickets": TICKETS, "consent_p": CONSENT}


@functools.cache
def private_conf() -> Path:
    """The repo's local profile and privacy.yaml only: these tests do not depend on the
    identity, profile or model sections (which other changes may be editing)."""
    conf = Path(tempfile.mkdtemp(prefix="cdp-privacy-conf-"))
    (conf / "profiles").mkdir()
    shutil.copy(REPO_CONF / "profiles" / "local.yaml", conf / "profiles" / "local.yaml")
    shutil.copy(REPO_CONF / "privacy.yaml", conf / "privacy.yaml")
    return conf


def make_cfg(tmp_path: Path, **overrides: Any) -> CdpConfig:
    return load_config(
        "local",
        conf_dir=private_conf(),
        environ={},
        overrides={
            "storage.root": str(tmp_path / "lake"),
            "paths.landing": str(tmp_path / "landing"),
            "paths.exports": str(tmp_path / "exports"),
            "project_root": str(tmp_path),
            "storage.engine": "delta-rs",
            "sources": SOURCES,
            "privacy.erasure_retention_hours": 0,
            **overrides,
        },
    )


def make_ctx(
    spark: SparkSession, tmp_path: Path, run_date: date = RUN_DATE, **overrides: Any
) -> RunContext:
    cfg = make_cfg(tmp_path, **overrides)
    return RunContext.create(cfg, run_date=run_date, spark=spark, progress=lambda _m: None)


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def table_text(lake: Lakehouse, table: str, version: int | None = None) -> list[str]:
    """Every value of every row of a table version, as text (arrays, maps and bytes opened).

    Read with delta-rs, not Spark: an independent reader, and no Spark job per version.
    """
    rows = DeltaTable(lake.path(table), version=version).to_pyarrow_table().to_pylist()
    return [t for row in rows for t in _texts(row.values())]


def _texts(values: Iterable[Any]) -> Iterator[str]:
    for v in values:
        if v is None:
            continue
        if isinstance(v, dict):
            yield from _texts(v.keys())
            yield from _texts(v.values())
        elif isinstance(v, list | tuple):
            yield from _texts(v)
        elif isinstance(v, bytes | bytearray):
            yield bytes(v).decode("latin-1")
        else:
            yield str(v)


def log_text(table_dir: Path) -> str:
    """The Delta log of a table as text: JSON commits and checkpoints (Parquet) opened."""
    parts = []
    log_dir = table_dir / "_delta_log"
    for name in sorted(os.listdir(log_dir)):
        path = log_dir / name
        if path.is_dir():
            continue
        if name.endswith(".parquet"):
            parts.append(str(pq.read_table(path).to_pylist()))
        else:
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


class PiiProbe:
    """An independent search for a person's identifiers in any text (not the code under test).

    ``words`` are searched case-insensitively as substrings, ``digits`` in the digits of a
    value, ``exact`` as whole values.
    """

    def __init__(self, words: Iterable[str], digits: Iterable[str], exact: Iterable[str]) -> None:
        self.words = [w.lower() for w in words]
        self.digits = list(digits)
        self.exact = {e.lower() for e in exact}

    def found(self, text: str) -> list[str]:
        low = text.lower()
        hits = [w for w in self.words if w in low]
        runs = [re.sub(r"\D", "", r) for r in re.findall(r"\+?\(?\d[\d\s().-]{5,}\d", text)]
        hits += [d for d in self.digits if any(d in r for r in runs)]
        if low.strip().strip("'\"") in self.exact:
            hits.append(low.strip())
        return hits

    def found_in_values(self, values: Iterable[str]) -> list[str]:
        return [h for v in values for h in self.found(v)]
