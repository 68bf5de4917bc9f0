"""The ``identity`` stage: silver records -> identity graph -> clusters -> persistent person ids.

Steps (docs/identity.md tells the why):

1. **Records and links**: every person-bearing silver record (``identity.sources``) with its
   ``record_id``; the match rules (``identity.rules``) link it to the identifiers it holds;
   junk values are dropped (:func:`~cdp_spark.identity.guards.drop_junk`). Fuzzy pairs of CRM
   contacts come from :mod:`cdp_spark.identity.fuzzy` when ``identity.fuzzy.enabled``.
2. **Guards**: shared identifiers (more anchors than ``max_links``) lose their links; with
   ``identity.corroborate_shared``, anchor groups that are one person by name and birth date
   (``silver.crm_contacts``) count once, and the kept links' rule ends in ``+corroborated``.
3. **Clusters**: connected components (engine ``engines.connected_components``); oversized
   clusters are split along their weakest links and reported.
4. **Persistent ids** (:mod:`cdp_spark.identity.persist`) and the writes:
   ``silver.identity_edges``, ``gold.identity_clusters``, ``gold.identity_identifiers``,
   ``gold.person_id_history``, ``gold.identity_review``, ``ops.identity_metrics``,
   ``ops.identity_log`` (the per-source watermark of silver batches resolved).

**Incremental** runs take only the silver records of batches above the watermark. New records
that only repeat the graph join their identifier's person directly
(:mod:`cdp_spark.identity.repeats`); for the others, the persons those records (and the
identifiers they hold, now or before) belong to are re-resolved with all their records;
everything else is left as it is. **Idempotent**: with nothing new a run writes
nothing; a full run over unchanged silver gives the same ids and rows.

Example:
    >>> report = run_identity(ctx)                      # doctest: +SKIP
    >>> report.figures["persons"]
    2114
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_spark.caching import BROADCAST_MAX_ROWS, broadcast_if_small
from cdp_spark.errors import CdpError
from cdp_spark.identity.clusters import cluster_records
from cdp_spark.identity.config import GROUP_TYPE
from cdp_spark.identity.graph import (
    EDGES_SCHEMA,
    EDGES_TABLE,
    FUZZY_PAIRS_SCHEMA,
    LINKS_SCHEMA,
    build_links,
    edges_to_links,
    fuzzy_to_edges,
    links_to_edges,
    node_value,
    records_of_source,
    silver_record_table,
)
from cdp_spark.identity.guards import (
    ATTRIBUTES_SCHEMA,
    SHARED_SCHEMA,
    drop_junk,
    drop_shared,
    guard_values,
    mark_corroborated,
    person_attributes,
)
from cdp_spark.identity.oversize import split_oversized
from cdp_spark.identity.persist import IdEvent, assign_person_ids
from cdp_spark.identity.repeats import repeat_records
from cdp_spark.identity.tables import (
    ALL_TABLES,
    CLUSTERS_SCHEMA,
    CLUSTERS_TABLE,
    HISTORY_SCHEMA,
    HISTORY_TABLE,
    IDENTIFIERS_SCHEMA,
    IDENTIFIERS_TABLE,
    LOG_SCHEMA,
    LOG_TABLE,
    REVIEW_SCHEMA,
    REVIEW_TABLE,
)
from cdp_spark.ingest import ensure_table
from cdp_spark.pipeline import RunContext, StageReport
from cdp_spark.storage import Lakehouse
from cdp_spark.storage.layout import serving_layout

KEYS = ["source", "record_id"]


@dataclass
class Changes:
    """What this run takes from silver: the records, and per source the batch range."""

    records: DataFrame  # source, record_id, rec, event_time + silver columns are dropped
    links: DataFrame  # LINKS_SCHEMA, junk removed
    junk: DataFrame  # links to junk values (counted, never written)
    pairs: DataFrame  # fuzzy: rec_l, rec_r, score, rule
    watermarks: dict[str, int]  # source -> last silver batch taken
    counts: dict[str, int]  # source -> records taken


def run_id_of(run_date: date) -> str:
    """The run id written to the history and metrics tables.

    Example:
        >>> run_id_of(date(2026, 3, 1))
        'identity-2026-03-01'
    """
    return f"identity-{run_date.isoformat()}"


def read_watermarks(lake: Lakehouse) -> dict[str, int]:
    """Per source, the last silver batch already resolved (empty before the first run).

    Example:
        >>> read_watermarks(lake)                           # doctest: +SKIP
        {'crm_contacts': 1, 'orders': 1}
    """
    if not lake.exists(LOG_TABLE):
        return {}
    rows = lake.read(LOG_TABLE).groupBy("source").agg(F.max("last_batch_id").alias("b")).collect()
    return {r["source"]: int(r["b"]) for r in rows}


def fuzzy_enabled(ctx: RunContext) -> bool:
    """True when fuzzy CRM links are switched on and the fuzzy matcher is installed."""
    enabled = ctx.cfg.identity.fuzzy_crm_links and ctx.cfg.identity.fuzzy.enabled
    return enabled and importlib.util.find_spec("cdp_spark.identity.fuzzy") is not None


def fuzzy_records(crm: DataFrame) -> DataFrame:
    """CRM contacts as canonical person records for the fuzzy matcher.

    Example:
        >>> fuzzy_records(silver_crm).columns[:3]                  # doctest: +SKIP
        ['record_id', 'customer_id', 'first_name']
    """
    cols = set(crm.columns)

    def pick(*names: str) -> F.Column:
        for n in names:
            if n in cols:
                return F.col(n)
        return F.lit(None).cast("string")

    return crm.select(
        "record_id",
        pick("customer_id_norm", "customer_id").alias("customer_id"),
        pick("first_name").alias("first_name"),
        pick("last_name").alias("last_name"),
        pick("date_of_birth").alias("date_of_birth"),
        pick("street").alias("street"),
        pick("city").alias("city"),
        pick("postcode_norm", "postcode").alias("postcode"),
        pick("country_norm", "country").alias("country"),
        pick("email_norm").alias("email"),
        pick("phone_e164").alias("phone"),
    )


def read_changes(ctx: RunContext, watermarks: dict[str, int]) -> Changes:
    """Silver records of batches above ``watermarks`` (all of them when it is empty).

    Example:
        >>> read_changes(ctx, {}).counts                         # doctest: +SKIP
        {'crm_contacts': 1986, ...}
    """
    cfg, lake, spark = ctx.cfg, ctx.lake, ctx.spark
    records: DataFrame | None = None
    links: DataFrame | None = None
    pairs = spark.createDataFrame([], "rec_l string, rec_r string, score double, rule string")
    marks: dict[str, int] = {}
    counts: dict[str, int] = {}
    for name in cfg.identity.sources:
        if name not in cfg.sources:
            raise CdpError(
                f"identity.sources names {name!r}, which is not a source",
                hint=f"sources: {', '.join(cfg.sources)}",
            )
        table = silver_record_table(name, cfg.sources[name])
        if not lake.exists(table):
            ctx.progress(f"identity: {table} does not exist yet, skipped")
            continue
        silver = lake.read(table)
        lo = watermarks.get(name, 0)
        # One pass for the new watermark and the number of new records.
        seen = silver.agg(
            F.max("_batch_id").alias("hi"),
            F.sum(F.when(F.col("_batch_id") > lo, 1).otherwise(0)).alias("n"),
        ).first()
        if seen is None or seen["hi"] is None:
            continue
        marks[name] = max(int(seen["hi"]), lo)
        if not seen["n"]:
            continue
        counts[name] = int(seen["n"])
        recs = records_of_source(silver.where(F.col("_batch_id") > lo), name, cfg.sources[name])
        if watermarks or counts[name] <= BROADCAST_MAX_ROWS:
            # An incremental run's batch, or a small one: read from silver once, for its links
            # and its records alike (every later step of an incremental run reads them).
            recs = recs.localCheckpoint()
        src_links = build_links(recs, name, cfg.identity)
        slim = recs.select("source", "record_id", "rec", "event_time")
        records = slim if records is None else records.unionByName(slim)
        links = src_links if links is None else links.unionByName(src_links)
        if name == "crm_contacts" and fuzzy_enabled(ctx):
            pairs = pairs.unionByName(_fuzzy_pairs(ctx, lake.read(table), name, recs))
    if records is None or links is None:
        records = spark.createDataFrame(
            [], "source string, record_id string, rec string, event_time timestamp"
        )
        links = spark.createDataFrame([], LINKS_SCHEMA)
    clean, junk = drop_junk(links, cfg)
    # Materialised once: the guards, the clustering and the edge writes all read it.
    clean = clean.localCheckpoint()
    return Changes(records, clean, junk, pairs, marks, counts)


def _fuzzy_pairs(ctx: RunContext, silver: DataFrame, name: str, changed: DataFrame) -> DataFrame:
    # All CRM contacts are compared (a new contact may match an old one); only pairs with a
    # changed contact are new. The matcher is another module: called through its interface.
    from cdp_spark.identity import fuzzy

    everyone = records_of_source(silver, name, ctx.cfg.sources[name])
    pairs = fuzzy.fuzzy_pairs(ctx.spark, fuzzy_records(everyone), ctx.cfg.identity.fuzzy)
    ids = changed.select(F.col("record_id").alias("rid"))
    touching = pairs.join(
        ids,
        (F.col("record_id_l") == F.col("rid")) | (F.col("record_id_r") == F.col("rid")),
        "left_semi",
    )
    return touching.select(
        F.concat(F.lit(f"rec:{name}:"), "record_id_l").alias("rec_l"),
        F.concat(F.lit(f"rec:{name}:"), "record_id_r").alias("rec_r"),
        F.col("score").cast("double").alias("score"),
        "rule",
    )


def _keys_of(rec_col: str = "rec") -> list[F.Column]:
    return [
        F.regexp_extract(F.col(rec_col), r"^rec:([^:]*):", 1).alias("source"),
        F.regexp_extract(F.col(rec_col), r"^rec:[^:]*:(.*)$", 1).alias("record_id"),
    ]


def run_identity(ctx: RunContext, *, mode: str | None = None) -> StageReport:
    """The ``identity`` stage (see the module docstring).

    ``mode``: ``full``, ``incremental`` or ``auto`` (default: ``identity.mode``).

    Example:
        >>> run_identity(ctx, mode="full").figures["persons"]          # doctest: +SKIP
        2114
    """
    cfg, lake, spark = ctx.cfg, ctx.lake, ctx.spark
    if lake.exists(CLUSTERS_TABLE) and "cluster_size" in lake.read(CLUSTERS_TABLE).columns:
        raise CdpError(
            f"{CLUSTERS_TABLE} has the layout of before 2026-11-23 (a cluster_size per record)",
            hint=f"move {lake.path(CLUSTERS_TABLE)} aside and run `cdp run identity` again "
            "(a full run; person ids are assigned anew), see docs/decisions.md",
        )
    for table, schema in ALL_TABLES.items():
        ensure_table(lake, table, schema)
    mode = mode or cfg.identity.mode
    watermarks = read_watermarks(lake)
    if mode == "auto":
        mode = "incremental" if watermarks else "full"
    if mode == "full":
        watermarks = {}
    now = datetime.now(tz=UTC).replace(microsecond=0)
    ctx.progress(f"identity: {mode} run")
    changes = read_changes(ctx, watermarks)
    if mode == "incremental" and not changes.counts:
        ctx.progress("identity: no new silver records")
        return StageReport(stage="identity", figures={"mode": mode, "records_new": 0})

    old_clusters = lake.read(CLUSTERS_TABLE)
    edges_table = lake.read(EDGES_TABLE)
    repeats: DataFrame | None = None
    if mode == "full":
        resolved = _resolve(
            ctx,
            changes,
            scope_records=changes.records.select("source", "record_id", "rec"),
            links=changes.links,
            pairs=changes.pairs,
            known_shared=spark.createDataFrame([], "node string"),
            previous=old_clusters.select(*PREVIOUS_COLUMNS),
            old_clusters=old_clusters,
            now=now,
            incremental=False,
        )
    else:
        old_links, old_pairs = edges_to_links(edges_table)
        # Records resolved before (an updated CRM contact): the stored rows are filtered
        # against the (broadcast) batch rather than shuffled to meet it.
        seen_before = (
            old_clusters.select(*KEYS)
            .join(broadcast_if_small(changes.records.select(*KEYS)), KEYS, "left_semi")
            .localCheckpoint()
        )
        ctx.progress("identity: new records that repeat the graph")
        repeats, rest, touched = _split_repeats(ctx, changes, seen_before, old_clusters, old_links)
        resolved = _Resolved.nothing(spark)
        if not rest.records.isEmpty():
            # The scope's stored rows: every changed record stored before is a touched
            # person's (_touched_persons), so those persons' rows are all of them.
            previous = (
                old_clusters.join(broadcast_if_small(touched), "person_id", "left_semi")
                .select(*PREVIOUS_COLUMNS)
                .localCheckpoint()
            )
            scope_records, links, pairs, known_shared = _incremental_scope(
                ctx, rest, previous, old_links, old_pairs
            )
            resolved = _resolve(
                ctx,
                rest,
                scope_records=scope_records,
                links=links,
                pairs=pairs,
                known_shared=known_shared,
                previous=previous,
                old_clusters=old_clusters,
                now=now,
                incremental=True,
            )
    gold, identifiers, events = resolved.gold, resolved.identifiers, resolved.events
    new_edges = resolved.new_edges
    if repeats is not None:
        # A repeat record joins its identifier's person; no other row changes.
        gold = gold.unionByName(
            repeats.select(
                *KEYS,
                "person_id",
                F.lit(ctx.run_date).alias("run_date"),
                F.lit(now).alias("updated_at"),
            )
        )
        repeat_links = changes.links.join(repeats.select(*KEYS), KEYS, "left_semi")
        new_edges = new_edges.unionByName(links_to_edges(repeat_links, ctx.run_date))
    run_id = run_id_of(ctx.run_date)
    ctx.progress("identity: writing")
    _write_history(ctx, events, run_id, now)
    if mode == "full":
        lake.overwrite(EDGES_TABLE, new_edges.select(*EDGES_SCHEMA.fieldNames()))
        # Laid out by the look-up keys (cdp profile). gold is checkpointed, so its count is
        # cheap; it stands in for the identifiers' count too (it only sets the file count).
        records = gold.count()
        lake.overwrite(
            CLUSTERS_TABLE,
            serving_layout(
                gold.select(*CLUSTERS_SCHEMA.fieldNames()), CLUSTERS_TABLE, rows=records
            ),
        )
        lake.overwrite(
            IDENTIFIERS_TABLE,
            serving_layout(
                identifiers.select(*IDENTIFIERS_SCHEMA.fieldNames()),
                IDENTIFIERS_TABLE,
                rows=records,
            ),
        )
        lake.overwrite(REVIEW_TABLE, resolved.review.select(*REVIEW_SCHEMA.fieldNames()))
    else:
        _write_incremental(
            ctx,
            new_edges,
            gold,
            identifiers,
            resolved.review,
            edges_table,
            resolved.persons,
            seen_before,
        )
    log_rows = [
        (s, int(b), int(changes.counts.get(s, 0)), mode, ctx.run_date, now)
        for s, b in sorted(changes.watermarks.items())
    ]
    lake.append(LOG_TABLE, spark.createDataFrame(log_rows, LOG_SCHEMA))

    from cdp_spark.identity.metrics import record_metrics

    ctx.progress("identity: metrics")
    figures, rows = record_metrics(
        ctx,
        mode=mode,
        run_id=run_id,
        changes=changes,
        shared=resolved.shared,
        events=events,
        now=now,
        scope=resolved.scope if mode == "incremental" else None,
        repeats=repeats.count() if repeats is not None else None,
    )
    figures["corroborated_identifiers"] = resolved.corroborated.count()
    return StageReport(stage="identity", figures=figures, rows=rows)


@dataclass
class _Resolved:
    """What resolving a scope gives the writes and the metrics."""

    gold: DataFrame  # rows of gold.identity_clusters
    identifiers: DataFrame  # rows of gold.identity_identifiers of the scope's persons
    review: DataFrame
    new_edges: DataFrame
    events: list[IdEvent]
    shared: DataFrame
    corroborated: DataFrame
    persons: DataFrame  # person_id of the scope, before and after
    scope: int

    @classmethod
    def nothing(cls, spark: Any) -> _Resolved:
        def empty(schema: Any) -> DataFrame:
            return spark.createDataFrame([], schema)

        return cls(
            gold=empty(CLUSTERS_SCHEMA),
            identifiers=empty(IDENTIFIERS_SCHEMA),
            review=empty(REVIEW_SCHEMA),
            new_edges=empty(EDGES_SCHEMA),
            events=[],
            shared=empty(SHARED_SCHEMA),
            corroborated=empty("node string"),
            persons=empty("person_id string"),
            scope=0,
        )


def _resolve(
    ctx: RunContext,
    changes: Changes,
    *,
    scope_records: DataFrame,
    links: DataFrame,
    pairs: DataFrame,
    known_shared: DataFrame,
    previous: DataFrame,
    old_clusters: DataFrame,
    now: datetime,
    incremental: bool,
) -> _Resolved:
    """Guards, components, oversize splits and persistent ids of the records in scope."""
    cfg, lake = ctx.cfg, ctx.lake
    # Materialised (and their plans cut short): every step below reads them.
    scope_records = scope_records.localCheckpoint()
    links = links.localCheckpoint()
    engine = cfg.engines.connected_components

    ctx.progress("identity: guards (shared identifiers)")
    guarded = guard_values(
        links, pairs, cfg.identity, engine=engine, attributes=_corroboration_attributes(ctx)
    )
    shared = guarded.shared
    if incremental:
        # Values found shared before stay shared: their records span persons not in scope.
        prior = known_shared.join(links.select("node", "id_type").distinct(), "node").select(
            "node",
            "id_type",
            F.lit(0).cast("long").alias("anchors"),
            F.lit(0).cast("long").alias("max_links"),
        )
        shared = shared.unionByName(prior.join(shared.select("node"), "node", "left_anti"))
    shared = shared.localCheckpoint()
    # A value shared in an earlier run stays shared (see above), corroborated or not.
    corroborated = guarded.corroborated.join(shared.select("node"), "node", "left_anti")
    corroborated = corroborated.localCheckpoint()
    linking = drop_shared(links, shared).localCheckpoint()

    ctx.progress("identity: clustering")
    clusters = cluster_records(scope_records, linking, pairs, engine=engine, progress=ctx.progress)
    clusters, oversized = split_oversized(
        clusters, linking, pairs, cfg.identity, engine=engine, progress=ctx.progress
    )
    clusters = clusters.join(scope_records, "rec").select("source", "record_id", "rec", "component")
    clusters = clusters.localCheckpoint()

    ctx.progress("identity: persistent ids")
    known_ids = old_clusters.select("person_id").unionByName(
        lake.read(HISTORY_TABLE).select(F.col("old_person_id").alias("person_id"))
    )
    ids, events = assign_person_ids(
        clusters.select("source", "record_id", "component"),
        previous,
        known_ids,
        prefix=cfg.identity.person_id_prefix,
    )
    ids = ids.localCheckpoint()
    gold = _cluster_rows(
        ids, previous, ctx.run_date, now, changed_only=incremental
    ).localCheckpoint()
    rec_person = ids.select(
        F.concat(F.lit("rec:"), "source", F.lit(":"), "record_id").alias("rec"), "person_id"
    )
    identifiers = (
        linking.where(F.col("id_type") != GROUP_TYPE)
        .join(rec_person, "rec")
        .select("id_type", node_value("node").alias("id_value"), "person_id")
        .distinct()
        .withColumn("run_date", F.lit(ctx.run_date))
    )
    review = _review_rows(
        shared, oversized, linking_all=links, rec_person=rec_person, run_date=ctx.run_date, now=now
    )
    new_edges = links_to_edges(mark_corroborated(changes.links, corroborated), ctx.run_date)
    if incremental:
        # Stored edges of unchanged records whose value became (or stopped being) corroborated.
        unchanged = links.join(changes.records.select(*KEYS), KEYS, "left_anti")
        remarked = mark_corroborated(unchanged.withColumn("__was", F.col("rule")), corroborated)
        remarked = remarked.where(F.col("rule") != F.col("__was")).drop("__was")
        new_edges = new_edges.unionByName(links_to_edges(remarked, ctx.run_date))
    new_edges = new_edges.unionByName(fuzzy_to_edges_from_recs(changes.pairs, ctx.run_date))
    persons = gold.select("person_id").unionByName(previous.select("person_id")).distinct()
    return _Resolved(
        gold=gold,
        identifiers=identifiers,
        review=review,
        new_edges=new_edges,
        events=events,
        shared=shared,
        corroborated=corroborated,
        persons=persons,
        scope=scope_records.count() if incremental else 0,
    )


def _split_repeats(
    ctx: RunContext,
    changes: Changes,
    seen_before: DataFrame,
    old_clusters: DataFrame,
    old_links: DataFrame,
) -> tuple[DataFrame, Changes, DataFrame]:
    """``(repeats, rest, touched)``: the new records that repeat the graph and join their
    person directly (:mod:`cdp_spark.identity.repeats`), the changes left to re-resolve, and
    the persons those touch (whose repeat records are re-resolved with them).

    ``seen_before``: keys of the changed records resolved in an earlier run."""
    lake = ctx.lake
    paired = _paired_records(changes.pairs)
    fresh = (
        changes.links.join(seen_before, KEYS, "left_anti")
        .join(paired, "rec", "left_anti")
        # CRM contacts carry the attributes that corroborate shared values.
        .where(F.col("source") != ctx.cfg.identity.corroborate_shared.source)
    )
    identifiers = lake.read(IDENTIFIERS_TABLE).select(
        F.concat("id_type", F.lit(":"), "id_value").alias("node"), "person_id"
    )
    split = (
        lake.read(REVIEW_TABLE)
        .where(F.col("review_type") == "oversized_cluster")
        .select(F.explode("person_ids").alias("person_id"))
    )
    candidates = repeat_records(fresh, old_links, identifiers, split).localCheckpoint()
    others = _without(changes, candidates)
    touched = _touched_persons(ctx, others, seen_before, old_clusters, old_links).localCheckpoint()
    repeats = candidates.join(touched, "person_id", "left_anti").localCheckpoint()
    return repeats, _without(changes, repeats), touched


def _paired_records(pairs: DataFrame) -> DataFrame:
    """``rec`` of every record on either side of the fuzzy ``pairs`` (repeated if in several)."""
    return pairs.select(F.col("rec_l").alias("rec")).unionByName(
        pairs.select(F.col("rec_r").alias("rec"))
    )


def _without(changes: Changes, records: DataFrame) -> Changes:
    """``changes`` less ``records`` (their links and records; fuzzy pairs never hold them)."""
    keys = records.select(*KEYS)
    return Changes(
        records=changes.records.join(keys, KEYS, "left_anti"),
        links=changes.links.join(keys, KEYS, "left_anti"),
        junk=changes.junk,
        pairs=changes.pairs,
        watermarks=changes.watermarks,
        counts=changes.counts,
    )


def _corroboration_attributes(ctx: RunContext) -> DataFrame | None:
    """Name key and birth date of every record of ``corroborate_shared.source`` (or None: off).

    All of them, not only this run's: an incremental scope holds unchanged accounts too.
    """
    corroborate = ctx.cfg.identity.corroborate_shared
    if not corroborate.enabled:
        return None
    name = corroborate.source
    if name not in ctx.cfg.sources:
        raise CdpError(
            f"identity.corroborate_shared.source names {name!r}, which is not a source",
            hint=f"sources: {', '.join(ctx.cfg.sources)}",
        )
    table = silver_record_table(name, ctx.cfg.sources[name])
    if not ctx.lake.exists(table):
        return ctx.spark.createDataFrame([], ATTRIBUTES_SCHEMA)
    silver = ctx.lake.read(table)
    names = {"name_key", "first_name", "middle_name", "last_name"}
    if not names & set(silver.columns):
        raise CdpError(
            f"identity.corroborate_shared compares names, and {table} has none",
            hint="set identity.corroborate_shared.enabled: false, or name a source with names",
        )
    if "date_of_birth" in corroborate.attributes and "date_of_birth" not in silver.columns:
        # Silently comparing names alone would join namesakes the user meant to keep apart.
        raise CdpError(
            f"identity.corroborate_shared compares birth dates, and {table} has no date_of_birth",
            hint="drop date_of_birth from identity.corroborate_shared.attributes",
        )
    records = records_of_source(silver, name, ctx.cfg.sources[name])
    return person_attributes(records, corroborate).localCheckpoint()


def fuzzy_to_edges_from_recs(pairs: DataFrame, run_date: date) -> DataFrame:
    """Fuzzy pairs (``rec_l``, ``rec_r``) as rows of ``silver.identity_edges``.

    Example:
        >>> fuzzy_to_edges_from_recs(pairs, date(2026, 3, 1)).columns[0]   # doctest: +SKIP
        'src'
    """
    return pairs.select(
        F.col("rec_l").alias("src"),
        F.col("rec_r").alias("dst"),
        "rule",
        F.col("score").cast("double").alias("score"),
        *_keys_of("rec_l"),
        F.lit(None).cast("timestamp").alias("event_time"),
        F.lit(run_date).alias("run_date"),
    ).dropDuplicates(["src", "dst"])


def _touched_persons(
    ctx: RunContext,
    changes: Changes,
    seen_before: DataFrame,
    old_clusters: DataFrame,
    old_links: DataFrame,
) -> DataFrame:
    """``person_id`` of the persons the changes touch: of the changed records, of the
    identifiers they hold now or held before, of the other lines of their receipts, and on the
    other side of new fuzzy pairs. ``seen_before``: the changed records resolved before (only
    they have stored links)."""
    # The changes are small next to the stored tables: broadcast, so the stored tables are
    # filtered where they are read instead of being shuffled.
    changed = broadcast_if_small(changes.records.select("source", "record_id", "rec"))
    nodes = changes.links.select("node")
    if not seen_before.isEmpty():
        # A batch of new records only skips this pass over the stored links.
        old_nodes = old_links.join(broadcast_if_small(seen_before), KEYS, "left_semi")
        nodes = nodes.unionByName(old_nodes.select("node"))
    touched_nodes = broadcast_if_small(nodes.distinct())
    fuzzy_partners = _paired_records(changes.pairs)
    idents = ctx.lake.read(IDENTIFIERS_TABLE).select(
        F.concat("id_type", F.lit(":"), "id_value").alias("node"), "person_id"
    )
    # A receipt group is never an identifier of a person: its other lines are found by edge.
    groups = touched_nodes.where(F.col("node").startswith(f"{GROUP_TYPE}:"))
    grouped = old_links.join(broadcast_if_small(groups), "node", "left_semi").select(*KEYS)
    keys = (
        changed.select(*KEYS)
        .unionByName(grouped)
        .unionByName(fuzzy_partners.select(*_keys_of("rec")))
    )
    return (
        old_clusters.join(broadcast_if_small(keys), KEYS, "left_semi")
        .select("person_id")
        .unionByName(idents.join(touched_nodes, "node", "left_semi").select("person_id"))
        .distinct()
    )


def _incremental_scope(
    ctx: RunContext,
    changes: Changes,
    previous: DataFrame,
    old_links: DataFrame,
    old_pairs: DataFrame,
) -> tuple[DataFrame, DataFrame, DataFrame, DataFrame]:
    """Records, links, pairs of the touched persons and the changes; values known to be shared.

    ``previous``: the stored rows of the touched persons' records."""
    changed = changes.records.select("source", "record_id", "rec")
    scope = (
        previous.select(
            "source",
            "record_id",
            F.concat(F.lit("rec:"), "source", F.lit(":"), "record_id").alias("rec"),
        )
        .unionByName(changed)
        .distinct()
    )
    unchanged = broadcast_if_small(scope.join(changed, KEYS, "left_anti"))
    # Both sides materialised before the union: with every source changed (a daily run at 100k
    # customers), Spark 4.2's constraint propagation failed on this union's plan
    # (NoSuchElementException: key not found: id_type#..., UnionBase.rewriteConstraints).
    links = (
        old_links.join(unchanged, ["source", "record_id"], "left_semi")
        .select(*LINKS_SCHEMA.fieldNames())
        .localCheckpoint()
        .unionByName(changes.links.select(*LINKS_SCHEMA.fieldNames()).localCheckpoint())
    )
    unchanged_recs = unchanged.select("rec")
    pairs = (
        old_pairs.join(unchanged_recs.withColumnRenamed("rec", "rec_l"), "rec_l", "left_semi")
        .join(changed.select(F.col("rec").alias("rec_r")), "rec_r", "left_anti")
        .unionByName(changes.pairs.select("rec_l", "rec_r", "score", "rule"))
        # Materialised: the guards, the clustering and the oversize split all read it, and
        # each read was a pass over the stored edges.
        .localCheckpoint()
    )
    known_shared = (
        ctx.lake.read(REVIEW_TABLE)
        .where(F.col("review_type") == "shared_identifier")
        .select("node")
        .distinct()
    )
    return scope, links, pairs, known_shared


# The stored rows of the records in scope (the ids they had, and when their rows last changed).
PREVIOUS_COLUMNS = ["source", "record_id", "person_id", "run_date", "updated_at"]


def _cluster_rows(
    ids: DataFrame, old: DataFrame, run_date: date, now: datetime, *, changed_only: bool
) -> DataFrame:
    """Rows of ``gold.identity_clusters``; a row whose person did not change keeps its
    ``run_date`` and ``updated_at`` (so a re-run changes nothing), or, with ``changed_only``
    (an incremental MERGE), is left out."""
    prev = old.select(
        *KEYS,
        F.col("person_id").alias("_p"),
        F.col("run_date").alias("_d"),
        F.col("updated_at").alias("_u"),
    )
    same = F.coalesce(F.col("_p") == F.col("person_id"), F.lit(False))
    rows = ids.join(prev, KEYS, "left")
    if changed_only:
        rows = rows.where(~same)
    return rows.select(
        *KEYS,
        "person_id",
        F.when(same, F.col("_d")).otherwise(F.lit(run_date)).alias("run_date"),
        F.when(same, F.col("_u")).otherwise(F.lit(now)).alias("updated_at"),
    )


def _review_rows(
    shared: DataFrame,
    oversized: DataFrame,
    *,
    linking_all: DataFrame,
    rec_person: DataFrame,
    run_date: date,
    now: datetime,
) -> DataFrame:
    persons = (
        linking_all.join(shared.select("node"), "node", "left_semi")
        .join(rec_person, "rec")
        .groupBy("node")
        .agg(F.sort_array(F.collect_set("person_id")).alias("person_ids"))
    )
    shared_rows = shared.join(persons, "node", "left").select(
        F.lit(run_date).alias("run_date"),
        F.lit("shared_identifier").alias("review_type"),
        "node",
        "id_type",
        F.col("anchors").alias("measure"),
        F.col("max_links").alias("limit"),
        F.lit("links dropped").alias("action"),
        F.coalesce("person_ids", F.array().cast("array<string>")).alias("person_ids"),
        F.lit(now).alias("recorded_at"),
    )
    over_persons = (
        oversized.join(rec_person, "rec")
        .groupBy("node")
        .agg(F.sort_array(F.collect_set("person_id")).alias("person_ids"))
    )
    over_rows = (
        oversized.select("node", "measure", "limit", "action")
        .distinct()
        .join(over_persons, "node", "left")
        .select(
            F.lit(run_date).alias("run_date"),
            F.lit("oversized_cluster").alias("review_type"),
            "node",
            F.lit(None).cast("string").alias("id_type"),
            F.col("measure").cast("long"),
            F.col("limit").cast("long"),
            "action",
            F.coalesce("person_ids", F.array().cast("array<string>")).alias("person_ids"),
            F.lit(now).alias("recorded_at"),
        )
    )
    return shared_rows.unionByName(over_rows)


def _write_history(ctx: RunContext, events: list[IdEvent], run_id: str, now: datetime) -> None:
    """MERGE the merge/split events (a retried run finds the same events and adds nothing)."""
    if not events:
        return
    rows = [
        (run_id, e.event, e.old_person_id, e.new_person_id, e.records, ctx.run_date, now)
        for e in events
    ]
    df = ctx.spark.createDataFrame(rows, HISTORY_SCHEMA)
    ctx.lake.merge(HISTORY_TABLE, df, keys=["run_id", "event", "old_person_id", "new_person_id"])


def _write_incremental(
    ctx: RunContext,
    new_edges: DataFrame,
    gold: DataFrame,
    identifiers: DataFrame,
    review: DataFrame,
    edges_table: DataFrame,
    scope_persons: DataFrame,
    seen_before: DataFrame,
) -> None:
    lake = ctx.lake
    upserts = new_edges.withColumn("__delete", F.lit(False))
    # Edges: the changed records' old edges are replaced by their new ones. Only records
    # resolved before have stored edges; a batch of new records skips the scan.
    if not seen_before.isEmpty():
        stale = (
            edges_table.join(broadcast_if_small(seen_before), KEYS, "left_semi")
            .join(new_edges.select("src", "dst"), ["src", "dst"], "left_anti")
            .withColumn("__delete", F.lit(True))
        )
        upserts = upserts.unionByName(stale)
    ctx.progress(f"identity: merging into {EDGES_TABLE}")
    lake.merge(EDGES_TABLE, upserts, keys=["src", "dst"], delete_when="__delete")
    ctx.progress(f"identity: merging into {CLUSTERS_TABLE}")
    lake.merge(CLUSTERS_TABLE, gold.select(*CLUSTERS_SCHEMA.fieldNames()), keys=KEYS)
    # Identifiers of the scope's persons (their ids before and after this run): upsert the
    # current ones, delete the ones no record holds any more (or that became shared).
    old_idents = lake.read(IDENTIFIERS_TABLE)
    gone = (
        old_idents.join(scope_persons, "person_id", "left_semi")
        .join(identifiers.select("id_type", "id_value"), ["id_type", "id_value"], "left_anti")
        .withColumn("__delete", F.lit(True))
    )
    ident_upserts = identifiers.withColumn("__delete", F.lit(False)).unionByName(gone)
    ctx.progress(f"identity: merging into {IDENTIFIERS_TABLE}")
    lake.merge(
        IDENTIFIERS_TABLE, ident_upserts, keys=["id_type", "id_value"], delete_when="__delete"
    )
    if not review.isEmpty():
        lake.merge(
            REVIEW_TABLE,
            review.select(*REVIEW_SCHEMA.fieldNames()),
            keys=["review_type", "node"],
        )


_ = (FUZZY_PAIRS_SCHEMA, SHARED_SCHEMA, fuzzy_to_edges)
