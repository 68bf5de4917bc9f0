"""Identity metrics: unification, cluster sizes, edges by rule, and accuracy against a truth.

``ops.identity_metrics`` holds one row per (run, metric, dimension) (long format, so a new
metric needs no schema change):

- ``records`` / ``persons`` / ``unification_rate`` by source and ``all`` (records per person
  holding records of that source);
- ``cluster_size`` by size bucket (``1``, ``2``, ``3-5``, ``6-10``, ``11-100``, ``101+``):
  how many persons have that many records;
- ``edges`` by rule, ``junk_links`` by identifier type, ``shared_identifiers`` by type,
  ``merges`` / ``splits``;
- with a ground truth (:func:`evaluate`, mode ``eval``): ``precision``, ``recall``, ``f1``,
  ``over_merged_clusters``, ``under_merged_persons`` by source, ``identifiers`` and ``all``;
  and, measured against what the edges can link at all (:func:`oracle_components`),
  ``reachable_pairs``, ``reachable_recall`` and ``recall_ceiling``.

Definitions are in docs/identity.md ("Measuring quality").

Example:
    >>> evaluate(spark, lake, "data/landing/_truth/records.csv")[:1]   # doctest: +SKIP
    [('f1', 'all', 0.99)]
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_spark.graph import connected_components
from cdp_spark.graph.components import EngineName
from cdp_spark.identity.tables import (
    CLUSTERS_TABLE,
    EDGES_TABLE,
    IDENTIFIERS_TABLE,
    METRICS_SCHEMA,
    METRICS_TABLE,
)

SIZE_BUCKETS = ((1, 1), (2, 2), (3, 5), (6, 10), (11, 100), (101, None))

# Truth key types that name a record of a source (docs/sources.md "Ground truth").
RECORD_KEY_TYPES = {
    "crm_contacts": "customer_id",
    "orders": "order_id",
    "web_events": "event_id",
    "support_tickets": "ticket_id",
    "pos_sales": "transaction_id",
}


def bucket_of(size: F.Column) -> F.Column:
    """The size bucket label of a cluster size.

    Example:
        >>> df.select(bucket_of(F.col("cluster_size")))          # doctest: +SKIP
    """
    expr = None
    for lo, hi in SIZE_BUCKETS:
        label = str(lo) if hi == lo else (f"{lo}+" if hi is None else f"{lo}-{hi}")
        cond = size >= lo if hi is None else size.between(lo, hi)
        expr = F.when(cond, F.lit(label)) if expr is None else expr.when(cond, F.lit(label))
    assert expr is not None
    return expr


def summary_metrics(clusters: DataFrame, edges: DataFrame) -> list[tuple[str, str, float]]:
    """``(metric, dimension, value)`` describing the current clusters and edges.

    Example:
        >>> summary_metrics(lake.read(CLUSTERS_TABLE), lake.read(EDGES_TABLE))[:1]  # doctest: +SKIP
        [('records', 'all', 101745.0)]
    """
    out: list[tuple[str, str, float]] = []
    by_source = clusters.groupBy("source").agg(
        F.count(F.lit(1)).alias("records"), F.countDistinct("person_id").alias("persons")
    )
    total = clusters.agg(
        F.count(F.lit(1)).alias("records"), F.countDistinct("person_id").alias("persons")
    ).first()
    rows = [(r["source"], r["records"], r["persons"]) for r in by_source.collect()]
    if total is not None:
        rows.append(("all", total["records"], total["persons"]))
    for dim, records, persons in sorted(rows):
        out.append(("records", dim, float(records)))
        out.append(("persons", dim, float(persons)))
        out.append(("unification_rate", dim, float(records) / persons if persons else 0.0))
    sizes = (
        clusters.groupBy("person_id")
        .agg(F.count(F.lit(1)).alias("n"))
        .groupBy(bucket_of(F.col("n")).alias("bucket"))
        .count()
        .collect()
    )
    out += [("cluster_size", r["bucket"], float(r["count"])) for r in sizes]
    multi = clusters.groupBy("person_id").agg(F.countDistinct("source").alias("k"))
    row = multi.agg(F.sum(F.when(F.col("k") > 1, 1).otherwise(0)).alias("m")).first()
    out.append(("multi_source_persons", "all", float(row["m"] or 0) if row else 0.0))
    out += [
        ("edges", r["rule"], float(r["count"])) for r in edges.groupBy("rule").count().collect()
    ]
    return sorted(out)


def cluster_size_counts(clusters: DataFrame) -> list[tuple[int, int]]:
    """``(cluster size, persons with that size)`` sorted by size (for the plot).

    Example:
        >>> cluster_size_counts(lake.read(CLUSTERS_TABLE))[:2]  # doctest: +SKIP
        [(1, 950), (2, 120)]
    """
    rows = (
        clusters.groupBy("person_id")
        .agg(F.count(F.lit(1)).alias("n"))
        .groupBy("n")
        .count()
        .orderBy("n")
        .collect()
    )
    return [(int(r["n"]), int(r["count"])) for r in rows]


def plot_cluster_sizes(counts: list[tuple[int, int]], path: Path, *, title: str) -> Path:
    """Save a log-log plot of the cluster-size distribution as PNG; returns the path.

    Example:
        >>> plot_cluster_sizes([(1, 10), (2, 3)], Path("/tmp/s.png"), title="t")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if counts:
        ax.bar([c[0] for c in counts], [c[1] for c in counts], width=0.8, color="#3b6ea5")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("records per person (cluster size)")
    ax.set_ylabel("persons")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def log_to_mlflow(
    cfg: Any, run_date: date, metrics: dict[str, float], artifact: Path
) -> str | None:
    """Log the run's figures and the plot to MLflow (run ``identity-<run_date>``); the run id.

    Example:
        >>> log_to_mlflow(cfg, date(2026, 3, 1), {"persons": 2114.0}, png)   # doctest: +SKIP
    """
    import mlflow

    mlflow.set_tracking_uri(cfg.mlflow_tracking_uri)
    mlflow.set_experiment(cfg.mlflow.experiment)
    with mlflow.start_run(run_name=f"identity-{run_date.isoformat()}") as run:
        mlflow.set_tag("stage", "identity")
        # MLflow names allow letters, digits, _ - . space : / only ("cluster_size:101+").
        clean = {re.sub(r"[^A-Za-z0-9_\-. :/]", "_", k): float(v) for k, v in metrics.items()}
        mlflow.log_metrics(clean)
        mlflow.log_artifact(str(artifact))
        return str(run.info.run_id)


def write_metrics(
    spark: SparkSession,
    lake: Any,
    rows: list[tuple[str, str, float]],
    *,
    run_date: date,
    run_id: str,
    mode: str,
    now: datetime | None = None,
) -> None:
    """Replace this run's rows of ``ops.identity_metrics`` (a re-run rewrites them).

    Example:
        >>> write_metrics(spark, lake, [("persons", "all", 2114.0)], run_date=d,
        ...               run_id="identity-2026-03-01", mode="full")   # doctest: +SKIP
    """
    now = now or datetime.now(tz=UTC).replace(microsecond=0)
    df = spark.createDataFrame(
        [(run_date, run_id, mode, m, d, float(v), now) for m, d, v in rows], METRICS_SCHEMA
    )
    where = f"run_id = '{run_id}' AND mode = '{mode}'"
    lake.overwrite(METRICS_TABLE, df, where=where)


def record_metrics(
    ctx: Any,
    *,
    mode: str,
    run_id: str,
    changes: Any,
    shared: DataFrame,
    events: list[Any],
    now: datetime,
    scope: int | None = None,
    repeats: int | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Compute, store and log the run's metrics; ``(figures, rows)`` for the stage report.

    Example:
        >>> figures, rows = record_metrics(ctx, mode="full", ...)   # doctest: +SKIP
    """
    lake, spark = ctx.lake, ctx.spark
    clusters = lake.read(CLUSTERS_TABLE)
    # The whole-table figures scan every record: full runs only, so that an incremental run
    # stays proportional to what changed.
    rows = summary_metrics(clusters, lake.read(EDGES_TABLE)) if mode == "full" else []
    if scope is not None:
        rows.append(("scope_records", "all", float(scope)))
    if repeats is not None:
        rows.append(("repeat_records", "all", float(repeats)))
    junk = changes.junk.groupBy("id_type").count().collect()
    rows += [("junk_links", r["id_type"], float(r["count"])) for r in junk]
    shared_counts = shared.groupBy("id_type").count().collect()
    rows += [("shared_identifiers", r["id_type"], float(r["count"])) for r in shared_counts]
    rows.append(("merges", "all", float(sum(e.event == "merge" for e in events))))
    rows.append(("splits", "all", float(sum(e.event == "split" for e in events))))
    rows += [("records_taken", s, float(n)) for s, n in sorted(changes.counts.items())]
    write_metrics(spark, lake, rows, run_date=ctx.run_date, run_id=run_id, mode=mode, now=now)

    flat = {f"{m}:{d}": v for m, d, v in rows}
    figures: dict[str, Any] = {
        "mode": mode,
        "records_new": sum(changes.counts.values()),
        "records": int(flat.get("records:all", 0)),
        "persons": int(flat.get("persons:all", 0)),
        "unification_rate": round(flat.get("unification_rate:all", 0.0), 2),
        "shared_identifiers": int(sum(v for m, _, v in rows if m == "shared_identifiers")),
        "junk_links": int(sum(v for m, _, v in rows if m == "junk_links")),
        "merges": len([e for e in events if e.event == "merge"]),
        "splits": len([e for e in events if e.event == "split"]),
    }
    if scope is not None:
        figures["scope_records"] = scope
    if repeats is not None:
        figures["repeat_records"] = repeats
    if mode != "full":
        return figures, []
    try:
        png = plot_cluster_sizes(
            cluster_size_counts(clusters),
            Path(ctx.cfg.resolve(ctx.cfg.identity.plots_dir))
            / f"cluster_sizes_{ctx.run_date.isoformat()}.png",
            title=f"identity {ctx.run_date.isoformat()}: records per person",
        )
        figures["plot"] = str(png)
        if ctx.cfg.identity.log_to_mlflow:
            figures["mlflow_run"] = log_to_mlflow(
                ctx.cfg, ctx.run_date, {k: v for k, v in flat.items() if ":" in k}, png
            )
    except Exception as exc:  # a tracking server down must not fail identity resolution
        ctx.progress(f"identity: plot/MLflow logging skipped ({type(exc).__name__}: {exc})")
    table_rows = [
        {"metric": m, "dimension": d, "value": round(v, 3)}
        for m, d, v in rows
        if m in ("records", "persons", "unification_rate", "edges")
    ]
    return figures, table_rows


# --- accuracy against a ground truth ---------------------------------------------------------


def read_truth(spark: SparkSession, path: str) -> DataFrame:
    """The truth file (``source, key_type, key, person_id``) as a DataFrame.

    Example:
        >>> read_truth(spark, "data/landing/_truth/records.csv").columns  # doctest: +SKIP
        ['source', 'key_type', 'key', 'person_id']
    """
    return spark.read.csv(
        path, header=True, schema="source string, key_type string, key string, person_id string"
    )


def labelled_items(clusters: DataFrame, identifiers: DataFrame, truth: DataFrame) -> DataFrame:
    """``dimension``, ``item``, ``predicted``, ``actual``: every record and identifier that has
    a true person.

    Records: CRM accounts, orders, web events, tickets by their key, POS lines by their
    transaction. Identifiers: every value of ``gold.identity_identifiers`` whose truth names
    exactly one person (shared values - a household landline - belong to nobody alone and are
    left out). E-mail events and consent rows have no key in the truth; their identifier is
    counted under ``identifiers``.

    Example:
        >>> labelled_items(clusters, idents, truth).groupBy("dimension").count()  # doctest: +SKIP
    """
    parts = []
    for source, key_type in RECORD_KEY_TYPES.items():
        t = truth.where((F.col("source") == source) & (F.col("key_type") == key_type)).select(
            F.col("key"), F.col("person_id").alias("actual")
        )
        key = F.col("record_id")
        if source == "pos_sales":
            key = F.substring_index(F.col("record_id"), "|", 1)
        c = clusters.where(F.col("source") == source).select(
            key.alias("key"),
            F.col("record_id").alias("item"),
            F.col("person_id").alias("predicted"),
        )
        parts.append(
            c.join(t, "key").select(F.lit(source).alias("dimension"), "item", "predicted", "actual")
        )
    single = (
        truth.where(F.col("source") == "identity")
        .groupBy("key_type", "key")
        .agg(F.countDistinct("person_id").alias("k"), F.first("person_id").alias("actual"))
        .where(F.col("k") == 1)
    )
    idents = identifiers.select(
        F.col("id_type").alias("key_type"),
        F.col("id_value").alias("key"),
        F.col("person_id").alias("predicted"),
    )
    parts.append(
        idents.join(single, ["key_type", "key"]).select(
            F.lit("identifiers").alias("dimension"),
            F.concat("key_type", F.lit(":"), "key").alias("item"),
            "predicted",
            "actual",
        )
    )
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def pairwise_scores(items: DataFrame) -> list[tuple[str, str, float]]:
    """Pairwise precision, recall, F1 and over/under-merge counts per dimension and ``all``.

    A pair is two items of the same dimension (or any two items for ``all``). Precision =
    pairs in one predicted cluster and one true person / pairs in one predicted cluster;
    recall = the same / pairs of one true person. ``over_merged_clusters``: predicted clusters
    holding items of more than one true person; ``under_merged_persons``: true persons whose
    items are in more than one predicted cluster.

    Example:
        >>> pairwise_scores(items)[:1]                              # doctest: +SKIP
        [('f1', 'all', 0.993)]
    """
    both = items.unionByName(items.withColumn("dimension", F.lit("all")))
    pairs = F.col("n") * (F.col("n") - 1) / 2
    cell = both.groupBy("dimension", "predicted", "actual").agg(F.count(F.lit(1)).alias("n"))
    tp = cell.groupBy("dimension").agg(F.sum(pairs).alias("tp"))
    pred = (
        cell.groupBy("dimension", "predicted")
        .agg(F.sum("n").alias("n"), F.count(F.lit(1)).alias("persons"))
        .groupBy("dimension")
        .agg(
            F.sum(pairs).alias("pred_pairs"),
            F.sum(F.when(F.col("persons") > 1, 1).otherwise(0)).alias("over"),
            F.count(F.lit(1)).alias("clusters"),
        )
    )
    act = (
        cell.groupBy("dimension", "actual")
        .agg(F.sum("n").alias("n"), F.count(F.lit(1)).alias("clusters"))
        .groupBy("dimension")
        .agg(
            F.sum(pairs).alias("true_pairs"),
            F.sum(F.when(F.col("clusters") > 1, 1).otherwise(0)).alias("under"),
            F.count(F.lit(1)).alias("persons"),
            F.sum("n").alias("items"),
        )
    )
    out: list[tuple[str, str, float]] = []
    for r in tp.join(pred, "dimension").join(act, "dimension").collect():
        d = r["dimension"]
        p = float(r["tp"]) / r["pred_pairs"] if r["pred_pairs"] else 1.0
        rc = float(r["tp"]) / r["true_pairs"] if r["true_pairs"] else 1.0
        f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
        out += [
            ("precision", d, p),
            ("recall", d, rc),
            ("f1", d, f1),
            ("over_merged_clusters", d, float(r["over"])),
            ("under_merged_persons", d, float(r["under"])),
            ("true_persons", d, float(r["persons"])),
            ("predicted_clusters", d, float(r["clusters"])),
            ("items", d, float(r["items"])),
        ]
    return sorted(out)


# --- what the data can link at all: the "oracle" graph ---------------------------------------


def oracle_node(node: F.Column, person: F.Column) -> F.Column:
    """The oracle graph's copy of an identifier (or ``group:``) node for one true person.

    ``<node>#<person>``: one true person's share of a value, so that a value held by two
    people (a household landline) becomes two nodes that join nobody across persons. Record
    nodes (``rec:...``) are not renamed: a record has one true person already. Injective as
    long as person ids hold no ``#`` (the generator's ``P0000001`` do not).

    Example:
        >>> df.select(oracle_node(F.col("dst"), F.col("actual")))   # doctest: +SKIP
        'phone:+79123456789#P0000001'
    """
    return F.concat(node, F.lit("#"), person)


def _record_truth(items: DataFrame) -> DataFrame:
    """``rec``, ``actual``: the record node of every labelled record item."""
    return items.where(F.col("dimension") != "identifiers").select(
        F.concat(F.lit("rec:"), "dimension", F.lit(":"), "item").alias("rec"), "actual"
    )


def oracle_edges(edges: DataFrame, items: DataFrame) -> DataFrame:
    """``src``, ``dst``: the edges of ``silver.identity_edges`` as the truth would keep them.

    ``items`` (from :func:`labelled_items`) gives each record node its true person; records
    without one (e-mail events, consent rows) drop out with their edges. A record -> identifier
    edge becomes record -> ``oracle_node(identifier, true person of the record)``; a record ->
    record (fuzzy) edge is kept only when both records are the same true person. No guard
    applies: junk values are not in the edges anyway, shared values are split per person.

    Example:
        >>> oracle_edges(lake.read(EDGES_TABLE), items).first()   # doctest: +SKIP
        Row(src='rec:orders:ORD0004000000000', dst='customer_id:C00000507#P0000001')
    """
    recs = _record_truth(items)
    is_pair = F.col("dst").startswith("rec:")
    to_value = (
        edges.where(~is_pair)
        .join(recs.withColumnRenamed("rec", "src"), "src")
        .select("src", oracle_node(F.col("dst"), F.col("actual")).alias("dst"))
    )
    left = recs.select(F.col("rec").alias("src"), F.col("actual").alias("actual_l"))
    right = recs.select(F.col("rec").alias("dst"), F.col("actual").alias("actual_r"))
    same_person = (
        edges.where(is_pair)
        .join(left, "src")
        .join(right, "dst")
        .where(F.col("actual_l") == F.col("actual_r"))
        .select("src", "dst")
    )
    return to_value.unionByName(same_person)


def oracle_components(
    edges: DataFrame, items: DataFrame, *, engine: EngineName = "local"
) -> DataFrame:
    """``items`` with ``component``: the oracle component each labelled item falls in.

    Components of :func:`oracle_edges` are the sets of records (and identifier values) that
    the edges can join for one true person without joining anyone else, whatever our guards
    decide. A record item's node is its record node; an identifier item ``v`` of true person
    ``p`` is ``oracle_node(v, p)``. An item no oracle edge touches is a component of its own
    (``component`` = its node). A component is named by its smallest node, except one made of
    a value and records holding nothing else (a cookie that never logged in and its page
    views), named by the value.

    Components come from :mod:`cdp_spark.graph` (``engine``: ``local`` holds a few million
    edges in the driver's memory; ``dataframe`` scales out). A record holding a single value
    (a page view and its cookie, an order and its customer id) joins nothing and just follows
    its value, so only the other edges go through the engine: about one per login, CRM
    account or receipt line with a card, as in the identity stage's star.

    Example:
        >>> oracle_components(lake.read(EDGES_TABLE), items).columns   # doctest: +SKIP
        ['dimension', 'item', 'predicted', 'actual', 'component']
    """
    node = F.when(
        F.col("dimension") == "identifiers", oracle_node(F.col("item"), F.col("actual"))
    ).otherwise(F.concat(F.lit("rec:"), "dimension", F.lit(":"), "item"))
    oracle = oracle_edges(edges, items)
    is_pair = F.col("dst").startswith("rec:")
    paired = (
        oracle.where(is_pair)
        .select(F.col("src").alias("rec"))
        .union(oracle.where(is_pair).select(F.col("dst").alias("rec")))
    )
    leaves = (
        oracle.where(~is_pair)
        .groupBy("src")
        .agg(F.countDistinct("dst").alias("k"), F.min("dst").alias("value"))
        .where(F.col("k") == 1)
        .join(paired, F.col("src") == F.col("rec"), "left_anti")
        .select("src", "value")
    )
    core = connected_components(oracle.join(leaves, "src", "left_anti"), engine=engine)
    # A leaf takes its value's component; a value only leaves hold names its own.
    leaf_components = leaves.join(
        core.select(F.col("node").alias("value"), "component"), "value", "left"
    ).select(F.col("src").alias("node"), F.coalesce("component", "value").alias("component"))
    components = core.unionByName(leaf_components)
    return (
        items.withColumn("node", node)
        .join(components, "node", "left")
        .select(*items.columns, F.coalesce(F.col("component"), F.col("node")).alias("component"))
    )


def reach_scores(items: DataFrame) -> list[tuple[str, str, float]]:
    """Recall measured against what the edges can link, per dimension and ``all``.

    ``items`` has ``dimension``, ``predicted``, ``actual``, ``component`` (from
    :func:`oracle_components`). ``reachable_pairs``: pairs of items in one oracle component;
    ``reachable_recall``: those also in one predicted cluster / ``reachable_pairs``;
    ``recall_ceiling``: ``reachable_pairs`` / pairs of one true person (the recall of the best
    deterministic linking over these edges). With no pair to count a rate is 1.0, as in
    :func:`pairwise_scores`.

    Example:
        >>> reach_scores(oracle_components(edges, items))[:1]   # doctest: +SKIP
        [('reachable_pairs', 'all', 27.0)]
    """
    both = items.unionByName(items.withColumn("dimension", F.lit("all")))
    pairs = F.col("n") * (F.col("n") - 1) / 2
    # A component holds one true person by construction; grouping by ``actual`` too keeps the
    # count honest even if a caller's components did not.
    cell = both.groupBy("dimension", "actual", "component", "predicted").agg(
        F.count(F.lit(1)).alias("n")
    )
    joined = cell.groupBy("dimension").agg(F.sum(pairs).alias("joined"))
    reachable = (
        cell.groupBy("dimension", "actual", "component")
        .agg(F.sum("n").alias("n"))
        .groupBy("dimension")
        .agg(F.sum(pairs).alias("reachable"))
    )
    true = (
        cell.groupBy("dimension", "actual")
        .agg(F.sum("n").alias("n"))
        .groupBy("dimension")
        .agg(F.sum(pairs).alias("true_pairs"))
    )
    out: list[tuple[str, str, float]] = []
    for r in joined.join(reachable, "dimension").join(true, "dimension").collect():
        d, reach = r["dimension"], float(r["reachable"])
        out += [
            ("reachable_pairs", d, reach),
            ("reachable_recall", d, float(r["joined"]) / reach if reach else 1.0),
            ("recall_ceiling", d, reach / r["true_pairs"] if r["true_pairs"] else 1.0),
        ]
    return sorted(out)


def evaluate(
    spark: SparkSession, lake: Any, truth_path: str, *, engine: EngineName = "local"
) -> list[tuple[str, str, float]]:
    """Score the current ``gold.identity_clusters`` / ``identifiers`` against a truth file.

    The absolute figures of :func:`pairwise_scores`, then :func:`reach_scores` over the oracle
    components of ``silver.identity_edges`` (``engine``: see :func:`oracle_components`).

    Example:
        >>> scores = {(m, d): v for m, d, v in evaluate(spark, lake, truth)}  # doctest: +SKIP
        >>> scores[("f1", "all")]                                         # doctest: +SKIP
        0.99
    """
    truth = read_truth(spark, truth_path)
    items = labelled_items(lake.read(CLUSTERS_TABLE), lake.read(IDENTIFIERS_TABLE), truth)
    # Two passes over the items (absolute and reachable figures): join the tables once.
    items = items.persist()
    try:
        absolute = pairwise_scores(items)
        reach = reach_scores(oracle_components(lake.read(EDGES_TABLE), items, engine=engine))
    finally:
        items.unpersist()
    return sorted(absolute + reach)
