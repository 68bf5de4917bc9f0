"""Files of the delta-rs engine: where they are, how Spark and delta-rs name them, and the
Delta ``add`` actions built from their Parquet footers.

Only file listings and Parquet footers are read in the driver, never the data.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake.transaction import AddAction
from pyspark.sql import types as T

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
# Delta writers index the first 32 columns by default (delta.dataSkippingNumIndexedCols).
STATS_COLUMNS = 32
# Longer strings only get a (truncated) min: a truncated max would be wrong.
STATS_STRING_PREFIX = 32
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)?/*")
_HEX = re.compile(r"%([0-9A-Fa-f]{2})")


def is_local(uri: str) -> bool:
    """True for plain paths and file: URIs.

    Example:
        >>> is_local("/data/lake"), is_local("s3a://bucket/lake")
        (True, False)
    """
    return "://" not in uri and not uri.startswith("file:")


def normalize_root(root: str) -> str:
    """Absolute local path for local roots (Spark and delta-rs resolve relative paths
    differently), the URI unchanged otherwise.

    Example:
        >>> normalize_root("file:///tmp/lake/")
        '/tmp/lake'
    """
    if root.startswith("file:"):
        root = "/" + _SCHEME.sub("", root)
    if "://" not in root:
        root = os.path.abspath(os.path.expanduser(root))
    return root.rstrip("/") or "/"


def native_uri(uri: str) -> str:
    """The URI delta-rs and pyarrow understand: Hadoop's s3a:// and s3n:// are s3:// there.

    Example:
        >>> native_uri("s3a://bucket/lake/bronze/crm")
        's3://bucket/lake/bronze/crm'
    """
    for hadoop in ("s3a://", "s3n://"):
        if uri.startswith(hadoop):
            return "s3://" + uri[len(hadoop) :]
    return uri


def path_key(path: str, *, encoded: bool) -> str:
    """A file's identity whatever the spelling: no scheme, no leading slashes, decoded.

    Spark reports ``file:/t/a%20b`` (URI, encoded), delta-rs ``/t/a b`` (decoded); both
    become ``t/a b``. ``s3a://b/k`` and ``s3://b/k`` both become ``b/k``.

    Example:
        >>> path_key("file:/t/a%20b", encoded=True) == path_key("/t/a b", encoded=False)
        True
    """
    key = _SCHEME.sub("", path)
    return unquote(key) if encoded else key


def hive_unescape(text: str) -> str:
    """Undo Spark's escaping of partition folder names (``%3A`` -> ``:``).

    Example:
        >>> hive_unescape("10%3A30")
        '10:30'
    """
    return _HEX.sub(lambda m: chr(int(m.group(1), 16)), text)


def partition_string(value: Any) -> str | None:
    """The Delta log's string form of a partition value that delta-rs returned typed.

    Example:
        >>> partition_string(dt.date(2026, 1, 1)), partition_string(True), partition_string(7)
        ('2026-01-01', 'true', '7')
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def hive_partition_values(rel_dir: str, partition_by: list[str]) -> dict[str, str | None] | None:
    """Partition values spelled by the last folders of ``rel_dir`` (``a=1/b=x``), or None when
    the folders do not name exactly ``partition_by`` in order.

    Example:
        >>> hive_partition_values("part-1/run_date=2026-01-01", ["run_date"])
        {'run_date': '2026-01-01'}
        >>> hive_partition_values("elsewhere", ["run_date"]) is None
        True
    """
    if not partition_by:
        return {}
    segments = [s for s in rel_dir.split("/") if s]
    if len(segments) < len(partition_by):
        return None
    values: dict[str, str | None] = {}
    for segment, column in zip(segments[-len(partition_by) :], partition_by, strict=True):
        name, eq, raw = segment.partition("=")
        if not eq or hive_unescape(name) != column:
            return None
        values[column] = None if raw == HIVE_NULL else hive_unescape(raw)
    # A k=v folder above the partition folders would be read by Spark as one more column.
    if len(segments) > len(partition_by) and "=" in segments[-len(partition_by) - 1]:
        return None
    return values


@dataclass(frozen=True)
class Storage:
    """A pyarrow file system and the base path of the lakehouse root inside it."""

    fs: pafs.FileSystem
    base: str
    root: str

    @classmethod
    def for_root(cls, root: str) -> Storage:
        if is_local(root):
            return cls(pafs.LocalFileSystem(), root, root)
        fs, base = pafs.FileSystem.from_uri(native_uri(root))
        return cls(fs, base.rstrip("/"), root)

    def native(self, uri: str) -> str:
        """Path inside ``fs`` of a URI under the root."""
        if not uri.startswith(self.root):
            raise ValueError(f"{uri} is not under the lakehouse root {self.root}")
        return self.base + uri[len(self.root) :]

    def list_files(self, uri: str) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.native(uri), recursive=True, allow_not_found=True)
        return [i for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File]

    def file_times(self, uri: str) -> dict[str, int]:
        """Modification time (epoch ms) of each file directly in ``uri``, by name."""
        selector = pafs.FileSelector(self.native(uri), recursive=False, allow_not_found=True)
        return {
            i.base_name: i.mtime_ns // 1_000_000
            for i in self.fs.get_file_info(selector)
            if i.type == pafs.FileType.File and i.mtime_ns is not None
        }

    def list_dirs(self, uri: str) -> list[str]:
        selector = pafs.FileSelector(self.native(uri), recursive=False, allow_not_found=True)
        return sorted(
            i.base_name
            for i in self.fs.get_file_info(selector)
            if i.type == pafs.FileType.Directory
        )

    def delete_dir(self, uri: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_dir(self.native(uri))

    def delete_files(self, paths: Iterable[str]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                self.fs.delete_file(path)

    def remove_empty_dirs(self, uri: str, *, keep: Iterable[str] = ()) -> None:
        """Delete the folders below ``uri`` that hold no file (left behind by vacuum)."""
        base = self.native(uri)
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        kept = {f"{base}/{k}" for k in keep}
        dirs = {i.path for i in infos if i.type == pafs.FileType.Directory}
        busy: set[str] = set()
        for info in infos:
            if info.type == pafs.FileType.File:
                parent = os.path.dirname(info.path)
                while parent.startswith(base + "/") and parent not in busy:
                    busy.add(parent)
                    parent = os.path.dirname(parent)
        for path in sorted(dirs - busy, key=len, reverse=True):
            if not any(path == k or path.startswith(k + "/") for k in kept):
                with contextlib.suppress(FileNotFoundError, OSError):
                    self.fs.delete_dir(path)


def build_add_actions(
    storage: Storage,
    table_uri: str,
    folder: str,
    schema: T.StructType,
    partition_by: list[str],
) -> tuple[list[AddAction], int]:
    """The ``add`` actions for the Parquet files Spark wrote into ``<table>/<folder>``, and
    their total row count.

    Spark's side files are dropped on the way: ``.crc`` checksums (local file system) and
    ``_SUCCESS`` markers, and so are empty Parquet files (an empty DataFrame still writes one).
    Footers are read in parallel threads: it is I/O, and pyarrow releases the GIL.
    """
    infos = storage.list_files(f"{table_uri}/{folder}")
    prefix = storage.native(table_uri) + "/"
    side = [i.path for i in infos if not i.base_name.endswith(".parquet")]
    data = [
        i
        for i in infos
        if i.base_name.endswith(".parquet") and not i.base_name.startswith((".", "_"))
    ]
    storage.delete_files(side)
    if not data:
        return [], 0
    with ThreadPoolExecutor(max_workers=min(16, len(data))) as pool:
        footers = list(pool.map(lambda i: pq.read_metadata(i.path, filesystem=storage.fs), data))
    data_fields = [f for f in schema.fields if f.name not in partition_by]
    actions: list[AddAction] = []
    rows = 0
    empty: list[str] = []
    for info, footer in zip(data, footers, strict=True):
        if footer.num_rows == 0:
            empty.append(info.path)
            continue
        rel = info.path[len(prefix) :]
        values = hive_partition_values(os.path.dirname(rel)[len(folder) :], partition_by)
        if values is None:
            raise RuntimeError(f"unexpected partition folders in {rel} for {partition_by}")
        mtime = info.mtime_ns // 1_000_000 if info.mtime_ns else 0
        actions.append(
            AddAction(
                path=rel,  # decoded; delta-rs percent-encodes it in the log
                size=info.size or 0,
                partition_values=values,
                modification_time=mtime,
                data_change=True,
                stats=json.dumps(file_stats(footer, data_fields)),
            )
        )
        rows += footer.num_rows
    storage.delete_files(empty)
    return actions, rows


def file_stats(footer: pq.FileMetaData, fields: list[T.StructField]) -> dict[str, Any]:
    """Delta file statistics from a Parquet footer: numRecords, and nullCount / minValues /
    maxValues for the top-level columns where they are exact and cheap.

    Min/max are given for integers, dates, timestamps and strings only: float statistics
    ignore NaN (which Spark orders above every number), so they could prune wrongly.
    """
    stats: dict[str, Any] = {"numRecords": footer.num_rows}
    leaves = {footer.schema.column(i).path: i for i in range(footer.num_columns)}
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for field in fields[:STATS_COLUMNS]:
        index = leaves.get(field.name)
        if index is None or "." in field.name:
            continue  # nested column: no top-level statistics
        column = _column_stats(footer, index, field.dataType)
        if column is None:
            continue
        null_count, low, high = column
        nulls[field.name] = null_count
        if low is not None:
            mins[field.name] = low
        if high is not None:
            maxs[field.name] = high
    if nulls:
        stats["nullCount"] = nulls
    if mins:
        stats["minValues"] = mins
    if maxs:
        stats["maxValues"] = maxs
    return stats


def _column_stats(
    footer: pq.FileMetaData, index: int, dtype: T.DataType
) -> tuple[int, Any, Any] | None:
    null_count = 0
    low: Any = None
    high: Any = None
    exact = isinstance(dtype, (T.StringType | T.DateType | T.TimestampType, T.IntegralType))
    for g in range(footer.num_row_groups):
        group = footer.row_group(g)
        st = group.column(index).statistics
        if st is None or not st.has_null_count:
            return None
        null_count += st.null_count
        if not exact or st.null_count == group.num_rows:
            continue  # nothing to compare in an all-null row group
        if not st.has_min_max:
            exact = False
            continue
        low = st.min if low is None else min(low, st.min)
        high = st.max if high is None else max(high, st.max)
    if not exact or low is None:
        return null_count, None, None
    return null_count, *_render_bounds(dtype, low, high)


def _render_bounds(dtype: T.DataType, low: Any, high: Any) -> tuple[Any, Any]:
    if isinstance(dtype, T.StringType):
        # A prefix is still a lower bound; a cut maximum would not be an upper bound.
        return low[:STATS_STRING_PREFIX], (high if len(high) <= STATS_STRING_PREFIX else None)
    if isinstance(dtype, T.DateType):
        return low.isoformat(), high.isoformat()
    if isinstance(dtype, T.TimestampType):
        # Delta stores millisecond bounds: round the minimum down and the maximum up.
        return _millis(low, round_up=False), _millis(high, round_up=True)
    return int(low), int(high)


def _millis(value: dt.datetime, *, round_up: bool) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    micros = (value - epoch) // dt.timedelta(microseconds=1)
    millis = -(-micros // 1000) if round_up else micros // 1000
    stamp = epoch + dt.timedelta(milliseconds=millis)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def spark_file_key(file_uri: str) -> str:
    """The :func:`path_key` of a path Spark reports in ``_metadata.file_path``."""
    return path_key(file_uri, encoded=True)


def log_file_key(table_uri: str, rel: str) -> str:
    """The :func:`path_key` of a file named in the log (``rel`` decoded, relative)."""
    return path_key(f"{table_uri}/{rel}", encoded=False)


def decode_log_path(path: str) -> str:
    """The log stores paths percent-encoded; files on disk and AddAction paths are decoded."""
    return unquote(path)
