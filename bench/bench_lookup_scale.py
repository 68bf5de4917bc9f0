"""Profile look-up latency (p50/p95) at a larger gold table than a run produced, with delta-rs.

`cdp profile` (:func:`cdp_spark.profiles.lookup.lookup_profile`) reads one person's rows from
the serving tables (``SERVING_TABLES`` of :mod:`cdp_spark.storage.layout`). What it costs
depends on a table's size only through how many files the Delta log lists and how big the one
file it opens per table is. So a gold lakehouse ``--factor`` times larger is built here from a
template lakehouse without Spark: every person of the template is replicated ``--factor`` times,
with person ids and identifier values made unique per replica (``P1a2b...`` becomes
``P<replica hex>1a2b...``, ``anna@x.ru`` becomes ``r<replica hex>anna@x.ru``), and each table is
written the way the stages write it: sorted by its look-up key within its date partition, in
files of the table's ``rows_per_file`` rows with disjoint key ranges, then a log checkpoint.

Then the same people are looked up in both, alternately, ``--repeats`` times: a template
person's e-mail / id, and in the scaled copy the same person's replica (random replica). The
script prints the machine, file and row counts, and per repeat the p50 and p95 of wall and CPU
time; the figures to quote are the medians over the repeats.

``gold.identity_clusters`` is not replicated: the look-up never reads it.

    .venv/bin/python bench/bench_lookup_scale.py --template /work/runs/l1m/tpl \\
        --factor 10 --out /work/runs/l1m/scaled --lookups 200 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from _machine import machine_line

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdp_spark.config import load_config
from cdp_spark.storage.layout import SERVING_TABLES, ServingTable

# Identifier columns rewritten per replica, besides person_id (table -> columns).
ID_COLUMNS = {"gold.identity_identifiers": ("id_value",)}
MAX_FACTOR = 16  # one hex digit of replica number keeps the replicas in key order


def table_path(root: Path, table: str) -> Path:
    layer, name = table.split(".", 1)
    return root / layer / name


def replica(rows: pa.Table, r: int, id_columns: tuple[str, ...]) -> pa.Table:
    """``rows`` with person ids and identifier values of replica ``r``."""
    digit = f"{r:x}"
    if "person_id" in rows.column_names:
        pid = rows["person_id"]
        rewritten = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(pid, 0, 1), digit, pc.utf8_slice_codeunits(pid, 1), ""
        )
        rows = rows.set_column(rows.column_names.index("person_id"), "person_id", rewritten)
    for column in id_columns:
        value = rows[column]
        rewritten = pc.binary_join_element_wise(f"r{digit}", value, "")
        rows = rows.set_column(rows.column_names.index(column), column, rewritten)
    return rows


def sorted_groups(rows: pa.Table, spec: ServingTable) -> Iterator[tuple[Any, pa.Table]]:
    """(partition value, rows of one group of all-but-the-last sort columns), in key order."""
    leading = list(spec.sort_columns[:-1])
    rows = rows.sort_by([(c, "ascending") for c in spec.sort_columns])
    if not leading:
        yield None, rows
        return
    keys = rows.select(leading).to_pylist()
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            part = keys[start][spec.partition] if spec.partition else None
            yield part, rows.slice(start, i - start)
            start = i


def scale_table(src: Path, dst: Path, table: str, factor: int) -> dict[str, int]:
    """Write ``table`` of ``src`` replicated ``factor`` times under ``dst``; its counts."""
    from deltalake import DeltaTable, write_deltalake

    spec = SERVING_TABLES[table]
    source = DeltaTable(str(table_path(src, table)))
    rows = source.to_pyarrow_table()
    target = str(table_path(dst, table))
    partition_by = source.metadata().partition_columns or None  # as the template is stored
    buffer: list[pa.Table] = []
    buffered = files = written = 0
    current_part: Any = object()

    def flush() -> None:
        nonlocal buffer, buffered, files, written
        if buffered:
            write_deltalake(
                target, pa.concat_tables(buffer), mode="append", partition_by=partition_by
            )
            files += 1
            written += buffered
        buffer, buffered = [], 0

    for part, group in sorted_groups(rows, spec):
        if partition_by and part != current_part:  # files never span date partitions
            flush()
            current_part = part
        for r in range(factor):
            rep = replica(group, r, ID_COLUMNS.get(table, ()))
            offset = 0
            while offset < rep.num_rows:
                take = min(rep.num_rows - offset, spec.rows_per_file - buffered)
                buffer.append(rep.slice(offset, take))
                buffered += take
                offset += take
                if buffered >= spec.rows_per_file:
                    flush()
    flush()
    DeltaTable(target).create_checkpoint()
    return {"template_rows": rows.num_rows, "rows": written, "files": files}


def file_count(root: Path, table: str) -> int:
    from deltalake import DeltaTable

    return len(DeltaTable(str(table_path(root, table))).file_uris())


def sample(template: Path, n: int, factor: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    """``n`` (template value, scaled value) pairs per look-up key: the same people."""
    from deltalake import DeltaTable

    ids = DeltaTable(str(table_path(template, "gold.identity_identifiers"))).to_pyarrow_table(
        columns=["id_type", "id_value", "person_id"]
    )
    emails = sorted(v for t, v in zip(*(ids[c].to_pylist() for c in ("id_type", "id_value")),
                                      strict=True) if t == "email")  # fmt: skip
    persons = sorted(set(ids["person_id"].to_pylist()))
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, str]]] = {"email": [], "person_id": []}
    for _ in range(n):
        r = rng.randrange(factor)
        email, person = rng.choice(emails), rng.choice(persons)
        out["email"].append((email, f"r{r:x}{email}"))
        out["person_id"].append((person, f"{person[0]}{r:x}{person[1:]}"))
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def time_lookups(root: Path, values: dict[str, list[str]]) -> dict[str, Any]:
    from cdp_spark.profiles.lookup import lookup_profile

    cfg = load_config("local", overrides={"storage.root": str(root)})
    out: dict[str, Any] = {}
    for key, keyed in values.items():
        wall, cpu, found = [], [], 0
        for value in keyed:
            began, cpu_began = time.perf_counter(), time.process_time()
            if key == "email":
                view = lookup_profile(cfg, email=value)
            else:
                view = lookup_profile(cfg, person_id=value)
            wall.append(time.perf_counter() - began)
            cpu.append(time.process_time() - cpu_began)
            found += view is not None
        out[key] = {
            "found": found,
            "wall_p50_ms": round(1000 * statistics.median(wall), 1),
            "wall_p95_ms": round(1000 * p95(wall), 1),
            "cpu_p50_ms": round(1000 * statistics.median(cpu), 1),
            "cpu_p95_ms": round(1000 * p95(cpu), 1),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--template", type=Path, required=True, help="a lakehouse with gold")
    parser.add_argument("--out", type=Path, required=True, help="the scaled lakehouse (emptied)")
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--lookups", type=int, default=200, help="per key and lakehouse")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="keep an existing --out")
    args = parser.parse_args(argv)
    if not 2 <= args.factor <= MAX_FACTOR:
        parser.error(f"--factor must be between 2 and {MAX_FACTOR}")
    tables = [t for t in SERVING_TABLES if t != "gold.identity_clusters"]
    missing = [t for t in tables if not table_path(args.template, t).is_dir()]
    if missing:
        print(f"{args.template} lacks {', '.join(missing)}: run the profiles and score stages",
              file=sys.stderr)  # fmt: skip
        return 2

    print(machine_line())
    if not (args.reuse and args.out.is_dir()):
        shutil.rmtree(args.out, ignore_errors=True)
        began = time.perf_counter()
        for table in tables:
            counts = scale_table(args.template, args.out, table, args.factor)
            print(f"scaled {table}: {json.dumps(counts)}", flush=True)
        print(f"scaling took {time.perf_counter() - began:.0f} s")
    for table in tables:
        print(f"{table}: files template={file_count(args.template, table)}"
              f" scaled={file_count(args.out, table)}")  # fmt: skip

    pairs = sample(args.template, args.lookups, args.factor, args.seed)
    lakes = {
        "template": (args.template, {k: [a for a, _ in v] for k, v in pairs.items()}),
        f"x{args.factor}": (args.out, {k: [b for _, b in v] for k, v in pairs.items()}),
    }
    time_lookups(args.template, {"email": [pairs["email"][0][0]]})  # warm-up: imports
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in lakes}
    for repeat in range(args.repeats):
        for name, (root, values) in lakes.items():
            result = time_lookups(root, values)
            results[name].append(result)
            print(f"repeat {repeat + 1} {name}: {json.dumps(result)}", flush=True)
    print("MEDIANS over repeats (ms):")
    for name, runs in results.items():
        for key in ("email", "person_id"):
            figures = {
                f: round(statistics.median(run[key][f] for run in runs), 1)
                for f in ("wall_p50_ms", "wall_p95_ms", "cpu_p50_ms", "cpu_p95_ms")
            }
            print(f"  {name} {key}: {json.dumps(figures)} found {runs[-1][key]['found']}")
    print(machine_line().replace("machine:", "machine at end:"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
