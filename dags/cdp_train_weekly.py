"""
### cdp_train_weekly: retrain the churn and propensity models every week

**features** (point-in-time feature table for the run date) -> **train_churn** and
**train_propensity** in parallel -> **champion_report**.

Each training job logs its run to MLflow, registers the new model version and makes the champion
decision itself: the new version takes the champion alias only if it beats the current champion
by the configured margin (`models.training.champion_margin` in `conf/models.yaml`), so a retried
or re-run week cannot demote a better model. `champion_report` reads the registry afterwards and
logs which version is champion for each model (also returned as the task's XCom).

Schedule: Mondays 06:00 UTC, after the daily run has processed Sunday. The run date passed to the
jobs is the day before the trigger (Sunday, the last complete day), or the `as_of` param of a
manual run: `airflow dags trigger cdp_train_weekly -c '{"as_of": "2026-03-01"}'`.
The config profile comes from the `conf_profile` param, else the `cdp_conf_profile` Variable,
else `local`. Tasks retry with exponential back-off and have a timeout each.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, CronTriggerTimetable, Param, task

CDP_HOME = os.environ.get("CDP_HOME") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS_DIR = f"{{{{ var.value.get('cdp_jobs_dir', '{os.path.join(CDP_HOME, 'jobs')}') }}}}"
PROFILE = "{{ params.conf_profile or var.value.get('cdp_conf_profile', 'local') }}"
# The trigger fires on Monday morning; the last day the daily DAG has completed is the day before.
RUN_DATE = "{{ params.as_of or macros.ds_add(ds, -1) }}"
PY_FILES = "{{ var.value.get('cdp_py_files', '') }}"
MODELS = ("churn", "propensity")

default_args = {
    "owner": "data-science",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=2),
}


def spark_job(task_id: str, script: str, *args: str, timeout: timedelta) -> SparkSubmitOperator:
    """A spark-submit of ``jobs/<script>.py`` for the run date and profile of the DAG run."""
    return SparkSubmitOperator(
        task_id=task_id,
        application=f"{JOBS_DIR}/{script}.py",
        application_args=["--conf-profile", PROFILE, "--run-date", RUN_DATE, *args],
        conn_id="spark_default",
        name=f"cdp-{task_id.replace('_', '-')}",
        py_files=PY_FILES,
        execution_timeout=timeout,
    )


with DAG(
    dag_id="cdp_train_weekly",
    description="Features, then train churn and propensity; the champion decision is reported",
    doc_md=__doc__,
    schedule=CronTriggerTimetable("0 6 * * 1", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=8),
    default_args=default_args,
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            description="train as of this day (YYYY-MM-DD); empty: the day before the run",
        ),
        "conf_profile": Param(
            None,
            type=["null", "string"],
            pattern=r"^[A-Za-z0-9_-]+$",
            description="conf/profiles/<name>.yaml; empty: the cdp_conf_profile Variable or local",
        ),
    },
    tags=["cdp", "ml", "weekly"],
) as dag:

    @task(execution_timeout=timedelta(minutes=10))
    def champion_report(**context: Any) -> dict[str, Any]:
        """Which registered version holds the champion alias of each model, with its metrics."""
        # Imported at run time: the DAG file must not import cdp_spark or mlflow when parsed.
        from airflow.sdk import Variable
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from cdp_spark.config import load_config

        profile = context["params"].get("conf_profile") or Variable.get(
            "cdp_conf_profile", default="local"
        )
        cfg = load_config(profile)
        client = MlflowClient(tracking_uri=cfg.mlflow_tracking_uri)
        alias = cfg.models.training.champion_alias
        report: dict[str, Any] = {}
        for model in MODELS:
            name = cfg.models.spec(model).registered_name
            try:
                version = client.get_model_version_by_alias(name, alias)
            except MlflowException as exc:
                raise RuntimeError(f"{name} has no {alias!r} version after training") from exc
            metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
            report[model] = {"model": name, "version": str(version.version), "metrics": metrics}
            print(f"{model}: {name} version {version.version} is {alias}; metrics {metrics}")
        return report

    features = spark_job("features", "features", timeout=timedelta(hours=1))
    train = [
        spark_job(f"train_{m}", "train", "--model", m, timeout=timedelta(hours=2)) for m in MODELS
    ]
    features >> train >> champion_report()
