"""
### cdp_daily: the Customer Data Platform's daily run

Every source is ingested into bronze in parallel (one task per source), then the stages run in
order: **standardize** (silver) -> **identity** (persistent `person_id`) -> **profiles**
(golden records, KPIs) -> **features** -> **score** (champion models) -> **segments**
(audiences and their changes) -> **publish** (consent-filtered exports).

Each task is a `spark-submit` of a script in `jobs/` through the `spark_default` connection
(`local[*]` by default; point the connection at YARN, Kubernetes or a standalone master to run on
a cluster), with

* `--run-date {{ ds }}`: the day the run processes. The schedule has daily data intervals, so
  the run created just after midnight of 2026-03-02 has `ds` = 2026-03-01; a manual
  `airflow dags trigger cdp_daily -l 2026-03-01` processes 2026-03-01 too.
* `--conf-profile`: the `conf_profile` param of the run if given, else the Airflow Variable
  `cdp_conf_profile`, else `local`.

**Retries and backfill.** Every job is idempotent and keyed on its run date (transactional
Delta writes, MERGE or replace of exactly the run's slice), so a retried task or a re-run day
writes nothing twice. Tasks retry with exponential back-off and have a timeout each; one run at
a time (`max_active_runs=1`) because identity and profiles build on the previous day's state.
`catchup` is off: past days are run on purpose with
`airflow backfill create --dag-id cdp_daily --from-date ... --to-date ... --max-active-runs 1`.

**Assets.** The gold tables are outlets of the tasks that write them (`gold.customer_profiles`,
`gold.scored_profiles`, ...), so other DAGs can be scheduled on them.

Variables (all optional): `cdp_conf_profile`, `cdp_jobs_dir` (where `jobs/*.py` are, e.g. a
shared path or `s3://...` for cluster deploy mode), `cdp_py_files` (a wheel of `cdp_spark` to
ship with `--py-files` when the cluster's Python does not have it installed). Environment of the
DAG processor: `CDP_AIRFLOW_MAX_PARALLEL_JOBS` (spark-submits of a run at once, default 3: each
local job is a JVM; raise it on a cluster), `CDP_HOME` (the checkout holding `jobs/`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param, TaskGroup, chain

# Parse-time code must stay cheap (the DAG processor re-runs this file every few seconds): no
# YAML, no Variable.get(), no cdp_spark or pyspark import. Run-time choices are templates.

# The sources of conf/sources.yaml, one ingest task each. A static list, not a YAML read at parse
# time (see docs/decisions.md); tests/test_dags.py fails when it drifts from conf/sources.yaml.
SOURCES = (
    "crm_contacts",
    "orders",
    "web_events",
    "email_events",
    "support_tickets",
    "pos_sales",
    "consent_events",
    "products",
    "stores",
)

CDP_HOME = os.environ.get("CDP_HOME") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS_DIR = f"{{{{ var.value.get('cdp_jobs_dir', '{os.path.join(CDP_HOME, 'jobs')}') }}}}"
PROFILE = "{{ params.conf_profile or var.value.get('cdp_conf_profile', 'local') }}"
RUN_DATE = "{{ ds }}"
PY_FILES = "{{ var.value.get('cdp_py_files', '') }}"
# spark-submits of one run at a time. Each local[*] job is a JVM and a Python driver: nine at once
# starve a small machine (and its Airflow API server). Raise it when the jobs run on a cluster.
MAX_PARALLEL_JOBS = int(os.environ.get("CDP_AIRFLOW_MAX_PARALLEL_JOBS", "3"))


def _gold(table: str) -> Asset:
    # A logical URI: the physical path depends on the profile (./lakehouse, s3a://...).
    return Asset(name=f"gold.{table}", uri=f"x-cdp://lakehouse/gold/{table}", group="cdp")


# Assets other DAGs can be scheduled on, e.g. `schedule=[GOLD["scored_profiles"]]`.
GOLD = {
    name: _gold(name)
    for name in (
        "identity_clusters",
        "identity_identifiers",
        "customer_profiles",
        "kpis",
        "features",
        "scored_profiles",
        "segment_membership",
        "audience_changes",
    )
}
EXPORTS = Asset(name="cdp.exports", uri="x-cdp://exports/activation", group="cdp")

default_args = {
    "owner": "data-engineering",
    "retries": 3,
    # 2, 4, 8 minutes: long enough for a cluster hiccup or a concurrent Delta commit to clear.
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=1),
}


def spark_job(
    task_id: str,
    script: str,
    *args: str,
    timeout: timedelta,
    outlets: list[Asset] | None = None,
    name: str | None = None,
) -> SparkSubmitOperator:
    """A spark-submit of ``jobs/<script>.py`` for the run date and profile of the DAG run."""
    return SparkSubmitOperator(
        task_id=task_id,
        application=f"{JOBS_DIR}/{script}.py",
        application_args=["--conf-profile", PROFILE, "--run-date", RUN_DATE, *args],
        conn_id="spark_default",
        name=f"cdp-{name or script}-{{{{ ds }}}}",
        py_files=PY_FILES,
        execution_timeout=timeout,
        outlets=outlets or [],
    )


with DAG(
    dag_id="cdp_daily",
    description="Ingest every source, then standardize, identity, profiles, features, "
    "score, segments, publish",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=MAX_PARALLEL_JOBS,
    dagrun_timeout=timedelta(hours=8),
    default_args=default_args,
    params={
        "conf_profile": Param(
            None,
            type=["null", "string"],
            pattern=r"^[A-Za-z0-9_-]+$",
            description="conf/profiles/<name>.yaml; empty: the cdp_conf_profile Variable or local",
        ),
    },
    tags=["cdp", "daily"],
) as dag:
    with TaskGroup("ingest", tooltip="every source's new landing files into bronze") as ingest:
        for source in SOURCES:
            # Task id ingest.<source>: a failed source is retried or cleared on its own.
            spark_job(
                source,
                "ingest",
                "--source",
                source,
                timeout=timedelta(hours=1),
                name=f"ingest-{source}",
            )

    chain(
        ingest,
        spark_job("standardize", "standardize", timeout=timedelta(hours=1)),
        spark_job(
            "identity",
            "identity",
            timeout=timedelta(hours=2),
            outlets=[GOLD["identity_clusters"], GOLD["identity_identifiers"]],
        ),
        spark_job(
            "profiles",
            "profiles",
            timeout=timedelta(hours=1),
            outlets=[GOLD["customer_profiles"], GOLD["kpis"]],
        ),
        spark_job("features", "features", timeout=timedelta(hours=1), outlets=[GOLD["features"]]),
        spark_job("score", "score", timeout=timedelta(hours=1), outlets=[GOLD["scored_profiles"]]),
        spark_job(
            "segments",
            "segments",
            timeout=timedelta(minutes=30),
            outlets=[GOLD["segment_membership"], GOLD["audience_changes"]],
        ),
        spark_job("publish", "publish", timeout=timedelta(minutes=30), outlets=[EXPORTS]),
    )
