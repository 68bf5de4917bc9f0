"""cdp_spark.normalize: every normaliser against a table of tricky inputs.

Each table is turned into an explicit expected DataFrame (id, value, result) and compared with
the function's output over the same inputs, so a failure names the input that went wrong.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from unidecode import unidecode

from cdp_spark import normalize as N
from cdp_spark.normalize import (
    DEFAULT_EMAIL_BLOCKLIST,
    EPOCH_SECONDS,
    ISO_8601,
    EmailBlocklist,
    PhoneBlocklist,
    address_match_key,
    is_junk_email,
    is_junk_phone,
    name_match_key,
    normalize_address,
    normalize_country,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_postcode,
    parse_amount,
    parse_date,
    parse_timestamp_utc,
)


def check(
    spark: SparkSession,
    func: Callable[[Column], Column],
    cases: Sequence[tuple[Any, Any]],
    *,
    result_type: str = "string",
    value_type: str = "string",
) -> None:
    """Assert ``func(value) == result`` for every (value, result) case."""
    rows = [(i, value, result) for i, (value, result) in enumerate(cases)]
    expected = spark.createDataFrame(rows, f"id int, value {value_type}, result {result_type}")
    # One partition: one task and one Python worker are plenty for a few rows.
    actual = expected.coalesce(1).select("id", "value", func(F.col("value")).alias("result"))
    assertDataFrameEqual(actual, expected)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- email -----------------------------------------------------------------------------------


def test_normalize_email(spark: SparkSession) -> None:
    check(
        spark,
        normalize_email,
        [
            (None, None),
            ("", None),
            ("   ", None),
            ("  Ivan.Petrov+shop@GoogleMail.com ", "ivanpetrov@gmail.com"),
            ("I.V.A.N@gmail.com", "ivan@gmail.com"),
            ("+tag@gmail.com", None),  # nothing left of the mailbox
            ("<ivan@Mail.RU>", "ivan@mail.ru"),
            ("Ivan Petrov <ivan@x.ru>", "ivan@x.ru"),
            ("'ivan@x.ru'", "ivan@x.ru"),
            ('"ivan@x.ru"', "ivan@x.ru"),
            ("mailto:IVAN@X.RU", "ivan@x.ru"),
            ("ivan@x.ru\u00a0", "ivan@x.ru"),  # no-break space from a web form
            ("a.b+c@ya.ru", "a.b@yandex.ru"),  # Yandex alias and tag, dots kept
            ("a.b+c@outlook.com", "a.b@outlook.com"),
            ("a+b@mail.ru", "a+b@mail.ru"),  # + kept where the provider may not tag
            ("user@ПОЧТА.РФ", "user@почта.рф"),  # Cyrillic domain
            ("o'brien@x.ie", "o'brien@x.ie"),
            ("ivan@mail", None),
            ("ivan@@x.ru", None),
            ("i..van@x.ru", None),
            (".ivan@x.ru", None),
            ("ivan@-x.ru", None),
            ("ivan@x.r", None),
            ("ivan petrov@x.ru", None),
            ("12345", None),  # a number in the email column
            ("true", None),
            ("a" * 65 + "@x.ru", None),  # local part over 64 characters
        ],
    )


def test_normalize_email_plus_tag_domains_from_config(spark: SparkSession) -> None:
    check(
        spark,
        lambda c: normalize_email(c, plus_tag_domains=["Corp.RU"]),
        [
            ("a+b@corp.ru", "a@corp.ru"),
            ("a+b@outlook.com", "a+b@outlook.com"),  # no longer in the list
            ("a.b+c@gmail.com", "ab+c@gmail.com"),  # gmail dots are not a tag rule
        ],
    )
    check(
        spark,
        lambda c: normalize_email(c, plus_tag_domains=()),
        [("a+b@gmail.com", "a+b@gmail.com")],
    )


# --- phone -----------------------------------------------------------------------------------


def test_normalize_phone(spark: SparkSession) -> None:
    check(
        spark,
        normalize_phone,
        [
            (None, None),
            ("", None),
            ("  ", None),
            ("+7 (912) 345-67-89", "+79123456789"),
            ("89123456789", "+79123456789"),  # Russian trunk prefix 8
            ("8-912-345-67-89", "+79123456789"),
            ("912-345-6789", "+79123456789"),  # national number, default region RU
            ("79123456789", "+79123456789"),  # country code without +
            ("+44 20 7946 0958", "+442079460958"),
            ("00 44 20 7946 0958", "+442079460958"),
            ("(00)44 20 7946 0958", "+442079460958"),
            ("8 10 44 20 7946 0958", "+442079460958"),  # Russian international prefix 810
            ("380441234567", "+380441234567"),  # Ukrainian, written without +
            ("+7 495 123-45-67 доб. 123", "+74951234567"),  # extension dropped
            ("+1 650 253 0000 ext. 12", "+16502530000"),
            ("тел. 8-912-345-67-89", "+79123456789"),
            ("79123456789.0", "+79123456789"),  # through a float column
            ("7.9123456789E10", "+79123456789"),
            ("7.91234567891E10", None),  # not a whole number
            ("0000000000", None),
            ("+7 912", None),
            ("+71234567890", None),  # no such Russian range
            ("812345678", None),  # a digit short: not read as +81 (Japan)
            ("abc", None),
            ("8 912 345 67 89, 8 913 123 45 67", None),  # two numbers in one field
            ("1" * 80, None),
        ],
    )


def test_normalize_phone_default_region(spark: SparkSession) -> None:
    check(
        spark,
        lambda c: normalize_phone(c, default_region="us"),
        [
            ("912-345-6789", "+19123456789"),
            ("(650) 253-0000", "+16502530000"),
            ("79123456789", "+79123456789"),  # not a US number: read as international
            ("020 7946 0958", None),  # a British national number
        ],
    )
    # One region per row, e.g. the record's country; the phone arrives as a number.
    rows = [
        (1, 9123456789, "RU", "+79123456789"),
        (2, 2079460958, "GB", "+442079460958"),
        (3, 6502530000, "us", "+16502530000"),
        (4, 6502530000, None, None),  # no region and no country code
        (5, 79123456789, "XX", "+79123456789"),  # unknown region: international reading
    ]
    expected = spark.createDataFrame(rows, "id int, phone long, region string, result string")
    actual = expected.coalesce(1).select(
        "id", "phone", "region", normalize_phone("phone", F.col("region")).alias("result")
    )
    assertDataFrameEqual(actual, expected)
    with pytest.raises(ValueError, match="ZZ"):
        normalize_phone("phone", default_region="ZZ")


# --- names -----------------------------------------------------------------------------------


def test_normalize_name(spark: SparkSession) -> None:
    check(
        spark,
        normalize_name,
        [
            (None, None),
            ("", None),
            ("   ", None),
            (" - ", None),
            ("  ИЛЬЯ ", "ilia"),  # ICAO transliteration
            ("Ёлкин Пётр", "elkin petr"),
            ("Щукина Юлия", "shchukina iuliia"),
            ("Объедков Хабибуллин Цой", "obieedkov khabibullin tsoi"),
            ("Наталья", "natalia"),
            ("Il'ya", "ilya"),
            ("D'Artagnan-José", "dartagnan jose"),
            ("O’Brien", "obrien"),
            ("Łukasz Straße", "lukasz strasse"),
            ("Ærøskøbing Þór", "aeroskobing thor"),
            ("İstanbul", "istanbul"),  # Turkish dotted capital I
            ("e\u0301cole", "ecole"),  # decomposed accent
            ("Nguyễn Thị Minh Khai", "nguyen thi minh khai"),
            ("Ołeksandr Ґонта Ўладзімір Қайрат", "oleksandr gonta uladzimir kairat"),
            ("Ivan\u00a0\u00a0Ivanov\t2", "ivan ivanov 2"),
            ("王伟", "王伟"),  # other scripts are kept
        ],
    )


def test_name_match_key_folds_transliteration_variants(spark: SparkSession) -> None:
    groups = {
        "ilia": ["Илья", "Ilya", "Ilia", "Il'ya", "Ilja", "ILYA"],
        "iulia": ["Юлия", "Yulia", "Julia", "Yuliya", "Iuliia"],
        "ivan ivanov": ["Иванов Иван", "Ivan Ivanov", "IVANOV, Ivan"],
        "shukin": ["Щукин", "Schukin", "Shchukin"],
        "petr": ["Пётр", "Pyotr", "Petr"],
        "aleksei": ["Алексей", "Alexey", "Aleksei", "Aleksej"],
        "dmitri": ["Дмитрий", "Dmitriy", "Dmitry", "Dmitrij", "Dmitrii"],
        "evgeni": ["Евгений", "Yevgeniy", "Evgeny", "Jewgeni"],
        "mihail": ["Михаил", "Mikhail", "Mihail"],
        "natalia": ["Наталья", "Natalya", "Natalia", "Natalja"],
        "ksenia": ["Ксения", "Xenia", "Kseniya"],
        "artem": ["Артём", "Artyom", "Artem"],
        "elena": ["Елена", "Yelena", "Elena"],
        "nikolai": ["Николай", "Nikolay", "Nicolai"],
        "kuznetsov": ["Кузнецов", "Kuznetcov", "Kuznetsov"],
        "vladimir": ["Владимир", "Wladimir"],
        "kiril": ["Кирилл", "Kirill", "Kiril"],
        "sergevich": ["Сергеевич", "Sergeyevich", "Sergeevich"],
        "antonio": ["Antonio"],  # final -io is not a Ё
        "daniel": ["Daniel"],  # -ie- after a consonant is not an Е
    }
    cases: list[tuple[Any, Any]] = [(v, key) for key, vs in groups.items() for v in vs]
    cases += [(None, None), ("", None), ("  ", None), ("'", None)]
    check(spark, name_match_key, cases)


# Latin letters whose decomposition holds a letter other than the base (ŉ = ʼn, ẚ = aʾ).
_ORACLE_SKIP = {"ŉ", "ẚ"}
_LATIN = [
    chr(c)
    for c in [*range(0xC0, 0x180), *range(0x1E00, 0x1E9C), *range(0x1EA0, 0x1EFA)]
    if chr(c).isalpha() and chr(c) not in _ORACLE_SKIP
]


@pytest.mark.parametrize("seed", [7, 2026])
def test_normalize_name_matches_unidecode_on_latin(spark: SparkSession, seed: int) -> None:
    # Independent oracle: unidecode folds accented Latin the way the built-in table must.
    rng = random.Random(seed)
    alphabet = _LATIN + list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    cases = []
    for _ in range(200):
        words = ["".join(rng.choices(alphabet, k=rng.randint(1, 8))) for _ in range(3)]
        text = " ".join(words)
        cases.append((text, re.sub(r"[^a-z0-9]+", " ", unidecode(text).lower()).strip()))
    check(spark, normalize_name, cases)


# --- addresses -------------------------------------------------------------------------------


def test_normalize_address(spark: SparkSession) -> None:
    check(
        spark,
        normalize_address,
        [
            (None, None),
            ("", None),
            ("  ,  ", None),
            ("ул. Ленина, д. 5", "st lenina 5"),
            ("ul Lenina, 5", "st lenina 5"),
            ("УЛИЦА ЛЕНИНА ДОМ 5", "st lenina 5"),
            ("ул.Ленина,д.5", "st lenina 5"),
            ("Lenina st 5", "lenina st 5"),
            ("г. Москва, ул. Горького, д. 5а, кв. 12", "moskva st gorkogo 5a apt 12"),
            ("Москва, пр-т Мира, д. 10 корп. 2 стр. 3", "moskva ave mira 10 bldg 2 stroenie 3"),
            ("Ленинский проспект 5 к2", "leninskii ave 5 bldg 2"),
            ("наб. реки Фонтанки, 10, оф. 4", "emb reki fontanki 10 office 4"),
            ("Berliner Str. 5", "berliner st 5"),
            ("221B Baker Street, Apt 2", "221b baker st apt 2"),
            ("5-А", "5a"),
            ("No. 7, Rue de l’Église", "7 rue de leglise"),
            ("12345", "12345"),
        ],
    )


def test_address_match_key(spark: SparkSession) -> None:
    check(
        spark,
        address_match_key,
        [
            (None, None),
            ("ул.", None),  # only a street type
            ("ул. Ленина, д. 5", "5 lenina"),
            ("Lenina st 5", "5 lenina"),
            ("ul Lenina, 5", "5 lenina"),
            ("5 Lenina Street", "5 lenina"),
            ("ул. Тверская, д. 7, кв. 3", "7 apt3 tverskaia"),
            ("7 Tverskaya St, Apt 3", "7 apt3 tverskaia"),
            ("Ленинский пр-т, 5", "5 leninski"),
            ("Leninsky prospekt 5", "5 leninski"),
            ("д 5 кв 10", "5 apt10"),  # apartment 10 of house 5...
            ("д 10 кв 5", "10 apt5"),  # ...is not apartment 5 of house 10
        ],
    )


# --- postcodes and countries -----------------------------------------------------------------


def test_normalize_postcode(spark: SparkSession) -> None:
    check(
        spark,
        normalize_postcode,
        [
            (None, None),
            ("", None),
            ("   ", None),
            (" sw1a 1aa", "SW1A1AA"),
            ("123456", "123456"),
            ("123456.0", "123456"),  # through a float column
            ("1234 ab", "1234AB"),
            ("02134-1234", "021341234"),
            ("N/A", None),
            ("12", None),
            ("ABCDE", None),  # no digit
            ("абв123", None),
            ("123 456 789 012", None),  # too long
        ],
    )


def test_normalize_postcode_with_country(spark: SparkSession) -> None:
    check(
        spark,
        lambda c: normalize_postcode(c, country="us"),
        [
            ("02134-1234", "02134"),
            ("2134", "02134"),  # leading zero lost in a numeric column
            ("123456789", "12345"),
            ("1234567", None),
            ("ABCDE", None),
        ],
    )
    check(
        spark,
        lambda c: normalize_postcode(c, country="RU"),
        [("123456", "123456"), ("023456", None), ("sw1a 1aa", None), ("12345", None)],
    )
    check(spark, lambda c: normalize_postcode(c, country="MX"), [("06600", "06600")])  # generic
    rows = [
        (1, "123456", "RU", "123456"),
        (2, "sw1a 1aa", "gb", "SW1A1AA"),
        (3, "sw1a 1aa", "RU", None),
        (4, "k1a 0b1", "CA", "K1A0B1"),
        (5, "2134", "US", "02134"),
        (6, "1234 ab", None, "1234AB"),  # no country: generic
        (7, "75008", "FR", "75008"),
        (8, "1234:567", "MX", None),
    ]
    expected = spark.createDataFrame(rows, "id int, value string, country string, result string")
    actual = expected.select(
        "id", "value", "country", normalize_postcode("value", F.col("country")).alias("result")
    )
    assertDataFrameEqual(actual, expected)
    with pytest.raises(ValueError, match="RUS"):
        normalize_postcode("postcode", country="RUS")


def test_normalize_country(spark: SparkSession) -> None:
    check(
        spark,
        normalize_country,
        [
            (None, None),
            ("", None),
            ("  ", None),
            ("ru", "RU"),
            (" RUS ", "RU"),
            ("Russia", "RU"),
            ("РОССИЯ", "RU"),
            ("Российская Федерация", "RU"),
            ("РФ", "RU"),
            ("u.s.a.", "US"),
            ("United States of America", "US"),
            ("Соединенные Штаты", "US"),  # е for ё
            ("the Netherlands", "NL"),
            ("Österreich", "AT"),
            ("Türkiye", "TR"),
            ("UK", "GB"),
            ("Korea, Republic of", "KR"),
            ("Кыргызстан", "KG"),
            ("CI", "CI"),  # any ISO code, even without a name in the table
            ("Atlantis", None),
            ("643", None),  # numeric codes are not supported
            ("R U", "RU"),  # spaces and dots are ignored, as in U.S.A.
        ],
    )


def test_every_country_name_in_the_table_maps_to_its_code(spark: SparkSession) -> None:
    # The lookup keys are folded in Python; Spark must fold the names to the same keys.
    cases = [(name, code) for code, names in N._COUNTRY_NAMES.items() for name in names]
    cases += [(code, code) for code in sorted(N._ISO_ALPHA2)]
    check(spark, normalize_country, cases)
    keys = [N._country_key_py(name) for _, names in N._COUNTRY_NAMES.items() for name in names]
    owners: dict[str, set[str]] = {}
    for code, names in N._COUNTRY_NAMES.items():
        for name in names:
            owners.setdefault(N._country_key_py(name), set()).add(code)
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}
    assert len(keys) > 300


# --- timestamps and dates --------------------------------------------------------------------


def test_parse_timestamp_utc(spark: SparkSession) -> None:
    check(
        spark,
        parse_timestamp_utc,
        [
            (None, None),
            ("", None),
            ("   ", None),
            ("2026-01-05T10:00:00+03:00", utc(2026, 1, 5, 7)),
            ("2026-01-05T10:00:00Z", utc(2026, 1, 5, 10)),
            ("2026-01-05t10:00:00z", utc(2026, 1, 5, 10)),
            ("2026-01-05T10:00:00+0300", utc(2026, 1, 5, 7)),
            ("2026-01-05T10:00:00,5-05:00", utc(2026, 1, 5, 15, 0, 0, 500000)),
            ("2026-01-05 10:00:00", utc(2026, 1, 5, 10)),
            ("2026-01-05 10:00:00.123456", utc(2026, 1, 5, 10, 0, 0, 123456)),
            ("2026-01-05 10:00:00 UTC", utc(2026, 1, 5, 10)),
            ("2026-01-05", utc(2026, 1, 5)),
            ("05.01.2026 10:00", utc(2026, 1, 5, 10)),
            ("5.1.2026 9:05:07", utc(2026, 1, 5, 9, 5, 7)),
            ("05.01.2026", utc(2026, 1, 5)),
            ("2026/01/05 10:00", utc(2026, 1, 5, 10)),
            ("20260105", utc(2026, 1, 5)),
            ("20260105103000", utc(2026, 1, 5, 10, 30)),
            ("1767607200", utc(2026, 1, 5, 10)),  # epoch seconds
            ("1767607200.5", utc(2026, 1, 5, 10, 0, 0, 500000)),
            ("1767607200123", utc(2026, 1, 5, 10, 0, 0, 123000)),  # epoch milliseconds
            ("Mon, 05 Jan 2026 10:00:00 +0300", utc(2026, 1, 5, 7)),
            ("Mon, 05 Jan 2026 10:00:00 GMT", utc(2026, 1, 5, 10)),
            ("01/05/2026", None),  # ambiguous day and month
            ("2026", None),
            ("2026-02-30", None),
            ("05.01.26", None),  # two-digit year
            ("05.01.12026", None),  # outside valid_years
            ("1899-12-31 23:59:59", None),
            ("yesterday", None),
            ("true", None),
            ("2026-01-05 10:00:00 +03:00 Europe/Moscow", None),
        ],
        result_type="timestamp",
    )


def test_parse_timestamp_utc_default_tz(spark: SparkSession) -> None:
    moscow = [
        ("2026-01-05 10:00:00", utc(2026, 1, 5, 7)),
        ("05.01.2026 10:00", utc(2026, 1, 5, 7)),
        ("2026-01-05", utc(2026, 1, 4, 21)),
        ("2026-01-05T10:00:00Z", utc(2026, 1, 5, 10)),  # an explicit zone wins
        ("1767607200", utc(2026, 1, 5, 10)),  # epoch is UTC by definition
    ]
    check(
        spark,
        lambda c: parse_timestamp_utc(c, default_tz="Europe/Moscow"),
        moscow,
        result_type="timestamp",
    )
    berlin = [
        ("2026-03-29 02:30:00", utc(2026, 3, 29, 1, 30)),  # in the spring gap: moved forward
        ("2026-10-25 02:30:00", utc(2026, 10, 25, 0, 30)),  # in the autumn overlap: earlier
        ("2026-07-01 12:00:00", utc(2026, 7, 1, 10)),
    ]
    check(
        spark,
        lambda c: parse_timestamp_utc(c, default_tz="Europe/Berlin"),
        berlin,
        result_type="timestamp",
    )
    offset = [("05.01.2026 10:00", utc(2026, 1, 5, 7))]
    check(
        spark,
        lambda c: parse_timestamp_utc(c, default_tz="+03:00"),
        offset,
        result_type="timestamp",
    )
    with pytest.raises(ValueError, match="Mars/Olympus"):
        parse_timestamp_utc("ts", default_tz="Mars/Olympus")


def test_parse_timestamp_utc_custom_formats_and_years(spark: SparkSession) -> None:
    us = ["MM/dd/yyyy hh:mm a", "yyyy-MM-dd HH:mm xxx", EPOCH_SECONDS]
    check(
        spark,
        lambda c: parse_timestamp_utc(c, formats=us, default_tz="America/New_York"),
        [
            ("01/05/2026 10:00 AM", utc(2026, 1, 5, 15)),
            ("2026-01-05 10:00 +03:00", utc(2026, 1, 5, 7)),  # pattern with its own zone
            ("1767607200", utc(2026, 1, 5, 10)),
            ("2026-01-05T10:00:00Z", None),  # ISO not in the list
        ],
        result_type="timestamp",
    )
    check(
        spark,
        lambda c: parse_timestamp_utc(c, valid_years=(1800, 9999)),
        [("1899-12-31 23:59:59", utc(1899, 12, 31, 23, 59, 59))],
        result_type="timestamp",
    )
    with pytest.raises(ValueError, match="formats"):
        parse_timestamp_utc("ts", formats=[])


@pytest.mark.parametrize("seed", [11, 42])
def test_parse_timestamp_utc_agrees_with_zoneinfo(spark: SparkSession, seed: int) -> None:
    # Independent oracle: Python's zoneinfo renders random instants as local text in random
    # zones; parsing the text back with the zone as default_tz must give the instant.
    rng = random.Random(seed)
    zones = ["UTC", "Europe/Moscow", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]
    rows = []
    for i in range(120):
        instant = utc(2000, 1, 1) + timedelta(seconds=rng.randrange(26 * 365 * 86400))
        zone = rng.choice(zones)
        local = instant.astimezone(ZoneInfo(zone))
        if local.replace(fold=1).utcoffset() != local.replace(fold=0).utcoffset():
            continue  # a repeated wall-clock hour: naive text cannot say which one
        text = rng.choice(
            [
                local.isoformat(),
                local.strftime("%Y-%m-%d %H:%M:%S"),
                local.strftime("%d.%m.%Y %H:%M:%S"),
                str(int(instant.timestamp())),
            ]
        )
        rows.append((i, text, zone, instant))
    expected = spark.createDataFrame(rows, "id int, value string, zone string, result timestamp")
    actual = expected.select(
        "id",
        "value",
        "zone",
        parse_timestamp_utc("value", default_tz=F.col("zone")).alias("result"),
    )
    assertDataFrameEqual(actual, expected)


def test_parse_date(spark: SparkSession) -> None:
    check(
        spark,
        parse_date,
        [
            (None, None),
            ("", None),
            ("  ", None),
            ("05.01.1990", date(1990, 1, 5)),
            ("5.1.1990", date(1990, 1, 5)),
            ("1990-01-05", date(1990, 1, 5)),
            ("1990-01-05T23:30:00+03:00", date(1990, 1, 5)),  # the local date as written
            ("1990-01-05 00:00:00", date(1990, 1, 5)),
            ("19900105", date(1990, 1, 5)),
            ("1990/01/05", date(1990, 1, 5)),
            ("5 Jan 1990", date(1990, 1, 5)),
            ("31.02.1990", None),
            ("29.02.1992", date(1992, 2, 29)),
            ("01/05/1990", None),
            ("01.01.1800", None),  # outside valid_years
            ("1990-01-05Tnonsense", None),
            ("05.01.90", None),
            ("abc", None),
        ],
        result_type="date",
    )
    check(
        spark,
        lambda c: parse_date(c, formats=["MM/dd/yyyy", ISO_8601], valid_years=(1800, 2100)),
        [("01/05/1990", date(1990, 1, 5)), ("1850-01-05", date(1850, 1, 5)), ("05.01.1990", None)],
        result_type="date",
    )


# --- amounts ---------------------------------------------------------------------------------


def test_parse_amount(spark: SparkSession) -> None:
    check(
        spark,
        parse_amount,
        [
            (None, None),
            ("", None),
            ("  ", None),
            ("1 234,50", Decimal("1234.50")),
            ("1\u00a0234,50", Decimal("1234.50")),
            ("1\u202f234,50", Decimal("1234.50")),
            ("1,234.50", Decimal("1234.50")),
            ("1.234,50", Decimal("1234.50")),
            ("1'234.50", Decimal("1234.50")),
            ("12.345.678,9", Decimal("12345678.90")),
            ("1234.5", Decimal("1234.50")),
            ("1234", Decimal("1234.00")),
            ("0,500", Decimal("0.50")),
            ("1234.567", Decimal("1234.57")),  # rounded half up
            ("(12.30)", Decimal("-12.30")),
            ("-$12.30", Decimal("-12.30")),
            ("$-12.30", Decimal("-12.30")),
            ("12.30-", Decimal("-12.30")),
            ("−5", Decimal("-5.00")),  # U+2212 minus sign
            ("1 234,50 ₽", Decimal("1234.50")),
            ("₽ 1 234,50", Decimal("1234.50")),
            ("1234,5 руб.", Decimal("1234.50")),
            ("RUB 100", Decimal("100.00")),
            ("1,234", None),  # a thousand, or one and a bit?
            ("1.234", None),
            ("1 23", None),
            ("1e3", None),
            ("12345678901", None),  # beyond decimal(12,2)
            ("12 apples", None),
            ("NaN", None),
            ("abc", None),
        ],
        result_type="decimal(12,2)",
    )


# --- junk ------------------------------------------------------------------------------------


def test_is_junk_email(spark: SparkSession) -> None:
    check(
        spark,
        is_junk_email,
        [
            (None, False),
            ("", False),
            ("test@test.com", True),
            ("TEST@TEST.COM ", True),
            ("ivan@example.com", True),
            ("ivan@sub.example.com", True),
            ("x@foo.test", True),  # reserved top-level domain
            ("mail@mail.ru", True),
            ("noreply@shop.ru", True),
            ("do-not-reply@shop.ru", True),
            ("test123@gmail.com", True),
            ("aaa@gmail.com", True),
            ("1@mail.ru", True),
            ("john@mailinator.com", True),
            ("ivan@mail.ru", False),
            ("79123456789@mail.ru", False),  # phone-number logins are real
            ("myexample.com@gmail.com", False),
            ("ivan@notexample.com", False),
        ],
        result_type="boolean",
    )


def test_is_junk_email_blocklist_from_config(spark: SparkSession) -> None:
    # As it arrives from YAML: lists, mixed case.
    config = {
        "addresses": ["Shared@Shop.ru"],
        "domains": ["@Shop-Staff.ru"],
        "local_parts": ["info"],
        "local_part_patterns": ["^admin"],
    }
    blocklist = EmailBlocklist(**config)
    assert blocklist.domains == ("@Shop-Staff.ru",)
    check(
        spark,
        lambda c: is_junk_email(c, blocklist),
        [
            ("shared@shop.ru", True),
            ("anna@shop-staff.ru", True),
            ("info@company.ru", True),
            ("admin2@x.ru", True),
            ("test@test.com", False),  # the defaults are replaced, not extended
            ("ivan@shop.ru", False),
        ],
        result_type="boolean",
    )
    with pytest.raises(TypeError, match="domains"):
        EmailBlocklist(domains="example.com")  # type: ignore[arg-type]
    assert DEFAULT_EMAIL_BLOCKLIST.local_parts  # the default is usable as-is


def test_is_junk_phone(spark: SparkSession) -> None:
    check(
        spark,
        is_junk_phone,
        [
            (None, False),
            ("", False),
            ("abc", False),
            ("0000000000", True),
            ("+70000000000", True),
            ("+79999999999", True),
            ("+15555555555", True),
            ("1234567890", True),
            ("+71234567890", True),
            ("+70987654321", True),
            ("123456789", True),
            ("+78005553535", True),
            ("+79123456789", False),  # contains a run, but is a real number
            ("+79120000000", False),
            ("+442079460958", False),
        ],
        result_type="boolean",
    )
    blocklist = PhoneBlocklist(numbers=["+7 (495) 111-22-33"], patterns=[r"^7495000"])
    check(
        spark,
        lambda c: is_junk_phone(c, blocklist),
        [
            ("+74951112233", True),
            ("+74950001122", True),
            ("+70000000000", False),  # the defaults are replaced
        ],
        result_type="boolean",
    )
