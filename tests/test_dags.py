"""DAG integrity: every DAG file imports, with tags, retries and an owner, and no heavy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parent.parent / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert "cdp_daily" in dagbag.dags


def test_every_dag_has_tags_owner_retries_and_docs(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id}"
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id}"


def test_daily_dag_runs_ingest_then_standardize_for_the_run_date(dagbag) -> None:  # type: ignore[no-untyped-def]
    dag = dagbag.dags["cdp_daily"]
    assert dag.get_task("ingest").downstream_task_ids == {"standardize"}
    args = dag.get_task("standardize").application_args
    assert args[args.index("--run-date") + 1] == "{{ data_interval_start | ds }}"


HEAVY = ("pyspark", "pandas", "cdp_spark", "mlflow", "sklearn")
PROBE = """
import runpy, sys
runpy.run_path(sys.argv[1])
print("HEAVY=" + ",".join(m for m in sys.argv[2:] if m in sys.modules))
"""


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_no_heavy_imports_at_parse_time(dag_file: str) -> None:
    args = [sys.executable, "-c", PROBE, str(DAGS / dag_file), *HEAVY]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    assert "HEAVY=\n" in out + "\n", out
