"""The ``profiles`` stage: ``gold.customer_profiles`` and ``gold.kpis`` as of the run date.

Reads ``gold.identity_clusters``, ``gold.identity_identifiers``, the silver tables of the
roles in ``profiles.sources`` (plus any other source a survivorship group names),
``silver.consent_history`` and, when it exists, ``gold.scored_profiles``. Writes:

- ``gold.customer_profiles``: the whole table is overwritten by each run (one row per
  person, ``run_date`` says as of when), so a re-run never duplicates; rows are range-
  partitioned and sorted by ``person_id`` so that a look-up by id reads one small file;
- ``gold.kpis``: the rows of ``run_date`` are replaced (overwrite where run_date = ...).

Example:
    >>> report = run_profiles(RunContext.create(cfg, run_date=date(2026, 3, 1)))  # doctest: +SKIP
    >>> report.figures["persons"]
    2143
"""

from __future__ import annotations

import math
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_spark.errors import CdpError
from cdp_spark.ingest import ensure_table
from cdp_spark.pipeline import RunContext, StageReport
from cdp_spark.profiles.build import (
    ProfileInputs,
    build_customer_profiles,
    profile_schema,
    run_end,
)
from cdp_spark.profiles.kpis import KPI_SCHEMA, KPIS_TABLE, build_kpis, previous_lifecycle
from cdp_spark.profiles.profile_config import LIFECYCLE_STAGES
from cdp_spark.schemas import silver_table
from cdp_spark.storage import Lakehouse

PROFILES_TABLE = "gold.customer_profiles"
CLUSTERS_TABLE = "gold.identity_clusters"
IDENTIFIERS_TABLE = "gold.identity_identifiers"
SCORES_TABLE = "gold.scored_profiles"
CONSENT_TABLES = ("silver.consent_history", "silver.consent")
# Rows per output file of gold.customer_profiles: small files keep a look-up by id cheap.
ROWS_PER_FILE = 250_000


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
    files = max(1, math.ceil(rows / ROWS_PER_FILE))
    ordered = profiles.repartitionByRange(files, "person_id").sortWithinPartitions("person_id")
    return lake.overwrite(PROFILES_TABLE, ordered)


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
