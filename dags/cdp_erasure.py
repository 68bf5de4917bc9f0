"""
### cdp_erasure: erase one person from every layer (right to erasure)

Triggered by hand or by an API call, never on a schedule, with exactly one identifier in the
run's conf:

```bash
airflow dags trigger cdp_erasure -c '{"email": "ilya@example.com"}'
airflow dags trigger cdp_erasure -c '{"phone": "+79161234567"}'
airflow dags trigger cdp_erasure -c '{"person_id": "p-0000123"}'
```

`check_request` refuses a run with none or more than one identifier (Airflow validates each
value's type and form against the DAG's params first); `erase` then runs
`jobs/erase.py --email|--phone|--person-id VALUE` with `spark-submit` through the `spark_default`
connection, like the daily jobs. The erasure job is idempotent: re-running a request finds
nothing left to erase.

Privacy: the identifier is masked in this DAG's task logs, but the run's conf (which holds it)
stays in Airflow's metadata DB; restrict access to the DAG and purge old runs
(`airflow db clean --clean-before-timestamp ... --tables dag_run`) as the privacy policy
requires. One erasure runs at a time (`max_active_runs=1`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, Param, task

CDP_HOME = os.environ.get("CDP_HOME") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JOBS_DIR = f"{{{{ var.value.get('cdp_jobs_dir', '{os.path.join(CDP_HOME, 'jobs')}') }}}}"
PROFILE = "{{ params.conf_profile or var.value.get('cdp_conf_profile', 'local') }}"
PY_FILES = "{{ var.value.get('cdp_py_files', '') }}"

# The identifier params and the erase job's option for each, in the order they are looked at.
IDENTIFIERS = {"email": "--email", "phone": "--phone", "person_id": "--person-id"}
# Exactly one identifier is set (check_request makes sure), so the job gets one flag and value.
ID_FLAG = "{{ '--email' if params.email else ('--phone' if params.phone else '--person-id') }}"
ID_VALUE = "{{ params.email or params.phone or params.person_id }}"


def identifier_args(params: dict[str, Any]) -> list[str]:
    """The erase job's identifier option for a request holding exactly one identifier.

    Raises:
        ValueError: when no identifier, or more than one, is given.

    Example:
        >>> identifier_args({"email": "a@b.c", "phone": None, "person_id": None})
        ['--email', 'a@b.c']
    """
    given = {k: str(params[k]).strip() for k in IDENTIFIERS if params.get(k) is not None}
    given = {k: v for k, v in given.items() if v}
    if len(given) != 1:
        raise ValueError(
            "an erasure request names exactly one of email, phone or person_id; "
            f"got {', '.join(sorted(given)) or 'none'}"
        )
    ((key, value),) = given.items()
    return [IDENTIFIERS[key], value]


def _mask_identifier(context: Any) -> None:
    # Keeps the identifier out of the task log (the spark-submit command line is logged).
    from airflow.sdk.log import mask_secret

    for key in IDENTIFIERS:
        if context["params"].get(key):
            mask_secret(str(context["params"][key]))


default_args = {
    "owner": "data-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=20),
    "execution_timeout": timedelta(hours=1),
}

with DAG(
    dag_id="cdp_erasure",
    description="Erase one person (email, phone or person_id) from every layer",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    params={
        "email": Param(
            None, type=["null", "string"], format="email", description="an e-mail address"
        ),
        "phone": Param(
            None,
            type=["null", "string"],
            pattern=r"^\+?[0-9 ()-]{6,20}$",
            description="a phone number, E.164 preferred (+79161234567)",
        ),
        "person_id": Param(
            None,
            type=["null", "string"],
            pattern=r"^[A-Za-z0-9_-]+$",
            description="a person_id from gold.identity_clusters",
        ),
        "conf_profile": Param(
            None,
            type=["null", "string"],
            pattern=r"^[A-Za-z0-9_-]+$",
            description="conf/profiles/<name>.yaml; empty: the cdp_conf_profile Variable or local",
        ),
    },
    tags=["cdp", "privacy"],
) as dag:

    @task(retries=0, pre_execute=_mask_identifier)
    def check_request(**context: Any) -> str:
        """Refuse a request without exactly one identifier, before anything runs."""
        return identifier_args(context["params"])[0]

    erase = SparkSubmitOperator(
        task_id="erase",
        application=f"{JOBS_DIR}/erase.py",
        application_args=["--conf-profile", PROFILE, ID_FLAG, ID_VALUE],
        conn_id="spark_default",
        name="cdp-erase",
        py_files=PY_FILES,
        pre_execute=_mask_identifier,
    )

    check_request() >> erase
