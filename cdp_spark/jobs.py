"""What every spark-submit entry point in ``jobs/`` shares: arguments, context, report, exit code.

A job file is three lines around :func:`job_main`, so every job parses the same arguments,
builds its session and lakehouse the same way (:meth:`RunContext.create`) and reports the same
way. Airflow passes ``--run-date {{ data_interval_start | ds }}``, so a retry or a backfill of
a day re-runs the same idempotent stage.

Example:
    >>> job_main("ingest", ["--conf-profile", "local", "--run-date", "2026-03-01"],
    ...          sources=["crm"])                                     # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from cdp_spark.config import load_config
from cdp_spark.errors import CdpError

log = logging.getLogger(__name__)


def parse_job_args(stage: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """``--conf-profile NAME --run-date YYYY-MM-DD [--source NAME ...]`` (all optional).

    The profile defaults to ``$CDP_PROFILE`` or ``local``; the run date to today (UTC);
    ``--source`` restricts a stage that takes ``sources`` to those sources.

    Example:
        >>> parse_job_args("ingest", ["--run-date", "2026-03-01"]).run_date
        datetime.date(2026, 3, 1)
    """
    parser = argparse.ArgumentParser(prog=f"jobs/{stage}.py", description=f"Run the {stage} stage.")
    parser.add_argument(
        "--conf-profile",
        default=None,
        help="conf/profiles/<name>.yaml (default: $CDP_PROFILE or local)",
    )
    parser.add_argument(
        "--run-date",
        type=date.fromisoformat,
        default=None,
        help="the logical date of the run, YYYY-MM-DD (default: today, UTC)",
    )
    parser.add_argument(
        "--source",
        action="append",
        dest="sources",
        default=None,
        metavar="NAME",
        help="only this source (repeatable); default: every source in conf/sources.yaml",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.run_date is None:
        args.run_date = datetime.now(tz=UTC).date()
    return args


def job_main(stage: str, argv: Sequence[str] | None = None, **stage_kwargs: Any) -> int:
    """Parse the job arguments, build the context, run ``stage`` and print its report.

    ``stage_kwargs`` go to the stage function (e.g. ``sources=["crm"]`` for a per-source
    ingest). Returns 0 on success and 2 on a :class:`CdpError` (message and hint on stderr);
    other exceptions propagate, so spark-submit shows the trace and Airflow retries.

    Example:
        >>> job_main("standardize", ["--run-date", "2026-03-01"])   # doctest: +SKIP
        0
    """
    # Imported here so that `--help` answers without starting the JVM.
    from cdp_spark.pipeline import RunContext, resolve_stage
    from cdp_spark.privacy.redaction import install_log_redaction

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    install_log_redaction()  # job logs end up in Airflow: no raw e-mail or phone in them
    args = parse_job_args(stage, argv)
    if args.sources:
        stage_kwargs = {**stage_kwargs, "sources": args.sources}
    try:
        cfg = load_config(args.conf_profile)
        ctx = RunContext.create(cfg, run_date=args.run_date)
        started = time.perf_counter()
        stage_fn: Any = resolve_stage(stage)  # stages may take keyword options (sources=...)
        report = stage_fn(ctx, **stage_kwargs)
        report.seconds = time.perf_counter() - started
    except CdpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    summary = {
        "stage": report.stage,
        "status": report.status,
        "run_date": args.run_date.isoformat(),
        "seconds": round(report.seconds, 1),
        "figures": report.figures,
        "rows": report.rows,
    }
    print(json.dumps(summary, default=str, indent=2))
    return 0
