"""Profile build time vs data size, and look-up latency (p50/p95) with delta-rs.

Works on a lakehouse that already holds silver and the identity tables (after `make demo`, or
`cdp run ingest standardize identity`). The lakehouse is copied to a temporary folder first, so
the original is never written. For each ``--fraction`` the identity tables of the copy are cut
to that share of the people (by a hash of ``person_id``) and the profiles stage is timed: the
silver tables stay whole, so the build reads all of silver but profiles a share of the people.
Then ``--lookups`` look-ups by e-mail (and as many by ``person_id``) are timed in-process.

    python bench/bench_profiles.py --lakehouse lakehouse --run-date 2026-03-01 \\
        --fraction 0.25 --fraction 1.0 --lookups 200
    python bench/bench_profiles.py --lakehouse /tmp/p100k/lakehouse --lookups-only --lookups 200

Wall times depend on the load of the machine: the script prints the load average next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _machine import cpu_model, ram_gib

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f}/{five:.1f}/{fifteen:.1f}"


def build(root: Path, run_date: date, fraction: float) -> dict[str, object]:
    from pyspark.sql import functions as F

    from cdp_spark.config import load_config
    from cdp_spark.pipeline import RunContext
    from cdp_spark.profiles.stage import run_profiles

    cfg = load_config(
        "local",
        overrides={
            "storage.root": str(root),
            "spark.master": "local[2]",
            "spark.shuffle_partitions": 4,
            "spark.conf": {"spark.ui.enabled": "false"},
        },
    )
    ctx = RunContext.create(cfg, run_date=run_date)
    if fraction < 1.0:
        keep = (F.abs(F.xxhash64("person_id")) % 1000) < int(fraction * 1000)
        for table in ("gold.identity_clusters", "gold.identity_identifiers"):
            cut = ctx.lake.read(table).where(keep).localCheckpoint()
            ctx.lake.overwrite(table, cut)
    for table in ("gold.customer_profiles", "gold.kpis"):
        path = Path(ctx.lake.path(table))
        if path.exists():
            shutil.rmtree(path)
    records = ctx.lake.read("gold.identity_clusters").count()
    load_before = load()
    started = time.perf_counter()
    report = run_profiles(ctx)
    seconds = time.perf_counter() - started
    ctx.spark.stop()
    return {
        "fraction": fraction,
        "persons": report.figures["persons"],
        "records": records,
        "build_seconds": round(seconds, 1),
        "load_before": load_before,
        "load_after": load(),
    }


def lookups(root: Path, n: int, seed: int) -> dict[str, object]:
    from deltalake import DeltaTable

    from cdp_spark.config import load_config
    from cdp_spark.profiles.lookup import lookup_profile

    cfg = load_config("local", overrides={"storage.root": str(root)})
    ids = DeltaTable(str(root / "gold" / "identity_identifiers")).to_pyarrow_table(
        columns=["id_type", "id_value", "person_id"]
    )
    rows = ids.to_pylist()
    del ids
    emails = sorted(r["id_value"] for r in rows if r["id_type"] == "email")
    persons = sorted({r["person_id"] for r in rows})
    rng = random.Random(seed)
    sample_emails = [rng.choice(emails) for _ in range(n)]
    sample_persons = [rng.choice(persons) for _ in range(n)]
    lookup_profile(cfg, email=sample_emails[0])  # warm-up: imports, first file opens
    timings: dict[str, list[float]] = {"email": [], "person_id": []}
    # CPU time of this process too: on a shared, overloaded machine wall time mostly waits.
    cpu: dict[str, list[float]] = {"email": [], "person_id": []}
    found = 0
    load_before = load()
    for key, values in (("email", sample_emails), ("person_id", sample_persons)):
        for value in values:
            started, cpu_started = time.perf_counter(), time.process_time()
            view = lookup_profile(cfg, **{key: value})
            timings[key].append(time.perf_counter() - started)
            cpu[key].append(time.process_time() - cpu_started)
            found += view is not None
    out: dict[str, object] = {"lookups": 2 * n, "found": found, "load_before": load_before}
    for key, values in timings.items():
        out[f"{key}_p50_ms"] = round(1000 * statistics.median(values), 1)
        out[f"{key}_p95_ms"] = round(1000 * percentile(values, 0.95), 1)
        out[f"{key}_max_ms"] = round(1000 * max(values), 1)
        out[f"{key}_cpu_p50_ms"] = round(1000 * statistics.median(cpu[key]), 1)
        out[f"{key}_cpu_p95_ms"] = round(1000 * percentile(cpu[key], 0.95), 1)
    out["load_after"] = load()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lakehouse", default=str(ROOT / "lakehouse"))
    parser.add_argument("--run-date", type=date.fromisoformat, default=date(2026, 3, 1))
    parser.add_argument("--fraction", type=float, action="append", default=None)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--lookups-only", action="store_true", help="no build: time look-ups on --lakehouse as is"
    )
    args = parser.parse_args()
    fractions = sorted(set(args.fraction or [1.0]))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    import pyspark

    print(
        f"machine: {os.cpu_count()} cores, {ram_gib():.0f} GiB RAM, {cpu_model()}; "
        f"Python {platform.python_version()}, PySpark {pyspark.__version__}"
    )
    source = Path(args.lakehouse)
    for table in ("gold/identity_clusters", "gold/identity_identifiers"):
        if not (source / table).is_dir():
            print(f"{source / table} missing: run the identity stage first", file=sys.stderr)
            return 2
    if args.lookups_only:  # read-only: delta-rs reads, nothing is written
        print(json.dumps(lookups(source, args.lookups, args.seed)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench_profiles_") as tmp:
        results = []
        for fraction in fractions:
            root = Path(tmp) / f"lake_{fraction}"
            shutil.copytree(source, root, ignore=shutil.ignore_patterns("bronze", "quarantine"))
            # A fresh session per build (stopped at its end): no cached data across builds.
            results.append(build(root, args.run_date, fraction))
            print(json.dumps(results[-1]))
            if fraction != fractions[-1]:
                shutil.rmtree(root)
        lookup = lookups(Path(tmp) / f"lake_{fractions[-1]}", args.lookups, args.seed)
        print(json.dumps(lookup))
    return 0


if __name__ == "__main__":
    sys.exit(main())
