"""The public entry point: :func:`generate` writes a whole synthetic landing folder.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     summary = generate(Path(tmp), customers=200, days=3, seed=1)
    ...     (Path(tmp) / "crm" / "crm_contacts_2026-01-01.csv").exists()
    True
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from cdp_spark.errors import CdpError
from cdp_spark.generate import population
from cdp_spark.generate.catalog import Catalog
from cdp_spark.generate.clock import DAY, epoch_day
from cdp_spark.generate.population import Plan
from cdp_spark.generate.schema import (
    CATALOG_FILES,
    CP1251_FILE,
    SOURCES,
    TRUTH_MALFORMED,
    TRUTH_PEOPLE,
    TRUTH_RECORDS,
)
from cdp_spark.generate.simulate import Shard
from cdp_spark.generate.vocab import CATEGORIES, CITIES, COUNTRIES, TIMEZONES
from cdp_spark.generate.writer import ShardResult, ShardWriter, _csv_text, header_bytes, merge_part

_DATE_IN_NAME = re.compile(r"_(\d{4}-\d{2}-\d{2})(?:_late)?\.")
Progress = Callable[[str, int, int], None]
# Folders this generator owns inside the output folder; they are emptied before a run so that a
# smaller run never leaves a bigger run's days behind.
OWNED = (
    "crm",
    "orders",
    "web",
    "email",
    "support",
    "pos",
    "consent",
    "catalog",
    "_truth",
    ".parts",
)


@dataclass(frozen=True)
class GenerateSummary:
    """What :func:`generate` wrote.

    ``records`` counts data rows (CSV rows or JSON lines, headers excluded) per source;
    ``malformed`` counts the records deliberately corrupted per source (``malformed_rate``);
    ``malformed_kinds`` counts them per kind, plus ``cp1251_file``: the rows of the one file
    written entirely in cp1251 that do not decode as UTF-8 (not part of the rate).
    """

    out_dir: Path
    customers: int
    days: int
    seed: int
    files: dict[str, int]
    records: dict[str, int]
    malformed: dict[str, int]
    malformed_kinds: dict[str, int]
    truth_rows: int
    seconds: float = field(compare=False)

    @property
    def total_records(self) -> int:
        return sum(self.records.values())

    def __str__(self) -> str:
        width = max(len(s) for s in self.records)
        lines = [f"{'source':<{width}}  {'files':>6}  {'records':>11}  {'malformed':>9}"]
        for source, n in self.records.items():
            files, bad = self.files.get(source, 0), self.malformed.get(source, 0)
            lines.append(f"{source:<{width}}  {files:>6}  {n:>11,}  {bad:>9,}")
        kinds = ", ".join(f"{k} {v:,}" for k, v in self.malformed_kinds.items())
        rate = self.total_records / max(self.seconds, 1e-9)
        lines.append(f"{self.total_records:,} records in {self.seconds:.1f} s ({rate:,.0f}/s)")
        lines.append(f"malformed kinds: {kinds}")
        return "\n".join(lines)

    def __rich__(self) -> object:
        # The CLI prints the summary with rich, which would otherwise show the dataclass repr.
        from rich.text import Text

        return Text(str(self))

    def to_json(self) -> dict[str, object]:
        """The summary without timings (so it is identical for identical runs).

        Example:
            >>> s = GenerateSummary(Path("x"), 1, 1, 1, {}, {"crm_contacts": 1}, {}, {}, 0, 0.1)
            >>> s.to_json()["records"]
            {'crm_contacts': 1}
        """
        return {
            "customers": self.customers, "days": self.days, "seed": self.seed,
            "files": self.files, "records": self.records, "malformed": self.malformed,
            "malformed_kinds": self.malformed_kinds, "truth_rows": self.truth_rows,
        }  # fmt: skip


def generate(
    out_dir: Path,
    *,
    customers: int,
    days: int,
    seed: int,
    start_date: date = date(2026, 1, 1),
    malformed_rate: float = 0.005,
    workers: int = 1,
    progress: Progress | None = None,
) -> GenerateSummary:
    """Write a synthetic retailer's multi-source export for ``customers`` people over ``days``.

    The same arguments give byte-identical files, whatever ``workers`` is: people are simulated
    in fixed shards of 10,000 (:data:`population.SHARD_SIZE`) and the shards' rows are always
    concatenated in shard order. Memory stays bounded: one shard-day of records at a time per
    process. The folders ``crm, orders, web, email, support, pos, consent, catalog, _truth``
    inside ``out_dir`` are replaced; anything else there is left alone.

    Args:
        out_dir: the landing folder to write (created if missing).
        customers: people to simulate (``>= 1``).
        days: days of activity starting at ``start_date`` (``>= 1``).
        seed: random seed.
        malformed_rate: share of records deliberately corrupted (bad dates, negative amounts,
            truncated JSON, wrong column counts, cp1251 rows), ``0 <= rate <= 0.5``.
        workers: processes to use (shards are spread over them). Workers are spawned, so a
            script calling this with ``workers > 1`` needs the usual
            ``if __name__ == "__main__":`` guard.
        progress: called as ``progress(stage, done, total)``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     s = generate(Path(tmp), customers=100, days=2, seed=7, malformed_rate=0.0)
        >>> s.files["crm_contacts"], s.malformed["orders"]
        (2, 0)
    """
    if customers < 1 or days < 1:
        raise CdpError(f"customers and days must be at least 1 (got {customers}, {days})")
    if not 0.0 <= malformed_rate <= 0.5:
        raise CdpError(f"malformed_rate must be between 0 and 0.5 (got {malformed_rate})")
    if workers < 1:
        raise CdpError(f"workers must be at least 1 (got {workers})")
    began = time.perf_counter()
    root = Path(out_dir)
    if root.exists() and not root.is_dir():
        raise CdpError(f"{root} exists and is not a folder", hint="pass --out a folder path")
    root.mkdir(parents=True, exist_ok=True)
    for name in OWNED:
        shutil.rmtree(root / name, ignore_errors=True)

    plan = Plan.make(
        seed=seed,
        customers=customers,
        days=days,
        start=start_date,
        malformed_rate=malformed_rate,
        shard_size=population.SHARD_SIZE,  # read at call time, so tests can make shards small
    )
    catalog = Catalog.build(seed)
    _write_catalog(root, catalog)
    report = progress or (lambda stage, done, total: None)
    total = plan.shards * days
    results: list[ShardResult] = []
    if workers == 1 or plan.shards == 1:
        for shard in range(plan.shards):
            base = shard * days

            def on_day(t: int, base: int = base) -> None:
                report("simulate", base + t + 1, total)

            results.append(run_shard(plan, shard, root, direct=True, on_day=on_day))
    else:
        ctx = multiprocessing.get_context("spawn")  # fork is unsafe under a running JVM/threads
        with ProcessPoolExecutor(max_workers=min(workers, plan.shards), mp_context=ctx) as pool:
            futures = [
                pool.submit(run_shard, plan, shard, root, direct=False)
                for shard in range(plan.shards)
            ]
            for shard, future in enumerate(futures):
                result = future.result()
                merge_part(root, result)  # in shard order: the same bytes as one process
                results.append(result)
                report("simulate", (shard + 1) * days, total)
        shutil.rmtree(root / ".parts", ignore_errors=True)
    report("finish", 0, 1)
    summary = _finish(root, plan, catalog, results, time.perf_counter() - began)
    report("finish", 1, 1)
    return summary


def run_shard(
    plan: Plan, shard: int, root: Path, *, direct: bool, on_day: Callable[[int], None] | None = None
) -> ShardResult:
    """Simulate and write one shard (runs in a worker process when ``direct`` is false).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     r = run_shard(Plan.make(seed=1, customers=50, days=2), 0, Path(tmp), direct=True)
        >>> "_truth/people.csv" in r.files
        True
    """
    sim = Shard(plan, Catalog.build(plan.seed), shard)
    writer = ShardWriter(root, plan, shard, direct=direct)
    for t in range(plan.days):
        chunks, truth = sim.step(t)
        for k, chunk in enumerate(chunks):
            writer.write(chunk, t, k)
        writer.truth(truth)
        writer.flush_malformed()
        if on_day:
            on_day(t)
    writer.write_rows(TRUTH_PEOPLE, Shard.PEOPLE_COLUMNS, sim.people_rows())
    return writer.result


def _write_catalog(root: Path, catalog: Catalog) -> None:
    path, columns = CATALOG_FILES["products"]
    rows = [
        [sku, name, CATEGORIES[int(c)].code, brand, f"{price:.2f}", f"{margin:.3f}"]
        for sku, name, c, brand, price, margin in zip(
            catalog.skus, catalog.names, catalog.category.tolist(), catalog.brands,
            catalog.price_rub.tolist(), catalog.margin.tolist(), strict=True,
        )
    ]  # fmt: skip
    (root / "catalog").mkdir(parents=True, exist_ok=True)
    (root / path).write_bytes(header_bytes(columns) + _csv_text(rows).encode("utf-8"))
    path, columns = CATALOG_FILES["stores"]
    rows = [
        [
            s.store_id,
            s.name,
            CITIES[s.city].native,
            COUNTRIES[CITIES[s.city].country].code,
            TIMEZONES[CITIES[s.city].tz].name,
        ]
        for s in catalog.stores
    ]
    (root / path).write_bytes(header_bytes(columns) + _csv_text(rows).encode("utf-8"))


def _expected_files(plan: Plan) -> dict[str, list[str]]:
    """Every file a run must leave, per source: one per day, plus the planned late files."""
    out: dict[str, list[str]] = {}
    for name, spec in SOURCES.items():
        files = [spec.filename(plan.day(t)) for t in range(plan.days)]
        files += sorted(
            {spec.filename(plan.day(a), late=True) for (s, _), a in plan.late.items() if s == name}
        )
        out[name] = files
    return out


def _finish(
    root: Path, plan: Plan, catalog: Catalog, results: list[ShardResult], seconds: float
) -> GenerateSummary:
    rows: Counter[str] = Counter()
    malformed: Counter[tuple[str, str]] = Counter()
    for r in results:
        rows.update(r.rows)
        malformed.update(r.malformed)
    expected = _expected_files(plan)
    files: dict[str, int] = {}
    records: dict[str, int] = {}
    start_s = epoch_day(plan.start)
    for name, paths in expected.items():
        spec = SOURCES[name]
        for path in paths:
            target = root / path
            if not target.exists():  # a day without records still gets its (empty) file
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(header_bytes(spec.columns) if spec.ext == "csv" else b"")
            # Modification time = when the file landed: the night after its (arrival) day.
            found = _DATE_IN_NAME.search(path)
            assert found, path
            day = date.fromisoformat(found.group(1))
            landed = start_s + ((day - plan.start).days + 1) * DAY + 2 * 3600
            os.utime(target, (landed, landed))
        files[name] = len(paths)
        records[name] = sum(rows[p] for p in paths)
    for name in CATALOG_FILES:
        files[name] = 1
        records[name] = len(catalog.skus) if name == "products" else len(catalog.stores)
    for path, columns in (TRUTH_RECORDS, TRUTH_MALFORMED):
        if not (root / path).exists():
            (root / path).write_bytes(header_bytes(columns))
    by_source = {
        name: sum(v for (s, k), v in malformed.items() if s == name and k != CP1251_FILE)
        for name in SOURCES
    }
    kinds: Counter[str] = Counter()
    for (_, k), v in malformed.items():
        kinds[k] += v
    summary = GenerateSummary(
        out_dir=root, customers=plan.customers, days=plan.days, seed=plan.seed, files=files,
        records=records, malformed=by_source, malformed_kinds=dict(sorted(kinds.items())),
        truth_rows=rows[TRUTH_RECORDS[0]], seconds=seconds,
    )  # fmt: skip
    (root / "_truth" / "summary.json").write_text(
        json.dumps(summary.to_json(), indent=2) + "\n", encoding="utf-8"
    )
    return summary


__all__ = ["GenerateSummary", "generate", "run_shard"]
