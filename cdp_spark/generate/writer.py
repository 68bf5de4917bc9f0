r"""Writing records to files: CSV and JSON-lines rendering, malformed records, shard parts.

A shard produces *chunks* (the rows of one file for one day). The :class:`ShardWriter` corrupts
a ``malformed_rate`` share of them (kind chosen per record, see ``schema.MALFORMED_KINDS``),
encodes them and appends them either straight to the final files (one process) or to the
shard's own part files that the parent process concatenates in shard order (several
processes). Both paths give the same bytes.

Example:
    >>> _csv_text([["a", "b,c", "x"]])
    'a,"b,c",x\n'
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cdp_spark.generate.population import Plan
from cdp_spark.generate.schema import (
    BAD_DATE,
    BAD_ENCODING,
    CP1251_FILE,
    NEGATIVE_AMOUNT,
    TRUTH_MALFORMED,
    TRUTH_RECORDS,
    WRONG_COLUMN_COUNT,
    SourceSpec,
)

# What broken dates look like in the wild: impossible days, other formats, placeholders.
BAD_DATES = (
    "2026-02-30T10:00:00+03:00", "2026-13-01T25:61:00+03:00", "31/02/2026", "not a date",
    "0000-00-00 00:00:00", "2026-01-0", "1970-01-01T00:00:00", "yesterday",
)  # fmt: skip


@dataclass
class CsvChunk:
    """Rows (lists of strings, "" for missing) for one CSV file."""

    spec: SourceSpec
    path: str
    rows: list[list[str]]
    keys: list[str]


@dataclass
class JsonChunk:
    """JSON lines for one file, rendered late so malformed values can be put in first.

    ``cols`` holds the columns the malformed kinds touch (the time column and the amount
    column, as text); ``render`` turns them, with whatever else it captured, into lines.
    """

    spec: SourceSpec
    path: str
    cols: dict[str, list[str]]
    render: Callable[[dict[str, list[str]]], list[str]]
    keys: list[str]


Chunk = CsvChunk | JsonChunk


def _csv_text(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def header_bytes(columns: tuple[str, ...] | list[str]) -> bytes:
    """The CSV header line for ``columns``.

    Example:
        >>> header_bytes(("email", "event"))
        b'email,event\\n'
    """
    return (",".join(columns) + "\n").encode("ascii")


@dataclass
class ShardResult:
    """What one shard wrote: files (relative paths), rows per file, malformed counts."""

    shard: int
    files: list[str] = field(default_factory=list)
    rows: Counter[str] = field(default_factory=Counter)
    malformed: Counter[tuple[str, str]] = field(default_factory=Counter)  # (source, kind)
    headers: dict[str, bytes] = field(default_factory=dict)  # CSV header of each file


class ShardWriter:
    """Appends a shard's chunks to files under ``root`` (direct) or its part folder.

    Example:
        >>> import tempfile
        >>> from cdp_spark.generate.schema import SOURCES
        >>> spec = SOURCES["email_events"]
        >>> row = ["a@b.c", "c1", "sent", "2026-01-01 10:00:00"]
        >>> chunk = CsvChunk(spec, "email/x.csv", [row], ["a@b.c"])
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     w = ShardWriter(Path(tmp), Plan.make(seed=1, customers=1, days=1), 0, direct=True)
        ...     w.write(chunk, t=0, k=0)
        ...     (Path(tmp) / "email/x.csv").read_text().splitlines()[0]
        'email,campaign_id,event,event_at'
    """

    def __init__(self, root: Path, plan: Plan, shard: int, *, direct: bool) -> None:
        self.root = root
        self.base = root if direct else root / ".parts" / f"{shard:05d}"
        self.direct = direct
        self.plan = plan
        self.shard = shard
        self.result = ShardResult(shard)
        self._headers = self.result.headers
        self._malformed_rows: list[list[str]] = []

    def _append(self, path: str, data: bytes, header: bytes | None) -> None:
        target = self.base / path
        if path not in self._headers:
            self._headers[path] = header or b""
            self.result.files.append(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if self.direct and header and not target.exists():
                target.write_bytes(header)
        with target.open("ab") as fh:
            fh.write(data)

    def write(self, chunk: Chunk, t: int, k: int) -> None:
        """Corrupt, encode and append one chunk (``t`` day, ``k`` chunk number that day)."""
        n = len(chunk.keys)
        if n == 0:
            return
        spec = chunk.spec
        rng = np.random.default_rng([self.plan.seed, 4, self.shard, t, k])
        chosen = np.flatnonzero(rng.random(n) < self.plan.malformed_rate)
        kinds = spec.malformed_kinds
        kind_idx = rng.integers(0, len(kinds), len(chosen)).tolist()
        detail = rng.random(len(chosen)).tolist()
        encoding = "cp1251" if chunk.path == self.plan.cp1251_file else "utf-8"
        other = "utf-8" if encoding == "cp1251" else "cp1251"
        if isinstance(chunk, CsvChunk):
            data = self._csv(chunk, chosen.tolist(), kind_idx, detail, encoding, other)
            header = header_bytes(spec.columns)
        else:
            data = self._json(chunk, chosen.tolist(), kind_idx, detail, encoding)
            header = None
        self.result.rows[chunk.path] += n
        self._append(chunk.path, data, header)

    def _mark(self, spec: SourceSpec, path: str, kind: str, key: str) -> None:
        self.result.malformed[(spec.name, kind)] += 1
        self._malformed_rows.append([spec.name, path, kind, key])

    def _csv(
        self, chunk: CsvChunk, chosen: list[int], kind_idx: list[int], detail: list[float],
        encoding: str, other: str,
    ) -> bytes:  # fmt: skip
        spec, rows = chunk.spec, chunk.rows
        t_col = spec.columns.index(spec.time_column)
        a_col = spec.columns.index(spec.amount_column) if spec.amount_column else -1
        recoded: list[int] = []
        for i, kc, u in zip(chosen, kind_idx, detail, strict=True):
            kind = spec.malformed_kinds[kc]
            row = rows[i]
            if kind == BAD_ENCODING and "".join(row).isascii():
                kind = WRONG_COLUMN_COUNT  # nothing for a wrong code page to break
            if kind == BAD_DATE:
                row[t_col] = BAD_DATES[int(u * len(BAD_DATES))]
            elif kind == NEGATIVE_AMOUNT:
                row[a_col] = "-" + row[a_col].lstrip("-")
            elif kind == WRONG_COLUMN_COUNT:
                rows[i] = row[:-2] if u < 0.5 else [*row, "x" if u < 0.75 else ""]
            else:
                recoded.append(i)
            self._mark(spec, chunk.path, kind, chunk.keys[i])
        if encoding == "cp1251":
            skip = set(recoded)
            for i, row in enumerate(rows):
                if i not in skip and not "".join(row).isascii():
                    self._mark(spec, chunk.path, CP1251_FILE, chunk.keys[i])
        out: list[bytes] = []
        start = 0
        for i in sorted(recoded):
            out.append(_csv_text(rows[start:i]).encode(encoding, errors="replace"))
            out.append(_csv_text([rows[i]]).encode(other, errors="replace"))
            start = i + 1
        out.append(_csv_text(rows[start:]).encode(encoding, errors="replace"))
        return b"".join(out)

    def _json(
        self, chunk: JsonChunk, chosen: list[int], kind_idx: list[int], detail: list[float],
        encoding: str,
    ) -> bytes:  # fmt: skip
        spec = chunk.spec
        truncated: list[tuple[int, float]] = []
        for i, kc, u in zip(chosen, kind_idx, detail, strict=True):
            kind = spec.malformed_kinds[kc]
            if kind == BAD_DATE:
                chunk.cols[spec.time_column][i] = BAD_DATES[int(u * len(BAD_DATES))]
            elif kind == NEGATIVE_AMOUNT:
                assert spec.amount_column
                col = chunk.cols[spec.amount_column]
                col[i] = "-" + col[i].lstrip("-")
            else:
                truncated.append((i, u))
            self._mark(spec, chunk.path, kind, chunk.keys[i])
        lines = chunk.render(chunk.cols)
        for i, u in truncated:
            line = lines[i]
            lines[i] = line[: max(1, int(len(line) * (0.2 + 0.7 * u)))]  # cut mid-record
        lines.append("")
        return "\n".join(lines).encode(encoding, errors="replace")

    def write_rows(self, path: str, columns: tuple[str, ...], rows: list[list[str]]) -> None:
        """Append plain CSV rows (ground truth) without any corruption."""
        if rows:
            self.result.rows[path] += len(rows)
            self._append(path, _csv_text(rows).encode("utf-8"), header_bytes(columns))

    def flush_malformed(self) -> None:
        """Write the list of corrupted records collected so far to ``_truth/malformed.csv``."""
        self.write_rows(TRUTH_MALFORMED[0], TRUTH_MALFORMED[1], self._malformed_rows)
        self._malformed_rows = []

    def truth(self, lines: list[str]) -> None:
        """Append ground-truth lines (already CSV text: keys never hold commas or quotes)."""
        if lines:
            self.result.rows[TRUTH_RECORDS[0]] += len(lines)
            self._append(
                TRUTH_RECORDS[0], "".join(lines).encode("utf-8"), header_bytes(TRUTH_RECORDS[1])
            )


def _append_file(src_path: Path, target: Path, header: bytes) -> None:
    """Append ``src_path``'s bytes to ``target`` (writing ``header`` first if it is new).

    Uses the in-kernel ``os.copy_file_range`` where the OS has it (Linux): the parent merges
    gigabytes of parts while the workers keep both cores busy. That call refuses files opened
    for appending, hence the explicit seek to the end.
    """
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        end = os.lseek(fd, 0, os.SEEK_END)
        if end == 0 and header:
            os.write(fd, header)
        with src_path.open("rb") as src:
            size = os.fstat(src.fileno()).st_size
            done = 0
            try:
                while done < size:
                    sent = os.copy_file_range(src.fileno(), fd, size - done)
                    if sent == 0:
                        break
                    done += sent
            except (AttributeError, OSError):
                pass  # not supported here: copy the rest in user space
            src.seek(done)
            while chunk := src.read(1 << 20):
                os.write(fd, chunk)
    finally:
        os.close(fd)


def merge_part(root: Path, result: ShardResult) -> None:
    """Append shard ``result``'s part files to the final files (creating them with headers).

    Called in shard order, so the final files hold shard 0's rows, then shard 1's... exactly as
    a single process writing directly would.

    Example:
        >>> result = run_shard(plan, 3, root, direct=False)   # doctest: +SKIP
        >>> merge_part(root, result)                          # doctest: +SKIP
    """
    part_dir = root / ".parts" / f"{result.shard:05d}"
    for path in result.files:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        part = part_dir / path
        _append_file(part, target, result.headers.get(path, b""))
        part.unlink()
    shutil.rmtree(part_dir, ignore_errors=True)
