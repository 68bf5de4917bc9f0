"""Run a bench script with every Spark action and lakehouse write timed by its caller.

Spark's own event log loses the Python call site of most jobs (adaptive execution runs them
on other threads), so this wraps the DataFrame actions (``localCheckpoint``, ``count``,
``isEmpty``, ``collect``, ``first``, ``toArrow``, ``toPandas``) and the delta-rs lakehouse's
``merge`` / ``overwrite`` / ``append``, and at exit prints the seconds spent per
``file:line`` of ``cdp_spark`` that called them, most first. A call made inside another
(the ``localCheckpoint`` inside a MERGE) is indented under it; its time is counted in both.

    .venv/bin/python bench/profile_actions.py bench/bench_identity.py --lakehouse ... \\
        --from-state <state> ...

It is how the incremental identity run's fixed passes were found (docs/benchmarks.md).
"""

from __future__ import annotations

import atexit
import runpy
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from pyspark.sql.classic.dataframe import DataFrame

from cdp_spark.storage.deltars import DeltaRsLakehouse

ACTIONS = ["localCheckpoint", "count", "isEmpty", "collect", "first", "toArrow", "toPandas"]
WRITES = ["merge", "overwrite", "append"]

_seconds: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
_depth = [0]


def _caller() -> str:
    for frame in reversed(traceback.extract_stack()[:-2]):
        if "/cdp_spark/" in frame.filename and not frame.filename.endswith("caching.py"):
            return f"{frame.filename.split('/cdp_spark/')[1]}:{frame.lineno} {frame.name}"
    return "(outside cdp_spark)"


def _timed(cls: type, name: str) -> None:
    inner: Callable[..., Any] = getattr(cls, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        site = f"{'  ' * _depth[0]}{name} @ {_caller()}"
        _depth[0] += 1
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            _depth[0] -= 1
            entry = _seconds[site]
            entry[0] += 1
            entry[1] += time.perf_counter() - start

    setattr(cls, name, wrapper)


def report(top: int = 60) -> None:
    """Print the ``top`` call sites by seconds (to stderr, after the script's own output)."""
    print("==== seconds, calls, call site", file=sys.stderr)
    for site, (calls, seconds) in sorted(_seconds.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"{seconds:8.1f} {int(calls):4d}  {site}", file=sys.stderr)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: profile_actions.py SCRIPT [ARGS...]")
    for name in ACTIONS:
        _timed(DataFrame, name)
    for name in WRITES:
        _timed(DeltaRsLakehouse, name)
    atexit.register(report)
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
