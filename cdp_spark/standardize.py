"""Silver standardisation: ``bronze.<source>`` -> ``silver.<source>`` (+ quarantine, DQ report).

For each source, :func:`run_standardize` takes the bronze batches not yet standardised (those
above the source's watermark in ``ops.standardize_log`` and recorded in the ingest manifest,
so a half-written ingest batch is never read) and:

1. **types** every declared column (numbers, dates, UTC timestamps, nested values) with the
   normaliser module; naive times are read in the source's ``timezone`` (POS store time) or
   ``standardize.default_timezone``;
2. **judges** each record semantically. Rejected, to ``quarantine.records`` with
   ``layer='silver'``: ``bad_type:<col>`` (a value that does not parse as its type: bad dates,
   dates outside 1900-2100, words in numbers), ``negative:<col>`` (amounts, prices,
   quantities below zero), ``missing_key:<col>`` and
   ``invalid_email:<col>`` / ``invalid_phone:<col>`` when that identifier is *required*. An
   invalid or junk value of an *optional* identifier does not reject the record: the raw value
   stays, its normalised column is null, and the DQ report counts it;
3. **normalises** identifiers into extra columns (``email_norm``, ``phone_e164``,
   ``<id>_norm``, ``name_key``, ``address_norm``, ``postcode_norm``, ``country_norm``);
4. **deduplicates**: exact re-sends collapse on ``_row_hash``; for a source with ``keys`` the
   latest record per key by ``order_by`` wins, and it is MERGEd into silver only if it is not
   older than the row already there (a late file never rolls a record back). Sources without
   keys (events) are appended, minus the hashes silver already holds;
5. **records** the quarantine rows (overwrite of exactly this source's silver rejects of these
   batches), the DQ report row and, last, the watermark. Every write carries
   ``Txn("standardize:<source>", <last batch>)``; a re-run after a crash recomputes the same
   batches and each write is idempotent (MERGE, anti-joined append, overwrite-where).

The consent source also keeps ``silver.consent_history`` (every distinct consent record),
while ``silver.consent`` holds the current state per key (latest ``recorded_at`` wins).

Example:
    >>> report = run_standardize(ctx)        # doctest: +SKIP
    >>> report.rows[0]["source"], report.rows[0]["rows_out"]
    ('crm', 1180)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructType,
    TimestampType,
)

from cdp_spark import normalize as N
from cdp_spark.caching import cache_records
from cdp_spark.config import CdpConfig, SourceConfig
from cdp_spark.ingest import ensure_table, selected_sources
from cdp_spark.pipeline import RunContext, StageReport
from cdp_spark.privacy.suppression import (
    SUPPRESSED_REASON,
    suppressed_bronze_predicate,
    suppression_hook,
)
from cdp_spark.quality import is_blank, null_rates
from cdp_spark.schemas import (
    DQ_REPORT_SCHEMA,
    DQ_REPORT_TABLE,
    MANIFEST_TABLE,
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    STANDARDIZE_LOG_SCHEMA,
    STANDARDIZE_LOG_TABLE,
    bronze_schema,
    bronze_table,
    conform,
    derived_columns,
    parse_type,
    require_columns,
    silver_schema,
    silver_table,
)
from cdp_spark.storage import Lakehouse, Txn

# Consent: current state per (identifier, channel, purpose) plus the history of every record.
CONSENT_CURRENT = "silver.consent"
CONSENT_HISTORY = "silver.consent_history"
CONSENT_COLUMNS = frozenset({"identifier", "identifier_type", "channel", "purpose", "status"})
CONSENT_KEYS = ("identifier_type", "identifier_norm", "channel", "purpose")
# Numeric columns whose names say they cannot be negative (amounts, prices, quantities).
NON_NEGATIVE_HINTS = ("amount", "price", "total", "qty", "quantity", "revenue", "discount")
_RAW = "__raw__"
EPOCH_SENTINEL = r"^1970-01-01(?:[T ]00:00(?::00(?:\.0+)?)?)?(?:Z|[+-]00:?00)?$"


def _raw(name: str) -> str:
    return f"{_RAW}{name}"


# --- typing ----------------------------------------------------------------------------------


def typed_value(raw: Column, dtype: DataType, *, timezone: str) -> Column:
    """``raw`` (text, as bronze holds it) converted to ``dtype``; null where it does not parse.

    Dates and timestamps go through the normaliser (several formats, local time -> UTC; the
    Unix epoch itself, an empty time in disguise, does not parse),
    decimals and doubles through ``parse_amount`` (decimal commas, spaces), everything else
    through ``try_cast``; nested values are cast as a whole (a bad leaf becomes null).

    Example:
        >>> df.select(typed_value(F.col("ts"), TimestampType(), timezone="Europe/Moscow"))
        ...                                                               # doctest: +SKIP
    """
    text = F.trim(raw) if not isinstance(dtype, ArrayType | StructType) else raw
    if isinstance(dtype, StringType):
        return F.when(~is_blank(raw), text)
    if isinstance(dtype, TimestampType):
        # 1970-01-01T00:00:00 is what an empty time becomes in many exports, not an event.
        sentinel = text.rlike(EPOCH_SENTINEL)
        return F.when(~sentinel, N.parse_timestamp_utc(text, default_tz=timezone))
    if isinstance(dtype, DateType):
        return N.parse_date(text)
    if isinstance(dtype, DecimalType | DoubleType):
        return N.parse_amount(text).try_cast(dtype)
    if isinstance(dtype, BooleanType):
        low = F.lower(text)
        return (
            F.when(low.isin("true", "t", "yes", "y", "1"), F.lit(True))
            .when(low.isin("false", "f", "no", "n", "0"), F.lit(False))
            .otherwise(F.lit(None).cast("boolean"))
        )
    return text.try_cast(dtype)


def unparsed(raw: Column, typed: Column, dtype: DataType) -> Column:
    """True where a present raw value (or a leaf of a nested one) became null when typed.

    Example:
        >>> df.where(unparsed(F.col("raw_qty"), F.col("qty"), IntegerType()))  # doctest: +SKIP
    """
    if isinstance(dtype, StructType):
        checks = [unparsed(raw[f.name], typed[f.name], f.dataType) for f in dtype.fields]
        inner = F.lit(False)
        for check in checks:
            inner = inner | F.coalesce(check, F.lit(False))
        return F.when(raw.isNull(), F.lit(False)).otherwise(typed.isNull() | inner)
    if isinstance(dtype, ArrayType):
        element = dtype.elementType
        pairs = F.zip_with(raw, typed, lambda r, t: unparsed(r, t, element))
        return F.when(raw.isNull(), F.lit(False)).otherwise(
            typed.isNull() | F.coalesce(F.exists(pairs, lambda b: b), F.lit(False))
        )
    return ~is_blank(raw) & typed.isNull()


def non_negative_columns(source: SourceConfig) -> list[str]:
    """Numeric columns that must not be negative, recognised by name (amount, price, qty...).

    Example:
        >>> non_negative_columns(SourceConfig(path="p", format="csv",
        ...     columns=[SourceColumn(name="total_amount", type="double")]))
        ['total_amount']
    """
    numeric = (IntegerType, LongType, DoubleType, DecimalType)
    return [
        c.name
        for c in source.columns
        if isinstance(parse_type(c.type), numeric) and any(h in c.name for h in NON_NEGATIVE_HINTS)
    ]


def with_typed_columns(df: DataFrame, source: SourceConfig, *, timezone: str) -> DataFrame:
    """Replace the declared text columns by typed ones, keeping the text as ``__raw__<col>``.

    Example:
        >>> bronze.transform(with_typed_columns, src, timezone="UTC")   # doctest: +SKIP
    """
    # One select, not a withColumn per column: each withColumn re-analyses the whole plan,
    # which with the normaliser's large expressions costs a noticeable fraction of a second.
    declared = set(source.column_names())
    kept = [
        F.col(f"`{c}`").alias(_raw(c)) if c in declared else F.col(f"`{c}`") for c in df.columns
    ]
    typed = [
        typed_value(F.col(f"`{c.name}`"), parse_type(c.type), timezone=timezone).alias(c.name)
        for c in source.columns
    ]
    return df.select(*kept, *typed)


def with_derived_columns(df: DataFrame, source: SourceConfig, cfg: CdpConfig) -> DataFrame:
    """Add the normalised identifier, name and address columns (see ``derived_columns``).

    Junk values (``standardize.junk_emails`` / ``junk_phones``) are nulled in the normalised
    column and flagged in ``__junk__<col>`` for the DQ report.

    Example:
        >>> typed.transform(with_derived_columns, src, cfg).columns[-1]   # doctest: +SKIP
        'phone_e164'
    """
    std = cfg.standardize
    emails = N.DEFAULT_EMAIL_BLOCKLIST
    emails = replace(emails, addresses=(*emails.addresses, *std.junk_emails))
    phones = N.DEFAULT_PHONE_BLOCKLIST
    phones = replace(phones, numbers=(*phones.numbers, *std.junk_phones))
    derived = derived_columns(source)
    country = next((d for d in derived if d.kind == "country"), None)
    if country is not None:
        # Countries first, in their own select: the phone region and the postcode check
        # read them.
        df = df.select("*", N.normalize_country(F.col(country.inputs[0])).alias(country.name))
    # A national-format number (07700 900123) is only valid in its own country's plan.
    region: str | Column = (
        F.coalesce(F.col(country.name), F.lit(std.default_region))
        if country
        else std.default_region
    )
    values: list[Column] = []
    junk: dict[str, Column] = {}
    for d in derived:
        src_col = F.col(d.inputs[0])
        if d.kind == "country":
            continue
        if d.kind == "email":
            value = N.normalize_email(src_col)
            junk[d.name] = N.is_junk_email(F.col(d.name), emails)
        elif d.kind == "phone":
            value = N.normalize_phone(src_col, default_region=region)
            junk[d.name] = N.is_junk_phone(F.col(d.name), phones)
        elif d.kind == "typed_identifier":
            # The value's kind is in another column (consent: identifier_type email/phone/...).
            kind = F.lower(F.trim(F.col(d.inputs[1])))
            value = (
                F.when(kind == "email", N.normalize_email(src_col))
                # Only phones go to the (Python) phone normaliser; it runs on every row.
                .when(
                    kind == "phone",
                    N.normalize_phone(F.when(kind == "phone", src_col), default_region=region),
                )
                .otherwise(F.when(~is_blank(src_col), F.trim(src_col.cast("string"))))
            )
        elif d.kind == "id":
            value = F.when(~is_blank(src_col), F.trim(src_col.cast("string")))
        elif d.kind == "name":
            value = _name_key(F.concat_ws(" ", *[F.col(c) for c in d.inputs]))
        elif d.kind == "address":
            value = N.normalize_address(src_col)
        else:  # postcode
            value = N.normalize_postcode(src_col, F.col(country.name) if country else None)
        values.append(value.alias(d.name))
    df = df.select("*", *values)
    if not junk:
        return df
    # Junk is judged on the normalised value, in a second select so that a Python UDF (the
    # phone normaliser) is not called twice for the same value.
    flags = {name: F.coalesce(expr, F.lit(False)) for name, expr in junk.items()}
    out = [
        F.when(~flags[c], F.col(c)).alias(c) if c in flags else F.col(f"`{c}`") for c in df.columns
    ]
    return df.select(*out, *[flag.alias(f"__junk__{name}") for name, flag in flags.items()])


def _name_key(col: Column) -> Column:
    key_fn = getattr(N, "name_match_key", None)
    value = key_fn(col) if key_fn is not None else N.normalize_name(col)
    return F.when(F.trim(col) != "", value)


def with_silver_reason(
    df: DataFrame, source: SourceConfig, keys: Sequence[str] | None = None
) -> DataFrame:
    """Add ``_reason``: null for a good record, else why silver rejects it (first wins).

    Order: bad types (declared order; dates outside 1900-2100 count as unparsable), negative
    amounts, missing keys, invalid required identifiers.

    Example:
        >>> typed.transform(with_silver_reason, src).where("_reason IS NOT NULL")  # doctest: +SKIP
    """
    reason: Column = F.lit(None).cast("string")
    checks: list[tuple[Column, str]] = []
    for c in source.columns:
        dtype = parse_type(c.type)
        checks.append((unparsed(F.col(_raw(c.name)), F.col(c.name), dtype), f"bad_type:{c.name}"))
    for name in non_negative_columns(source):
        checks.append((F.col(name) < 0, f"negative:{name}"))
    derived = {d.name: d for d in derived_columns(source)}
    for key in dict.fromkeys(source.keys if keys is None else keys):
        # A key made by normalising (consent's identifier_norm) is null when the value is bad.
        label = f"invalid_identifier:{derived[key].inputs[0]}" if key in derived else None
        checks.append((F.col(key).isNull(), label or f"missing_key:{key}"))
    for c in source.columns:
        if c.required and c.identifier in ("email", "phone"):
            target = next(d.name for d in derived.values() if d.inputs == (c.name,))
            junk = F.coalesce(F.col(f"__junk__{target}"), F.lit(False))
            bad = ~is_blank(F.col(c.name)) & F.col(target).isNull() & ~junk
            checks.append((bad, f"invalid_{c.identifier}:{c.name}"))
    for condition, label in reversed(checks):
        reason = F.when(F.coalesce(condition, F.lit(False)), F.lit(label)).otherwise(reason)
    return df.withColumn("_reason", reason)


def suppression_columns(source: SourceConfig) -> list[str]:
    """The normalised identifier columns checked against the suppression list.

    Example:
        >>> suppression_columns(cfg.sources["crm_contacts"])             # doctest: +SKIP
        ['customer_id_norm', 'email_norm', 'phone_e164']
    """
    kinds = ("email", "phone", "id", "typed_identifier")
    return [d.name for d in derived_columns(source) if d.kind in kinds]


def with_row_hash(df: DataFrame, source: SourceConfig) -> DataFrame:
    """Add ``_row_hash``: SHA-256 of the typed declared values (equal records, equal hash).

    Example:
        >>> typed.transform(with_row_hash, src).select("_row_hash")   # doctest: +SKIP
    """
    payload = F.to_json(F.struct(*[F.col(c.name) for c in source.columns]))
    return df.withColumn("_row_hash", F.sha2(payload, 256))


@dataclass(frozen=True)
class SilverTarget:
    """A silver table a source feeds: upserted by ``keys`` (latest ``order_by`` wins), or,
    without keys, appended with exact duplicates (same ``_row_hash``) removed."""

    table: str
    keys: tuple[str, ...] = ()
    order_by: str | None = None


def is_consent_source(name: str, source: SourceConfig) -> bool:
    """True for the consent source: named ``consent*`` with identifier/channel/purpose/status.

    Example:
        >>> is_consent_source("consent_events", cfg.sources["consent_events"])  # doctest: +SKIP
        True
    """
    return name.startswith("consent") and set(source.column_names()) >= CONSENT_COLUMNS


def silver_targets(name: str, source: SourceConfig) -> list[SilverTarget]:
    """Where a source's standardised records go.

    Every source: ``silver.<source>``, MERGEd on ``keys`` or appended when it has none. The
    consent source instead feeds ``silver.consent_history`` (every distinct record) and
    ``silver.consent`` (current state per identifier type, normalised identifier, channel and
    purpose; the latest ``order_by``, e.g. ``recorded_at``, wins).

    Example:
        >>> [t.table for t in silver_targets("crm", cfg.sources["crm"])]   # doctest: +SKIP
        ['silver.crm']
    """
    if is_consent_source(name, source):
        order_by = source.order_by or source.event_time or "recorded_at"
        return [
            SilverTarget(CONSENT_HISTORY),
            SilverTarget(CONSENT_CURRENT, CONSENT_KEYS, order_by),
        ]
    return [SilverTarget(silver_table(name), tuple(source.keys), source.order_by)]


def latest_per_key(df: DataFrame, keys: Sequence[str], order_by: str | None) -> DataFrame:
    """One row per key or, without keys, per ``_row_hash`` (exact duplicates collapse).

    The latest by ``order_by`` wins; ties (and exact re-sends) go to the latest batch, file
    and line, so the choice is deterministic.

    Example:
        >>> good.transform(latest_per_key, ["contact_id"], "updated_at").count()  # doctest: +SKIP
    """
    partition = list(keys) or ["_row_hash"]
    order = []
    if keys and order_by:
        order.append(F.col(order_by).desc_nulls_last())
    order += [F.col("_batch_id").desc(), F.col("_source_file").desc(), F.col("_line").desc()]
    window = Window.partitionBy(*partition).orderBy(*order)
    return df.withColumn("__rank", F.row_number().over(window)).where("__rank = 1").drop("__rank")


def build_silver_rows(
    df: DataFrame, source: SourceConfig, *, standardized_at: datetime
) -> DataFrame:
    """The rows to write, in the silver schema.

    Example:
        >>> build_silver_rows(latest, src, standardized_at=now).columns[0]   # doctest: +SKIP
    """
    out = df.withColumn("_standardized_at", F.lit(standardized_at).cast("timestamp"))
    return conform(out, silver_schema(source), "silver")


def build_silver_quarantine(
    df: DataFrame, source_name: str, *, run_date: date, quarantined_at: datetime
) -> DataFrame:
    """Silver rejects in the quarantine schema (raw text from bronze's ``_raw``).

    Example:
        >>> build_silver_quarantine(rejects, "orders", run_date=d, quarantined_at=t)
        ...                                                               # doctest: +SKIP
    """
    out = df.select(
        F.lit(source_name).alias("source"),
        F.lit("silver").alias("layer"),
        F.col("_reason").alias("reason"),
        F.col("_batch_id").alias("batch_id"),
        F.col("_source_file").alias("source_file"),
        F.col("_line").alias("line"),
        # An erased person's record is counted, not kept: no raw text for `suppressed`.
        F.when(F.col("_reason") != SUPPRESSED_REASON, F.col("_raw")).alias("raw"),
        F.lit(None).cast("binary").alias("raw_bytes"),
        F.lit(run_date).alias("run_date"),
        F.lit(quarantined_at).cast("timestamp").alias("quarantined_at"),
    )
    return conform(out, QUARANTINE_SCHEMA, QUARANTINE_TABLE)


# --- bookkeeping -----------------------------------------------------------------------------


@dataclass
class Bookkeeping:
    """What the ops tables say, read once per run for every source (each read is a job).

    ``done``: the watermark per source (batches up to it are standardised). ``batches``:
    per source and ingested batch, (rows read, rows in bronze) from the ingest manifest; only
    batches in the manifest are complete, so a half-written ingest batch is never read.
    ``bronze_rejects``: per source and batch above the watermark, bronze quarantine counts
    by reason.
    """

    done: dict[str, int]
    batches: dict[str, dict[int, tuple[int, int]]]
    bronze_rejects: dict[str, dict[int, dict[str, int]]]

    def pending(self, source: str) -> tuple[int, int] | None:
        """``(first, last)`` batch to standardise for ``source``, or None."""
        done = self.done.get(source, 0)
        ready = [b for b in self.batches.get(source, {}) if b > done]
        return (done + 1, max(ready)) if ready else None

    def totals(self, source: str, lo: int, hi: int) -> tuple[int, int]:
        """Rows read and rows in bronze for batches ``lo..hi`` of ``source``."""
        picked = [v for b, v in self.batches.get(source, {}).items() if lo <= b <= hi]
        return sum(r for r, _ in picked), sum(b for _, b in picked)

    def rejects(self, source: str, lo: int, hi: int) -> dict[str, int]:
        """Bronze quarantine counts by reason for batches ``lo..hi`` of ``source``."""
        out: dict[str, int] = {}
        for batch, reasons in self.bronze_rejects.get(source, {}).items():
            if lo <= batch <= hi:
                for reason, n in reasons.items():
                    out[reason] = out.get(reason, 0) + n
        return out


def read_bookkeeping(lake: Lakehouse, sources: Sequence[str]) -> Bookkeeping:
    """Read the watermarks, the manifest and the bronze rejects above the watermarks.

    Example:
        >>> read_bookkeeping(lake, ["crm"]).pending("crm")   # doctest: +SKIP
        (4, 5)
    """
    done: dict[str, int] = {}
    if lake.exists(STANDARDIZE_LOG_TABLE):
        for r in (
            lake.read(STANDARDIZE_LOG_TABLE)
            .groupBy("source")
            .agg(F.max("last_batch_id").alias("done"))
            .collect()
        ):
            done[r["source"]] = int(r["done"])
    batches: dict[str, dict[int, tuple[int, int]]] = {}
    if lake.exists(MANIFEST_TABLE):
        for r in (
            lake.read(MANIFEST_TABLE)
            .groupBy("source", "batch_id")
            .agg(F.sum("rows_read").alias("read"), F.sum("rows_bronze").alias("bronze"))
            .collect()
        ):
            batches.setdefault(r["source"], {})[int(r["batch_id"])] = (
                int(r["read"]),
                int(r["bronze"]),
            )
    rejects: dict[str, dict[int, dict[str, int]]] = {}
    wanted = [s for s in sources if any(b > done.get(s, 0) for b in batches.get(s, {}))]
    if wanted and lake.exists(QUARANTINE_TABLE):
        above = F.lit(False)
        for s in wanted:
            above = above | ((F.col("source") == s) & (F.col("batch_id") > done.get(s, 0)))
        for r in (
            lake.read(QUARANTINE_TABLE)
            .where((F.col("layer") == "bronze") & above)
            .groupBy("source", "batch_id", "reason")
            .count()
            .collect()
        ):
            per_batch = rejects.setdefault(r["source"], {}).setdefault(int(r["batch_id"]), {})
            per_batch[r["reason"]] = int(r["count"])
    return Bookkeeping(done, batches, rejects)


@dataclass
class SourceResult:
    """What standardising one source did: one row of the stage report."""

    source: str
    first_batch_id: int
    last_batch_id: int
    rows_in: int = 0
    rows_out: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)  # bronze and silver rejects
    silver_rejects: dict[str, int] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "batches": f"{self.first_batch_id}-{self.last_batch_id}",
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "duplicates": self.rows_duplicate,
            "quarantined": self.rows_quarantined,
        }


# --- writes (module-level so tests can make one fail) ----------------------------------------


def write_silver(
    lake: Lakehouse, target: SilverTarget, rows: DataFrame, schema: StructType, txn: Txn
) -> None:
    """MERGE keyed rows on the target's keys, or append the keyless rows silver lacks.

    A keyed row older (by ``order_by``) than the row silver holds is not written, so a late
    file cannot roll a record back.

    Example:
        >>> write_silver(lake, SilverTarget("silver.crm", ("id",)), rows, schema,
        ...              Txn("standardize:crm", 4))                        # doctest: +SKIP
    """
    if target.keys:
        keys = list(target.keys)
        if target.order_by:
            existing = lake.read(target.table).select(
                *keys, F.col(target.order_by).alias("__existing_order")
            )
            rows = (
                rows.join(existing, keys, "left")
                .where(
                    F.col("__existing_order").isNull()
                    | F.col(target.order_by).isNull()
                    | (F.col(target.order_by) >= F.col("__existing_order"))
                )
                .select(*schema.fieldNames())
            )
        lake.merge(target.table, rows, keys=keys, txn=txn)
    else:
        known = lake.read(target.table).select("_row_hash")
        lake.append(target.table, rows.join(known, "_row_hash", "left_anti"), txn=txn)


def write_silver_quarantine(
    lake: Lakehouse, source_name: str, rejects: DataFrame, lo: int, hi: int, txn: Txn
) -> None:
    """Replace this source's silver rejects of batches ``lo..hi`` (idempotent on retry).

    Example:
        >>> write_silver_quarantine(lake, "crm", rejects, 3, 4,
        ...                         Txn("standardize:crm", 4))        # doctest: +SKIP
    """
    where = f"source = '{source_name}' AND layer = 'silver' AND batch_id BETWEEN {lo} AND {hi}"
    lake.overwrite(QUARANTINE_TABLE, rejects, where=where, txn=txn)


def write_dq_report(
    lake: Lakehouse, source_name: str, row: DataFrame, run_date: date, lo: int
) -> None:
    """Replace the DQ row of (run date, source, first batch): a retried run rewrites its row.

    Example:
        >>> write_dq_report(lake, "crm", dq_row, date(2026, 3, 1), lo=3)   # doctest: +SKIP
    """
    where = (
        f"run_date = DATE'{run_date.isoformat()}' AND source = '{source_name}' "
        f"AND first_batch_id = {lo}"
    )
    lake.overwrite(DQ_REPORT_TABLE, row, where=where)


def write_watermark(lake: Lakehouse, source_name: str, row: DataFrame, txn: Txn) -> None:
    """Record that batches up to ``last_batch_id`` are standardised: the last write.

    Example:
        >>> write_watermark(lake, "crm", log_row, Txn("standardize:crm", 4))   # doctest: +SKIP
    """
    lake.append(STANDARDIZE_LOG_TABLE, row, txn=txn)


# --- one source, the stage -------------------------------------------------------------------


def without_judged_text(judged: DataFrame) -> DataFrame:
    """``judged`` without the text it no longer needs once every row has its ``_reason``: the
    raw line of a row that goes to silver (quarantine keeps it for rejects) and the text copies
    of the typed columns (``__raw__<col>``, read by the type checks only).

    Most of a bronze row is its raw line (two thirds of a web event), so this is most of the
    cache's size: at 1M customers the web-events batch's cache took ~17 GB with it.

    Example:
        >>> judged.transform(without_judged_text).columns            # doctest: +SKIP
    """
    keep = [F.col(f"`{c}`") for c in judged.columns if not c.startswith(_RAW) and c != "_raw"]
    raw = F.when(F.col("_reason").isNotNull(), F.col("_raw")).alias("_raw")
    return judged.select(*keep, raw)


@contextmanager
def _no_whole_stage_codegen(spark: SparkSession) -> Iterator[None]:
    # A source with several timestamp columns makes one generated method larger than the
    # JVM's 64 KB limit; Spark then logs a compile error and falls back, after seconds of
    # wasted compiling on every run. The cached plan is built when persist() is called, so
    # switching whole-stage codegen off around it affects this plan only.
    key = "spark.sql.codegen.wholeStage"
    before = spark.conf.get(key, "true")
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        spark.conf.set(key, before or "true")


def standardize_source(
    ctx: RunContext, source_name: str, book: Bookkeeping | None = None
) -> SourceResult | None:
    """Standardise the pending bronze batches of one source; None when there are none.

    Example:
        >>> standardize_source(ctx, "crm").rows_out   # doctest: +SKIP
        1180
    """
    cfg, lake, spark = ctx.cfg, ctx.lake, ctx.spark
    source = cfg.sources[source_name]
    book = book or read_bookkeeping(lake, [source_name])
    pending = book.pending(source_name)
    if pending is None or not lake.exists(bronze_table(source_name)):
        ctx.progress(f"standardize {source_name}: nothing new")
        return None
    lo, hi = pending
    ctx.progress(f"standardize {source_name}: bronze batches {lo}..{hi}")
    now = datetime.now(tz=UTC).replace(microsecond=0)
    txn = Txn(f"standardize:{source_name}", hi)
    targets = silver_targets(source_name, source)
    for target in targets:
        ensure_table(lake, target.table, silver_schema(source))

    bronze = lake.read(bronze_table(source_name)).where(F.col("_batch_id").between(lo, hi))
    require_columns(bronze, bronze_schema(source).fieldNames(), bronze_table(source_name))
    timezone = source.timezone or cfg.standardize.default_timezone
    judged = (
        bronze.transform(with_typed_columns, source, timezone=timezone)
        .transform(with_derived_columns, source, cfg)
        .transform(with_silver_reason, source, [k for t in targets for k in t.keys])
        # Records of erased people (ops.suppression_list) get the reason `suppressed`.
        .transform(suppression_hook, suppression_columns(source), lake, cfg)
        .transform(with_row_hash, source)
        .transform(without_judged_text)
    )
    # Cached: the stats, the quarantine write and the silver write all read it, and it holds
    # the phone normaliser's Python UDF, which is worth running once.
    with _no_whole_stage_codegen(spark):
        judged = cache_records(judged)
    try:
        result = _standardize_judged(
            ctx, source_name, source, judged, (lo, hi), txn, now, targets, book
        )
        purge = None
        if result.silver_rejects.get(SUPPRESSED_REASON):
            purge = suppressed_bronze_predicate(judged.where(F.col("_reason") == SUPPRESSED_REASON))
    finally:
        judged.unpersist()
    watermark = spark.createDataFrame(
        [
            (
                source_name,
                lo,
                hi,
                result.rows_in,
                result.rows_out,
                result.rows_quarantined,
                result.rows_duplicate,
                ctx.run_date,
                now,
            )
        ],
        STANDARDIZE_LOG_SCHEMA,
    )
    write_watermark(lake, source_name, watermark, txn)
    if purge is not None:
        # After the watermark: a retry of these batches never sees fewer bronze rows. The
        # quarantine row (reason `suppressed`, no raw text) keeps the count.
        lake.delete(bronze_table(source_name), purge)
    return result


def _standardize_judged(
    ctx: RunContext,
    source_name: str,
    source: SourceConfig,
    judged: DataFrame,
    batches: tuple[int, int],
    txn: Txn,
    now: datetime,
    targets: Sequence[SilverTarget],
    book: Bookkeeping,
) -> SourceResult:
    lake, spark = ctx.lake, ctx.spark
    lo, hi = batches
    derived = derived_columns(source)
    junk_cols = [c for c in judged.columns if c.startswith("__junk__")]
    # Identifier problems that do not reject the record: counted for the DQ report.
    flag_exprs = [F.sum(F.col(c).cast("int")).alias(f"junk:{c[8:]}") for c in junk_cols]
    for d in derived:
        if d.kind in ("email", "phone"):
            invalid = ~is_blank(F.col(d.inputs[0])) & F.col(d.name).isNull()
            if f"__junk__{d.name}" in judged.columns:
                invalid = invalid & ~F.col(f"__junk__{d.name}")
            flag_exprs.append(F.sum(invalid.cast("int")).alias(f"invalid:{d.name}"))
    stats = judged.groupBy("_reason").agg(F.count(F.lit(1)).alias("n"), *flag_exprs).collect()
    rows_in = sum(int(r["n"]) for r in stats)
    silver_rejects = {r["_reason"]: int(r["n"]) for r in stats if r["_reason"] is not None}
    good_stats = [r for r in stats if r["_reason"] is None]
    invalid_ids: dict[str, int] = {}
    for r in good_stats:
        for key, value in r.asDict().items():
            if ":" in key and value:
                invalid_ids[key] = invalid_ids.get(key, 0) + int(value)

    rejects = judged.where(F.col("_reason").isNotNull()).transform(
        build_silver_quarantine, source_name, run_date=ctx.run_date, quarantined_at=now
    )
    if silver_rejects:
        # Bronze batches never change and typing is deterministic, so a batch range without
        # rejects now had none on an earlier, interrupted try: nothing to replace.
        write_silver_quarantine(lake, source_name, rejects, lo, hi, txn)

    good = judged.where(F.col("_reason").isNull())
    schema = silver_schema(source)
    key_fields = list(
        dict.fromkeys(
            [*source.keys, *(d.name for d in derived if d.kind in ("email", "phone", "id"))]
        )
    )
    if source.event_time:
        key_fields.append(source.event_time)
    rows_out, rates = 0, {}
    for i, target in enumerate(targets):
        latest = good.transform(latest_per_key, target.keys, target.order_by).transform(
            build_silver_rows, source, standardized_at=now
        )
        # Cached: counted here, then read more than once by MERGE.
        latest = cache_records(latest)
        try:
            if i == 0:  # the first target is the source's own table: the one the DQ row describes
                out = latest.agg(
                    F.count(F.lit(1)).alias("n"), null_rates(latest, key_fields).alias("rates")
                ).first()
                rows_out = int(out["n"]) if out else 0
                rates = dict(out["rates"]) if out else {}
            write_silver(lake, target, latest, schema, txn)
        finally:
            latest.unpersist()

    rows_good = rows_in - sum(silver_rejects.values())
    rows_read, rows_bronze = book.totals(source_name, lo, hi)
    bronze_rejects = book.rejects(source_name, lo, hi)
    by_reason = dict(sorted({**bronze_rejects, **silver_rejects}.items()))
    # Bronze and silver reasons never share a name, so the merged map loses nothing.
    dq = spark.createDataFrame(
        [
            (
                ctx.run_date,
                source_name,
                lo,
                hi,
                rows_read,
                rows_bronze,
                rows_in,
                rows_out,
                rows_good - rows_out,
                sum(by_reason.values()),
                rates,
                by_reason,
                dict(sorted(invalid_ids.items())),
                now,
            )
        ],
        DQ_REPORT_SCHEMA,
    )
    ensure_table(ctx.lake, DQ_REPORT_TABLE, DQ_REPORT_SCHEMA)
    write_dq_report(lake, source_name, dq, ctx.run_date, lo)
    return SourceResult(
        source=source_name,
        first_batch_id=lo,
        last_batch_id=hi,
        rows_in=rows_in,
        rows_out=rows_out,
        rows_duplicate=rows_good - rows_out,
        rows_quarantined=sum(silver_rejects.values()),
        by_reason=by_reason,
        silver_rejects=dict(sorted(silver_rejects.items())),
    )


def run_standardize(ctx: RunContext, sources: Iterable[str] | None = None) -> StageReport:
    """The ``standardize`` stage: pending bronze batches of every (or the given) source.

    Example:
        >>> run_standardize(ctx, sources=["crm"]).figures["rows_out"]   # doctest: +SKIP
        1180
    """
    names = selected_sources(ctx.cfg, sources)
    ensure_table(ctx.lake, QUARANTINE_TABLE, QUARANTINE_SCHEMA, partition_by=["source"])
    ensure_table(ctx.lake, STANDARDIZE_LOG_TABLE, STANDARDIZE_LOG_SCHEMA)
    ensure_table(ctx.lake, DQ_REPORT_TABLE, DQ_REPORT_SCHEMA)
    book = read_bookkeeping(ctx.lake, names)
    results: list[SourceResult] = []
    for name in names:
        result = standardize_source(ctx, name, book)
        if result is not None:
            results.append(result)
    by_reason: dict[str, int] = {}  # this stage's own rejects (ingest reports bronze's)
    for r in results:
        for reason, n in r.silver_rejects.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    figures = {
        "sources": len(names),
        "sources_with_new_batches": len(results),
        "rows_in": sum(r.rows_in for r in results),
        "rows_out": sum(r.rows_out for r in results),
        "duplicates": sum(r.rows_duplicate for r in results),
        "quarantined": sum(r.rows_quarantined for r in results),
        "quarantine_by_reason": dict(sorted(by_reason.items())),
    }
    return StageReport(stage="standardize", figures=figures, rows=[r.row() for r in results])
