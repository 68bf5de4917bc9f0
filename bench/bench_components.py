"""The clustering step alone: each connected-components engine next to scipy, same edge list.

A seeded random edge list shaped like an identity graph (most edges in small components,
some chains, some stars, one big component, a few isolated nodes; node ids are strings like
``email:0001a3f9``) is written to Parquet once per size. Then, interleaved, ``--repeats``
times each:

- ``scipy (reference)``: pyarrow reads the Parquet, Arrow dictionary-encodes the ids, and
  ``scipy.sparse.csgraph.connected_components`` labels them; the same work the engines do
  minus Spark: the single-machine physical reference. ``csgraph only`` is its inner call on
  integer ids, given for scale;
- ``local engine``: ``connected_components(engine="local")`` on ``spark.read.parquet``;
- ``dataframe engine``: ``connected_components(engine="dataframe")`` (large-star/small-star).

Each engine's result is written to Spark's ``noop`` sink, so every row is computed. Medians
are printed with the ratio of each engine to the scipy reference.

    .venv/bin/python bench/bench_components.py --edges 10000 100000 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy
from _machine import cpu_model, ram_gib
from pyspark.sql import DataFrame

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdp_spark.config import load_config  # noqa: E402
from cdp_spark.graph import connected_components  # noqa: E402
from cdp_spark.graph.components import components_of_arrays  # noqa: E402
from cdp_spark.session import build_session  # noqa: E402


def machine() -> str:
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    import pyspark

    return (
        f"{os.cpu_count()} cores, {ram_gib():.0f} GiB RAM, {cpu_model()}\n"
        f"Python {platform.python_version()}, PySpark {pyspark.__version__}, "
        f"scipy {scipy.__version__}, pandas {pd.__version__}, pyarrow {pa.__version__}, "
        f"{java.splitlines()[0] if java else 'java: unknown'}, {platform.platform()}"
    )


def identity_graph(n_edges: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(src, dst, n_nodes)`` as int node numbers, ~n_edges edges shaped like identities.

    70% of the edges in components of 2-6 nodes (a person's email, phone, cookies...), 10% in
    chains (id hand-overs), 10% in stars (a shared device or loyalty card), 9% in one big
    component (over-merging), 1% self-loops (people with one identifier).
    """
    rng = np.random.default_rng(seed)
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    next_node = 0

    def new_nodes(n: int) -> np.ndarray:
        nonlocal next_node
        block = np.arange(next_node, next_node + n)
        next_node += n
        return block

    def trees(sizes: np.ndarray) -> None:
        # Component of size s: nodes start..start+s-1, node k>0 linked to a random earlier one.
        starts = new_nodes(int(sizes.sum()))[np.concatenate([[0], np.cumsum(sizes)[:-1]])]
        member = np.repeat(starts, sizes) + (
            np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        )
        offset = member - np.repeat(starts, sizes)
        keep = offset > 0
        src.append(member[keep])
        dst.append(
            np.repeat(starts, sizes)[keep] + (rng.random(keep.sum()) * offset[keep]).astype(int)
        )

    small = int(n_edges * 0.70)
    sizes = rng.integers(2, 7, size=max(1, small // 3))
    trees(sizes)
    chains = int(n_edges * 0.10)
    lengths = rng.integers(10, 101, size=max(1, chains // 55))
    for length in lengths:
        nodes = new_nodes(int(length))
        src.append(nodes[1:])
        dst.append(nodes[:-1])
    stars = int(n_edges * 0.10)
    for leaves in rng.integers(10, 1001, size=max(1, stars // 505)):
        centre, others = new_nodes(1), new_nodes(int(leaves))
        src.append(others)
        dst.append(np.repeat(centre, leaves))
    big = max(2, int(n_edges * 0.09))
    giant = new_nodes(big // 2)
    src.append(giant[1:])  # a random tree over half the budget, random extra edges on the rest
    dst.append(giant[(rng.random(len(giant) - 1) * np.arange(1, len(giant))).astype(int)])
    extra = big - (len(giant) - 1)
    src.append(rng.choice(giant, extra))
    dst.append(rng.choice(giant, extra))
    loops = new_nodes(max(1, int(n_edges * 0.01)))
    src.append(loops)
    dst.append(loops)
    s, d = np.concatenate(src), np.concatenate(dst)
    flip = rng.random(len(s)) < 0.5
    s, d = np.where(flip, d, s), np.where(flip, s, d)
    order = rng.permutation(len(s))
    return s[order], d[order], next_node


def write_edges(path: Path, n_edges: int, seed: int) -> tuple[int, int]:
    src, dst, n_nodes = identity_graph(n_edges, seed)
    # Node names in an order unrelated to the structure, as real ids are.
    rng = np.random.default_rng(seed + 1)
    names = pd.Series(rng.permutation(n_nodes)).map("{:08x}".format)
    kinds = np.array(["email:", "phone:", "cookie:", "customer:", "loyalty:"], dtype=object)
    names = kinds[rng.integers(0, len(kinds), n_nodes)] + names.to_numpy(dtype=object)
    table = pa.table(
        {"src": pa.array(names[src], pa.string()), "dst": pa.array(names[dst], pa.string())}
    )
    pq.write_table(table, path)
    return len(src), n_nodes


def scipy_reference(path: Path) -> float:
    start = time.perf_counter()
    table = pq.read_table(path)
    components_of_arrays(table.column("src"), table.column("dst"))
    return time.perf_counter() - start


def csgraph_only(path: Path) -> float:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_components

    table = pq.read_table(path)
    ends = pa.chunked_array([*table.column("src").chunks, *table.column("dst").chunks])
    encoded = pc.dictionary_encode(ends.combine_chunks())
    codes, n = encoded.indices.to_numpy(), table.num_rows
    start = time.perf_counter()
    graph = coo_matrix(
        (np.ones(n, np.int8), (codes[:n], codes[n:])), shape=(len(encoded.dictionary),) * 2
    )
    scipy_components(graph, directed=False)
    return time.perf_counter() - start


def time_engine(edges: DataFrame, engine: str) -> float:
    start = time.perf_counter()
    result = connected_components(edges, engine=engine)  # type: ignore[arg-type]
    result.write.format("noop").mode("overwrite").save()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edges", type=int, nargs="+", default=[10_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--engines", nargs="+", default=["local", "dataframe"])
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--driver-memory", default="6g")
    args = parser.parse_args()
    print(f"machine: {machine()}")

    cfg = load_config(
        "local",
        overrides={
            "spark.log_level": "ERROR",
            "spark.driver_memory": args.driver_memory,
            "spark.shuffle_partitions": args.shuffle_partitions,
        },
    )
    spark = build_session(cfg)
    print(
        f"spark: master {spark.sparkContext.master}, shuffle partitions {args.shuffle_partitions}"
    )
    work = Path(tempfile.mkdtemp(prefix="bench_components_"))
    spark.range(10).toPandas()  # warm-up: JVM, Arrow

    for n_edges in args.edges:
        path = work / f"edges_{n_edges}.parquet"
        start = time.perf_counter()
        written, n_nodes = write_edges(path, n_edges, args.seed)
        print(
            f"\nedges {written:,}, nodes {n_nodes:,} (generated and written in "
            f"{time.perf_counter() - start:.1f}s)"
        )
        edges = spark.read.parquet(str(path))

        cases: dict[str, Callable[[], float]] = {
            "scipy (reference)": functools.partial(scipy_reference, path)
        }
        cases.update(
            {f"{e} engine": functools.partial(time_engine, edges, e) for e in args.engines}
        )
        times: dict[str, list[float]] = {name: [] for name in cases}
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average (1/5/15 min) when the timed runs began: {load}")
        for repeat in range(args.repeats):
            for name, run in cases.items():
                times[name].append(run())
                print(f"  run {repeat + 1}: {name} {times[name][-1]:.2f}s", flush=True)
        reference = statistics.median(times["scipy (reference)"])
        print(f"{'step':<22}{'median s':>10}{'min s':>9}{'x scipy':>9}   runs (s)")
        for name, values in times.items():
            med = statistics.median(values)
            runs = " ".join(f"{v:.2f}" for v in values)
            print(f"{name:<22}{med:>10.2f}{min(values):>9.2f}{med / reference:>8.1f}x   {runs}")
        print(f"csgraph only (int ids, no I/O, no factorising): {csgraph_only(path):.2f}s")
        path.unlink()
    spark.stop()


if __name__ == "__main__":
    main()
