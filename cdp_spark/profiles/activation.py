"""Activation: publish each segment's members to the destinations declared in conf, with consent.

The stage ``publish`` (:func:`run_publish`, CLI ``cdp publish``) takes the run date's rows of
``gold.segment_membership`` and, for every segment and each of its ``destinations``:

* **consent first** (:func:`consenting_people`): the members are kept only if, *now*, the
  current consent in ``silver.consent`` for the destination's channel and purpose says
  ``granted`` for them. A person's consent is the latest record (``recorded_at``) over all their
  identifiers (the profile's ``emails`` and ``phones``); a revocation wins a tie; no record, an
  unknown status or a null date counts as no consent. The profile's own ``consent_*`` flags
  are not trusted here: they are as old as the profile build, and a revocation since must win;
* **files** (``csv`` / ``parquet``) for an ESP: the chosen profile columns plus ``person_id``
  (the erasure job finds a person's rows through it); CSV cells that a spreadsheet would run as
  a formula are neutralised (:func:`neutralize_csv_formula`);
* **hashed** files for ad platforms: ``email_sha256`` and ``phone_sha256``, the SHA-256 hex of
  each normalised e-mail and E.164 phone, one identifier per row; no raw PII, no person_id;
* **delta**: a change feed table (``gold.<table>``) of ``entered`` / ``left`` rows per run date
  against what that destination last received; a person who revokes consent *leaves* it.

Files go to ``<paths.exports>/<destination>/<segment>/run_date=YYYY-MM-DD/`` and replace that
folder; the Delta feed and ``ops.publish_log`` replace exactly the run date's rows of the
segment, so re-publishing a day never duplicates anything.

Example:
    >>> run_publish(ctx, segments=["at_risk_high_value"]).rows[0]     # doctest: +SKIP
    {'segment': 'at_risk_high_value', 'destination': 'esp_csv', 'status': 'ok', 'rows': 380, ...}
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DateType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.ingest import ensure_table
from cdp_spark.pipeline import RunContext, StageReport
from cdp_spark.privacy.pii import exportable_columns
from cdp_spark.profiles.config import (
    ConsentRule,
    DeltaDestination,
    FileDestination,
    HashedDestination,
)
from cdp_spark.profiles.segments import (
    MEMBERSHIP_TABLE,
    PROFILES_TABLE,
    RUNS_TABLE,
    SEGMENT_NAME,
    SegmentConfigError,
)
from cdp_spark.schemas import silver_table
from cdp_spark.standardize import CONSENT_CURRENT
from cdp_spark.storage import Lakehouse

PUBLISH_LOG_TABLE = "ops.publish_log"
PUBLISH_LOG_SCHEMA = StructType(
    [
        StructField("run_date", DateType(), False),
        StructField("segment", StringType(), False),
        StructField("destination", StringType(), False),
        StructField("rows", LongType(), False),
        StructField("path", StringType(), False),
        StructField("published_at", TimestampType(), False),
    ]
)
# Characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_START = r"^[=+\-@\t\r]"
# ...except a plain number or an E.164 phone (+79161234567), which cannot call anything: an
# SMS gateway must get the phone as it is.
PLAIN_NUMBER = r"^[+-]?[0-9]+(\.[0-9]+)?$"
# The delta feed's own columns, before the exported profile columns.
FEED_FIELDS: tuple[StructField, ...] = (
    StructField("run_date", DateType(), False),
    StructField("segment", StringType(), False),
    StructField("person_id", StringType(), False),
    StructField("_change_type", StringType(), False),  # entered | left
)


class ActivationError(CdpError):
    """A publish cannot be done as asked (unknown segment or destination, missing table)."""


# --- pure transformations --------------------------------------------------------------------


def neutralize_csv_formula(col: Column) -> Column:
    """``col`` with a single quote put before values starting with = + - @ tab or CR.

    Spreadsheets run such cells as formulas (``=HYPERLINK(...)``); the quote makes them text.
    Plain numbers and E.164 phones (``-2``, ``+79161234567``) are left alone: they cannot call
    anything, and a phone with a quote in front is no longer a phone. Nulls stay null.

    Example:
        >>> df.select(neutralize_csv_formula(F.col("first_name")))   # doctest: +SKIP
        "=1+1" -> "'=1+1", "Anna" -> "Anna"
    """
    risky = col.rlike(FORMULA_START) & ~col.rlike(PLAIN_NUMBER)
    return F.when(risky, F.concat(F.lit("'"), col)).otherwise(col)


def person_identifiers(profiles: DataFrame) -> DataFrame:
    """``(person_id, identifier_type, identifier_norm)`` from the profile's ``emails`` and
    ``phones`` arrays (already normalised: ``email_norm`` / ``phone_e164`` values).

    Example:
        >>> person_identifiers(profiles).columns                       # doctest: +SKIP
        ['person_id', 'identifier_type', 'identifier_norm']
    """
    emails = profiles.select(
        "person_id",
        F.lit("email").alias("identifier_type"),
        F.explode_outer("emails").alias("identifier_norm"),
    )
    phones = profiles.select(
        "person_id",
        F.lit("phone").alias("identifier_type"),
        F.explode_outer("phones").alias("identifier_norm"),
    )
    return emails.unionByName(phones).where(F.col("identifier_norm").isNotNull())


def consent_records(
    consent: DataFrame, unsubscribes: DataFrame | None = None, *, email_purposes: Sequence[str] = ()
) -> DataFrame:
    """Consent records as ``identifier_type, identifier_norm, channel, purpose, status,
    recorded_at`` (lower-cased), plus e-mail unsubscribes as revocations of ``email_purposes``.

    ``consent`` is ``silver.consent`` (or its history); ``unsubscribes`` the e-mail events
    (``event``, ``email_norm``, ``event_at``), whose ``unsubscribe`` rows count as ``revoked``
    for the e-mail channel, as the profile build counts them.

    Example:
        >>> consent_records(lake.read("silver.consent")).columns          # doctest: +SKIP
        ['identifier_type', 'identifier_norm', 'channel', 'purpose', 'status', 'recorded_at']
    """
    records = consent.select(
        F.lower(F.trim("identifier_type")).alias("identifier_type"),
        F.col("identifier_norm"),
        F.lower(F.trim("channel")).alias("channel"),
        F.lower(F.trim("purpose")).alias("purpose"),
        F.lower(F.trim("status")).alias("status"),
        F.col("recorded_at"),
    ).where(F.col("identifier_norm").isNotNull())
    if unsubscribes is None or not email_purposes:
        return records
    revoked = unsubscribes.where(
        (F.lower(F.trim("event")) == "unsubscribe") & F.col("email_norm").isNotNull()
    ).select(
        F.lit("email").alias("identifier_type"),
        F.col("email_norm").alias("identifier_norm"),
        F.lit("email").alias("channel"),
        F.explode(F.array(*[F.lit(p) for p in email_purposes])).alias("purpose"),
        F.lit("revoked").alias("status"),
        F.col("event_at").cast("timestamp").alias("recorded_at"),
    )
    return records.unionByName(revoked)


def consenting_people(
    identifiers: DataFrame, records: DataFrame, *, rule: ConsentRule
) -> DataFrame:
    """The ``person_id`` of people who consent, now, to ``rule``'s channel and purpose.

    The latest record (``recorded_at``; a revocation wins a tie; a null date is the oldest)
    per identifier is that identifier's current state. A person consents when at least one of
    their identifiers is ``granted`` and none is ``revoked``: a revocation on any identifier
    wins, and no record means no consent. The same rule as the profile's ``consent_<channel>``
    (docs/profiles.md), applied to the consent of export time.

    Example:
        >>> consenting_people(person_identifiers(profiles), consent_records(consent),
        ...                   rule=ConsentRule(channel="email", purpose="marketing"))
        ...                                                               # doctest: +SKIP
    """
    wanted = records.where((F.col("channel") == rule.channel) & (F.col("purpose") == rule.purpose))
    latest = Window.partitionBy("identifier_type", "identifier_norm").orderBy(
        F.col("recorded_at").desc_nulls_last(), (F.col("status") == "revoked").desc()
    )
    current = wanted.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1")
    return (
        identifiers.join(current, ["identifier_type", "identifier_norm"])
        .groupBy("person_id")
        .agg(
            F.max(F.col("status") == "granted").alias("_granted"),
            F.max(F.col("status") == "revoked").alias("_revoked"),
        )
        .where(F.col("_granted") & ~F.col("_revoked"))
        .select("person_id")
    )


def build_file_export(audience: DataFrame, columns: Sequence[str], *, csv: bool) -> DataFrame:
    """``person_id`` and ``columns`` of the audience; for CSV, nested values flattened to text
    and every text cell neutralised against formulas.

    Example:
        >>> build_file_export(aud, ["email", "clv"], csv=True).columns   # doctest: +SKIP
        ['person_id', 'email', 'clv']
    """
    names = ["person_id", *[c for c in columns if c != "person_id"]]
    out = audience.select(*names)
    if not csv:
        return out
    cells = []
    for field in out.schema.fields:
        col = F.col(f"`{field.name}`")
        if isinstance(field.dataType, ArrayType):
            col = F.concat_ws(";", col.cast("array<string>"))
        elif isinstance(field.dataType, StructType | MapType):
            col = F.to_json(col)
        if isinstance(field.dataType, StringType | ArrayType | StructType | MapType):
            col = neutralize_csv_formula(col)
        cells.append(col.alias(field.name))
    return out.select(*cells)


def build_hashed_export(audience: DataFrame) -> DataFrame:
    """``email_sha256``, ``phone_sha256``: SHA-256 hex of each normalised e-mail (trimmed,
    lower case) and E.164 phone (``+7...``), one identifier per row, the other column null.

    Example:
        >>> build_hashed_export(aud).columns                            # doctest: +SKIP
        ['email_sha256', 'phone_sha256']
    """
    null = F.lit(None).cast("string")
    emails = audience.select(F.explode("emails").alias("v")).select(
        F.sha2(F.lower(F.trim("v")), 256).alias("email_sha256"), null.alias("phone_sha256")
    )
    phones = audience.select(F.explode("phones").alias("v")).select(
        null.alias("email_sha256"),
        F.sha2(F.regexp_replace(F.trim("v"), r"[^+0-9]", ""), 256).alias("phone_sha256"),
    )
    both = emails.unionByName(phones)
    return both.where(F.coalesce("email_sha256", "phone_sha256").isNotNull()).distinct()


def build_feed_changes(
    current: DataFrame,
    previous_feed: DataFrame,
    *,
    segment: str,
    run_date: date,
) -> DataFrame:
    """The change rows of a Delta feed: ``entered`` for people in ``current`` the feed does not
    hold as members, ``left`` for members no longer in ``current``.

    ``previous_feed`` is the feed table; its members for ``segment`` are the people whose
    latest row before ``run_date`` is ``entered``. ``current`` holds ``person_id`` and the
    exported columns; ``left`` rows carry nulls in those columns.

    Example:
        >>> build_feed_changes(aud, lake.read("gold.audience_feed"), segment="vip",
        ...                    run_date=date(2026, 3, 2))                # doctest: +SKIP
    """
    latest = Window.partitionBy("person_id").orderBy(F.col("run_date").desc())
    members = (
        previous_feed.where((F.col("segment") == segment) & (F.col("run_date") < F.lit(run_date)))
        .withColumn("_rank", F.row_number().over(latest))
        .where((F.col("_rank") == 1) & (F.col("_change_type") == "entered"))
        .select("person_id", F.lit(True).alias("_was"))
    )
    extra = [c for c in current.columns if c != "person_id"]
    now = current.select("person_id", *extra, F.lit(True).alias("_is"))
    both = now.join(members, "person_id", "full_outer")
    change = F.when(F.col("_was").isNull(), "entered").when(F.col("_is").isNull(), "left")
    return both.select(
        F.lit(run_date).cast("date").alias("run_date"),
        F.lit(segment).alias("segment"),
        "person_id",
        change.alias("_change_type"),
        *[F.when(F.col("_is").isNotNull(), F.col(f"`{c}`")).alias(c) for c in extra],
    ).where(F.col("_change_type").isNotNull())


# --- paths, plans ----------------------------------------------------------------------------


def export_path(cfg: CdpConfig, destination: str, segment: str, run_date: date) -> str:
    """``<paths.exports>/<destination>/<segment>/run_date=YYYY-MM-DD``.

    Example:
        >>> export_path(cfg, "esp_csv", "vip", date(2026, 3, 1))          # doctest: +SKIP
        '/abs/data/exports/esp_csv/vip/run_date=2026-03-01'
    """
    root = cfg.resolve(cfg.paths.exports).rstrip("/")
    return f"{root}/{destination}/{segment}/run_date={run_date.isoformat()}"


def publish_pairs(
    cfg: CdpConfig,
    *,
    segments: Sequence[str] | None = None,
    destinations: Sequence[str] | None = None,
) -> list[tuple[str, str]]:
    """The ``(segment, destination)`` pairs to publish: each segment's declared destinations,
    narrowed to ``segments`` and ``destinations`` when given.

    Raises:
        ActivationError: an unknown name, a pair the configuration does not declare, or a
            destination exporting raw PII columns without being listed in
            ``privacy.raw_pii_destinations``.

    Example:
        >>> publish_pairs(cfg, segments=["at_risk_high_value"])          # doctest: +SKIP
        [('at_risk_high_value', 'esp_csv'), ('at_risk_high_value', 'ads_hashed')]
    """
    declared = cfg.activation.destinations
    for name in destinations or ():
        if name not in declared:
            raise ActivationError(
                f"unknown destination {name!r}",
                hint="destinations in activation.destinations: " + (", ".join(declared) or "none"),
            )
    for name in segments or ():
        if name not in cfg.segments:
            raise ActivationError(
                f"unknown segment {name!r}",
                hint="segments in conf/segments.yaml: " + (", ".join(cfg.segments) or "none"),
            )
    for name in declared:
        if not SEGMENT_NAME.match(name):
            raise ActivationError(
                f"destination name {name!r}: lower case letters, digits and _ only "
                "(it becomes a folder name)"
            )
    chosen = list(segments) if segments else [n for n, s in cfg.segments.items() if s.enabled]
    pairs = []
    for seg in chosen:
        for dest in cfg.segments[seg].destinations:
            if dest not in declared:
                raise SegmentConfigError(
                    f"segment {seg!r}: unknown destination {dest!r}",
                    hint="destinations in activation.destinations: "
                    + (", ".join(declared) or "none"),
                )
            if destinations is None or dest in destinations:
                pairs.append((seg, dest))
    for dest in dict.fromkeys(d for _, d in pairs):
        _check_raw_pii(cfg, dest)
    if segments and destinations:
        missing = [(s, d) for s in segments for d in destinations if (s, d) not in pairs]
        if missing:
            listed = ", ".join(f"{s} -> {d}" for s, d in missing)
            raise ActivationError(
                f"not declared in conf: {listed}",
                hint="add the destination to the segment's `destinations` in conf/segments.yaml",
            )
    return pairs


# --- stage -----------------------------------------------------------------------------------


def run_publish(
    ctx: RunContext,
    *,
    segments: Sequence[str] | None = None,
    destinations: Sequence[str] | None = None,
) -> StageReport:
    """Stage ``publish``: export the run date's segment members to their destinations.

    Example:
        >>> run_publish(ctx, destinations=["ads_hashed"]).figures        # doctest: +SKIP
        {'exports': 2, 'skipped': 0, 'rows': 913}
    """
    cfg, lake, day = ctx.cfg, ctx.lake, ctx.run_date
    report = StageReport("publish")
    pairs = publish_pairs(cfg, segments=segments, destinations=destinations)
    report.figures.update({"exports": 0, "skipped": 0, "rows": 0})
    if not pairs:
        report.status = "skipped"
        return report
    for table, hint in (
        (MEMBERSHIP_TABLE, "run `cdp run segments` first"),
        (PROFILES_TABLE, "run `cdp run profiles` first"),
        (CONSENT_CURRENT, "consent comes from a consent source: `cdp run ingest standardize`"),
    ):
        if not lake.exists(table):
            raise ActivationError(f"{table} does not exist, so nothing can be published", hint=hint)

    membership = lake.read(MEMBERSHIP_TABLE).where(F.col("run_date") == F.lit(day))
    present = {r["segment"] for r in membership.select("segment").distinct().collect()}
    if lake.exists(RUNS_TABLE):
        # A segment that ran and matched nobody has no membership rows but is still published:
        # an empty file, and `left` rows in a feed.
        runs = lake.read(RUNS_TABLE).where(F.col("run_date") == F.lit(day))
        present |= {r["segment"] for r in runs.select("segment").distinct().collect()}
    profiles = lake.read(PROFILES_TABLE)
    identifiers = person_identifiers(profiles)
    records = consent_records(
        lake.read(CONSENT_CURRENT),
        _email_events(cfg, lake),
        email_purposes=cfg.profiles.consent.channels.get("email", []),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    ensure_table(lake, PUBLISH_LOG_TABLE, PUBLISH_LOG_SCHEMA, partition_by=["run_date"])

    try:
        for segment, dest_name in pairs:
            if segment not in present:
                report.figures["skipped"] += 1
                report.rows.append(_row(segment, dest_name, f"skipped: segment not run on {day}"))
                continue
            ctx.progress(f"publish: {segment} -> {dest_name}")
            dest = cfg.activation.destinations[dest_name]
            members = membership.where(F.col("segment") == segment).select("person_id")
            allowed = consenting_people(identifiers, records, rule=dest.consent)
            audience = profiles.join(members, "person_id", "left_semi").join(
                allowed, "person_id", "left_semi"
            )
            rows, path = _publish_one(ctx, audience, segment, dest_name, dest)
            _log_publish(ctx, segment, dest_name, rows, path)
            report.figures["exports"] += 1
            report.figures["rows"] += rows
            report.rows.append(_row(segment, dest_name, "ok", rows=rows, path=path))
    finally:
        records.unpersist()
    return report


def _log_publish(ctx: RunContext, segment: str, destination: str, rows: int, path: str) -> None:
    """One ``ops.publish_log`` row per run date, segment and destination (replaced on re-run)."""
    day = ctx.run_date
    row = [(day, segment, destination, rows, path, datetime.now(tz=UTC))]
    ctx.lake.overwrite(
        PUBLISH_LOG_TABLE,
        ctx.spark.createDataFrame(row, PUBLISH_LOG_SCHEMA),
        where=(
            f"run_date = DATE'{day.isoformat()}' AND segment = '{segment}' "
            f"AND destination = '{destination}'"
        ),
    )


def _email_events(cfg: CdpConfig, lake: Lakehouse) -> DataFrame | None:
    """``silver.<email source>`` when unsubscribes count as revocations and it exists."""
    source = cfg.profiles.sources.email
    if not (cfg.profiles.consent.unsubscribe_revokes_email and source):
        return None
    table = silver_table(source)
    return lake.read(table) if lake.exists(table) else None


def _publish_one(
    ctx: RunContext,
    audience: DataFrame,
    segment: str,
    dest_name: str,
    dest: FileDestination | HashedDestination | DeltaDestination,
) -> tuple[int, str]:
    """Write one export; returns (rows, where it went)."""
    _check_columns(audience, getattr(dest, "columns", []), segment, dest_name)
    if isinstance(dest, DeltaDestination):
        return _publish_feed(ctx.lake, audience, segment, dest, ctx.run_date)
    if isinstance(dest, HashedDestination):
        out = build_hashed_export(audience)
        fmt = dest.format
    else:
        out = build_file_export(audience, dest.columns, csv=dest.type == "csv")
        fmt = dest.type
    path = export_path(ctx.cfg, dest_name, segment, ctx.run_date)
    out = out.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        rows = out.count()
        # One file per export, sorted: an ESP imports one file, and a re-publish of the same
        # audience gives the same bytes.
        writer = out.coalesce(1).sortWithinPartitions(*out.columns).write.mode("overwrite")
        if fmt == "csv":
            writer.option("header", True).option("escape", '"').csv(path)
        else:
            writer.parquet(path)
    finally:
        out.unpersist()
    return rows, path


def _publish_feed(
    lake: Lakehouse, audience: DataFrame, segment: str, dest: DeltaDestination, day: date
) -> tuple[int, str]:
    current = audience.select("person_id", *[c for c in dest.columns if c != "person_id"])
    schema = StructType(
        list(FEED_FIELDS) + [f for f in current.schema.fields if f.name != "person_id"]
    )
    ensure_table(lake, dest.table, schema, partition_by=["run_date"])
    changes = build_feed_changes(current, lake.read(dest.table), segment=segment, run_date=day)
    changes = changes.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        lake.overwrite(
            dest.table,
            changes,
            where=f"run_date = DATE'{day.isoformat()}' AND segment = '{segment}'",
        )
        rows = changes.count()
    finally:
        changes.unpersist()
    return rows, dest.table


def _check_raw_pii(cfg: CdpConfig, dest: str) -> None:
    """Refuse a destination whose columns hold raw PII it is not declared to receive."""
    columns = list(getattr(cfg.activation.destinations[dest], "columns", []))
    allowed = set(exportable_columns(cfg, dest, columns))
    raw = [c for c in columns if c not in allowed]
    if raw:
        raise ActivationError(
            f"destination {dest!r} exports raw personal data ({', '.join(raw)}) but is not "
            "listed in privacy.raw_pii_destinations",
            hint="list it there (conf/privacy.yaml) if it may receive them, or drop the columns",
        )


def _check_columns(audience: DataFrame, columns: Sequence[str], segment: str, dest: str) -> None:
    missing = [c for c in columns if c not in audience.columns]
    if missing:
        raise ActivationError(
            f"destination {dest!r} (segment {segment!r}) exports unknown profile column(s) "
            + ", ".join(missing),
            hint="profile columns: " + ", ".join(audience.columns),
        )


def _row(segment: str, destination: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "segment": segment,
        "destination": destination,
        "status": status,
        "rows": extra.get("rows", ""),
        "path": extra.get("path", ""),
    }
