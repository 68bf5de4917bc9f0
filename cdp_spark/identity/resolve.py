"""Standalone de-duplication of person files: ``cdp resolve FILE... --map ... --id-col ...``.

Reads CSV or Parquet files of person records, maps their columns onto the canonical attributes
(:data:`~cdp_spark.identity.fuzzy_config.CANONICAL_ATTRIBUTES`), normalises them with
:mod:`cdp_spark.normalize`, links records

- deterministically: the same normalised e-mail, phone (E.164), national id, customer id or
  loyalty id (junk values and the identity blocklists excluded), and
- probabilistically: :func:`~cdp_spark.identity.fuzzy.fuzzy_pairs` over names, dates of birth,
  addresses and whatever else is present,

clusters the links with :func:`cdp_spark.graph.connected_components`, and writes one row per
input record: ``source_file``, ``record_id``, ``person_id``, ``cluster_size`` and
``best_match_score`` (the highest score of the record's links; null for a record alone).

Example:
    >>> result = resolve_files(
    ...     spark, ["people.csv"], {"first_name": "fname", "last_name": "lname",
    ...     "date_of_birth": "dob"}, id_col="id", cfg=load_config(), out="people_resolved.csv",
    ... )   # doctest: +SKIP
    >>> result.figures["persons"]
    812
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.graph import connected_components
from cdp_spark.identity.fuzzy import (
    Backend,
    drop_conflicting_pairs,
    fuzzy_pairs,
    match_columns,
)
from cdp_spark.identity.fuzzy_config import CANONICAL_ATTRIBUTES

log = logging.getLogger(__name__)

ProgressFn = Callable[[str], None]

# Identifiers that link two records by themselves when equal (after normalisation), and the
# identity identifier type whose blocklist applies to each.
EXACT_ATTRIBUTES: Mapping[str, str | None] = {
    "email": "email",
    "phone": "phone",
    "national_id": None,
    "customer_id": "customer_id",
    "loyalty_id": "loyalty_card",
}

RESOLVE_SCHEMA = StructType(
    [
        StructField("source_file", StringType(), False),
        StructField("record_id", StringType(), False),
        StructField("person_id", StringType(), False),
        StructField("cluster_size", LongType(), False),
        StructField("best_match_score", DoubleType(), True),
    ]
)
EDGES_SCHEMA = StructType(
    [
        StructField("src", StringType(), False),
        StructField("dst", StringType(), False),
        StructField("score", DoubleType(), False),
        StructField("rule", StringType(), False),
    ]
)


@dataclass(frozen=True)
class ResolveResult:
    """What :func:`resolve_files` produced: the rows written, the links and some figures."""

    clusters: DataFrame
    edges: DataFrame
    figures: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``["first_name=fname,last_name=lname", "email=mail"]`` -> ``{canonical: column}``.

    Raises :class:`~cdp_spark.errors.CdpError` for an unknown canonical name, a malformed item
    or a canonical name given twice.

    Example:
        >>> parse_mapping(["first_name=fname,last_name=lname"])
        {'first_name': 'fname', 'last_name': 'lname'}
    """
    mapping: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            canonical, sep, column = part.partition("=")
            canonical, column = canonical.strip(), column.strip()
            if not sep or not canonical or not column:
                raise CdpError(
                    f"--map {part!r} is not canonical=column",
                    hint="e.g. --map first_name=fname,last_name=surname,date_of_birth=dob",
                )
            if canonical not in CANONICAL_ATTRIBUTES:
                raise CdpError(
                    f"unknown canonical attribute {canonical!r} in --map",
                    hint="canonical attributes: " + ", ".join(CANONICAL_ATTRIBUTES),
                )
            if canonical in mapping and mapping[canonical] != column:
                raise CdpError(f"--map names {canonical!r} twice", hint="map it to one column")
            mapping[canonical] = column
    return mapping


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def _file_format(path: str) -> Literal["csv", "parquet"]:
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq") or (suffix == "" and Path(path).is_dir()):
        return "parquet"
    raise CdpError(
        f"{path}: cannot tell the format from the extension {suffix or '(none)'}",
        hint="person files are CSV (.csv) or Parquet (.parquet)",
    )


def _read_one(spark: SparkSession, path: str, encoding: str) -> DataFrame:
    fmt = _file_format(path)
    if not Path(path).exists():
        raise CdpError(f"{path}: no such file", hint="check the path")
    try:
        if fmt == "csv":
            sep = "\t" if path.lower().endswith(".tsv") else ","
            df = (
                spark.read.option("header", True)
                .option("inferSchema", False)
                .option("encoding", encoding)
                .option("sep", sep)
                .option("multiLine", True)
                .csv(path)
            )
        else:
            df = spark.read.parquet(path)
        df.schema  # noqa: B018 - forces the footer / header read, so errors surface here
    except CdpError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise CdpError(
            f"{path}: cannot read it as {fmt}: {first}",
            hint="is it a CSV file with a header row, or a Parquet file?",
        ) from exc
    return df


def read_person_files(
    spark: SparkSession,
    paths: Sequence[str | Path],
    mapping: Mapping[str, str],
    *,
    id_col: str,
    encoding: str = "utf-8",
) -> DataFrame:
    """One DataFrame of the files' records in canonical columns.

    Columns: ``source_file`` (the path as given), ``record_id`` (``id_col`` as text),
    ``node_id`` (``<file index>:<record_id>``, unique over all files) and the canonical
    attributes of ``mapping`` (text). Files may differ in their columns: a mapped column that
    one file lacks is null for its records, but a mapped column that no file has is an error
    (a typo). With an empty ``mapping``, columns named like canonical attributes are used.
    Raises :class:`~cdp_spark.errors.CdpError` for an unreadable file, a missing ``id_col``,
    a mapped column no file has, and missing or duplicate record ids within a file.

    Example:
        >>> read_person_files(spark, ["a.csv"], {"full_name": "name"}, id_col="id").columns
        ... # doctest: +SKIP
        ['source_file', 'record_id', 'node_id', 'full_name']
    """
    if not paths:
        raise CdpError("no input file", hint="cdp resolve FILE... --id-col COL --out OUT")
    for canonical in mapping:
        if canonical not in CANONICAL_ATTRIBUTES:
            raise CdpError(
                f"unknown canonical attribute {canonical!r}",
                hint="canonical attributes: " + ", ".join(CANONICAL_ATTRIBUTES),
            )
    read = [(str(raw), _read_one(spark, str(raw), encoding)) for raw in paths]
    for path, df in read:
        if id_col not in df.columns:
            raise CdpError(
                f"{path}: no id column {id_col!r}",
                hint=f"--id-col names one of its columns: {', '.join(df.columns)}",
            )
    every = {c for _, df in read for c in df.columns}
    used = dict(mapping) or {c: c for c in CANONICAL_ATTRIBUTES if c in every}
    nowhere = {c: col for c, col in used.items() if col not in every}
    if nowhere:
        wanted = ", ".join(f"{c}={col}" for c, col in nowhere.items())
        columns = ", ".join(sorted(every - {id_col}))
        raise CdpError(
            f"--map names columns no input file has: {wanted}",
            hint=f"the files' columns: {columns}",
        )
    if not used:
        raise CdpError(
            "no column to match on",
            hint="map columns with --map canonical=column; canonical attributes: "
            + ", ".join(CANONICAL_ATTRIBUTES),
        )
    frames: list[DataFrame] = []
    for index, (path, df) in enumerate(read):
        # Files may differ: one has first and last names, another a full name. A mapped
        # column a file lacks is missing (null) for its records.
        lacking = sorted(col for col in used.values() if col not in df.columns)
        if lacking:
            log.warning("%s has no column %s: missing for its records", path, ", ".join(lacking))
        record_id = F.nullif(F.trim(F.col(id_col).cast("string")), F.lit(""))
        values = [
            (F.col(col).cast("string") if col in df.columns else F.lit(None).cast("string")).alias(
                c
            )
            for c, col in used.items()
        ]
        frames.append(
            df.select(
                F.lit(path).alias("source_file"),
                record_id.alias("record_id"),
                F.concat(F.lit(f"{index}:"), record_id).alias("node_id"),
                *values,
            )
        )
    records = frames[0]
    for frame in frames[1:]:
        records = records.unionByName(frame, allowMissingColumns=True)
    _check_ids(records, id_col)
    return records


def _check_ids(records: DataFrame, id_col: str) -> None:
    problems = (
        records.groupBy("source_file", "record_id")
        .count()
        .where(F.col("record_id").isNull() | (F.col("count") > 1))
        .orderBy("source_file", "record_id")
        .limit(6)
        .collect()
    )
    if not problems:
        return
    missing = [r for r in problems if r["record_id"] is None]
    if missing:
        raise CdpError(
            f"{missing[0]['source_file']}: {missing[0]['count']} records have no {id_col}",
            hint="every record needs an id: fill them in, or choose another --id-col",
        )
    shown = ", ".join(f"{r['record_id']!r} ({r['count']}x)" for r in problems[:5])
    raise CdpError(
        f"{problems[0]['source_file']}: duplicate values in id column {id_col!r}: {shown}",
        hint="--id-col must name a column that is unique within each file",
    )


# ---------------------------------------------------------------------------------------------
# Matching and clustering
# ---------------------------------------------------------------------------------------------


def exact_edges(prepared: DataFrame, cfg: CdpConfig) -> DataFrame:
    """Links between records with the same normalised identifier (:data:`EXACT_ATTRIBUTES`).

    ``prepared``: :func:`~cdp_spark.identity.fuzzy.match_columns` output. Every two records
    sharing a value are linked (score 1, rule ``exact:<attribute>``, ``src`` < ``dst``), unless
    the guards of :func:`~cdp_spark.identity.fuzzy.drop_conflicting_pairs` say they are
    different people (a household's shared landline or e-mail). Values on the identity
    blocklist of their type, and values shared by more than ``identity.fuzzy.max_block_size``
    records (a shop's own card or phone), link nobody.

    Example:
        >>> exact_edges(match_columns(records), cfg).columns   # doctest: +SKIP
        ['src', 'dst', 'score', 'rule']
    """
    limit = cfg.identity.fuzzy.max_block_size
    parts: list[DataFrame] = []
    for attr, id_type in EXACT_ATTRIBUTES.items():
        if attr not in prepared.columns:
            continue
        value = F.col(attr)
        keep = value.isNotNull()
        if id_type is not None:
            policy = cfg.identity.policy(id_type)
            if policy.blocklist:
                keep = keep & ~value.isin(sorted(policy.blocklist))
            for pattern in policy.blocklist_patterns:
                keep = keep & ~value.rlike(f"^(?:{pattern})$")
        values = (
            prepared.where(keep)
            .select("record_id", value.alias("value"))
            .withColumn("n", F.count(F.lit(1)).over(Window.partitionBy("value")))
            .where(F.col("n") <= limit)
        )
        left, right = values.alias("l"), values.alias("r")
        pairs = left.join(
            right,
            (F.col("l.value") == F.col("r.value")) & (F.col("l.record_id") < F.col("r.record_id")),
        )
        parts.append(
            pairs.select(
                F.col("l.record_id").alias("src"),
                F.col("r.record_id").alias("dst"),
                F.lit(1.0).alias("score"),
                F.lit(f"exact:{attr}").alias("rule"),
            )
        )
    if not parts:
        return prepared.sparkSession.createDataFrame([], EDGES_SCHEMA)
    edges = parts[0]
    for part in parts[1:]:
        edges = edges.unionByName(part)
    return drop_conflicting_pairs(edges, prepared, cfg.identity.fuzzy, left="src", right="dst")


def resolve_records(
    spark: SparkSession,
    records: DataFrame,
    cfg: CdpConfig,
    *,
    backend: Backend = "auto",
    progress: ProgressFn | None = None,
) -> ResolveResult:
    """Cluster person records: ``records`` as :func:`read_person_files` returns them.

    Returns the output rows (:data:`RESOLVE_SCHEMA`, materialised) and the links
    (``src``/``dst`` node ids, ``score``, ``rule``). ``person_id`` is
    ``identity.person_id_prefix`` + 16 hex digits of the SHA-256 of the cluster's smallest
    node id: the same input gives the same ids.

    Example:
        >>> resolve_records(spark, read_person_files(spark, paths, mapping, id_col="id"), cfg)
        ... # doctest: +SKIP
    """
    say = progress or log.info
    fuzzy_cfg = cfg.identity.fuzzy
    canonical = [c for c in records.columns if c in CANONICAL_ATTRIBUTES]
    nodes = records.select("node_id", "source_file", "record_id")
    prepared = match_columns(
        records.select(F.col("node_id").alias("record_id"), *canonical),
        default_region=cfg.standardize.default_region,
        blocklist=fuzzy_cfg.blocklist,
    ).persist()
    try:
        say("resolve: exact links (e-mail, phone, ids)")
        edges = exact_edges(prepared, cfg)
        if fuzzy_cfg.enabled:
            pairs = fuzzy_pairs(
                spark, prepared, fuzzy_cfg, backend=backend, normalized=True, progress=say
            )
            edges = edges.unionByName(
                pairs.select(
                    F.col("record_id_l").alias("src"),
                    F.col("record_id_r").alias("dst"),
                    "score",
                    "rule",
                )
            )
        edges = edges.localCheckpoint()
        say("resolve: clusters (connected components)")
        graph = edges.select("src", "dst").unionByName(
            prepared.select(F.col("record_id").alias("src"), F.col("record_id").alias("dst"))
        )
        components = connected_components(
            graph, engine=cfg.engines.connected_components, progress=progress
        )
        ends = edges.select(F.col("src").alias("node"), "score").unionByName(
            edges.select(F.col("dst").alias("node"), "score")
        )
        best = ends.groupBy("node").agg(F.max("score").alias("best_match_score"))
        prefix = cfg.identity.person_id_prefix
        person = F.concat(F.lit(prefix), F.substring(F.sha2(F.col("component"), 256), 1, 16))
        clusters = (
            nodes.join(components, nodes["node_id"] == components["node"], "left")
            .join(best, nodes["node_id"] == best["node"], "left")
            .select(
                "source_file",
                "record_id",
                person.alias("person_id"),
                F.count(F.lit(1)).over(Window.partitionBy("component")).alias("cluster_size"),
                F.col("best_match_score").cast("double"),
            )
            .orderBy("source_file", "record_id")
            .localCheckpoint()
        )
    finally:
        prepared.unpersist()
    return ResolveResult(clusters=clusters, edges=edges, figures=_figures(clusters, edges))


def _figures(clusters: DataFrame, edges: DataFrame) -> dict[str, Any]:
    row = clusters.agg(
        F.count(F.lit(1)).alias("records"),
        F.countDistinct("person_id").alias("persons"),
        F.countDistinct(F.when(F.col("cluster_size") > 1, F.col("person_id"))).alias("multi"),
        F.max("cluster_size").alias("largest"),
    ).first()
    assert row is not None
    by_rule = {r["rule"]: r["count"] for r in edges.groupBy("rule").count().collect()}
    return {
        "records": row["records"],
        "persons": row["persons"],
        "duplicate_records": row["records"] - row["persons"],
        "clusters_with_duplicates": row["multi"],
        "largest_cluster": row["largest"],
        "links_by_rule": dict(sorted(by_rule.items())),
    }


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def write_resolution(
    clusters: DataFrame, out: str | Path, *, mode: Literal["error", "overwrite"] = "error"
) -> Path:
    """Write ``clusters`` to one file, CSV or Parquet by ``out``'s extension.

    One Spark task writes it (no collect to the driver), then the part file is moved to
    ``out``. ``mode="error"`` refuses to replace an existing file.

    Example:
        >>> write_resolution(result.clusters, "resolved.parquet")   # doctest: +SKIP
        PosixPath('resolved.parquet')
    """
    target = Path(out)
    suffix = target.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise CdpError(
            f"--out {target}: the extension must be .csv or .parquet", hint="e.g. --out people.csv"
        )
    if target.exists() and mode != "overwrite":
        raise CdpError(f"{target} exists", hint="choose another --out, or add --overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        writer = clusters.coalesce(1).write.mode("overwrite")
        if suffix == ".csv":
            writer.option("header", True).csv(str(staging))
        else:
            writer.parquet(str(staging))
        (part,) = sorted(staging.glob(f"part-*{suffix}*"))
        if target.is_dir():
            shutil.rmtree(target)
        part.replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_files(
    spark: SparkSession,
    paths: Sequence[str | Path],
    mapping: Mapping[str, str],
    *,
    id_col: str,
    cfg: CdpConfig,
    out: str | Path | None = None,
    mode: Literal["error", "overwrite"] = "error",
    backend: Backend = "auto",
    encoding: str = "utf-8",
    progress: ProgressFn | None = None,
) -> ResolveResult:
    """De-duplicate person files; write (source file, record id, person id, cluster size,
    best-match score) to ``out`` (``.csv`` or ``.parquet``) when given.

    See :func:`read_person_files` for the input rules and :func:`resolve_records` for the
    matching. ``figures`` holds records, persons, duplicate records, links by rule and seconds.

    Example:
        >>> resolve_files(spark, ["crm.csv", "shop.parquet"], {"email": "mail"},
        ...               id_col="id", cfg=cfg, out="people.csv").figures["persons"]
        ... # doctest: +SKIP
        1853
    """
    started = time.perf_counter()
    if out is not None and Path(out).exists() and mode != "overwrite":
        raise CdpError(f"{out} exists", hint="choose another --out, or add --overwrite")
    records = read_person_files(spark, paths, mapping, id_col=id_col, encoding=encoding)
    result = resolve_records(spark, records, cfg, backend=backend, progress=progress)
    if out is not None:
        write_resolution(result.clusters, out, mode=mode)
    figures = {**result.figures, "seconds": round(time.perf_counter() - started, 1)}
    return ResolveResult(clusters=result.clusters, edges=result.edges, figures=figures)
