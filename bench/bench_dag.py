"""Time one ``cdp_daily`` DAG run through Airflow and spark-submit on an existing lakehouse.

The daily run a scheduler makes: every task a spark-submit of its ``jobs/`` script (one JVM
each), sources ingested in parallel, run with ``dag.test()`` in an Airflow subprocess exactly as
``tests/test_dags_e2e.py`` does (its runner and environment are reused). ``--base`` must hold
``lakehouse/``, ``landing/`` (the backfilled files plus the new day's), ``mlflow.db`` and
``exports/`` (symlinks are fine); an Airflow home is made in it.

    .venv/bin/python bench/bench_dag.py --base /work/runs/dag100k --run-date 2026-04-01

Prints the wall time of the whole run, each task's duration and the machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from _machine import load_average, machine_line

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_dags_e2e import BIN, RUNNER, _env  # noqa: E402  (the e2e test's runner, not a copy)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--base", type=Path, required=True)
    parser.add_argument("--run-date", type=date.fromisoformat, required=True)
    parser.add_argument("--master", default="local[*]", help="the spark_default connection")
    parser.add_argument("--shuffle-partitions", default="4", help="the local profile's value")
    args = parser.parse_args(argv)
    print(machine_line())
    env = _env(args.base)
    env["AIRFLOW_CONN_SPARK_DEFAULT"] = json.dumps({"conn_type": "spark", "host": args.master})
    env["CDP__SPARK__SHUFFLE_PARTITIONS"] = args.shuffle_partitions
    if not (args.base / "airflow" / "airflow.db").exists():
        subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=env,
            check=True,
            capture_output=True,
            timeout=900,
        )
    cmd = [
        sys.executable,
        "-c",
        RUNNER,
        str(ROOT / "dags"),
        "cdp_daily",
        args.run_date.isoformat(),
        "[]",
    ]
    began = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - began
    (args.base / "cdp_daily.log").write_text(proc.stdout + proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT=")]
    if proc.returncode != 0 or not lines:
        print((proc.stdout + proc.stderr)[-4000:])
        print(f"FAILED after {wall:.0f} s (log: {args.base / 'cdp_daily.log'})")
        return 1
    result = json.loads(lines[-1].removeprefix("RESULT="))
    print(f"cdp_daily {args.run_date}: {result['state']} in {wall:.0f} s wall")
    for task, seconds in sorted(result["seconds"].items(), key=lambda kv: kv[0]):
        print(f"  {task:<28} {result['tasks'][task]:<8} {seconds or 0:8.1f} s")
    print(f"load average at the end: {load_average()}")
    return 0 if result["state"] == "success" else 1


if __name__ == "__main__":
    raise SystemExit(main())
