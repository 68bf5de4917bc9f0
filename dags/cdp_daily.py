"""Daily CDP pipeline: ingest every source into bronze, then standardise into silver.

Each task is a spark-submit of a job in ``jobs/`` with the run's logical date, so a retry or a
backfill of a day re-runs the same idempotent job. Nothing heavy is imported at parse time.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG

CDP_HOME = os.environ.get("CDP_HOME", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILE = "{{ var.value.get('cdp_profile', 'local') }}"
RUN_DATE = "{{ data_interval_start | ds }}"

default_args = {
    "owner": "data-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
}

with DAG(
    dag_id="cdp_daily",
    description="Ingest sources into bronze and standardise them into silver",
    doc_md=__doc__,
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["cdp", "daily"],
) as dag:
    ingest = SparkSubmitOperator(
        task_id="ingest",
        application=f"{CDP_HOME}/jobs/ingest.py",
        application_args=["--conf-profile", PROFILE, "--run-date", RUN_DATE],
        conn_id="spark_default",
        name="cdp-ingest",
    )
    standardize = SparkSubmitOperator(
        task_id="standardize",
        application=f"{CDP_HOME}/jobs/standardize.py",
        application_args=["--conf-profile", PROFILE, "--run-date", RUN_DATE],
        conn_id="spark_default",
        name="cdp-standardize",
    )
    ingest >> standardize
