"""Stages of the pipeline and the context they run in.

A stage is a function ``(RunContext) -> StageReport``. The CLI (``cdp run STAGE``), the
spark-submit entry points in ``jobs/`` and the Airflow DAGs all call the same functions through
:func:`run_stage`, so there is one code path whatever launches the work.

Example:
    >>> ctx = RunContext.create(load_config("local"), run_date=date(2026, 3, 1))  # doctest: +SKIP
    >>> run_stage("ingest", ctx).status
    'ok'
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pyspark.sql import SparkSession

from cdp_spark.caching import release_local_blocks
from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.storage import Lakehouse

log = logging.getLogger(__name__)

ProgressFn = Callable[[str], None]


@dataclass
class StageReport:
    """What a stage did: a status, figures for the run report, and table rows to print."""

    stage: str
    status: str = "ok"
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class RunContext:
    """Everything a stage needs: session, config, lakehouse, the run date and a progress hook."""

    spark: SparkSession
    cfg: CdpConfig
    lake: Lakehouse
    run_date: date
    progress: ProgressFn = field(default=lambda message: log.info(message))

    @classmethod
    def create(
        cls,
        cfg: CdpConfig,
        *,
        run_date: date,
        spark: SparkSession | None = None,
        progress: ProgressFn | None = None,
    ) -> RunContext:
        """Build the session (unless given) and open the lakehouse for ``cfg``."""
        from cdp_spark.session import build_session, open_configured_lakehouse

        spark = spark or build_session(cfg)
        lake = open_configured_lakehouse(spark, cfg)
        return cls(spark, cfg, lake, run_date, progress or (lambda message: log.info(message)))


# Stage name -> "module:function". Imported lazily so that `cdp doctor` stays fast and a stage's
# dependencies are loaded only when it runs.
STAGES: dict[str, str] = {
    "ingest": "cdp_spark.ingest:run_ingest",
    "standardize": "cdp_spark.standardize:run_standardize",
    # Each stage below is switched on (uncommented) by the change that makes it work.
    "identity": "cdp_spark.identity.stage:run_identity",
    "profiles": "cdp_spark.profiles.stage:run_profiles",
    "features": "cdp_spark.ml.features:run_features",
    "train": "cdp_spark.ml.train:run_train",
    "score": "cdp_spark.ml.score:run_score",
    "segments": "cdp_spark.profiles.segments:run_segments",
    "publish": "cdp_spark.profiles.activation:run_publish",
}


def stage_names() -> list[str]:
    """The stages in the order ``cdp run all`` runs them."""
    return list(STAGES)


def resolve_stage(name: str) -> Callable[[RunContext], StageReport]:
    """The function behind stage ``name``; a clear error for unknown names."""
    if name not in STAGES:
        raise CdpError(f"unknown stage {name!r}", hint=f"stages: {', '.join(STAGES)}, all")
    module_name, func_name = STAGES[name].split(":")
    func: Callable[[RunContext], StageReport] = getattr(
        importlib.import_module(module_name), func_name
    )
    return func


def run_stage(name: str, ctx: RunContext) -> StageReport:
    """Run one stage and time it."""
    started = time.perf_counter()
    ctx.progress(f"stage {name}: started (run date {ctx.run_date})")
    report = resolve_stage(name)(ctx)
    # Not in a `finally`: after a failure that took the JVM down, the release's py4j error would
    # hide the stage's own; a failed stage ends the run, and its session's blocks with it.
    release_local_blocks(ctx.spark)
    report.seconds = time.perf_counter() - started
    ctx.progress(f"stage {name}: {report.status} in {report.seconds:.1f}s")
    return report


def run_stages(names: Sequence[str], ctx: RunContext) -> list[StageReport]:
    """Run stages in order; ``["all"]`` means every stage."""
    selected = stage_names() if list(names) == ["all"] else list(names)
    return [run_stage(n, ctx) for n in selected]
