"""Bronze ingestion: landing files -> ``bronze.<source>`` + ``quarantine.records``.

Generic over the sources declared in ``conf/sources.yaml``: adding a source like the others
is a YAML change. One run of :func:`run_ingest` does, for each source:

1. **List** the landing folder ``<landing>/<source.path>`` for files matching
   ``source.pattern`` (names starting with ``_`` or ``.`` are ignored: temp files, ``_truth``).
2. **Pick new files** against ``ops.ingest_manifest``. The rule: a file is identified by its
   path relative to the landing folder *and* its bytes. ``(path, size, mtime)`` already in the
   manifest -> skipped without reading; otherwise its SHA-256 is computed, and
   ``(path, sha256)`` already in the manifest -> skipped (the file was only touched). Anything
   else is new, whatever the date in its name: a late file is picked up, and a file re-written
   at the same path with other bytes is ingested again as a new file (silver deduplicates).
3. **Read** the new files of the source as one batch with Spark's text reader (one row per
   physical line, raw bytes kept), number the lines, decode them with the declared encoding and
   parse them with ``from_csv`` / ``from_json`` against the declared columns (all as text).
4. **Classify** each line: bronze, or quarantine with a structural reason
   (``invalid_encoding``, ``blank_line``, ``wrong_column_count``, ``malformed_json``,
   ``repeated_header``, ``missing_required:<col>``). CSV header lines are neither: they are
   counted in the manifest as ``header_lines``.
5. **Write** bronze then quarantine with ``Txn(app_id="ingest:<source>", version=batch_id)``
   (an empty side is not written: a commit always carries rows, which is how an interrupted
   batch is recognised),
   **reconcile** (lines read = bronze + quarantine per file, counted by reading the tables
   back; raises :class:`~cdp_spark.quality.ReconciliationError`), and **write the manifest
   last**. A crash anywhere before the manifest leaves the batch "open"; the next run finds its
   files in bronze/quarantine, redoes exactly that batch (the committed writes are skipped by
   their ``Txn``) and only then starts a new one, so nothing is duplicated or lost.

Why the text reader rather than the CSV/JSON readers with a corrupt-record column: every
physical line must be accounted for, with its number and its raw bytes. The text reader gives
exactly one row per line (blank ones included) and never decodes, so undecodable bytes can be
detected (``is_valid_utf8``) instead of being replaced silently; ``from_csv``/``from_json``
then give the same parsing (quoting, PERMISSIVE mode, corrupt-record column) as the readers.
The price is that CSV fields with quoted line breaks are not supported (such a record is
quarantined as ``wrong_column_count``) and encodings must keep ``\\n`` as the line feed byte
(UTF-8, cp1251, latin-1... not UTF-16).

Example:
    >>> ctx = RunContext.create(load_config("local"), run_date=date(2026, 3, 1))  # doctest: +SKIP
    >>> run_ingest(ctx, sources=["crm"]).rows[0]["reconciled"]
    True
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
import pyarrow.fs as pafs
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from cdp_spark.caching import cache_records
from cdp_spark.config import CdpConfig, SourceConfig
from cdp_spark.errors import CdpError
from cdp_spark.pipeline import RunContext, StageReport
from cdp_spark.quality import FileCounts, check_reconciled, is_blank
from cdp_spark.schemas import (
    MANIFEST_SCHEMA,
    MANIFEST_TABLE,
    QUARANTINE_SCHEMA,
    QUARANTINE_TABLE,
    as_text_type,
    bronze_schema,
    bronze_table,
    conform,
    parse_type,
)
from cdp_spark.storage import Lakehouse, Txn, WriteResult

CORRUPT = "_corrupt_record"
_UTF8_NAMES = {"utf-8", "utf8", "utf_8", "utf-8-sig", "utf_8_sig"}
_HASH_CHUNK = 4 * 1024 * 1024


# --- landing files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LandingFile:
    """One file in a source's landing folder, as listed (no content read yet)."""

    rel_path: str  # relative to the landing dir, "/"-separated: the manifest key
    uri: str  # what Spark reads
    fs_path: str  # what the pyarrow filesystem opens
    size: int
    mtime_us: int  # modification time, microseconds since the epoch (UTC)

    @property
    def mtime(self) -> datetime:
        return datetime.fromtimestamp(self.mtime_us / 1_000_000, tz=UTC)


def landing_filesystem(landing: str) -> tuple[pafs.FileSystem, str, str]:
    """(pyarrow filesystem, base path for it, base URI for Spark) of the landing folder.

    Local paths and ``file:`` URIs become ``file://`` URIs for Spark; ``s3a://`` (Hadoop's
    name) is opened as ``s3://`` by pyarrow.

    Example:
        >>> landing_filesystem("/data/landing")[1:]
        ('/data/landing', 'file:///data/landing')
    """
    if "://" not in landing and not landing.startswith("file:"):
        base = os.path.abspath(landing)
        return pafs.LocalFileSystem(), base, "file://" + base
    if landing.startswith("file:"):
        base = unquote(urlparse(landing).path)
        return pafs.LocalFileSystem(), base, "file://" + base
    arrow_uri = "s3://" + landing.split("://", 1)[1] if landing.startswith("s3a://") else landing
    fs, base = pafs.FileSystem.from_uri(arrow_uri)
    return fs, base.rstrip("/"), landing.rstrip("/")


def list_landing_files(landing: str, source: SourceConfig) -> list[LandingFile]:
    """The files of ``source`` under ``landing``, sorted by path (no content read).

    Example:
        >>> [f.rel_path for f in list_landing_files("/data/landing", cfg.sources["crm"])]
        ['crm/crm_contacts_2026-03-01.csv']                                  # doctest: +SKIP
    """
    fs, base, spark_base = landing_filesystem(landing)
    folder = f"{base}/{source.path.strip('/')}"
    if fs.get_file_info(folder).type != pafs.FileType.Directory:
        return []
    files = []
    for info in fs.get_file_info(pafs.FileSelector(folder, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        inside = info.path[len(folder) + 1 :]
        # Hidden and underscore names are temp files, markers or the generator's _truth.
        if any(part.startswith(("_", ".")) for part in inside.split("/")):
            continue
        if not fnmatch.fnmatch(inside, source.pattern):
            continue
        rel = f"{source.path.strip('/')}/{inside}"
        mtime_ns = info.mtime_ns if info.mtime_ns is not None else 0
        files.append(
            LandingFile(
                rel_path=rel,
                uri=f"{spark_base}/{rel}",
                fs_path=info.path,
                size=int(info.size or 0),
                mtime_us=int(mtime_ns) // 1000,
            )
        )
    return sorted(files, key=lambda f: f.rel_path)


def file_sha256(fs: pafs.FileSystem, landing_file: LandingFile) -> str:
    """SHA-256 of a landing file, streamed (the file is never held in memory).

    Example:
        >>> file_sha256(pafs.LocalFileSystem(), f)[:8]   # doctest: +SKIP
        '9f86d081'
    """
    digest = hashlib.sha256()
    with fs.open_input_stream(landing_file.fs_path) as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class KnownFile:
    """A file the manifest already holds."""

    rel_path: str
    size: int
    mtime_us: int
    sha256: str
    batch_id: int


@dataclass
class Batch:
    """The files one batch of one source ingests."""

    source: str
    batch_id: int
    files: list[tuple[LandingFile, str]]  # (file, sha256)
    recovered: bool = False


def plan_batches(
    source: str,
    listed: Sequence[LandingFile],
    known: Sequence[KnownFile],
    sha256_of: Any,
    *,
    open_batch: tuple[int, set[str]] | None = None,
) -> list[Batch]:
    """Decide which files are new and group them into batches (pure, no Spark).

    ``open_batch`` is ``(batch_id, files)`` of a batch that reached bronze or quarantine but not
    the manifest (a crash): its files are redone first under the same id, the rest go into the
    next one. ``sha256_of(file)`` is only called for files whose size or mtime is unknown.

    Example:
        >>> plan_batches("crm", [], [], sha256_of=None)
        []
    """
    by_stat = {(k.rel_path, k.size, k.mtime_us) for k in known}
    by_content = {(k.rel_path, k.sha256) for k in known}
    last = max((k.batch_id for k in known), default=0)
    new: list[tuple[LandingFile, str]] = []
    for f in listed:
        if (f.rel_path, f.size, f.mtime_us) in by_stat:
            continue
        digest = sha256_of(f)
        if (f.rel_path, digest) in by_content:
            continue  # touched, same bytes
        new.append((f, digest))

    batches: list[Batch] = []
    if open_batch is not None and open_batch[0] > last:
        open_id, open_files = open_batch
        redo = [(f, d) for f, d in new if f.rel_path in open_files]
        vanished = sorted(open_files - {f.rel_path for f, _ in redo})
        if vanished:
            raise CdpError(
                f"source {source}: batch {open_id} was interrupted and its file(s) "
                f"{', '.join(vanished)} are no longer in the landing folder unchanged",
                hint="put the files back as they were, or remove batch "
                f"{open_id} from bronze.{source} and quarantine.records, then re-run",
            )
        batches.append(Batch(source, open_id, redo, recovered=True))
        new = [(f, d) for f, d in new if f.rel_path not in open_files]
        last = open_id
    if new:
        batches.append(Batch(source, last + 1, new))
    return batches


# --- reading and classifying -----------------------------------------------------------------


def is_utf8(encoding: str) -> bool:
    """True when ``encoding`` names UTF-8 (checked natively in Spark, no Python UDF).

    Example:
        >>> is_utf8("UTF-8"), is_utf8("cp1251")
        (True, False)
    """
    return encoding.strip().lower() in _UTF8_NAMES


def read_lines(spark: SparkSession, uris: Sequence[str], fmt: str) -> DataFrame:
    """One row per physical line (or Parquet row) with its file, split and position.

    Columns: ``_bytes`` (the undecoded line as Spark holds it; for Parquet the row as JSON),
    ``_spark_path``, ``_block`` (start offset of the split) and ``_mid`` (a position that grows
    along the split). Parquet rows are rendered as JSON text so the same ``from_json`` path
    parses them.

    Example:
        >>> read_lines(spark, ["file:///landing/crm/a.csv"], "csv").columns
        ['_bytes', '_spark_path', '_block', '_mid']                           # doctest: +SKIP
    """
    if fmt == "parquet":
        df = spark.read.option("mergeSchema", "true").parquet(*uris)
        value = F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns]))
    else:
        df = spark.read.format("text").load(list(uris))
        value = F.col("value")
    return df.select(
        value.alias("_bytes"),
        F.col("_metadata.file_path").alias("_spark_path"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_mid"),
    )


def _decoder(encoding: str) -> Any:
    # Non-UTF-8 encodings: Spark's decode() accepts only a few charsets, so decode in Python
    # (Arrow-batched). An undecodable line becomes null and is quarantined as invalid_encoding.
    @F.pandas_udf(StringType())  # type: ignore[call-overload]
    def decode(raw: pd.Series) -> pd.Series:
        def one(value: bytes | None) -> str | None:
            if value is None:
                return None
            try:
                return bytes(value).decode(encoding)
            except UnicodeDecodeError:
                return None

        return raw.map(one)

    return decode


def with_decoded_text(df: DataFrame, encoding: str) -> DataFrame:
    """Add ``_text`` (decoded, BOM stripped), ``_valid_encoding`` and ``_raw_bytes``.

    For UTF-8 a line is valid when its bytes are valid UTF-8 and hold no U+FFFD (a
    replacement character means an earlier tool already failed to decode it).

    Example:
        >>> read_lines(spark, uris, "csv").transform(with_decoded_text, "utf-8")  # doctest: +SKIP
    """
    if is_utf8(encoding):
        valid = F.is_valid_utf8("_bytes") & ~F.col("_bytes").contains("\ufffd")
        text = F.make_valid_utf8("_bytes")
    else:
        decoded = _decoder(encoding)(F.col("_bytes").cast("binary"))
        df = df.withColumn("_decoded", decoded)
        valid = F.col("_decoded").isNotNull()
        text = F.coalesce(F.col("_decoded"), F.make_valid_utf8("_bytes"))
    return (
        df.withColumn("_valid_encoding", valid)
        .withColumn("_text", F.regexp_replace(text, "^\ufeff", ""))
        .withColumn("_raw_bytes", F.when(~valid, F.col("_bytes").cast("binary")))
        .drop("_decoded")
    )


def read_header(
    fs: pafs.FileSystem, landing_file: LandingFile, source: SourceConfig
) -> list[str] | None:
    """The header fields of a CSV file, or None if its first line names no declared column.

    Only the first line is read (on the driver). A file without a header is read in the
    declared column order.

    Example:
        >>> read_header(fs, f, cfg.sources["crm"])   # doctest: +SKIP
        ['contact_id', 'email', 'phone']
    """
    with fs.open_input_stream(landing_file.fs_path) as stream:
        head = stream.read(1024 * 1024)
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    text = first.decode(source.encoding, errors="replace").lstrip("\ufeff")
    fields = next(csv.reader(io.StringIO(text), delimiter=source.delimiter), [])
    names = [f.strip().lower() for f in fields]
    declared = set(source.column_names())
    return names if declared & set(names) else None


@dataclass
class FileInfo:
    """What the driver learned about one file while numbering its lines."""

    landing_file: LandingFile
    sha256: str
    header: list[str] | None = None
    lines_total: int = 0
    spark_paths: set[str] = field(default_factory=set)

    @property
    def header_lines(self) -> int:
        return 1 if self.header is not None and self.lines_total > 0 else 0


def _number_lines(spark: SparkSession, lines: DataFrame, infos: dict[str, FileInfo]) -> DataFrame:
    # Line numbers without shuffling the data: per (file, split) the smallest _mid and the row
    # count are aggregated (one small row per split), the driver turns them into each split's
    # first line number, and a broadcast join adds them back. Within a split, _mid grows by one
    # per row, so line = first line of the split + (_mid - smallest _mid).
    blocks = (
        lines.groupBy("_spark_path", "_block")
        .agg(F.min("_mid").alias("_min_mid"), F.count(F.lit(1)).alias("_n"))
        .collect()
    )
    by_file: dict[str, list[Any]] = {}
    for row in blocks:
        by_file.setdefault(row["_spark_path"], []).append(row)
    offsets = []
    for spark_path, rows in by_file.items():
        info = _match_file(spark_path, infos)
        info.spark_paths.add(spark_path)
        first_line = 1
        for row in sorted(rows, key=lambda r: r["_block"]):
            offsets.append(
                (spark_path, row["_block"], row["_min_mid"], first_line, info.landing_file.rel_path)
            )
            first_line += row["_n"]
        info.lines_total += first_line - 1
    schema = StructType(
        [
            StructField("_spark_path", StringType(), False),
            StructField("_block", LongType(), False),
            StructField("_min_mid", LongType(), False),
            StructField("_first_line", LongType(), False),
            StructField("_rel_path", StringType(), False),
        ]
    )
    offsets_df = spark.createDataFrame(offsets, schema)
    return (
        lines.join(F.broadcast(offsets_df), ["_spark_path", "_block"])
        .withColumn("_line", F.col("_first_line") + F.col("_mid") - F.col("_min_mid"))
        .drop("_min_mid", "_first_line", "_block", "_mid")
    )


def _match_file(spark_path: str, infos: dict[str, FileInfo]) -> FileInfo:
    # Spark reports URL-encoded URIs (file:/a%20b.csv); match them back on the decoded path.
    decoded = unquote(spark_path)
    matches = [rel for rel in infos if decoded.endswith("/" + rel)]
    if not matches:
        raise CdpError(f"Spark read a file that was not planned: {spark_path}")
    return infos[max(matches, key=len)]


def _csv_fields(df: DataFrame, source: SourceConfig, header: list[str] | None) -> DataFrame:
    # Parse with the file's own header order (a file may order or add columns differently),
    # then keep the declared columns; a declared column the file lacks is null.
    names = header if header is not None else source.column_names()
    declared = {c.name for c in source.columns}
    parsed_names = [n if n in declared else f"_extra_{i}" for i, n in enumerate(names)]
    ddl = ", ".join(f"`{n}` STRING" for n in [*parsed_names, CORRUPT])
    options = {
        "sep": source.delimiter,
        "quote": '"',
        "escape": '"',
        "mode": "PERMISSIVE",
        "columnNameOfCorruptRecord": CORRUPT,
    }
    parsed = F.from_csv(F.col("_text"), ddl, options)
    cols = [
        (parsed[c.name] if c.name in parsed_names else F.lit(None).cast("string")).alias(c.name)
        for c in source.columns
    ]
    header_text = source.delimiter.join(header) if header is not None else None
    return df.select(
        "*",
        *cols,
        parsed[CORRUPT].alias(CORRUPT),
        F.lit(header is not None).alias("_has_header"),
        F.lit(header_text).cast("string").alias("_header_text"),
    )


def _json_fields(df: DataFrame, source: SourceConfig) -> DataFrame:
    schema = StructType(
        [StructField(c.name, as_text_type(parse_type(c.type)), True) for c in source.columns]
        + [StructField(CORRUPT, StringType(), True)]
    )
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    parsed = F.from_json(F.col("_text"), schema, options)
    return df.select(
        "*",
        *[parsed[c.name].alias(c.name) for c in source.columns],
        parsed[CORRUPT].alias(CORRUPT),
        F.lit(False).alias("_has_header"),
        F.lit(None).cast("string").alias("_header_text"),
    )


def with_reason(df: DataFrame, source: SourceConfig) -> DataFrame:
    """Add ``_reason``: null for a bronze record, else the structural reason to quarantine it.

    The first failing check wins, in the order encoding, blank line, parse, repeated header,
    required fields (declared order).

    Example:
        >>> parsed.transform(with_reason, cfg.sources["crm"]).select("_reason")  # doctest: +SKIP
    """
    parse_reason = (
        "malformed_json" if source.format in ("jsonl", "parquet") else "wrong_column_count"
    )
    reason: Column = F.when(~F.col("_valid_encoding"), F.lit("invalid_encoding"))
    reason = reason.when(F.trim(F.col("_text")) == "", F.lit("blank_line"))
    reason = reason.when(F.col(CORRUPT).isNotNull(), F.lit(parse_reason))
    reason = reason.when(
        F.col("_has_header") & (F.col("_text") == F.col("_header_text")), F.lit("repeated_header")
    )
    for column in source.columns:
        if column.required:
            reason = reason.when(
                is_blank(F.col(column.name)), F.lit(f"missing_required:{column.name}")
            )
    return df.withColumn("_reason", reason)


def classify_batch(
    spark: SparkSession,
    fs: pafs.FileSystem,
    source_name: str,
    source: SourceConfig,
    batch: Batch,
) -> tuple[DataFrame, dict[str, FileInfo], DataFrame]:
    """Read the batch's files and classify every line (lazy, except small driver look-ups).

    Returns the classified lines (columns ``_rel_path``, ``_line``, ``_is_header``,
    ``_reason``, ``_text``, ``_raw_bytes`` and the declared columns as text) and, per file,
    the line counts taken while numbering the lines (independent of the classification), and
    the cached lines the caller must ``unpersist()`` when the writes are done.

    Example:
        >>> df, infos, cached = classify_batch(spark, fs, "crm", src, batch)  # doctest: +SKIP
    """
    infos = {f.rel_path: FileInfo(f, digest) for f, digest in batch.files}
    if source.format == "csv":
        for info in infos.values():
            info.header = read_header(fs, info.landing_file, source)

    lines = read_lines(spark, [f.uri for f, _ in batch.files], source.format)
    # Cached: the numbering pass and the classification pass must see the same rows with the
    # same _mid, and the data is scanned once instead of twice.
    lines = cache_records(lines)
    numbered = _number_lines(spark, lines, infos).transform(with_decoded_text, source.encoding)

    if source.format == "csv":
        groups: dict[tuple[str, ...] | None, list[str]] = {}
        for rel, info in infos.items():
            key = tuple(info.header) if info.header is not None else None
            groups.setdefault(key, []).append(rel)
        parts = [
            _csv_fields(
                numbered.where(F.col("_rel_path").isin(rels)),
                source,
                list(key) if key is not None else None,
            )
            for key, rels in groups.items()
        ]
        parsed = parts[0]
        for part in parts[1:]:
            parsed = parsed.unionByName(part)
    else:
        parsed = _json_fields(numbered, source)

    classified = parsed.withColumn(
        "_is_header", F.col("_has_header") & (F.col("_line") == 1)
    ).transform(with_reason, source)
    return classified, infos, lines


def build_bronze(
    classified: DataFrame,
    source: SourceConfig,
    *,
    batch_id: int,
    run_date: date,
    ingested_at: datetime,
) -> DataFrame:
    """The bronze rows of a classified batch, in the bronze schema.

    Example:
        >>> build_bronze(classified, src, batch_id=1, run_date=d, ingested_at=t)  # doctest: +SKIP
    """
    rows = classified.where(~F.col("_is_header") & F.col("_reason").isNull())
    out = rows.select(
        *[F.col(c.name) for c in source.columns],
        F.col("_text").alias("_raw"),
        F.col("_rel_path").alias("_source_file"),
        F.col("_line"),
        F.lit(batch_id).cast("long").alias("_batch_id"),
        F.lit(run_date).alias("_run_date"),
        F.lit(ingested_at).cast("timestamp").alias("_ingested_at"),
    )
    return conform(out, bronze_schema(source), "bronze")


def build_quarantine(
    classified: DataFrame,
    source_name: str,
    *,
    batch_id: int,
    run_date: date,
    quarantined_at: datetime,
) -> DataFrame:
    """The quarantined rows of a classified batch, in the quarantine schema.

    Example:
        >>> build_quarantine(classified, "crm", batch_id=1, run_date=d,
        ...                  quarantined_at=t)                             # doctest: +SKIP
    """
    rows = classified.where(~F.col("_is_header") & F.col("_reason").isNotNull())
    out = rows.select(
        F.lit(source_name).alias("source"),
        F.lit("bronze").alias("layer"),
        F.col("_reason").alias("reason"),
        F.lit(batch_id).cast("long").alias("batch_id"),
        F.col("_rel_path").alias("source_file"),
        F.col("_line").alias("line"),
        F.col("_text").alias("raw"),
        F.col("_raw_bytes").alias("raw_bytes"),
        F.lit(run_date).alias("run_date"),
        F.lit(quarantined_at).cast("timestamp").alias("quarantined_at"),
    )
    return conform(out, QUARANTINE_SCHEMA, QUARANTINE_TABLE)


# --- writes (module-level so a test can make one of them fail, simulating a crash) -----------


def ensure_table(
    lake: Lakehouse, table: str, schema: StructType, *, partition_by: Sequence[str] = ()
) -> None:
    """Create ``table`` with ``schema`` unless it exists (tolerates a concurrent creator).

    Example:
        >>> ensure_table(lake, "ops.ingest_manifest", MANIFEST_SCHEMA)   # doctest: +SKIP
    """
    if lake.exists(table):
        return
    try:
        lake.create(table, schema, partition_by=tuple(partition_by))
    except Exception:
        # Another job (a parallel per-source ingest) may have created it in the meantime.
        if not lake.exists(table):
            raise


def write_bronze(lake: Lakehouse, source_name: str, df: DataFrame, batch_id: int) -> WriteResult:
    """Append a batch to ``bronze.<source>``; a retried batch is skipped by its Txn.

    Example:
        >>> write_bronze(lake, "crm", bronze_rows, batch_id=4).rows_written   # doctest: +SKIP
        1200
    """
    return lake.append(bronze_table(source_name), df, txn=Txn(f"ingest:{source_name}", batch_id))


def write_quarantine(lake: Lakehouse, source_name: str, df: DataFrame, batch_id: int) -> None:
    """Append a batch's rejects to ``quarantine.records``; idempotent by its Txn.

    Example:
        >>> write_quarantine(lake, "crm", rejects, batch_id=4)   # doctest: +SKIP
    """
    lake.append(QUARANTINE_TABLE, df, txn=Txn(f"ingest:{source_name}", batch_id))


def write_manifest(lake: Lakehouse, source_name: str, df: DataFrame, batch_id: int) -> None:
    """Record the batch's files in ``ops.ingest_manifest``: the last write of a batch.

    Example:
        >>> write_manifest(lake, "crm", manifest_rows, batch_id=4)   # doctest: +SKIP
    """
    lake.append(MANIFEST_TABLE, df, txn=Txn(f"ingest:{source_name}", batch_id))


# --- the manifest and the open batch ---------------------------------------------------------


def read_known_files(lake: Lakehouse) -> dict[str, list[KnownFile]]:
    """The files the manifest holds, by source (one small row per file ever ingested).

    Read once per run for every source: the manifest is small and each read is a Spark job.

    Example:
        >>> read_known_files(lake)["crm"][0].batch_id   # doctest: +SKIP
        1
    """
    if not lake.exists(MANIFEST_TABLE):
        return {}
    rows = (
        lake.read(MANIFEST_TABLE)
        .select(
            "source",
            "file_path",
            "file_size",
            F.unix_micros("file_mtime").alias("mtime_us"),
            "content_sha256",
            "batch_id",
        )
        .collect()
    )
    known: dict[str, list[KnownFile]] = {}
    for r in rows:
        known.setdefault(r[0], []).append(KnownFile(r[1], int(r[2]), int(r[3]), r[4], int(r[5])))
    return known


def _bronze_and_quarantine(
    lake: Lakehouse, source_name: str, batch_filter: Column
) -> DataFrame | None:
    # (batch_id, file, reason) of the source's rows in bronze (reason null) and in quarantine
    # (bronze layer), as one DataFrame so a single Spark job reads both.
    parts: list[DataFrame] = []
    if lake.exists(bronze_table(source_name)):
        parts.append(
            lake.read(bronze_table(source_name)).select(
                F.col("_batch_id").alias("batch_id"),
                F.col("_source_file").alias("file"),
                F.lit(None).cast("string").alias("reason"),
            )
        )
    if lake.exists(QUARANTINE_TABLE):
        parts.append(
            lake.read(QUARANTINE_TABLE)
            .where((F.col("source") == source_name) & (F.col("layer") == "bronze"))
            .select("batch_id", F.col("source_file").alias("file"), "reason")
        )
    if not parts:
        return None
    union = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    return union.where(batch_filter)


def find_open_batch(
    lake: Lakehouse, source_name: str, last_batch: int
) -> tuple[int, set[str]] | None:
    """A batch that reached bronze or quarantine but not the manifest, with its files.

    Bronze is partitioned by ``_batch_id``, so in the normal case (nothing above the
    manifest's last batch) this reads no data file.

    Example:
        >>> find_open_batch(lake, "crm", last_batch=3)   # doctest: +SKIP
        (4, {'crm/crm_contacts_2026-03-04.csv'})
    """
    rows = _bronze_and_quarantine(lake, source_name, F.col("batch_id") > last_batch)
    if rows is None:
        return None
    found: dict[int, set[str]] = {}
    for row in rows.select("batch_id", "file").distinct().collect():
        found.setdefault(int(row["batch_id"]), set()).add(row["file"])
    if not found:
        return None
    open_id = max(found)
    return open_id, found[open_id]


# --- one batch, one source, the stage --------------------------------------------------------


@dataclass
class BatchResult:
    """The outcome of one batch, one row of the stage report."""

    source: str
    batch_id: int
    files: int
    read: int
    bronze: int
    quarantined: int
    reconciled: bool
    recovered: bool
    by_reason: dict[str, int]

    def row(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "batch_id": self.batch_id,
            "files": self.files,
            "read": self.read,
            "bronze": self.bronze,
            "quarantined": self.quarantined,
            "reconciled": self.reconciled,
            "recovered": self.recovered,
        }


def _table_counts(
    lake: Lakehouse, source_name: str, batch_id: int
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    # Count what actually landed, by reading the tables back: this is what makes the
    # reconciliation catch a lost or doubled write.
    bronze_counts: dict[str, int] = {}
    quarantine_counts: dict[str, dict[str, int]] = {}
    rows = _bronze_and_quarantine(lake, source_name, F.col("batch_id") == batch_id)
    if rows is None:
        return bronze_counts, quarantine_counts
    for row in rows.groupBy("file", "reason").count().collect():
        if row["reason"] is None:
            bronze_counts[row["file"]] = int(row["count"])
        else:
            quarantine_counts.setdefault(row["file"], {})[row["reason"]] = int(row["count"])
    return bronze_counts, quarantine_counts


def ingest_batch(
    ctx: RunContext, source_name: str, batch: Batch, fs: pafs.FileSystem
) -> BatchResult:
    """Read, classify, write, reconcile and record one batch of one source.

    Example:
        >>> ingest_batch(ctx, "crm", batch, fs).reconciled   # doctest: +SKIP
        True
    """
    source = ctx.cfg.sources[source_name]
    spark, lake = ctx.spark, ctx.lake
    now = datetime.now(tz=UTC).replace(microsecond=0)
    infos: dict[str, FileInfo] = {f.rel_path: FileInfo(f, d) for f, d in batch.files}
    readable = [(f, d) for f, d in batch.files if f.size > 0]
    if readable:
        classified, read_infos, cached = classify_batch(
            spark, fs, source_name, source, Batch(source_name, batch.batch_id, readable)
        )
        infos.update(read_infos)
        # Cached too: bronze and quarantine are two writes of one parse; counting the two
        # sides materialises it, after which the raw lines are no longer needed.
        classified = cache_records(classified.drop("_bytes", "_spark_path"))
        try:
            sides = {
                r["good"]: int(r["count"])
                for r in classified.where(~F.col("_is_header"))
                .groupBy(F.col("_reason").isNull().alias("good"))
                .count()
                .collect()
            }
            cached.unpersist()
            # An empty side is not written at all: a commit is what marks a batch as started
            # (find_open_batch looks for rows), so a commit without rows must not exist.
            if sides.get(True, 0):
                write_bronze(
                    lake,
                    source_name,
                    build_bronze(
                        classified,
                        source,
                        batch_id=batch.batch_id,
                        run_date=ctx.run_date,
                        ingested_at=now,
                    ),
                    batch.batch_id,
                )
            if sides.get(False, 0):
                write_quarantine(
                    lake,
                    source_name,
                    build_quarantine(
                        classified,
                        source_name,
                        batch_id=batch.batch_id,
                        run_date=ctx.run_date,
                        quarantined_at=now,
                    ),
                    batch.batch_id,
                )
        finally:
            cached.unpersist()
            classified.unpersist()

    bronze_counts, quarantine_counts = _table_counts(lake, source_name, batch.batch_id)
    counts = [
        FileCounts(
            rel,
            read=info.lines_total - info.header_lines,
            bronze=bronze_counts.get(rel, 0),
            quarantined=sum(quarantine_counts.get(rel, {}).values()),
        )
        for rel, info in infos.items()
    ]
    check_reconciled(source_name, batch.batch_id, counts)

    manifest_rows = [
        (
            source_name,
            rel,
            info.landing_file.size,
            info.landing_file.mtime,
            info.sha256,
            batch.batch_id,
            info.lines_total,
            info.header_lines,
            c.read,
            c.bronze,
            c.quarantined,
            ctx.run_date,
            now,
        )
        for (rel, info), c in zip(infos.items(), counts, strict=True)
    ]
    write_manifest(
        lake, source_name, spark.createDataFrame(manifest_rows, MANIFEST_SCHEMA), batch.batch_id
    )
    by_reason: dict[str, int] = {}
    for per_file in quarantine_counts.values():
        for reason, n in per_file.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    return BatchResult(
        source=source_name,
        batch_id=batch.batch_id,
        files=len(infos),
        read=sum(c.read for c in counts),
        bronze=sum(c.bronze for c in counts),
        quarantined=sum(c.quarantined for c in counts),
        reconciled=True,
        recovered=batch.recovered,
        by_reason=by_reason,
    )


def ingest_source(
    ctx: RunContext, source_name: str, known: Sequence[KnownFile] | None = None
) -> list[BatchResult]:
    """Ingest the new files of one source (normally one batch; two after a crash).

    Example:
        >>> [r.bronze for r in ingest_source(ctx, "crm")]   # doctest: +SKIP
        [1200]
    """
    source = ctx.cfg.sources[source_name]
    lake = ctx.lake
    ensure_table(lake, bronze_table(source_name), bronze_schema(source), partition_by=["_batch_id"])
    fs, _, _ = landing_filesystem(ctx.cfg.landing_dir)
    listed = list_landing_files(ctx.cfg.landing_dir, source)
    if known is None:
        known = read_known_files(lake).get(source_name, [])
    last = max((k.batch_id for k in known), default=0)
    open_batch = find_open_batch(lake, source_name, last)
    batches = plan_batches(
        source_name, listed, known, lambda f: file_sha256(fs, f), open_batch=open_batch
    )
    if not batches:
        ctx.progress(f"ingest {source_name}: no new files ({len(listed)} listed)")
    results = []
    for batch in batches:
        ctx.progress(
            f"ingest {source_name}: batch {batch.batch_id}, {len(batch.files)} file(s)"
            + (" (redo of an interrupted batch)" if batch.recovered else "")
        )
        results.append(ingest_batch(ctx, source_name, batch, fs))
    return results


def selected_sources(cfg: CdpConfig, sources: Iterable[str] | None) -> list[str]:
    """The source names to run, in config order; unknown names are a clear error.

    Example:
        >>> selected_sources(cfg, ["crm"])   # doctest: +SKIP
        ['crm']
    """
    if not cfg.sources:
        raise CdpError("no sources are declared", hint="declare the sources in conf/sources.yaml")
    if sources is None:
        return list(cfg.sources)
    wanted = list(sources)
    unknown = [s for s in wanted if s not in cfg.sources]
    if unknown:
        raise CdpError(
            f"unknown source(s): {', '.join(unknown)}",
            hint=f"declared sources: {', '.join(cfg.sources)}",
        )
    return [s for s in cfg.sources if s in wanted]


def run_ingest(ctx: RunContext, sources: Iterable[str] | None = None) -> StageReport:
    """The ``ingest`` stage: new landing files of every (or the given) source into bronze.

    Example:
        >>> report = run_ingest(ctx, sources=["crm"])   # doctest: +SKIP
        >>> report.rows[0]["read"] == report.rows[0]["bronze"] + report.rows[0]["quarantined"]
        True
    """
    names = selected_sources(ctx.cfg, sources)
    ensure_table(ctx.lake, MANIFEST_TABLE, MANIFEST_SCHEMA)
    ensure_table(ctx.lake, QUARANTINE_TABLE, QUARANTINE_SCHEMA, partition_by=["source"])
    known = read_known_files(ctx.lake)
    results: list[BatchResult] = []
    for name in names:
        results.extend(ingest_source(ctx, name, known.get(name, [])))
    by_reason: dict[str, int] = {}
    for r in results:
        for reason, n in r.by_reason.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    figures = {
        "sources": len(names),
        "batches": len(results),
        "files": sum(r.files for r in results),
        "read": sum(r.read for r in results),
        "bronze": sum(r.bronze for r in results),
        "quarantined": sum(r.quarantined for r in results),
        "quarantine_by_reason": dict(sorted(by_reason.items())),
    }
    return StageReport(stage="ingest", figures=figures, rows=[r.row() for r in results])
