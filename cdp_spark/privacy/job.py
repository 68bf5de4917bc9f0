"""The erasure job's arguments and entry point (``jobs/erase.py``, the Airflow erasure DAG).

The identifier may come from the command line (``--email``...) or, better for a scheduler,
from the environment (``--from-env`` reads ``CDP_ERASE_EMAIL``, ``CDP_ERASE_PHONE`` or
``CDP_ERASE_PERSON_ID``), so it does not appear in the process list or the scheduler's
rendered command. Logs are redacted (:func:`cdp_spark.privacy.pii.install_log_redaction`).

Example:
    >>> erase_main(["--email", "ivan@mail.ru", "--dry-run"])             # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cdp_spark.config import load_config
from cdp_spark.errors import CdpError

ENV_VARS = {
    "email": "CDP_ERASE_EMAIL",
    "phone": "CDP_ERASE_PHONE",
    "person_id": "CDP_ERASE_PERSON_ID",
}


def parse_erase_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """``--email X | --phone X | --person-id X | --from-env`` plus ``--dry-run``,
    ``--retention-hours N``, ``--vacuum-only`` and ``--conf-profile NAME``.

    Example:
        >>> parse_erase_args(["--phone", "+79123456789", "--dry-run"]).dry_run
        True
    """
    parser = argparse.ArgumentParser(
        prog="jobs/erase.py", description="Erase a person from every table and export file."
    )
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--email", help="the person's e-mail address (any form)")
    who.add_argument("--phone", help="the person's phone number (any format)")
    who.add_argument("--person-id", dest="person_id", help="the person's person_id")
    who.add_argument(
        "--from-env",
        action="store_true",
        help=f"read the identifier from ${', $'.join(ENV_VARS.values())}",
    )
    parser.add_argument("--dry-run", action="store_true", help="report, change nothing")
    parser.add_argument(
        "--retention-hours",
        type=int,
        default=None,
        help="vacuum retention (default: privacy.erasure_retention_hours)",
    )
    parser.add_argument(
        "--vacuum-only",
        action="store_true",
        help="only vacuum every table with the retention (scheduled clean-up after erasures)",
    )
    parser.add_argument("--conf-profile", default=None, help="conf/profiles/<name>.yaml")
    return parser.parse_args(list(argv) if argv is not None else None)


def request_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Any:
    """The :class:`ErasureRequest` the arguments (or the environment) describe.

    Example:
        >>> request_from_args(parse_erase_args(["--email", "a@b.ru"])).kind
        'email'
    """
    from cdp_spark.privacy.erasure import ErasureRequest

    environ = os.environ if environ is None else environ
    if args.from_env:
        given = {k: environ.get(v) for k, v in ENV_VARS.items() if environ.get(v)}
        return ErasureRequest(**given)
    return ErasureRequest(email=args.email, phone=args.phone, person_id=args.person_id)


def erase_main(argv: Sequence[str] | None = None) -> int:
    """Run an erasure (or the scheduled vacuum); print the report as JSON; exit code.

    0 on success, 2 on a :class:`CdpError` (message and hint on stderr).

    Example:
        >>> erase_main(["--person-id", "p-42"])                          # doctest: +SKIP
        0
    """
    from cdp_spark.pipeline import RunContext
    from cdp_spark.privacy.redaction import install_log_redaction

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    install_log_redaction()
    args = parse_erase_args(argv)
    try:
        from cdp_spark.privacy.erasure import run_erase, vacuum_all

        request = None if args.vacuum_only else request_from_args(args)
        cfg = load_config(args.conf_profile)
        ctx = RunContext.create(cfg, run_date=datetime.now(tz=UTC).date())
        if request is None:
            report = vacuum_all(ctx, retention_hours=args.retention_hours)
        else:
            report = run_erase(
                ctx, request, dry_run=args.dry_run, retention_hours=args.retention_hours
            )
    except CdpError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    print(json.dumps({"stage": report.stage, **report.figures, "tables": report.rows}, indent=2))
    return 0
