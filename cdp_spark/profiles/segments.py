"""Segments: audiences declared in YAML, evaluated on the profiles, with who entered and left.

``conf/segments.yaml`` declares each segment as a boolean expression over the columns of
``gold.customer_profiles`` (plus the latest scores of ``gold.scored_profiles`` when that table
exists). The stage ``segments`` (:func:`run_segments`):

1. validates every segment (name, schedule, destinations, expression: see
   :mod:`cdp_spark.profiles.expressions`) before reading any data; any problem stops the run;
2. skips the segments not due on the run date (``schedule``), and reports them;
3. writes ``gold.segment_membership`` (``run_date, segment, person_id``) for the due segments,
   evaluated in one pass over the profiles;
4. writes ``gold.audience_changes`` (``run_date, segment, person_id, change``): ``entered`` for
   members who were not in the segment at its previous run, ``left`` for the reverse. The
   previous run of a segment is the latest run date before this one that holds its rows, so a
   weekly segment is compared with last week.

Both writes replace exactly ``run_date = D and segment in (the due segments)``: re-running a
day gives the same tables, with no duplicates.

Example:
    >>> report = run_segments(ctx)                                    # doctest: +SKIP
    >>> report.rows[0]
    {'segment': 'at_risk_high_value', 'status': 'ok', 'members': 412, 'entered': 37, 'left': 12}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.ingest import ensure_table
from cdp_spark.pipeline import RunContext, StageReport
from cdp_spark.profiles.expressions import (
    ValidatedExpression,
    validate_expression,
)
from cdp_spark.storage import Lakehouse
from cdp_spark.storage.layout import serving_layout

PROFILES_TABLE = "gold.customer_profiles"
SCORES_TABLE = "gold.scored_profiles"
MEMBERSHIP_TABLE = "gold.segment_membership"
CHANGES_TABLE = "gold.audience_changes"
# One row per segment run: publish knows a segment ran on a date even when it has no members.
RUNS_TABLE = "ops.segment_runs"

MEMBERSHIP_SCHEMA = StructType(
    [
        StructField("run_date", DateType(), False),
        StructField("segment", StringType(), False),
        StructField("person_id", StringType(), False),
    ]
)
CHANGES_SCHEMA = StructType(
    [
        StructField("run_date", DateType(), False),
        StructField("segment", StringType(), False),
        StructField("person_id", StringType(), False),
        StructField("change", StringType(), False),  # entered | left
    ]
)
RUNS_SCHEMA = StructType(
    [
        StructField("run_date", DateType(), False),
        StructField("segment", StringType(), False),
        StructField("members", LongType(), False),
        StructField("entered", LongType(), False),
        StructField("left", LongType(), False),
        StructField("where", StringType(), False),
        StructField("computed_at", TimestampType(), False),
    ]
)
# Score columns a segment may use; null for everyone until the score stage has run.
SCORE_FIELDS: tuple[StructField, ...] = (
    StructField("churn_score", DoubleType(), True),
    StructField("churn_decile", IntegerType(), True),
    StructField("propensity_score", DoubleType(), True),
    StructField("propensity_decile", IntegerType(), True),
)

SEGMENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class SegmentConfigError(CdpError):
    """A segment's name, schedule or destinations are not valid."""


# --- schedules -------------------------------------------------------------------------------

_DAYS = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 0}
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}


def is_due(schedule: str, day: date) -> bool:
    """True when a segment with ``schedule`` runs on ``day``.

    ``daily``; ``weekly`` (Mondays) or ``weekly:<mon..sun>``; ``monthly`` (the 1st) or
    ``monthly:<1..28>``; or a cron line ``"min hour day-of-month month day-of-week"`` of which
    only the day fields matter (the pipeline runs once a day). As in cron, when both
    day-of-month and day-of-week are restricted, either one matching is enough.

    Raises:
        ValueError: the schedule is not one of these forms.

    Example:
        >>> is_due("weekly:fri", date(2026, 3, 6)), is_due("0 6 1 * *", date(2026, 3, 2))
        (True, False)
    """
    text = schedule.strip().lower()
    if text == "daily":
        return True
    if text == "weekly" or text.startswith("weekly:"):
        name = text.partition(":")[2] or "mon"
        if name not in _DAYS:
            raise ValueError(f"unknown day {name!r} in {schedule!r}; use mon, tue, ... sun")
        return day.isoweekday() % 7 == _DAYS[name]
    if text == "monthly" or text.startswith("monthly:"):
        raw = text.partition(":")[2] or "1"
        if not raw.isdigit() or not 1 <= int(raw) <= 28:
            raise ValueError(f"day of month {raw!r} in {schedule!r} must be 1..28")
        return day.day == int(raw)
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"schedule {schedule!r} is not daily, weekly[:day], monthly[:n] or a cron line "
            "of 5 fields (e.g. '0 6 * * mon')"
        )
    _cron_field(fields[0], 0, 59, {})
    _cron_field(fields[1], 0, 23, {})
    dom = _cron_field(fields[2], 1, 31, {})
    months = _cron_field(fields[3], 1, 12, _MONTHS)
    dow = {d % 7 for d in _cron_field(fields[4], 0, 7, _DAYS)}
    if day.month not in months:
        return False
    dom_hit, dow_hit = day.day in dom, day.isoweekday() % 7 in dow
    if fields[2] != "*" and fields[4] != "*":
        return dom_hit or dow_hit
    return dom_hit and dow_hit


def _cron_field(text: str, low: int, high: int, names: Mapping[str, int]) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"bad step in cron field {text!r}")
        if body == "*":
            start, end = low, high
        else:
            first, dash, last = body.partition("-")
            start = _cron_value(first, names, text)
            end = _cron_value(last, names, text) if dash else (high if step else start)
        if not low <= start <= end <= high:
            raise ValueError(f"cron field {text!r} is outside {low}..{high}")
        values.update(range(start, end + 1, step or 1))
    return values


def _cron_value(token: str, names: Mapping[str, int], field: str) -> int:
    if token.isdigit():
        return int(token)
    if token in names:
        return names[token]
    raise ValueError(f"cron field {field!r}: {token!r} is not a number or a name")


# --- validation ------------------------------------------------------------------------------


def segment_schema(lake: Lakehouse, cfg: CdpConfig | None = None) -> StructType:
    """The columns a segment can use: the profile columns plus the score columns.

    From ``gold.customer_profiles`` when it exists; before the first profile build, and given
    ``cfg``, from the declared profile columns (golden-record fields typed as strings), so
    that ``cdp segments validate`` works on a fresh checkout.

    Example:
        >>> "churn_decile" in segment_schema(lake).fieldNames()            # doctest: +SKIP
        True
    """
    if lake.exists(PROFILES_TABLE):
        fields = list(lake.read(PROFILES_TABLE).schema.fields)
    elif cfg is not None:
        fields = declared_profile_fields(lake.spark, cfg)
    else:
        raise CdpError(
            f"{PROFILES_TABLE} does not exist yet, so segments cannot be checked against it",
            hint="run `cdp run profiles` first",
        )
    names = {f.name for f in fields}
    return StructType(fields + [f for f in SCORE_FIELDS if f.name not in names])


def declared_profile_fields(spark: SparkSession, cfg: CdpConfig) -> list[StructField]:
    """The profile columns the profile build declares (``profile_columns``), as fields.

    Example:
        >>> declared_profile_fields(spark, load_config())[0].name         # doctest: +SKIP
        'person_id'
    """
    from cdp_spark.profiles.build import profile_columns

    ddl = ", ".join(f"`{n}` {kind or 'string'}" for n, kind in profile_columns(cfg.profiles))
    return list(spark.createDataFrame([], ddl).schema.fields)


def check_segments(
    spark: SparkSession,
    cfg: CdpConfig,
    schema: StructType,
    *,
    names: Sequence[str] | None = None,
) -> tuple[dict[str, ValidatedExpression], list[CdpError]]:
    """Check every segment (or ``names``) without running it; returns the good ones and the
    problems, so that one call reports all of them.

    Example:
        >>> good, problems = check_segments(spark, cfg, schema)            # doctest: +SKIP
        >>> [str(p) for p in problems]
        ["segment 'vip': unknown column 'cvl'; did you mean clv?"]
    """
    selected = _selected(cfg, names)
    good: dict[str, ValidatedExpression] = {}
    problems: list[CdpError] = []
    for name in selected:
        segment = cfg.segments[name]
        try:
            if not SEGMENT_NAME.match(name):
                raise SegmentConfigError(
                    f"segment {name!r}: a name is lower case letters, digits and _ "
                    "(it becomes a folder and a table value)"
                )
            try:
                is_due(segment.schedule, date(2026, 1, 1))
            except ValueError as exc:
                raise SegmentConfigError(f"segment {name!r}: schedule: {exc}") from None
            unknown = [d for d in segment.destinations if d not in cfg.activation.destinations]
            if unknown:
                raise SegmentConfigError(
                    f"segment {name!r}: unknown destination(s) {', '.join(unknown)}",
                    hint="destinations declared under activation.destinations: "
                    + (", ".join(cfg.activation.destinations) or "none"),
                )
            good[name] = validate_expression(spark, segment.where, schema, segment=name)
        except CdpError as exc:
            problems.append(exc)
    return good, problems


def _selected(cfg: CdpConfig, names: Sequence[str] | None) -> list[str]:
    if names is None:
        return [n for n, s in cfg.segments.items() if s.enabled]
    unknown = [n for n in names if n not in cfg.segments]
    if unknown:
        raise SegmentConfigError(
            f"unknown segment(s): {', '.join(unknown)}",
            hint="segments in conf/segments.yaml: " + (", ".join(cfg.segments) or "none"),
        )
    return list(names)


def raise_problems(problems: Sequence[CdpError]) -> None:
    """Raise one error listing every problem (the first one's hint), if there are any.

    Example:
        >>> raise_problems([])
    """
    if not problems:
        return
    if len(problems) == 1:
        raise problems[0]
    listing = "; ".join(str(p) for p in problems)
    raise SegmentConfigError(
        f"{len(problems)} segments are not valid: {listing}", hint=problems[0].hint
    )


# --- transformations -------------------------------------------------------------------------


def with_scores(profiles: DataFrame, scores: DataFrame | None, *, run_date: date) -> DataFrame:
    """Profiles plus each person's latest scores up to ``run_date`` (null without scores).

    Example:
        >>> with_scores(profiles, None, run_date=date(2026, 3, 1)).columns[-1]  # doctest: +SKIP
        'propensity_decile'
    """
    wanted = [f for f in SCORE_FIELDS if f.name not in profiles.columns]
    if scores is None:
        return profiles.select("*", *[F.lit(None).cast(f.dataType).alias(f.name) for f in wanted])
    latest = Window.partitionBy("person_id").orderBy(F.col("score_date").desc())
    picked = (
        scores.where(F.col("score_date") <= F.lit(run_date))
        .withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .select("person_id", *[F.col(f.name).cast(f.dataType).alias(f.name) for f in wanted])
    )
    return profiles.join(picked, "person_id", "left")


def build_membership(
    profiles: DataFrame, expressions: Mapping[str, str], *, run_date: date
) -> DataFrame:
    """``(run_date, segment, person_id)`` for every profile matching each expression.

    All segments are evaluated in one pass: each row gets the array of segments it matches.
    A null result (e.g. a comparison with a null column) means "not a member".

    Example:
        >>> build_membership(profiles, {"vip": "clv > 500"}, run_date=date(2026, 3, 1)).show()
        ...                                                               # doctest: +SKIP
    """
    if not expressions:
        return profiles.sparkSession.createDataFrame([], MEMBERSHIP_SCHEMA)
    matched = F.array(
        *[F.when(F.coalesce(F.expr(w), F.lit(False)), F.lit(n)) for n, w in expressions.items()]
    )
    return (
        profiles.where(F.col("person_id").isNotNull())
        .select("person_id", F.explode(F.filter(matched, lambda s: s.isNotNull())).alias("segment"))
        .select(
            F.lit(run_date).cast("date").alias("run_date"),
            F.col("segment"),
            F.col("person_id"),
        )
        .dropDuplicates(["segment", "person_id"])
    )


def previous_membership(
    membership: DataFrame, segments: Sequence[str], *, run_date: date
) -> DataFrame:
    """Each segment's members at its latest run before ``run_date``.

    Example:
        >>> previous_membership(lake.read(MEMBERSHIP_TABLE), ["vip"],
        ...                     run_date=date(2026, 3, 2))                  # doctest: +SKIP
    """
    before = membership.where(
        (F.col("run_date") < F.lit(run_date)) & F.col("segment").isin(list(segments))
    )
    last = before.groupBy("segment").agg(F.max("run_date").alias("run_date"))
    return before.join(last, ["segment", "run_date"]).select(*MEMBERSHIP_SCHEMA.fieldNames())


def build_audience_changes(current: DataFrame, previous: DataFrame, *, run_date: date) -> DataFrame:
    """Who ``entered`` (member now, not before) and who ``left`` (the reverse), per segment.

    Example:
        >>> build_audience_changes(today, before, run_date=date(2026, 3, 2)).show()
        ...                                                               # doctest: +SKIP
    """
    now = current.select("segment", "person_id", F.lit(True).alias("_now"))
    before = previous.select("segment", "person_id", F.lit(True).alias("_before"))
    both = now.join(before, ["segment", "person_id"], "full_outer")
    change = F.when(F.col("_before").isNull(), "entered").when(F.col("_now").isNull(), "left")
    return both.select(
        F.lit(run_date).cast("date").alias("run_date"),
        "segment",
        "person_id",
        change.alias("change"),
    ).where(F.col("change").isNotNull())


# --- stage -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentPlan:
    """Which segments run on a date and which are skipped because they are not due."""

    due: dict[str, ValidatedExpression]
    skipped: list[str]


def plan_segments(
    spark: SparkSession,
    cfg: CdpConfig,
    schema: StructType,
    *,
    run_date: date,
    names: Sequence[str] | None = None,
) -> SegmentPlan:
    """Validate the segments and split them into due and not due on ``run_date``.

    Example:
        >>> plan_segments(spark, cfg, schema, run_date=date(2026, 3, 2)).skipped  # doctest: +SKIP
        ['monthly_vip_review']
    """
    good, problems = check_segments(spark, cfg, schema, names=names)
    raise_problems(problems)
    due = {n: v for n, v in good.items() if is_due(cfg.segments[n].schedule, run_date)}
    return SegmentPlan(due, [n for n in good if n not in due])


def segment_where(run_date: date, segments: Sequence[str]) -> str:
    """The predicate of exactly one run date's rows of ``segments`` (for overwrite-where).

    Example:
        >>> segment_where(date(2026, 3, 1), ["a", "b"])
        "run_date = DATE'2026-03-01' AND segment IN ('a', 'b')"
    """
    # Names are checked against SEGMENT_NAME, so they can be quoted as they are.
    quoted = ", ".join(f"'{s}'" for s in segments)
    return f"run_date = DATE'{run_date.isoformat()}' AND segment IN ({quoted})"


def run_segments(ctx: RunContext, *, segments: Sequence[str] | None = None) -> StageReport:
    """Stage ``segments``: membership and audience changes of the segments due on the run date.

    ``segments`` restricts the run to those names (default: every enabled segment).

    Example:
        >>> run_segments(ctx, segments=["at_risk_high_value"]).figures    # doctest: +SKIP
        {'segments': 1, 'skipped': 0, 'members': 412, 'entered': 37, 'left': 12}
    """
    cfg, lake, day = ctx.cfg, ctx.lake, ctx.run_date
    report = StageReport("segments")
    ctx.progress("segments: validating expressions")
    schema = segment_schema(lake)
    plan = plan_segments(ctx.spark, cfg, schema, run_date=day, names=segments)
    for name in plan.skipped:
        report.rows.append(_row(name, f"not due ({cfg.segments[name].schedule})"))
    report.figures.update({"segments": len(plan.due), "skipped": len(plan.skipped)})
    if not plan.due:
        report.status = "skipped" if plan.skipped else "ok"
        return report

    scores = lake.read(SCORES_TABLE) if lake.exists(SCORES_TABLE) else None
    profiles = with_scores(lake.read(PROFILES_TABLE), scores, run_date=day)
    exprs = {n: v.text for n, v in plan.due.items()}
    ctx.progress(f"segments: evaluating {len(exprs)} segment(s)")
    current = build_membership(profiles, exprs, run_date=day).persist()
    try:
        ensure_table(lake, MEMBERSHIP_TABLE, MEMBERSHIP_SCHEMA, partition_by=["run_date"])
        ensure_table(lake, CHANGES_TABLE, CHANGES_SCHEMA, partition_by=["run_date"])
        previous = previous_membership(lake.read(MEMBERSHIP_TABLE), list(exprs), run_date=day)
        changes = build_audience_changes(current, previous, run_date=day).persist()
        where = segment_where(day, list(exprs))
        # Changes first: they are computed from the membership table before today's write.
        lake.overwrite(CHANGES_TABLE, changes, where=where)
        # Sorted by person_id within the run date: the look-up reads one file of it.
        laid_out = serving_layout(current, MEMBERSHIP_TABLE, rows=current.count())
        lake.overwrite(MEMBERSHIP_TABLE, laid_out, where=where)
        counts = _counts(current, changes)
        changes.unpersist()
    finally:
        current.unpersist()

    totals = {"members": 0, "entered": 0, "left": 0}
    runs = []
    now = datetime.now(tz=UTC)
    for name in exprs:
        got = counts.get(name, {})
        row = _row(name, "ok", **{k: got.get(k, 0) for k in totals})
        report.rows.append(row)
        runs.append((day, name, *[int(row[k]) for k in totals], exprs[name], now))
        for k in totals:
            totals[k] += int(row[k])
    ensure_table(lake, RUNS_TABLE, RUNS_SCHEMA, partition_by=["run_date"])
    lake.overwrite(RUNS_TABLE, ctx.spark.createDataFrame(runs, RUNS_SCHEMA), where=where)
    report.figures.update(totals)
    report.rows.sort(key=lambda r: str(r["segment"]))
    return report


def _counts(current: DataFrame, changes: DataFrame) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in current.groupBy("segment").count().collect():
        out.setdefault(r["segment"], {})["members"] = int(r["count"])
    for r in changes.groupBy("segment", "change").count().collect():
        out.setdefault(r["segment"], {})[r["change"]] = int(r["count"])
    return out


def _row(name: str, status: str, **figures: Any) -> dict[str, Any]:
    return {"segment": name, "status": status, "members": "", "entered": "", "left": "", **figures}
