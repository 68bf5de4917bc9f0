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
`jobs/erase.py --from-env` with `spark-submit` through the `spark_default` connection, like the
daily jobs, the identifier passed in `CDP_ERASE_EMAIL`, `CDP_ERASE_PHONE` or
`CDP_ERASE_PERSON_ID` so it is not on the command line. The erasure job is idempotent: re-running
a request finds nothing left to erase (see docs/security.md).

Privacy: the identifier is registered as a secret before the task renders its templates, so it
is masked in the task log and in the rendered fields Airflow stores. The run's conf still holds
it in Airflow's metadata DB: restrict access to this DAG and purge old runs
(`airflow db clean --clean-before-timestamp ... --tables dag_run`) as the privacy policy
requires. On YARN the variables travel as `spark.yarn.appMasterEnv.*` settings; in standalone
cluster deploy mode spark-submit cannot pass them at all (use client mode for this DAG).
One erasure runs at a time (`max_active_runs=1`).
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

# The identifier params and the erase job's option for each.
IDENTIFIERS = {"email": "--email", "phone": "--phone", "person_id": "--person-id"}
# jobs/erase.py --from-env reads the identifier from these (an empty one is not set).
ERASE_ENV = {
    "CDP_ERASE_EMAIL": "{{ params.email or '' }}",
    "CDP_ERASE_PHONE": "{{ params.phone or '' }}",
    "CDP_ERASE_PERSON_ID": "{{ params.person_id or '' }}",
}


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
    # Masks the identifier wherever Airflow logs or stores a value holding it.
    from airflow.sdk.log import mask_secret

    for key in IDENTIFIERS:
        if context["params"].get(key):
            mask_secret(str(context["params"][key]))


class ErasureSubmitOperator(SparkSubmitOperator):
    """spark-submit that masks the request's identifier before rendering its templates.

    Airflow stores a task's rendered template fields (redacted by its secrets masker) right after
    rendering, before ``pre_execute``; registering the identifier first keeps it out of them.
    """

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        _mask_identifier(context)
        super().render_template_fields(context, jinja_env)


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

    erase = ErasureSubmitOperator(
        task_id="erase",
        application=f"{JOBS_DIR}/erase.py",
        application_args=["--conf-profile", PROFILE, "--from-env"],
        env_vars=ERASE_ENV,
        conn_id="spark_default",
        name="cdp-erase",
        py_files=PY_FILES,
    )

    check_request() >> erase
