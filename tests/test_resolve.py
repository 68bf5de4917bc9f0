"""`cdp resolve`: person files in, one person_id per human out; clear errors for bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from _people import background
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from cdp_spark.cli import app
from cdp_spark.config import CdpConfig
from cdp_spark.errors import CdpError
from cdp_spark.identity.resolve import (
    RESOLVE_SCHEMA,
    parse_mapping,
    read_person_files,
    resolve_files,
)

runner = CliRunner()
REPO_CONF = Path(__file__).resolve().parent.parent / "conf"

# A CRM export (CSV: first and last names) and a shop's customer list (Parquet: full names).
# Known people: Ilya Ivanov (3 records over both files: Cyrillic, Latin, surname first; no
# identifier in common), Yulia Shchukina (names swapped, date formats), Anna Smirnova (only an
# e-mail in common: she moved), Leon Neumann (Dorfstraße / Dorfstr., no birth date in one).
# Traps: the Petrov household (same flat and landline, different people) and two Ivan
# Sidorovs born years apart.
CRM = pd.DataFrame(
    {
        "id": ["1", "2", "3", "4", "5", "6", "7", "8", "9"],
        "fname": ["Илья", "Юлия", "Anna", "Oleg", "Maria", "Дмитрий", "George", "Leon", "Ivan"],
        "lname": [
            "Иванов",
            "Щукина",
            "Smirnova",
            "Petrov",
            "Petrova",
            "Волков",
            "Walker",
            "Neumann",
            "Sidorov",
        ],
        "dob": [
            "02.01.1980",
            "1990-05-17",
            "1975-11-30",
            "1968-03-03",
            "1970-07-07",
            "1979-06-21",
            "1975-02-05",
            "1982-12-05",
            "1985-04-04",
        ],
        "addr": [
            "ул. Ленина, д. 5, кв. 12",
            "пр-т Мира, 10",
            "ул. Гагарина, 7",
            "ул. Тверская, д. 12, кв. 4",
            "ул. Тверская, д. 12, кв. 4",
            "ул. Садовая, 15",
            "100 High Street",
            "Dorfstraße 1",
            "ул. Кирова, 3",
        ],
        "town": [
            "Москва",
            "Санкт-Петербург",
            "Казань",
            "Москва",
            "Москва",
            "Самара",
            "London",
            "Hamburg",
            "Казань",
        ],
        "zip": [
            *("101000", "190000", "420000", "125009", "125009", "443001", "NW10 4QT"),
            *("20095", "420015"),
        ],
        "mail": [None, None, "anna.smirnova@mail.ru", None, None, None, None, None, None],
        "tel": [None, None, None, "+7 495 123-45-67", "8 (495) 123-45-67", *[None] * 4],
    }
)
SHOP = pd.DataFrame(
    {
        "id": ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"],
        "name": [
            "Ilya Ivanov",
            "IVANOV Ilia",
            "Shchukina Yulia",
            "Anna Smirnova",
            "Sofia Frolova",
            "Roman Makarov",
            "Leon Neumann",
            "Ivan Sidorov",
        ],
        "dob": [
            *("1980-01-02", None, "17.05.1990", None, "1999-12-31", "1973-09-14", None),
            "1962-09-09",
        ],
        "addr": [
            "Lenina st 5, apt 12",
            "5 Lenina Street, apt. 12",
            "Mira ave 10",
            "Pobedy ave 1",
            "ул. Заречная, 111",
            "ул. Набережная, 38",
            "Dorfstr. 1",
            "ул. Советская, 44",
        ],
        "zip": ["101000", "101000", "190000", "350000", "620000", "109000", "20095", "630099"],
        "mail": [None, None, None, "Anna.Smirnova@Mail.RU", None, None, None, None],
    }
)
MAP = [
    "first_name=fname,last_name=lname,full_name=name,date_of_birth=dob,street=addr",
    "city=town,postcode=zip,email=mail,phone=tel",
]
EXPECTED = {
    frozenset({"crm:1", "shop:s1", "shop:s2"}),  # Ilya Ivanov
    frozenset({"crm:2", "shop:s3"}),  # Yulia Shchukina
    frozenset({"crm:3", "shop:s4"}),  # Anna Smirnova: the e-mail
    frozenset({"crm:8", "shop:s7"}),  # Leon Neumann
    *(frozenset({f"crm:{i}"}) for i in ("4", "5", "6", "7", "9")),
    *(frozenset({f"shop:{i}"}) for i in ("s5", "s6", "s8")),
}


OTHERS = pd.DataFrame(
    background(200), columns=["id", "fname", "lname", "dob", "addr", "town", "zip"]
)


@pytest.fixture()
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The CRM and shop files, and 200 other people (a real file's worth for Splink)."""
    crm, shop, others = tmp_path / "crm.csv", tmp_path / "shop.parquet", tmp_path / "others.csv"
    CRM.to_csv(crm, index=False)
    SHOP.to_parquet(shop, index=False)
    OTHERS.to_csv(others, index=False)
    return crm, shop, others


def _clusters(df: pd.DataFrame) -> set[frozenset[str]]:
    return {
        frozenset(f"{Path(f).stem}:{r}" for f, r in zip(g.source_file, g.record_id, strict=True))
        for _, g in df.groupby("person_id")
    }


def test_resolves_a_csv_and_a_parquet_file_into_the_expected_people(
    spark: SparkSession, test_config: CdpConfig, files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "people.parquet"
    result = resolve_files(
        spark, list(files), parse_mapping(MAP), id_col="id", cfg=test_config, out=out
    )
    written = pd.read_parquet(out)
    assert list(written.columns) == RESOLVE_SCHEMA.names
    assert _clusters(written) == EXPECTED | {frozenset({f"others:{i}"}) for i in OTHERS.id}
    sizes = dict(zip(written.record_id, written.cluster_size, strict=True))
    assert (sizes["1"], sizes["s2"], sizes["3"], sizes["5"]) == (3, 3, 2, 1)
    scores = dict(zip(written.record_id, written.best_match_score, strict=True))
    assert scores["3"] == scores["s4"] == 1.0  # the e-mail link
    assert test_config.identity.fuzzy.threshold <= scores["s1"] < 1.0
    assert pd.isna(scores["5"]) and pd.isna(scores["s5"])
    assert result.figures["records"] == 217
    assert result.figures["persons"] == len(EXPECTED) + 200
    assert result.figures["links_by_rule"]["exact:email"] == 1


@pytest.fixture()
def own_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads conf/: only the profiles here, so identity.fuzzy has its defaults."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO_CONF / "profiles", conf / "profiles")
    monkeypatch.setenv("CDP_CONF_DIR", str(conf))


def test_csv_output_and_the_cli(
    spark: SparkSession, own_conf: None, files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    crm = files[0]
    out = tmp_path / "crm_people.csv"
    result = runner.invoke(
        app, ["resolve", str(crm), "--id-col", "id", "--out", str(out), *_map_args()]
    )
    assert result.exit_code == 0, result.output
    assert "9 records, 9 persons" in result.output
    written = pd.read_csv(out, dtype={"record_id": str})
    assert list(written.columns) == RESOLVE_SCHEMA.names
    # Alone, the CRM file holds no duplicates: the Petrovs share a flat and a landline only.
    assert sorted(written.record_id) == sorted(CRM.id)
    assert set(written.cluster_size) == {1}
    again = runner.invoke(
        app, ["resolve", str(crm), "--id-col", "id", "--out", str(out), *_map_args()]
    )
    assert again.exit_code == 2 and "exists" in again.output and "--overwrite" in again.output


def _map_args() -> list[str]:
    # The CRM file alone: it has no full-name column (mapping one no file has is an error).
    crm_map = [item.replace("full_name=name,", "") for item in MAP]
    return [arg for item in crm_map for arg in ("--map", item)]


def test_cli_reports_an_unknown_canonical_name(
    own_conf: None, files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    crm = files[0]
    result = runner.invoke(
        app,
        [
            "resolve",
            str(crm),
            "--id-col",
            "id",
            "--out",
            str(tmp_path / "o.csv"),
            "--map",
            "surname=lname",
        ],
    )
    assert result.exit_code == 2
    assert "unknown canonical attribute 'surname'" in result.output
    assert "last_name" in result.output  # the hint lists the canonical names


def test_cli_needs_an_id_column(
    own_conf: None, files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    crm = files[0]
    result = runner.invoke(app, ["resolve", str(crm), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert "--id-col" in result.output


@pytest.mark.parametrize(
    ("mapping", "id_col", "message"),
    [
        (["first_name=given"], "id", r"--map names columns no input file has: first_name=given"),
        (["first_name=fname"], "key", r"crm.csv: no id column 'key'"),
        (["first_name=fname", "last_name=fname,"], "id", None),
    ],
)
def test_mapping_and_id_errors(
    spark: SparkSession,
    files: tuple[Path, Path, Path],
    mapping: list[str],
    id_col: str,
    message: str | None,
) -> None:
    crm = files[0]
    if message is None:  # two canonical names may read one column
        assert read_person_files(spark, [crm], parse_mapping(mapping), id_col=id_col).count() == 9
        return
    with pytest.raises(CdpError, match=message):
        read_person_files(spark, [crm], parse_mapping(mapping), id_col=id_col)


def test_parse_mapping_errors() -> None:
    with pytest.raises(CdpError, match="not canonical=column"):
        parse_mapping(["first_name"])
    with pytest.raises(CdpError, match="names 'email' twice"):
        parse_mapping(["email=a", "email=b"])
    assert parse_mapping(["email=a, phone = b", ""]) == {"email": "a", "phone": "b"}


def test_duplicate_and_missing_ids_are_errors(spark: SparkSession, tmp_path: Path) -> None:
    dup = tmp_path / "dup.csv"
    pd.DataFrame({"id": ["1", "2", "2"], "full_name": ["a b", "c d", "e f"]}).to_csv(
        dup, index=False
    )
    with pytest.raises(CdpError, match=r"dup.csv: duplicate values in id column 'id': '2' \(2x\)"):
        read_person_files(spark, [dup], {}, id_col="id")
    blank = tmp_path / "blank.csv"
    pd.DataFrame({"id": ["1", None], "full_name": ["a b", "c d"]}).to_csv(blank, index=False)
    with pytest.raises(CdpError, match=r"blank\.csv: 1 records have no id"):
        read_person_files(spark, [blank], {}, id_col="id")


def test_unreadable_or_unknown_files_are_errors(spark: SparkSession, tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"this is not parquet")
    with pytest.raises(CdpError, match=r"broken\.parquet: cannot read it as parquet"):
        read_person_files(spark, [broken], {"full_name": "name"}, id_col="id")
    with pytest.raises(CdpError, match=r"nope\.csv: no such file"):
        read_person_files(spark, [tmp_path / "nope.csv"], {}, id_col="id")
    odd = tmp_path / "people.xlsx"
    odd.write_bytes(b"")
    with pytest.raises(CdpError, match="cannot tell the format"):
        read_person_files(spark, [odd], {}, id_col="id")


def test_without_a_mapping_canonical_column_names_are_used(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "canonical.csv"
    pd.DataFrame(
        {"rid": ["1"], "full_name": ["Ilya Ivanov"], "email": ["a@b.ru"], "other": ["x"]}
    ).to_csv(path, index=False)
    got = read_person_files(spark, [path], {}, id_col="rid")
    assert got.columns == ["source_file", "record_id", "node_id", "full_name", "email"]
    assert got.first()["node_id"] == "0:1"
