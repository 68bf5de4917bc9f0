"""The ``profiles`` stage: ``gold.customer_profiles`` and ``gold.kpis`` as of the run date.

Reads ``gold.identity_clusters``, ``gold.identity_identifiers``, the silver tables of the
roles in ``profiles.sources`` (plus any other source a survivorship group names),
``silver.consent_history`` and, when it exists, ``gold.scored_profiles``. Writes:

- ``gold.customer_profiles``: the whole table is overwritten by each run (one row per
  person, ``run_date`` says as of when), so a re-run never duplicates; rows are range-
  partitioned and sorted by ``person_id`` so that a look-up by id reads one small file;
- ``gold.kpis``: the rows of ``run_date`` are replaced (overwrite where run_date = ...);
- ``gold.person_activity``: the latest ``profiles.activity_items`` records of each person per
  activity kind (orders, till receipts, web events, e-mail events, tickets), overwritten by
  each run and laid out by ``person_id`` (:mod:`cdp_spark.storage.layout`), so that the
  look-up reads one small file instead of scanning the silver tables.

Example:
    >>> report = run_profiles(RunContext.create(cfg, run_date=date(2026, 3, 1)))  # doctest: +SKIP
    >>> report.figures["persons"]
    2143
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.ingest import ensure_table
from cdp_spark.pipeline import RunContext, StageReport
from cdp_spark.profiles.build import (
    ProfileInputs,
    build_customer_profiles,
    profile_schema,
    run_end,
    with_person,
)
from cdp_spark.profiles.kpis import KPI_SCHEMA, KPIS_TABLE, build_kpis, previous_lifecycle
from cdp_spark.profiles.lookup import ACTIVITY, ACTIVITY_TABLE
from cdp_spark.profiles.profile_config import LIFECYCLE_STAGES
from cdp_spark.schemas import silver_table
from cdp_spark.storage import Lakehouse
from cdp_spark.storage.layout import serving_layout

PROFILES_TABLE = "gold.customer_profiles"
CLUSTERS_TABLE = "gold.identity_clusters"
IDENTIFIERS_TABLE = "gold.identity_identifiers"
SCORES_TABLE = "gold.scored_profiles"
CONSENT_TABLES = ("silver.consent_history", "silver.consent")


def _read_if_exists(lake: Lakehouse, table: str) -> DataFrame | None:
    return lake.read(table) if lake.exists(table) else None


def read_inputs(lake: Lakehouse, ctx: RunContext) -> ProfileInputs:
    """Every table the build reads; missing optional tables are ``None``.

    Raises:
        CdpError: when the identity tables do not exist yet.

    Example:
        >>> read_inputs(ctx.lake, ctx).silver.keys()                        # doctest: +SKIP
        dict_keys(['crm_contacts', 'orders', ...])
    """
    for table in (CLUSTERS_TABLE, IDENTIFIERS_TABLE):
        if not lake.exists(table):
            raise CdpError(
                f"{table} does not exist: profiles are built on resolved identities",
                hint="run `cdp run identity` first (after ingest and standardize)",
            )
    pc = ctx.cfg.profiles
    wanted = {s for s in pc.sources.model_dump().values() if s} | {
        s for g in pc.survivorship.values() for s in g.sources
    }
    wanted.discard(pc.sources.products or "")
    silver: dict[str, DataFrame] = {}
    for source in sorted(wanted):
        frame = _read_if_exists(lake, silver_table(source))
        if frame is not None:
            silver[source] = frame
    products = (
        _read_if_exists(lake, silver_table(pc.sources.products)) if pc.sources.products else None
    )
    consent = next(
        (lake.read(t) for t in CONSENT_TABLES if lake.exists(t)),
        None,
    )
    return ProfileInputs(
        clusters=lake.read(CLUSTERS_TABLE),
        identifiers=lake.read(IDENTIFIERS_TABLE),
        silver=silver,
        products=products,
        consent=consent,
        scores=_read_if_exists(lake, SCORES_TABLE),
    )


def write_profiles(lake: Lakehouse, profiles: DataFrame, *, rows: int) -> Any:
    """Overwrite ``gold.customer_profiles`` with ``profiles``, sorted by ``person_id``.

    Raises:
        CdpError: when the table exists with other columns (the configuration changed).

    Example:
        >>> write_profiles(lake, profiles, rows=2143).rows_written          # doctest: +SKIP
        2143
    """
    schema = profile_schema(profiles)
    if lake.exists(PROFILES_TABLE):
        present = lake.read(PROFILES_TABLE).schema
        before = [(f.name, f.dataType.simpleString()) for f in present.fields]
        now = [(f.name, f.dataType.simpleString()) for f in schema.fields]
        if before != now:
            changed = sorted(set(before) ^ set(now))
            raise CdpError(
                f"{PROFILES_TABLE} exists with other columns (changed: {changed[:6]})",
                hint="the survivorship fields or consent channels in conf/profiles.yaml changed; "
                f"remove the folder {lake.path(PROFILES_TABLE)} so the next run recreates it",
            )
    else:
        ensure_table(lake, PROFILES_TABLE, schema)
    return lake.overwrite(PROFILES_TABLE, serving_layout(profiles, PROFILES_TABLE, rows=rows))


def activity_schema(silver: Mapping[str, DataFrame], cfg: CdpConfig) -> T.StructType:
    """Columns of ``gold.person_activity``: the keys, then every column the look-up shows.

    A column shown for several kinds (``currency``, ``sku``, ``channel``) takes its type from
    the first source that has it (string when the sources disagree or none has it).

    Example:
        >>> activity_schema(inputs.silver, cfg).fieldNames()[:5]           # doctest: +SKIP
        ['person_id', 'activity', 'rank', 'occurred_at', 'record_id']
    """
    roles = cfg.profiles.sources.model_dump()
    types: dict[str, T.DataType | None] = {}
    for role, (_, columns) in ACTIVITY.items():
        frame = silver.get(roles.get(role) or "")
        present = {f.name: f.dataType for f in frame.schema.fields} if frame is not None else {}
        for c in columns:
            got, before = present.get(c), types.get(c)
            if before is None:
                types[c] = got
            elif got is not None and got != before:
                types[c] = T.StringType()
    return T.StructType(
        [
            T.StructField("person_id", T.StringType(), False),
            T.StructField("activity", T.StringType(), False),  # a key of lookup.ACTIVITY
            T.StructField("rank", T.IntegerType(), False),  # 1 = the newest
            T.StructField("occurred_at", T.TimestampType(), True),
            T.StructField("record_id", T.StringType(), False),
            *[T.StructField(c, t or T.StringType(), True) for c, t in types.items()],
        ]
    )


def build_person_activity(inputs: ProfileInputs, cfg: CdpConfig, *, limit: int) -> DataFrame:
    """The ``limit`` latest records per person and activity kind, newest first (``rank`` 1).

    Records are the silver rows of each role's source joined to their person through
    ``gold.identity_clusters``, as the look-up used to read them; records without a time come
    last, ties are broken by ``record_id``.

    Example:
        >>> build_person_activity(inputs, cfg, limit=10).where("rank = 1").count()
        ...                                                                 # doctest: +SKIP
        2143
    """
    schema = activity_schema(inputs.silver, cfg)
    roles = cfg.profiles.sources.model_dump()
    parts: list[DataFrame] = []
    for role, (time_col, _) in ACTIVITY.items():
        source = roles.get(role) or ""
        frame = inputs.silver.get(source)
        declared = cfg.sources.get(source)
        if frame is None or declared is None or not declared.keys:
            continue
        rows = with_person(frame, inputs.clusters, source, declared.keys)
        newest = Window.partitionBy("person_id").orderBy(
            F.col(time_col).desc_nulls_last(), F.col("record_id")
        )
        rows = (
            rows.withColumn("activity", F.lit(role))
            .withColumn("occurred_at", F.col(time_col).cast("timestamp"))
            .withColumn("rank", F.row_number().over(newest))
            .where(F.col("rank") <= limit)
        )
        parts.append(
            rows.select(
                *[
                    (F.col(f.name) if f.name in rows.columns else F.lit(None))
                    .cast(f.dataType)
                    .alias(f.name)
                    for f in schema.fields
                ]
            )
        )
    if not parts:
        spark = inputs.clusters.sparkSession
        return spark.createDataFrame([], schema)
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def write_person_activity(lake: Lakehouse, activity: DataFrame, *, rows: int) -> Any:
    """Overwrite ``gold.person_activity``, laid out by ``person_id`` for the look-up.

    A table written with other columns (the sources or the look-up's columns changed) is
    an error with the folder to remove, as for the profiles.

    Example:
        >>> write_person_activity(lake, activity, rows=9120).rows_written    # doctest: +SKIP
        9120
    """
    if lake.exists(ACTIVITY_TABLE):
        present = lake.read(ACTIVITY_TABLE).schema
        before = [(f.name, f.dataType.simpleString()) for f in present.fields]
        now = [(f.name, f.dataType.simpleString()) for f in activity.schema.fields]
        if before != now:
            raise CdpError(
                f"{ACTIVITY_TABLE} exists with other columns "
                f"(changed: {sorted(set(before) ^ set(now))[:6]})",
                hint=f"remove the folder {lake.path(ACTIVITY_TABLE)} so the next run recreates it",
            )
    else:
        ensure_table(lake, ACTIVITY_TABLE, activity.schema)
    return lake.overwrite(ACTIVITY_TABLE, serving_layout(activity, ACTIVITY_TABLE, rows=rows))


def run_profiles(ctx: RunContext, **options: Any) -> StageReport:
    """Build and write the profiles and KPIs as of ``ctx.run_date`` (idempotent per run date).

    Example:
        >>> run_profiles(ctx).rows[0]                                          # doctest: +SKIP
        {'lifecycle_stage': 'prospect', 'persons': 1204, 'share': 0.56}
    """
    if options:
        raise CdpError(f"profiles: unknown option(s) {sorted(options)}")
    lake, cfg, day = ctx.lake, ctx.cfg, ctx.run_date
    ctx.progress("profiles: reading identity and silver tables")
    inputs = read_inputs(lake, ctx)
    profiles = build_customer_profiles(inputs, cfg, day).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        persons = profiles.count()
        ctx.progress(f"profiles: writing {persons:,} profiles to {PROFILES_TABLE}")
        written = write_profiles(lake, profiles, rows=persons)

        ctx.progress(f"profiles: computing KPIs into {KPIS_TABLE}")
        ensure_table(lake, KPIS_TABLE, KPI_SCHEMA, partition_by=["run_date"])
        prev = previous_lifecycle(lake.read(KPIS_TABLE), day)
        kpis = build_kpis(
            profiles,
            cfg.profiles,
            run_date=day,
            previous=prev[0] if prev else None,
            previous_date=prev[1] if prev else None,
        )
        lake.overwrite(KPIS_TABLE, kpis, where=f"run_date = DATE'{day.isoformat()}'")
        figures = {r["kpi"]: r["value"] for r in kpis.collect()}
        unconverted = _unconverted_amounts(inputs, ctx)
    finally:
        profiles.unpersist()

    ctx.progress(f"profiles: latest activity per person into {ACTIVITY_TABLE}")
    # On local disk, not the heap: at 100k customers this is millions of rows, and the range
    # layout reads its input twice (a sample for the bounds, then the write).
    activity = build_person_activity(inputs, cfg, limit=cfg.profiles.activity_items).persist(
        StorageLevel.DISK_ONLY
    )
    try:
        activity_rows = activity.count()
        write_person_activity(lake, activity, rows=activity_rows)
    finally:
        activity.unpersist()

    rows = [
        {
            "lifecycle_stage": stage,
            "persons": int(figures.get(f"lifecycle_count:{stage}") or 0),
            "change": figures.get(f"lifecycle_change:{stage}"),
        }
        for stage in LIFECYCLE_STAGES
    ]
    return StageReport(
        stage="profiles",
        figures={
            "persons": persons,
            "customers": int(figures.get("customers") or 0),
            "unification_rate": figures.get("unification_rate"),
            "repeat_purchase_rate": figures.get("repeat_purchase_rate"),
            "clv_avg": figures.get("clv_avg"),
            "customer_equity": figures.get("customer_equity"),
            "unconverted_amounts": unconverted,
            "profiles_version": written.version,
            "activity_rows": activity_rows,
        },
        rows=rows,
    )


def _unconverted_amounts(inputs: ProfileInputs, ctx: RunContext) -> int:
    """Order and till rows up to the run date whose currency has no rate (left out of revenue)."""
    pc = ctx.cfg.profiles
    rates = [c.upper() for c in pc.fx_rates]
    end = run_end(ctx.run_date)
    total = 0
    for source, time_col in ((pc.sources.orders, "ordered_at"), (pc.sources.pos, "purchased_at")):
        frame = inputs.silver.get(source or "")
        if frame is None or "currency" not in frame.columns:
            continue
        total += frame.where(
            (F.col(time_col) < end)
            & (F.col("currency").isNull() | ~F.upper(F.trim("currency")).isin(rates))
        ).count()
    if total:
        ctx.progress(f"profiles: {total} order/till rows in a currency without an fx rate")
    return total
