"""The ``cdp`` command-line tool.

Commands::

    cdp doctor                      Java, Spark, engines detected, config in effect
    cdp generate --customers N ...  write a synthetic multi-source data set to the landing folder
    cdp run [STAGE|all]             run pipeline stages (the same functions the jobs/ call)
    cdp tables                      every table: engine, version, rows, size, last write
    cdp show TABLE [--version N]    print rows of a table (time travel with --version)
    cdp history TABLE               the Delta log of a table
    cdp erase --email X [--dry-run] delete a person everywhere (right to erasure)
    cdp segments validate           check every segment of conf/segments.yaml without running it
    cdp publish [--segment S] [--destination D]   export segments (consent checked at export)

Errors print as one line plus a hint; ``--debug`` shows the stack trace.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from cdp_spark.config import CdpConfig, load_config
from cdp_spark.errors import CdpError

app = typer.Typer(
    name="cdp",
    help="Customer Data Platform on Spark and Delta Lake.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (make, CI logs) gets wide lines instead of names cut to fit 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

_state: dict[str, Any] = {"debug": False, "profile": None}

T = TypeVar("T")

ProfileOpt = Annotated[
    str | None, typer.Option("--profile", "-p", help="conf/profiles/<name>.yaml (default: local)")
]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="show stack traces on errors")] = False,
    profile: ProfileOpt = None,
) -> None:
    _state["debug"] = debug
    _state["profile"] = profile
    # RichHandler writes to whatever sys.stderr is at the time, never to a stream closed since.
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)
    from cdp_spark.privacy.redaction import install_log_redaction

    install_log_redaction()  # log lines never carry a raw e-mail or phone


def _guard(func: Callable[[], T]) -> T:
    """Run ``func``; turn failures into one clear line plus a hint (trace with --debug)."""
    try:
        return func()
    except CdpError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc}")
        if exc.hint:
            err_console.print(f"[yellow]hint:[/] {exc.hint}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        raise typer.Exit(130) from None
    except Exception as exc:
        if _state["debug"]:
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0]
        err_console.print(f"[bold red]error:[/] {type(exc).__name__}: {first_line[:500]}")
        err_console.print("[yellow]hint:[/] run again with `cdp --debug ...` for the stack trace")
        raise typer.Exit(1) from None


def _config(profile: str | None = None) -> CdpConfig:
    return load_config(profile or _state["profile"])


def _session(cfg: CdpConfig) -> Any:
    from cdp_spark.session import build_session

    with console.status("starting Spark..."):
        return build_session(cfg)


def _lake(cfg: CdpConfig) -> Any:
    from cdp_spark.session import open_configured_lakehouse

    return open_configured_lakehouse(_session(cfg), cfg)


@app.command()
def doctor() -> None:
    """Check Java, Spark and the engines, and print the configuration in effect."""

    def _run() -> None:
        cfg = _config()
        ok = True
        java = shutil.which("java")
        if java:
            out = subprocess.run(
                [java, "-version"], capture_output=True, text=True, check=False
            ).stderr.splitlines()
            console.print(f"[green]ok[/]   Java: {out[0] if out else java}")
        else:
            ok = False
            console.print("[red]FAIL[/] Java: not found (apt-get install openjdk-17-jre-headless)")
        import pyspark

        console.print(
            f"[green]ok[/]   PySpark {pyspark.__version__} on Python {sys.version.split()[0]}"
        )
        from cdp_spark.session import detect_engines

        started = time.perf_counter()
        spark = _session(cfg)
        console.print(
            f"[green]ok[/]   Spark {spark.version} session ({spark.sparkContext.master}) "
            f"started in {time.perf_counter() - started:.1f}s"
        )
        for line in detect_engines(spark, cfg).lines():
            console.print(f"     {line}")
        console.print(f"\nprofile:   {cfg.profile}")
        console.print(f"lakehouse: {cfg.lakehouse_root}")
        console.print(f"landing:   {cfg.landing_dir}")
        console.print(f"mlflow:    {cfg.mlflow_tracking_uri}")
        console.print(f"sources:   {', '.join(cfg.sources) or '(none declared)'}")
        if not ok:
            raise typer.Exit(1)

    _guard(_run)


@app.command()
def generate(
    customers: Annotated[int, typer.Option(min=1, help="number of people")] = 2000,
    days: Annotated[int, typer.Option(min=1, help="days of history")] = 60,
    seed: Annotated[int, typer.Option(help="random seed; same seed, same files")] = 42,
    out: Annotated[
        Path | None, typer.Option(help="landing folder (default: paths.landing)")
    ] = None,
    start: Annotated[str, typer.Option(help="first day, YYYY-MM-DD")] = "2026-01-01",
    workers: Annotated[int, typer.Option(min=1, help="processes")] = 1,
) -> None:
    """Write a synthetic multi-source retail data set (CRM, orders, web, email, ...)."""

    def _run() -> None:
        from rich.progress import Progress

        from cdp_spark.generate import generate as gen

        target = out or Path(_config().landing_dir)
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("generating", total=None)

            def _progress(stage: str, done: int, total: int) -> None:
                progress.update(
                    task, description=f"generating {stage}", completed=done, total=total
                )

            summary = gen(
                target,
                customers=customers,
                days=days,
                seed=seed,
                start_date=date.fromisoformat(start),
                workers=workers,
                progress=_progress,
            )
        console.print(f"wrote {target}")
        console.print(summary)

    _guard(_run)


@app.command()
def run(
    stages: Annotated[list[str] | None, typer.Argument(help="stage names, or all")] = None,
    run_date: Annotated[
        str | None, typer.Option("--run-date", help="YYYY-MM-DD (default: today)")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="feature cutoff YYYY-MM-DD (the run date; for `features`)"),
    ] = None,
) -> None:
    """Run pipeline stages on the lakehouse (default: all)."""

    def _run() -> None:
        from cdp_spark.pipeline import RunContext, run_stages, stage_names

        selected = stages or ["all"]
        for name in selected:
            if name != "all" and name not in stage_names():
                raise CdpError(
                    f"unknown stage {name!r}", hint=f"stages: {', '.join(stage_names())}, all"
                )
        cfg = _config()
        if as_of and run_date and as_of != run_date:
            raise CdpError("--as-of and --run-date differ", hint="--as-of D is --run-date D")
        day = _parse_date(as_of or run_date)
        spark = _session(cfg)

        with console.status("working...") as status:

            def _progress(message: str) -> None:
                status.update(message)
                console.log(message)

            ctx = RunContext.create(cfg, run_date=day, spark=spark, progress=_progress)
            reports = run_stages(selected, ctx)
        for report in reports:
            _print_report(report)

    _guard(_run)


@app.command()
def tables() -> None:
    """List every table of the lakehouse with its engine, version, rows, size and last write."""

    def _run() -> None:
        cfg = _config()
        infos = _lake(cfg).list_tables()
        if not infos:
            console.print(f"no tables under {cfg.lakehouse_root} yet (run `cdp run` first)")
            return
        table = Table("table", "engine", "version", "rows", "size", "files", "last write")
        for info in infos:
            table.add_row(
                info.name,
                info.engine,
                str(info.version),
                f"{info.rows:,}" if info.rows is not None else "?",
                _human_bytes(info.size_bytes),
                str(info.files),
                str(info.last_write)[:19] if info.last_write else "",
            )
        console.print(table)

    _guard(_run)


@app.command()
def show(
    table: Annotated[str, typer.Argument(help="e.g. silver.crm_contacts")],
    version: Annotated[int | None, typer.Option(help="read this version (time travel)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="rows to print")] = 20,
    where: Annotated[
        str | None, typer.Option(help="SQL filter, e.g. \"email_norm like '%@x.ru'\"")
    ] = None,
) -> None:
    """Print rows of a table, optionally at an older version."""

    def _run() -> None:
        lake = _lake(_config())
        df = lake.read(table, version=version)
        if where:
            df = df.where(where)
        rows = df.limit(limit).collect()
        out = Table(*df.columns)
        for row in rows:
            out.add_row(*(_cell(v) for v in row))
        console.print(out)
        console.print(
            f"{len(rows)} row(s) shown of {table}"
            + (f" @ v{version}" if version is not None else "")
        )

    _guard(_run)


@app.command()
def history(
    table: Annotated[str, typer.Argument(help="e.g. bronze.orders")],
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """Show the Delta log of a table: version, time, operation, parameters."""

    def _run() -> None:
        lake = _lake(_config())
        out = Table("version", "timestamp", "operation", "parameters / metrics")
        for entry in lake.history(table, limit=limit):
            params = entry.get("operationParameters") or {}
            metrics = entry.get("operationMetrics") or {}
            detail = ", ".join(f"{k}={v}" for k, v in {**params, **metrics}.items())
            out.add_row(
                str(entry.get("version")),
                _timestamp(entry.get("timestamp")),
                str(entry.get("operation")),
                detail[:120],
            )
        console.print(out)

    _guard(_run)


def _print_report(report: Any) -> None:
    console.print(
        f"[bold]{report.stage}[/]: {report.status} in {report.seconds:.1f}s "
        + " ".join(f"{k}={v}" for k, v in report.figures.items())
    )
    if report.rows:
        columns = list(report.rows[0])
        out = Table(*columns)
        for row in report.rows:
            out.add_row(*(_cell(row.get(c)) for c in columns))
        console.print(out)


def _parse_date(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CdpError(f"--run-date {value!r} is not a date", hint="use YYYY-MM-DD") from None


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _timestamp(value: Any) -> str:
    if isinstance(value, int | float):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value / 1000))
    return str(value or "")


def _human_bytes(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@app.command()
def erase(
    email: Annotated[str | None, typer.Option(help="the person's e-mail (any form)")] = None,
    phone: Annotated[str | None, typer.Option(help="the person's phone (any format)")] = None,
    person_id: Annotated[str | None, typer.Option("--person-id", help="their person_id")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="report what would be deleted")
    ] = False,
    retention_hours: Annotated[
        int | None, typer.Option(min=0, help="vacuum retention (privacy.erasure_retention_hours)")
    ] = None,
    vacuum_only: Annotated[
        bool, typer.Option("--vacuum-only", help="only vacuum every table with the retention")
    ] = False,
) -> None:
    """Right to erasure: delete a person from every table and export file, then vacuum."""

    def _run() -> None:
        from cdp_spark.pipeline import RunContext
        from cdp_spark.privacy.erasure import ErasureRequest, run_erase, vacuum_all

        request = (
            None if vacuum_only else ErasureRequest(email=email, phone=phone, person_id=person_id)
        )
        cfg = _config()
        spark = _session(cfg)
        with console.status("erasing...") as status:
            ctx = RunContext.create(
                cfg, run_date=date.today(), spark=spark, progress=lambda m: status.update(m)
            )
            if request is None:
                report = vacuum_all(ctx, retention_hours=retention_hours)
            else:
                report = run_erase(ctx, request, dry_run=dry_run, retention_hours=retention_hours)
        _print_report(report)

    _guard(_run)


@app.command()
def train(
    model: Annotated[str, typer.Argument(help="churn, propensity or all")] = "all",
    run_date: Annotated[
        str | None, typer.Option("--run-date", help="YYYY-MM-DD (default: today)")
    ] = None,
) -> None:
    """Train, log (MLflow) and register the churn / propensity model; promote if it wins."""

    def _run() -> None:
        from cdp_spark.ml.train import MODELS, run_train
        from cdp_spark.pipeline import RunContext

        if model not in (*MODELS, "all"):
            raise CdpError(f"unknown model {model!r}", hint="churn, propensity or all")
        cfg = _config()
        spark = _session(cfg)
        with console.status("training...") as status:

            def _progress(message: str) -> None:
                status.update(message)
                console.log(message)

            ctx = RunContext.create(
                cfg, run_date=_parse_date(run_date), spark=spark, progress=_progress
            )
            report = run_train(ctx, None if model == "all" else [model], strict=True)
        _print_report(report)
        console.print(f"MLflow: mlflow ui --backend-store-uri {cfg.mlflow_tracking_uri}")

    _guard(_run)


@app.command()
def resolve(
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet files of person records")],
    id_col: Annotated[str, typer.Option("--id-col", help="column holding each record's id")],
    out: Annotated[Path, typer.Option("--out", help="output file: .csv or .parquet")],
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="canonical=column,... (repeatable); without it, columns named like the "
            "canonical attributes are used",
        ),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="where Splink scores pairs: auto, duckdb or spark")
    ] = "auto",
    threshold: Annotated[
        float | None, typer.Option(help="match probability for a fuzzy link (identity.fuzzy)")
    ] = None,
    encoding: Annotated[str, typer.Option(help="CSV encoding")] = "utf-8",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace OUT")] = False,
) -> None:
    """De-duplicate person files: one person_id per human, written to OUT."""

    def _run() -> None:
        from cdp_spark.identity.resolve import parse_mapping, resolve_files

        if backend not in ("auto", "duckdb", "spark"):
            raise CdpError(f"--backend {backend!r}", hint="auto, duckdb or spark")
        parsed = parse_mapping(mapping or [])
        cfg = _config()
        if threshold is not None:
            fuzzy = cfg.identity.fuzzy.model_copy(update={"threshold": threshold})
            cfg = cfg.model_copy(
                update={"identity": cfg.identity.model_copy(update={"fuzzy": fuzzy})}
            )
        spark = _session(cfg)
        with console.status("resolving...") as status:

            def _progress(message: str) -> None:
                status.update(message)
                console.log(message)

            result = resolve_files(
                spark,
                [str(f) for f in files],
                parsed,
                id_col=id_col,
                cfg=cfg,
                out=out,
                mode="overwrite" if overwrite else "error",
                backend=backend,  # type: ignore[arg-type]
                encoding=encoding,
                progress=_progress,
            )
        figures = result.figures
        console.print(
            f"wrote {out}: {figures['records']} records, {figures['persons']} persons, "
            f"{figures['duplicate_records']} duplicate records in "
            f"{figures['clusters_with_duplicates']} clusters (largest {figures['largest_cluster']})"
            f", links {figures['links_by_rule']}, {figures['seconds']} s"
        )

    _guard(_run)


segments_app = typer.Typer(help="Segments declared in conf/segments.yaml.", no_args_is_help=True)
app.add_typer(segments_app, name="segments")


@segments_app.command("validate")
def segments_validate(
    run_date: Annotated[
        str | None, typer.Option("--run-date", help="show which segments are due on YYYY-MM-DD")
    ] = None,
) -> None:
    """Check every segment (expression, schedule, destinations) without running any."""

    def _run() -> None:
        from cdp_spark.profiles.segments import PROFILES_TABLE, check_segments, is_due
        from cdp_spark.profiles.segments import segment_schema as schema_of

        cfg = _config()
        day = _parse_date(run_date)
        lake = _lake(cfg)
        schema = schema_of(lake, cfg)
        good, problems = check_segments(lake.spark, cfg, schema)
        source = PROFILES_TABLE if lake.exists(PROFILES_TABLE) else "the declared profile columns"
        out = Table("segment", "schedule", f"due {day}", "destinations", "columns used")
        for name, checked in good.items():
            seg = cfg.segments[name]
            out.add_row(
                name,
                seg.schedule,
                "yes" if is_due(seg.schedule, day) else "no",
                ", ".join(seg.destinations),
                ", ".join(checked.columns),
            )
        console.print(out)
        console.print(f"{len(good)} segment(s) valid against {source}")
        for problem in problems:
            err_console.print(f"[bold red]invalid:[/] {problem}")
        if problems:
            err_console.print(f"[yellow]hint:[/] {problems[0].hint or 'fix conf/segments.yaml'}")
            raise typer.Exit(1)

    _guard(_run)


@app.command()
def publish(
    segment: Annotated[
        list[str] | None, typer.Option("--segment", help="only this segment (repeatable)")
    ] = None,
    destination: Annotated[
        list[str] | None, typer.Option("--destination", help="only this destination (repeatable)")
    ] = None,
    run_date: Annotated[
        str | None, typer.Option("--run-date", help="YYYY-MM-DD (default: today)")
    ] = None,
) -> None:
    """Export segments to their destinations (consent checked at export time)."""

    def _run() -> None:
        from cdp_spark.pipeline import RunContext
        from cdp_spark.profiles.activation import publish_pairs, run_publish

        cfg = _config()
        publish_pairs(cfg, segments=segment, destinations=destination)  # names, before Spark
        spark = _session(cfg)
        with console.status("publishing...") as status:

            def _progress(message: str) -> None:
                status.update(message)
                console.log(message)

            ctx = RunContext.create(
                cfg, run_date=_parse_date(run_date), spark=spark, progress=_progress
            )
            report = run_publish(ctx, segments=segment, destinations=destination)
        _print_report(report)

    _guard(_run)


@app.command()
def explain(
    person_id: Annotated[str, typer.Argument(help="a person_id (a retired one is followed)")],
    limit: Annotated[int, typer.Option(help="edges to print at most")] = 60,
) -> None:
    """Show a person's records and the edges (rule, score) that joined them."""

    def _run() -> None:
        from cdp_spark.identity.explain import explain_person

        person = explain_person(_lake(_config()), person_id)
        if person.merged_ids:
            console.print(f"{person.asked_for} was merged into {person.person_id}")
        console.print(
            f"[bold]{person.person_id}[/]: {len(person.records)} records, "
            f"{len(person.identifiers)} identifiers"
        )
        by_source: dict[str, int] = {}
        for source, _rid in person.records:
            by_source[source] = by_source.get(source, 0) + 1
        console.print("records: " + ", ".join(f"{s} {n}" for s, n in sorted(by_source.items())))
        console.print("identifiers: " + ", ".join(person.identifiers))
        out = Table("record", "identifier / record", "rule", "score")
        for e in person.tree[:limit]:
            out.add_row(e.src, e.dst, e.rule, f"{e.score:.3f}")
        console.print(out)
        if len(person.tree) > limit:
            console.print(f"... {len(person.tree) - limit} more edges (--limit)")

    _guard(_run)


@app.command()
def why(
    a: Annotated[str, typer.Argument(help="orders:O123 (source:record_id) or email:x@y.z")],
    b: Annotated[str, typer.Argument(help="another record or identifier")],
) -> None:
    """Are A and B the same person? The path of edges that joins them, or what cut it."""

    def _run() -> None:
        from cdp_spark.identity.explain import why as explain_why

        cfg = _config()
        answer = explain_why(_lake(cfg), cfg, a, b)
        verdict = "[green]same person[/]" if answer.same_person else "[red]not the same person[/]"
        console.print(f"{a} / {b}: {verdict}")
        console.print(answer.reason)
        if answer.path:
            out = Table("from", "to", "rule", "score", "record")
            for e in answer.path:
                out.add_row(e.src, e.dst, e.rule, f"{e.score:.3f}", f"{e.source}:{e.record_id}")
            console.print(out)

    _guard(_run)


@app.command("identity-eval")
def identity_eval(
    truth: Annotated[Path, typer.Option("--truth", help="ground truth: _truth/records.csv")],
    run_date: Annotated[
        str | None, typer.Option("--run-date", help="YYYY-MM-DD the metrics are filed under")
    ] = None,
) -> None:
    """Pairwise precision, recall, F1 and over/under-merges of the clusters against a truth.

    Also recall against what the edges can link at all (reachable recall, recall ceiling).
    """

    def _run() -> None:
        from cdp_spark.identity.metrics import evaluate, write_metrics
        from cdp_spark.identity.stage import run_id_of

        if not truth.is_file():
            raise CdpError(f"no truth file {truth}", hint="cdp generate writes _truth/records.csv")
        cfg = _config()
        lake = _lake(cfg)
        day = _parse_date(run_date)
        with console.status("evaluating..."):
            scores = evaluate(lake.spark, lake, str(truth))
            write_metrics(
                lake.spark, lake, scores, run_date=day, run_id=run_id_of(day), mode="eval"
            )
        table: dict[str, dict[str, float]] = {}
        for metric, dimension, value in scores:
            table.setdefault(dimension, {})[metric] = value
        rates = ["precision", "recall", "f1"]
        # Recall against what the edges can link at all (docs/identity.md section 7).
        reach = ["reachable_recall", "recall_ceiling"]
        counts = ["over_merged_clusters", "under_merged_persons"]
        heads = [k.replace("_", " ") for k in reach]
        out = Table("items", *rates, *heads, *counts, "true persons", "clusters")
        for dimension, m in sorted(table.items()):
            out.add_row(
                f"{dimension} ({int(m['items'])})",
                *(f"{m[k]:.4f}" for k in [*rates, *reach]),
                *(f"{m[k]:.0f}" for k in counts),
                f"{int(m['true_persons'])}",
                f"{int(m['predicted_clusters'])}",
            )
        console.print(out)
        console.print(
            "reachable recall: of the pairs the identity edges can join without joining anyone "
            "else, the share joined; recall ceiling: those pairs / all true pairs."
        )

    _guard(_run)


@app.command()
def profile(
    email: Annotated[str | None, typer.Option("--email", help="e-mail address")] = None,
    phone: Annotated[str | None, typer.Option("--phone", help="phone, any usual format")] = None,
    person_id: Annotated[str | None, typer.Option("--person-id", help="the person_id")] = None,
    recent: Annotated[int | None, typer.Option(min=1, help="recent items per channel")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the look-up as JSON")] = False,
) -> None:
    """Look one person up for the call centre: profile, recent activity, segments, scores.

    Reads the gold tables with delta-rs only: no Spark start-up.
    """

    def _run() -> bool:
        import json

        from cdp_spark.profiles.lookup import lookup_profile, render_lookup

        cfg = _config()
        view = lookup_profile(cfg, email=email, phone=phone, person_id=person_id, recent=recent)
        if view is None:
            err_console.print(f"no profile found for {email or phone or person_id!r}")
            return False
        if as_json:
            console.print_json(json.dumps(view, ensure_ascii=False, default=str))
        else:
            console.print(render_lookup(view, cfg))
        return True

    # Outside _guard, which reports any exception (typer.Exit too) as a failure.
    if not _guard(_run):
        raise typer.Exit(3)


@app.command()
def optimize(
    tables: Annotated[
        list[str] | None,
        typer.Argument(help="gold tables to rewrite (default: every one with a serving layout)"),
    ] = None,
) -> None:
    """Rewrite gold tables into the layout the look-up reads: sorted by its key, small files.

    For lakehouses written before the layout, and after many incremental runs. Each table is
    one overwrite commit of the same rows (counted before and after): safe to re-run.
    """

    def _run() -> None:
        from cdp_spark.storage.layout import SERVING_TABLES, optimize_serving

        chosen = list(tables or sorted(SERVING_TABLES))
        unknown = [t for t in chosen if t not in SERVING_TABLES]
        if unknown:
            raise CdpError(
                f"no serving layout for {', '.join(unknown)}",
                hint=f"choose among {', '.join(sorted(SERVING_TABLES))}",
            )
        lake = _lake(_config())
        out = Table("table", "rows", "version before", "version after", "seconds")
        for table in chosen:
            if not tables and not lake.exists(table):
                continue  # the default list skips tables a stage has not written yet
            started = time.monotonic()
            console.print(f"optimize: rewriting {table}")
            done = optimize_serving(lake, table)
            out.add_row(
                table,
                f"{done.rows_after:,}",
                str(done.version_before),
                str(done.version),
                f"{time.monotonic() - started:.1f}",
            )
        console.print(out)

    _guard(_run)


def main() -> None:  # pragma: no cover - console entry point
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
