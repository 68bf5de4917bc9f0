"""Fuzzy matching: Splink pairs over names, birth dates and addresses, on both backends."""

from __future__ import annotations

import pytest
from _people import background
from pydantic import ValidationError
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from cdp_spark.errors import CdpError
from cdp_spark.identity.fuzzy import (
    FUZZY_PAIRS_SCHEMA,
    choose_backend,
    drop_conflicting_pairs,
    fuzzy_pairs,
    match_columns,
    with_block_keys,
)
from cdp_spark.identity.fuzzy_config import FuzzyConfig

COLUMNS = "record_id string, first_name string, last_name string, date_of_birth string, " + (
    "street string, city string, postcode string"
)

# People with known duplicates: transliterations (Илья / Ilya / Ilia), first and last name
# swapped, typos, date formats, address spellings, a missing birth date. Traps: a household
# (the Petrovs share an address and a surname), namesakes (two Ivan Sidorovs born years apart).
# No e-mail, no phone. 200 other people (tests/_people.py) give Splink a file to estimate from.
PEOPLE = [
    ("a1", "Илья", "Иванов", "02.01.1980", "ул. Ленина, д. 5, кв. 12", "Москва", "101000"),
    ("a2", "Ilya", "Ivanov", "1980-01-02", "Lenina st 5, apt 12", "Moscow", "101000"),
    ("a3", "Ilia", "IVANOV", None, "5 Lenina Street, apt. 12", "г. Москва", "101000"),
    ("b1", "Юлия", "Щукина", "1990-05-17", "пр-т Мира, 10", "Санкт-Петербург", "190000"),
    ("b2", "Shchukina", "Yulia", "17.05.1990", "Mira ave 10", "Sankt-Peterburg", "190000"),
    ("c1", "Anna", "Smirnova", "1975-11-30", "ул. Гагарина, 7", "Казань", "420000"),
    ("c2", "Anna", "Smirnva", "30.11.1975", "Gagarina ul. 7", "Kazan", "420000"),
    ("d1", "Oleg", "Petrov", "1968-03-03", "ул. Тверская, д. 12, кв. 4", "Москва", "125009"),
    ("d2", "Олег", "Петров", "1968-03-03", "Tverskaya st 12 apt 4", "Moscow", "125009"),
    ("e1", "Maria", "Petrova", "1970-07-07", "ул. Тверская, д. 12, кв. 4", "Москва", "125009"),
    ("f1", "Ivan", "Petrov", "1995-01-15", "Tverskaya st 12 apt 4", "Moscow", "125009"),
    ("g1", "Ivan", "Sidorov", "1985-04-04", "ул. Кирова, 3", "Казань", "420015"),
    ("h1", "Ivan", "Sidorov", "1962-09-09", "ул. Советская, 44", "Новосибирск", "630099"),
    ("i1", "Elena", "Kuznetsova", "1988-02-14", "ул. Пушкина, 9", "Москва", "119019"),
    ("j1", "Дмитрий", "Волков", "1979-06-21", "ул. Садовая, 15", "Самара", "443001"),
    ("k1", "George", "Walker", "1975-02-05", "100 High Street", "London", "NW10 4QT"),
    ("l1", "Olivia", "Brown", "1958-06-16", "Flat 3, 72 Grange Rd", "London", "SE17 7TZ"),
    ("m1", "Leon", "Neumann", "1982-12-05", "Dorfstraße 1", "Hamburg", "20095"),
    ("m2", "Leon", "Neumann", "05.12.1982", "Dorfstr. 1", "Hamburg", "20095"),
    ("n1", "Светлана", "Григорьева", "1991-08-08", "ул. Мира, 113", "Новосибирск", "630000"),
    ("o1", "Артём", "Медведев", "1983-10-02", "ул. Молодёжная, д. 151", "Пермь", "614000"),
    ("p1", "Sofia", "Frolova", "1999-12-31", "ул. Заречная, 111", "Екатеринбург", "620000"),
    ("q1", "Roman", "Makarov", "1973-09-14", "ул. Набережная, 38", "Москва", "109000"),
    ("r1", "Kseniia", "Lebedeva", "1978-08-19", "ул. Центральная, 26", "Краснодар", "350000"),
]
EXPECTED_PAIRS = {("a1", "a2"), ("a1", "a3"), ("a2", "a3"), ("b1", "b2"), ("c1", "c2")} | {
    ("d1", "d2"),
    ("m1", "m2"),
}

FAST = FuzzyConfig(backend="duckdb")


@pytest.fixture(scope="module")
def people(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(PEOPLE, COLUMNS)


@pytest.fixture(scope="module")
def prepared(spark: SparkSession) -> DataFrame:
    """The hand-made people among 200 others, normalised once for every test here."""
    records = spark.createDataFrame(PEOPLE + background(200), COLUMNS)
    return match_columns(records).localCheckpoint()


def _rows(pairs: DataFrame) -> list[tuple[str, str, float]]:
    return sorted((r.record_id_l, r.record_id_r, r.score) for r in pairs.collect())


@pytest.fixture(scope="module")
def duckdb_pairs(spark: SparkSession, prepared: DataFrame) -> list[tuple[str, str, float]]:
    return _rows(fuzzy_pairs(spark, prepared, FAST, normalized=True))


def test_finds_exactly_the_duplicates_without_email_or_phone(
    duckdb_pairs: list[tuple[str, str, float]],
) -> None:
    assert {(left, right) for left, right, _ in duckdb_pairs} == EXPECTED_PAIRS
    assert all(score >= FAST.threshold for _, _, score in duckdb_pairs)


def test_raw_records_are_normalised_first(spark: SparkSession, people: DataFrame) -> None:
    subset = people.where("record_id in ('b1', 'b2', 'c1', 'g1', 'h1')")
    pairs = fuzzy_pairs(spark, subset, FAST)
    assert pairs.schema.names == FUZZY_PAIRS_SCHEMA.names
    # Yulia Shchukina, first and last name swapped, two date formats; the Sidorovs are
    # namesakes born 23 years apart.
    assert [(r.record_id_l, r.record_id_r, r.rule) for r in pairs.collect()] == [
        ("b1", "b2", "fuzzy:splink")
    ]


def test_same_input_and_seed_give_the_same_scores(
    spark: SparkSession, prepared: DataFrame, duckdb_pairs: list[tuple[str, str, float]]
) -> None:
    again = _rows(fuzzy_pairs(spark, prepared, FAST, normalized=True))
    assert [(a, b) for a, b, _ in again] == [(a, b) for a, b, _ in duckdb_pairs]
    for (_, _, first), (_, _, second) in zip(again, duckdb_pairs, strict=True):
        assert first == pytest.approx(second, abs=1e-9)


def test_spark_backend_gives_the_duckdb_pairs_and_scores(
    spark: SparkSession, prepared: DataFrame, duckdb_pairs: list[tuple[str, str, float]]
) -> None:
    # Splink's Spark backend on Spark 4.2, with its jaro_winkler jar added to the session.
    got = _rows(fuzzy_pairs(spark, prepared, FAST, backend="spark", normalized=True))
    assert [(a, b) for a, b, _ in got] == [(a, b) for a, b, _ in duckdb_pairs]
    for (_, _, spark_score), (_, _, duck_score) in zip(got, duckdb_pairs, strict=True):
        assert spark_score == pytest.approx(duck_score, abs=1e-6)


def test_a_higher_threshold_keeps_a_subset(
    spark: SparkSession, prepared: DataFrame, duckdb_pairs: list[tuple[str, str, float]]
) -> None:
    cutoff = sorted(score for _, _, score in duckdb_pairs)[len(duckdb_pairs) // 2]
    strict = FuzzyConfig(backend="duckdb", threshold=min(cutoff, 0.999999))
    kept = {(a, b) for a, b, _ in _rows(fuzzy_pairs(spark, prepared, strict, normalized=True))}
    assert kept == {(a, b) for a, b, s in duckdb_pairs if s >= strict.threshold}
    assert 0 < len(kept) < len(duckdb_pairs)


def test_fewer_than_two_records_give_no_pairs(spark: SparkSession, prepared: DataFrame) -> None:
    pairs = fuzzy_pairs(spark, prepared.where("record_id = 'a1'"), FAST, normalized=True)
    assertDataFrameEqual(pairs, spark.createDataFrame([], FUZZY_PAIRS_SCHEMA))


def test_nothing_to_compare_is_a_clear_error(spark: SparkSession) -> None:
    records = spark.createDataFrame([("1", "x"), ("2", "y")], "record_id string, loyalty_id string")
    with pytest.raises(CdpError, match="attributes to compare"):
        fuzzy_pairs(spark, records, FAST)


def test_match_columns_fold_scripts_formats_and_spellings(spark: SparkSession) -> None:
    rows = [r for r in PEOPLE if r[0] in ("a1", "a2", "b1", "b2", "m1", "m2")]
    got = {
        r.record_id: (r.name, r.date_of_birth.isoformat(), r.address)
        for r in match_columns(spark.createDataFrame(rows, COLUMNS)).collect()
    }
    assert got["a1"] == got["a2"] == ("ilia ivanov", "1980-01-02", "5 apt12 lenina")
    assert got["b1"] == got["b2"] == ("iulia shukina", "1990-05-17", "10 mira")
    assert got["m1"] == got["m2"] == ("leon neuman", "1982-12-05", "1 dorf")


def test_match_columns_blocklist_and_junk_become_missing(spark: SparkSession) -> None:
    records = spark.createDataFrame(
        [("1", "1900-01-01", "test@test.com", "0000000000"), ("2", "01.02.1990", None, None)],
        "record_id string, date_of_birth string, email string, phone string",
    )
    got = match_columns(records, blocklist={"date_of_birth": ["1900-01-01"]})
    assertDataFrameEqual(
        got.selectExpr("record_id", "cast(date_of_birth as string) dob", "email", "phone"),
        spark.createDataFrame(
            [("1", None, None, None), ("2", "1990-02-01", None, None)],
            "record_id string, dob string, email string, phone string",
        ),
    )


def test_block_keys_skip_oversized_blocks(spark: SparkSession) -> None:
    prepared = spark.createDataFrame(
        [("1", "ivan", "x"), ("2", "ivan", "x"), ("3", "ivan", None), ("4", "olga", "y")],
        "record_id string, name string, postcode string",
    )
    got = with_block_keys(prepared, [["name"], ["name", "postcode"]], max_block_size=2)
    assertDataFrameEqual(
        got,
        spark.createDataFrame(
            [
                ("1", "ivan", "x", None, "ivan\x1fx"),
                ("2", "ivan", "x", None, "ivan\x1fx"),
                ("3", "ivan", None, None, None),
                ("4", "olga", "y", "olga", "olga\x1fy"),
            ],
            "record_id string, name string, postcode string, _block_0 string, _block_1 string",
        ),
    )


def test_guards_drop_households_and_namesakes_but_not_swaps_or_typos(spark: SparkSession) -> None:
    prepared = (
        spark.createDataFrame(
            [
                ("1", "oleg", "petrov", "1968-03-03"),
                ("2", "maria", "petrova", None),  # household: other first name
                ("3", "petrov", "oleg", "1968-03-03"),  # swapped
                ("4", "olge", "petrov", "1968-03-08"),  # typos in name and date
                ("5", "oleg", "petrov", "1991-03-03"),  # namesake, other birth date
                ("6", "oleg", "petrov", "1968-03-03"),
            ],
            "record_id string, first_name string, last_name string, date_of_birth string",
        )
        .selectExpr("*", "cast(date_of_birth as date) as dob")
        .drop("date_of_birth")
    )
    prepared = prepared.withColumnRenamed("dob", "date_of_birth")
    pairs = spark.createDataFrame(
        [("1", str(i), 0.99, "fuzzy:splink") for i in range(2, 7)], FUZZY_PAIRS_SCHEMA
    )
    kept = drop_conflicting_pairs(pairs, prepared, FuzzyConfig())
    assert sorted(r.record_id_r for r in kept.collect()) == ["3", "4", "6"]
    off = FuzzyConfig(first_name_min_similarity=None, date_of_birth_must_agree=False)
    assert drop_conflicting_pairs(pairs, prepared, off).count() == 5


@pytest.mark.parametrize(
    ("backend", "records", "cfg", "expected"),
    [
        ("auto", 10, FuzzyConfig(spark_min_records=100), "duckdb"),
        ("auto", 100, FuzzyConfig(spark_min_records=100), "spark"),
        ("auto", 10**7, FuzzyConfig(backend="duckdb"), "duckdb"),
        ("auto", 1, FuzzyConfig(backend="spark"), "spark"),
        ("duckdb", 10**7, FuzzyConfig(), "duckdb"),
        ("spark", 1, FuzzyConfig(), "spark"),
    ],
)
def test_backend_choice(
    spark: SparkSession, backend: str, records: int, cfg: FuzzyConfig, expected: str
) -> None:
    assert choose_backend(spark, backend, records, cfg) == expected  # type: ignore[arg-type]


def test_config_rejects_unknown_attributes_and_bad_thresholds() -> None:
    with pytest.raises(ValidationError, match="blocking"):
        FuzzyConfig(blocking=[["surname"]])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="threshold"):
        FuzzyConfig(threshold=1.5)
    with pytest.raises(ValidationError, match="blocklist"):
        FuzzyConfig(blocklist={"dob": ["x"]})
    with pytest.raises(ValidationError, match="at least one attribute"):
        FuzzyConfig(training=[[]])
    assert FuzzyConfig(name_similarity=[0.8, 0.95]).name_similarity == [0.95, 0.8]
