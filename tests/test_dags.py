"""DAG integrity: the three DAGs import, are wired as documented, render their templates, and
do nothing heavy when parsed (no pyspark/cdp_spark/mlflow import, no file read, no Variable).

The DAGs run for real (spark-submit) in tests/test_dags_e2e.py.
"""

from __future__ import annotations

import copy
import itertools
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"
DAG_IDS = {"cdp_daily", "cdp_train_weekly", "cdp_erasure"}
STAGES = ["standardize", "identity", "profiles", "features", "score", "segments", "publish"]


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def render(dag: Any, task_id: str, field: str, **context: Any) -> Any:
    """A task's template field rendered as Airflow would for a run with ``context``.

    ``params`` start from the DAG's defaults; ``var`` stands for Airflow Variables.
    """
    from airflow.sdk import macros

    task = dag.get_task(task_id)
    ctx = {
        "ds": "2026-03-01",
        "var": {"value": context.pop("variables", {})},
        "macros": macros,
        **context,
        "params": {**dag.params.dump(), **context.get("params", {})},
    }
    return task.render_template(getattr(task, field), ctx, jinja_env=dag.get_template_env())


def test_dags_import_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == DAG_IDS


# Tasks that check input and must fail at once instead of retrying the same bad request.
NO_RETRY = {("cdp_erasure", "check_request")}


def test_every_dag_has_tags_owner_retries_timeouts_and_docs(dagbag: Any) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "cdp" in dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        assert dag.max_active_runs == 1, dag_id
        assert dag.catchup is False, dag_id
        for task in dag.tasks:
            name = f"{dag_id}.{task.task_id}"
            assert task.owner and task.owner != "airflow", name
            assert task.execution_timeout is not None, name
            if (dag_id, task.task_id) in NO_RETRY:
                assert task.retries == 0, name
            else:
                assert task.retries >= 2, name
                assert task.retry_exponential_backoff >= 2, name
                assert task.max_retry_delay is not None, name


def test_daily_dag_ingests_every_declared_source_in_parallel_then_runs_the_stages(
    dagbag: Any,
) -> None:
    dag = dagbag.dags["cdp_daily"]
    sources = yaml.safe_load((REPO / "conf" / "sources.yaml").read_text())["sources"]
    ingest = {f"ingest.{name}" for name in sources}
    expected = {task_id: {"standardize"} for task_id in ingest}
    expected.update({a: {b} for a, b in itertools.pairwise(STAGES)})
    expected["publish"] = set()
    assert {t.task_id: set(t.downstream_task_ids) for t in dag.tasks} == expected
    for task_id in ingest:
        assert dag.get_task(task_id).upstream_task_ids == set()
    assert dag.max_active_tasks == 3  # CDP_AIRFLOW_MAX_PARALLEL_JOBS unset


def test_daily_dag_tasks_launch_their_job_for_the_run_date_and_profile(dagbag: Any) -> None:
    dag = dagbag.dags["cdp_daily"]
    for stage in STAGES:
        assert render(dag, stage, "application") == f"{REPO}/jobs/{stage}.py"
        args = ["--conf-profile", "local", "--run-date", "2026-03-01"]
        assert render(dag, stage, "application_args") == args
        assert dag.get_task(stage)._conn_id == "spark_default"
    assert render(dag, "ingest.orders", "application_args", ds="2026-02-14") == [
        *["--conf-profile", "local", "--run-date", "2026-02-14", "--source", "orders"]
    ]
    assert render(dag, "ingest.orders", "application") == f"{REPO}/jobs/ingest.py"


def test_profile_and_jobs_folder_come_from_the_run_then_variables(dagbag: Any) -> None:
    dag = dagbag.dags["cdp_daily"]
    variables = {"cdp_conf_profile": "cluster", "cdp_jobs_dir": "s3://deploy/jobs"}
    assert render(dag, "score", "application", variables=variables) == "s3://deploy/jobs/score.py"
    args = render(dag, "score", "application_args", variables=variables)
    assert args[:2] == ["--conf-profile", "cluster"]
    run_profile = {"conf_profile": "x"}  # the run's param wins over the Variable
    args = render(dag, "score", "application_args", variables=variables, params=run_profile)
    assert args[:2] == ["--conf-profile", "x"]


def test_every_job_the_dags_launch_exists(dagbag: Any) -> None:
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    launched = {
        Path(render(dag, task.task_id, "application"))
        for dag in dagbag.dags.values()
        for task in dag.tasks
        if isinstance(task, SparkSubmitOperator)
    }
    assert {p for p in launched if not p.is_file()} == set()
    assert len(launched) == 10  # 8 scripts for cdp_daily, train.py, erase.py


def test_daily_run_date_is_the_day_the_run_processes(dagbag: Any) -> None:
    import pendulum
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.timetables import interval
    from airflow.timetables.base import DataInterval, TimeRestriction

    # Daily data intervals: the run scheduled just after midnight of 03-02 covers 03-01, so its
    # ds (the logical date, the interval's start) is 2026-03-01.
    declared = dagbag.dags["cdp_daily"].timetable
    assert isinstance(declared, CronDataIntervalTimetable)
    assert (declared.expression, str(declared.timezone)) == ("0 0 * * *", "UTC")
    timetable = interval.CronDataIntervalTimetable("0 0 * * *", timezone="UTC")
    previous = DataInterval(pendulum.datetime(2026, 2, 28), pendulum.datetime(2026, 3, 1))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=previous,
        restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
    )
    assert info is not None
    assert info.logical_date == datetime(2026, 3, 1, tzinfo=UTC)
    assert info.run_after == datetime(2026, 3, 2, tzinfo=UTC)


def test_gold_tables_are_assets_of_the_tasks_that_write_them(dagbag: Any) -> None:
    dag = dagbag.dags["cdp_daily"]
    outlets = {t.task_id: sorted(a.name for a in t.outlets) for t in dag.tasks if t.outlets}
    assert outlets == {
        "identity": ["gold.identity_clusters", "gold.identity_identifiers"],
        "profiles": ["gold.customer_profiles", "gold.kpis"],
        "features": ["gold.features"],
        "score": ["gold.scored_profiles"],
        "segments": ["gold.audience_changes", "gold.segment_membership"],
        "publish": ["cdp.exports"],
    }


def test_weekly_dag_trains_both_models_after_features_then_reports(dagbag: Any) -> None:
    dag = dagbag.dags["cdp_train_weekly"]
    assert {t.task_id: set(t.downstream_task_ids) for t in dag.tasks} == {
        "features": {"train_churn", "train_propensity"},
        "train_churn": {"champion_report"},
        "train_propensity": {"champion_report"},
        "champion_report": set(),
    }
    # Triggered on Monday 2026-03-02: trains as of Sunday, the last day the daily DAG finished.
    assert render(dag, "train_churn", "application_args", ds="2026-03-02") == [
        *["--conf-profile", "local", "--run-date", "2026-03-01", "--model", "churn"]
    ]
    args = render(dag, "train_propensity", "application_args", params={"as_of": "2026-02-15"})
    assert args == ["--conf-profile", "local", "--run-date", "2026-02-15", "--model", "propensity"]
    assert render(dag, "features", "application_args", ds="2026-03-02")[3] == "2026-03-01"
    assert render(dag, "features", "application") == f"{REPO}/jobs/features.py"


def test_champion_report_names_each_models_champion_version(
    dagbag: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("CDP__MLFLOW__TRACKING_URI", uri)
    report = dagbag.dags["cdp_train_weekly"].get_task("champion_report").python_callable
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("cdp-test")
    for name, auc in (("cdp_churn", 0.81), ("cdp_purchase_propensity", 0.74)):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "roc_auc", auc)
        client.create_registered_model(name)
        for _ in range(2):
            client.create_model_version(name, source=str(tmp_path), run_id=run.info.run_id)
        client.set_registered_model_alias(name, "champion", "2")
        if name == "cdp_churn":
            with pytest.raises(RuntimeError, match="cdp_purchase_propensity has no 'champion'"):
                report(params={"conf_profile": "local"})
    assert report(params={"conf_profile": "local"}) == {
        "churn": {"model": "cdp_churn", "version": "2", "metrics": {"roc_auc": 0.81}},
        "propensity": {
            "model": "cdp_purchase_propensity",
            "version": "2",
            "metrics": {"roc_auc": 0.74},
        },
    }


@pytest.mark.parametrize(
    ("params", "args"),
    [
        ({"email": "ilya@example.com"}, ["--email", "ilya@example.com"]),
        ({"phone": "+79161234567"}, ["--phone", "+79161234567"]),
        ({"person_id": "p-42"}, ["--person-id", "p-42"]),
    ],
)
def test_erasure_dag_passes_the_one_identifier_to_the_job(
    dagbag: Any, params: dict[str, str], args: list[str]
) -> None:
    dag = dagbag.dags["cdp_erasure"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # manual or API trigger only
    assert {t.task_id: set(t.downstream_task_ids) for t in dag.tasks} == {
        "check_request": {"erase"},
        "erase": set(),
    }
    # The identifier goes through the environment, never on the spark-submit command line.
    assert render(dag, "erase", "application_args", params=params) == [
        *["--conf-profile", "local", "--from-env"]
    ]
    env = {k: v for k, v in render(dag, "erase", "env_vars", params=params).items() if v}
    assert env == {f"CDP_ERASE_{k.upper()}": v for k, v in params.items()}
    sys.path.insert(0, str(DAGS))
    try:
        from cdp_erasure import identifier_args
    finally:
        sys.path.remove(str(DAGS))
    assert identifier_args({**dag.params.dump(), **params}) == args


def test_erasure_identifier_is_masked_in_what_airflow_stores(dagbag: Any) -> None:
    from airflow.sdk import macros
    from airflow.sdk._shared.secrets_masker import redact

    dag = dagbag.dags["cdp_erasure"]
    task = copy.copy(dag.get_task("erase"))
    params = {**dag.params.dump(), "email": "erase.me@example.com"}
    context = {"ds": "2026-03-01", "var": {"value": {}}, "macros": macros, "params": params}
    task.render_template_fields(context, jinja_env=dag.get_template_env())
    assert task.env_vars["CDP_ERASE_EMAIL"] == "erase.me@example.com"
    # What Airflow stores as the task's rendered fields goes through redact().
    assert redact(task.env_vars)["CDP_ERASE_EMAIL"] == "***"


@pytest.mark.parametrize(
    "params",
    [{}, {"email": "a@b.c", "phone": "+79161234567"}, {"email": "  "}],
    ids=["none", "two", "blank"],
)
def test_erasure_request_without_exactly_one_identifier_is_refused(
    dagbag: Any, params: dict[str, str]
) -> None:
    sys.path.insert(0, str(DAGS))
    try:
        from cdp_erasure import identifier_args
    finally:
        sys.path.remove(str(DAGS))
    with pytest.raises(ValueError, match="exactly one of email, phone or person_id"):
        identifier_args({**dagbag.dags["cdp_erasure"].params.dump(), **params})


@pytest.mark.parametrize(
    ("key", "value"),
    [("email", "not-an-email"), ("phone", "call me"), ("person_id", "p 1; rm -rf /")],
)
def test_erasure_params_refuse_malformed_identifiers(dagbag: Any, key: str, value: str) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(dagbag.dags["cdp_erasure"].params)
    with pytest.raises(ParamValidationError):
        params[key] = value


HEAVY = ("pyspark", "pandas", "numpy", "pyarrow", "deltalake", "cdp_spark", "mlflow", "sklearn")
# Imports what every DAG file imports anyway, then parses the DAG file and reports the heavy
# modules it pulled in, the files it opened and any Variable it read.
PROBE = """
import builtins, runpy, sys
import airflow.sdk
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Variable

opened = []
real_open = builtins.open
def spy_open(file, *args, **kwargs):
    opened.append(str(file))
    return real_open(file, *args, **kwargs)
builtins.open = spy_open
variables = []
Variable.get = lambda key, *a, **k: variables.append(key)
runpy.run_path(sys.argv[1])
builtins.open = real_open
print("HEAVY=" + ",".join(m for m in sys.argv[2:] if m in sys.modules))
print("OPENED=" + ",".join(f for f in opened if not f.endswith((".py", ".pyc"))))
print("VARIABLES=" + ",".join(variables))
"""


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_nothing_heavy_at_parse_time(dag_file: str, tmp_path: Path) -> None:
    import os

    args = [sys.executable, "-c", PROBE, str(DAGS / dag_file), *HEAVY]
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout
    assert "HEAVY=\n" in out, out
    assert "OPENED=\n" in out, out
    assert "VARIABLES=\n" in out, out
