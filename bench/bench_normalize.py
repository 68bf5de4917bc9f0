"""Throughput of the normalisers in cdp_spark.normalize, in rows per second.

Every normaliser runs over the same generated rows, cached in memory beforehand so that data
generation is not timed. Two references are measured in the same run: the built-in
``lower(trim(x))`` (the floor for any column expression) and an identity pandas UDF (the
floor for anything that goes through Python and Arrow), so each cost can be read against
them. Runs are interleaved (every function once, then again...) so that noise from other
work on the machine hits all alike; the median of ``--runs`` is reported.

    python bench/bench_normalize.py --rows 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import phonenumbers
import pyarrow
from _machine import cpu_model, ram_gib
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdp_spark import normalize as N  # noqa: E402
from cdp_spark.config import load_config  # noqa: E402
from cdp_spark.session import build_session  # noqa: E402


def machine() -> str:
    cpu, mem_kb = cpu_model(), ram_gib() * 1024 * 1024
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    import pyspark

    return (
        f"{os.cpu_count()} cores, {mem_kb / 1024 / 1024:.0f} GiB RAM, {cpu}\n"
        f"Python {platform.python_version()}, PySpark {pyspark.__version__}, "
        f"pandas {pd.__version__}, pyarrow {pyarrow.__version__}, "
        f"phonenumbers {phonenumbers.__version__}, "
        f"{java.splitlines()[0] if java else 'java: unknown'}, {platform.platform()}"
    )


def pick(values: list[str], index: Column) -> Column:
    """values[index % len(values)] as a column."""
    return F.element_at(F.array(*[F.lit(v) for v in values]), (index % len(values) + 1).cast("int"))


def phone_text(digits: Column, style: Column) -> Column:
    # Four ways people write one Russian mobile number.
    return (
        F.when(
            style == 0,
            F.concat(
                F.lit("+7 ("),
                F.substring(digits, 1, 3),
                F.lit(") "),
                F.substring(digits, 4, 3),
                F.lit("-"),
                F.substring(digits, 7, 2),
                F.lit("-"),
                F.substring(digits, 9, 2),
            ),
        )
        .when(style == 1, F.concat(F.lit("8"), digits))
        .when(style == 2, F.concat(F.lit("+7"), digits))
        .otherwise(digits)
    )


def generate(spark: SparkSession, rows: int) -> DataFrame:
    """Realistic messy inputs, one column per normaliser, mostly distinct values."""
    i = F.col("id")
    first = ["Илья", "Ilya", "Юлия", "Julia", "Пётр", "Alexey", "Наталья", "José", "Łukasz"]
    last = ["Иванов", "Ivanov", "Щукина", "Shchukina", "Müller", "O'Brien", "Кузнецов"]
    streets = ["ул. Ленина", "Lenina st", "пр-т Мира", "Tverskaya St", "наб. реки Фонтанки"]
    countries = ["Россия", "RU", "Russia", "USA", "Deutschland", "gb", "Казахстан", "Atlantis"]
    domains = ["gmail.com", "GoogleMail.com", "mail.ru", "yandex.ru", "example.com", "x.org"]
    unique_digits = F.concat(
        F.lit("9"), F.lpad(((i * 7919) % 1_000_000_000).cast("string"), 9, "0")
    )
    repeated_digits = F.concat(F.lit("9"), F.lpad(((i % 1000) * 7919).cast("string"), 9, "0"))
    epoch = F.lit(1_600_000_000) + (i * 37) % 200_000_000
    local_ts = F.from_unixtime(epoch, "yyyy-MM-dd HH:mm:ss")
    return (
        spark.range(0, rows, 1, numPartitions=(os.cpu_count() or 2) * 2)
        .select(
            F.concat(
                F.when(i % 5 == 0, F.lit(" <")).otherwise(F.lit("")),
                pick(["Ivan.Petrov", "anna", "A.B", "noreply", "Olga"], i),
                F.lit("+"),
                (i % 97).cast("string"),
                F.lit("."),
                i.cast("string"),
                F.lit("@"),
                pick(domains, i),
                F.when(i % 5 == 0, F.lit("> ")).otherwise(F.lit("")),
            ).alias("email"),
            phone_text(unique_digits, i % 4).alias("phone"),
            phone_text(repeated_digits, i % 4).alias("phone_repeated"),
            F.concat(pick(first, i), F.lit(" "), pick(last, (i / 9).cast("long"))).alias("name"),
            F.concat(
                pick(streets, i),
                F.lit(", д. "),
                (i % 200).cast("string"),
                F.lit(", кв. "),
                (i % 300).cast("string"),
            ).alias("address"),
            F.when(i % 2 == 0, F.lpad((i % 1_000_000).cast("string"), 6, "1"))
            .otherwise(pick(["sw1a 1aa", "02134-1234", "1234 ab", "N/A"], i))
            .alias("postcode"),
            pick(["RU", "GB", "US", "NL", "MX"], i).alias("country_code"),
            pick(countries, i).alias("country"),
            F.when(i % 4 == 0, F.concat(F.regexp_replace(local_ts, " ", "T"), F.lit("+03:00")))
            .when(i % 4 == 1, local_ts)
            .when(i % 4 == 2, F.from_unixtime(epoch, "dd.MM.yyyy HH:mm"))
            .otherwise(epoch.cast("string"))
            .alias("ts"),
            F.when(i % 2 == 0, F.from_unixtime(epoch - 900_000_000, "dd.MM.yyyy"))
            .otherwise(F.from_unixtime(epoch - 900_000_000, "yyyy-MM-dd"))
            .alias("date"),
            F.when(i % 3 == 0, F.format_string("%d %03d,%02d", i % 1000 + 1, i % 1000, i % 100))
            .when(i % 3 == 1, F.format_string("$%d,%03d.%02d", i % 1000 + 1, i % 1000, i % 100))
            .otherwise(F.format_string("%d.%d", i % 100000, i % 10))
            .alias("amount"),
        )
        .cache()
    )


def _identity(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
    yield from batches


def cases() -> list[tuple[str, str, Callable[[Column], Column]]]:
    identity_udf = pandas_udf(_identity, StringType())  # type: ignore[call-overload]
    return [
        ("reference: lower(trim(x)) built-in", "email", lambda c: F.lower(F.trim(c))),
        ("normalize_email", "email", N.normalize_email),
        ("is_junk_email", "email", N.is_junk_email),
        ("reference: identity pandas UDF", "phone", lambda c: identity_udf(c)),
        ("normalize_phone, distinct values", "phone", N.normalize_phone),
        ("normalize_phone, 1,000 distinct", "phone_repeated", N.normalize_phone),
        ("is_junk_phone", "phone", N.is_junk_phone),
        ("normalize_name", "name", N.normalize_name),
        ("name_match_key", "name", N.name_match_key),
        ("normalize_address", "address", N.normalize_address),
        ("address_match_key", "address", N.address_match_key),
        ("normalize_postcode", "postcode", N.normalize_postcode),
        (
            "normalize_postcode(country=column)",
            "postcode",
            lambda c: N.normalize_postcode(c, F.col("country_code")),
        ),
        ("normalize_country", "country", N.normalize_country),
        ("parse_timestamp_utc", "ts", N.parse_timestamp_utc),
        (
            "parse_timestamp_utc(default_tz=Moscow)",
            "ts",
            lambda c: N.parse_timestamp_utc(c, default_tz="Europe/Moscow"),
        ),
        ("parse_date", "date", N.parse_date),
        ("parse_amount", "amount", N.parse_amount),
    ]


def time_once(df: DataFrame, expr: Column) -> float:
    start = time.perf_counter()
    # A hash of every value, so that nothing can be skipped or pruned.
    df.select(F.bit_xor(F.xxhash64(expr)).alias("h")).collect()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")

    cfg = load_config("local", overrides={"spark.log_level": "ERROR"})
    spark = build_session(cfg)
    print(f"spark: master {spark.sparkContext.master}, session time zone UTC, rows {args.rows:,}")
    df = generate(spark, args.rows)
    df.count()
    todo = cases()
    for _, column, func in todo:  # warm-up: code generation, Python workers
        time_once(df.limit(1000), func(F.col(column)))
    times: dict[str, list[float]] = {name: [] for name, _, _ in todo}
    for run in range(args.runs):
        for name, column, func in todo:
            if "UDF" in name or name.startswith("normalize_phone"):
                # Spark stops Python workers idle for a minute; start them outside the timing.
                time_once(df.limit(1000), func(F.col(column)))
            times[name].append(time_once(df, func(F.col(column))))
        print(f"run {run + 1}/{args.runs} done", flush=True)

    reference = statistics.median(times[todo[0][0]])
    print(f"\nmedian of {args.runs} runs over {args.rows:,} rows")
    print(f"{'function':42} {'seconds':>8} {'rows/s':>12} {'vs lower(trim)':>15}")
    for name, _, _ in todo:
        seconds = statistics.median(times[name])
        print(f"{name:42} {seconds:8.2f} {args.rows / seconds:12,.0f} {seconds / reference:14.1f}x")
    spark.stop()


if __name__ == "__main__":
    main()
