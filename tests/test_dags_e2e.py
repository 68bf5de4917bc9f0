"""End to end: ``cdp_daily`` runs with ``dag.test()`` through real spark-submit on generated data.

Airflow runs in a subprocess with its own ``AIRFLOW_HOME`` (SQLite metadata DB made by
``airflow db migrate``), the ``spark_default`` connection from ``AIRFLOW_CONN_SPARK_DEFAULT``
(``local[2]``) and the lakehouse, landing, exports and MLflow folders in a temp dir through the
``CDP__...`` environment overrides, so nothing touches the repo's own ``lakehouse/``. The tables
are then read back with ``deltalake`` (no Spark), as a downstream system would.

Every task is a spark-submit (one JVM each, 20-60 s on a loaded 2-core machine), so this test
is marked ``e2e``: the default suite skips it, ``.ci/run`` runs it on its own
(``pytest -m e2e``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RUN_DATE = date(2026, 1, 5)  # the last of the 5 generated days (start 2026-01-01)

# Runs in the Airflow subprocess: the DAG (or the named tasks and nothing else) for RUN_DATE.
RUNNER = """
import json, sys
from datetime import datetime, timezone
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.dags[sys.argv[2]]
run_date = datetime.fromisoformat(sys.argv[3]).replace(tzinfo=timezone.utc)
tasks = json.loads(sys.argv[4])
if tasks:
    dag = dag.partial_subset(task_ids=tasks, include_upstream=False, include_downstream=False)
dag_run = dag.test(logical_date=run_date)
tis = dag_run.get_task_instances()
states = {ti.task_id: str(ti.state) for ti in tis}
seconds = {ti.task_id: ti.duration for ti in tis}
print("RESULT=" + json.dumps({"state": str(dag_run.state), "tasks": states, "seconds": seconds}))
"""


def _env(base: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDP__", "AIRFLOW"))}
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # spark-submit and python3
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "AIRFLOW_HOME": str(base / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({"conn_type": "spark", "host": "local[2]"}),
            "CDP__STORAGE__ROOT": str(base / "lakehouse"),
            "CDP__PATHS__LANDING": str(base / "landing"),
            "CDP__PATHS__EXPORTS": str(base / "exports"),
            "CDP__MLFLOW__TRACKING_URI": f"sqlite:///{base}/mlflow.db",
            "CDP__SPARK__SHUFFLE_PARTITIONS": "2",
            "CDP__SPARK__CONF": json.dumps({"spark.ui.enabled": "false"}),
        }
    )
    return env


def run_dag(base: Path, dag_id: str, tasks: list[str] | None = None) -> dict[str, Any]:
    """Run ``dag_id`` (or only ``tasks``) with ``dag.test()`` in an Airflow subprocess."""
    args = [sys.executable, "-c", RUNNER, str(REPO / "dags"), dag_id, RUN_DATE.isoformat()]
    proc = subprocess.run(
        [*args, json.dumps(tasks or [])],
        env=_env(base),
        capture_output=True,
        text=True,
        check=False,
        timeout=3500,
    )
    (base / f"{dag_id}.log").write_text(proc.stdout + proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT=")]
    assert proc.returncode == 0 and lines, (proc.stdout + proc.stderr)[-6000:]
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT="))
    return result


@pytest.fixture(scope="module")
def daily_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], float]:
    base = tmp_path_factory.mktemp("e2e")
    env = _env(base)
    gen = [str(BIN / "cdp"), "generate", "--customers", "200", "--days", "5"]
    gen += ["--start", "2026-01-01", "--seed", "7", "--out", str(base / "landing")]
    subprocess.run(gen, env=env, check=True, capture_output=True, timeout=600)
    migrate = [str(BIN / "airflow"), "db", "migrate"]
    subprocess.run(migrate, env=env, check=True, capture_output=True, timeout=900)
    started = time.perf_counter()
    result = run_dag(base, "cdp_daily", e2e_tasks())
    return base, result, time.perf_counter() - started


# Four sources keep the JVM count down (one spark-submit each); the stages tolerate missing
# silver tables, and the integrity tests check that every source has its task.
E2E_SOURCES = ("crm_contacts", "orders", "web_events", "consent_events")
DAG_STAGES = ("standardize", "identity", "profiles", "features", "score", "segments", "publish")


def stages_on() -> list[str]:
    """The DAG's stages switched on in cdp_spark/pipeline.py (the run stops before the rest)."""
    from cdp_spark.pipeline import STAGES

    return [s for s in DAG_STAGES if s in STAGES]


def e2e_tasks() -> list[str]:
    return [f"ingest.{s}" for s in E2E_SOURCES] + stages_on()


def _rows(base: Path, table: str) -> list[dict[str, Any]]:
    from deltalake import DeltaTable

    layer, name = table.split(".")
    rows: list[dict[str, Any]] = (
        DeltaTable(str(base / "lakehouse" / layer / name)).to_pyarrow_table().to_pylist()
    )
    return rows


@pytest.mark.e2e
def test_daily_dag_runs_every_task_through_spark_submit(
    daily_run: tuple[Path, dict[str, Any], float],
) -> None:
    _, result, seconds = daily_run
    print(f"cdp_daily e2e: {seconds:.0f} s for {len(result['tasks'])} tasks: {result['seconds']}")
    assert result["state"] == "success", result
    assert set(result["tasks"].values()) == {"success"}, result


def _ids(rows: list[dict[str, Any]]) -> set[str]:
    return {r["person_id"] for r in rows}


@pytest.mark.e2e
def test_daily_dag_fills_silver_for_the_run_date(
    daily_run: tuple[Path, dict[str, Any], float],
) -> None:
    base, _, _ = daily_run
    bronze = _rows(base, "bronze.crm_contacts")
    silver = _rows(base, "silver.crm_contacts")
    # Silver holds one row per customer_id that bronze got (the latest version of each).
    assert len(silver) == len({r["customer_id"] for r in bronze}) > 0
    assert {r["source"] for r in _rows(base, "ops.standardize_log")} == set(E2E_SOURCES)


@pytest.mark.e2e
def test_daily_dag_builds_the_gold_tables(daily_run: tuple[Path, dict[str, Any], float]) -> None:
    base, _, _ = daily_run
    on = stages_on()
    if "identity" in on:
        # Every CRM contact in silver belongs to exactly one person, as of the run date.
        silver = {r["customer_id"] for r in _rows(base, "silver.crm_contacts")}
        clusters = _rows(base, "gold.identity_clusters")
        crm = [r["record_id"] for r in clusters if r["source"] == "crm_contacts"]
        assert sorted(crm) == sorted(silver)
        assert {r["run_date"] for r in clusters} == {RUN_DATE}
    if "profiles" in on:
        profiles = _rows(base, "gold.customer_profiles")
        assert len(profiles) == len(_ids(profiles)) == len(_ids(clusters))
        assert _ids(profiles) == _ids(clusters)
    if "features" in on:
        features = [r for r in _rows(base, "gold.features") if r["as_of"] == RUN_DATE]
        assert features and _ids(features) <= _ids(profiles)
    if "score" in on and (base / "lakehouse" / "gold" / "scored_profiles").exists():
        # Only with a champion model (cdp_train_weekly); without one the score job skips.
        scored = _rows(base, "gold.scored_profiles")
        assert _ids(scored) <= _ids(profiles)
    if "segments" in on:
        members = _rows(base, "gold.segment_membership")
        assert _ids(members) <= _ids(profiles)
        assert {r["run_date"] for r in members} <= {RUN_DATE}
