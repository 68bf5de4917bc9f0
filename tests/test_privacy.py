"""PII handling: keyed hashes (Spark == Python's hmac), log redaction, export column rules,
pseudonymisation with a secret from the environment, the privacy config and the CLI/job args.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from test_privacy_support import private_conf

from cdp_spark.config import load_config
from cdp_spark.errors import CdpError, ConfigError
from cdp_spark.privacy.hashing import (
    hmac_sha256,
    identifier_hash,
    identifier_hash_col,
    privacy_key,
    pseudonym_key,
)
from cdp_spark.privacy.job import parse_erase_args, request_from_args
from cdp_spark.privacy.pii import (
    RedactingFilter,
    drop_raw_pii,
    exportable_columns,
    install_log_redaction,
    redact,
    with_pseudonyms,
)
from cdp_spark.privacy.suppression import with_suppressed_reason

CFG = load_config("local", conf_dir=private_conf(), environ={})


@pytest.mark.parametrize("key", [b"k", b"a much longer secret key " * 4, "ключ".encode()])
def test_spark_hmac_equals_python_hmac(spark: SparkSession, key: bytes) -> None:
    values = ["ivan@mail.ru", "+79123456789", "", "Ж€😀", None]
    df = spark.createDataFrame([(v,) for v in values], "v string")
    got = [r[0] for r in df.select(hmac_sha256(F.col("v"), key)).collect()]
    want = [
        None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values
    ]
    assert got == want


def test_identifier_hash_is_keyed_only_with_a_key(spark: SparkSession) -> None:
    df = spark.createDataFrame([("a@b.ru",)], "v string")
    plain = df.select(identifier_hash_col(F.col("v"), None)).first()[0]
    keyed = df.select(identifier_hash_col(F.col("v"), b"s")).first()[0]
    assert plain == hashlib.sha256(b"a@b.ru").hexdigest() == identifier_hash("a@b.ru", None)
    assert keyed == identifier_hash("a@b.ru", b"s") != plain


def test_keys_come_from_the_environment_with_clear_errors() -> None:
    assert privacy_key(CFG, {"CDP_PRIVACY_KEY": "s3cret"}) == b"s3cret"
    assert privacy_key(CFG, {}) is None
    strict = load_config(
        "local", conf_dir=private_conf(), environ={}, overrides={"privacy.require_hash_key": True}
    )
    with pytest.raises(ConfigError, match="CDP_PRIVACY_KEY"):
        privacy_key(strict, {})
    with pytest.raises(ConfigError, match="CDP_PSEUDONYM_KEY") as err:
        pseudonym_key(CFG, {})
    assert err.value.hint and "export CDP_PSEUDONYM_KEY" in err.value.hint


def test_pseudonymised_columns_are_keyed_hashes_and_join_still(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [("p1", "ivan@mail.ru", "+79123456789", 3)],
        "person_id string, email_norm string, phone_e164 string, orders int",
    )
    out = with_pseudonyms(df, CFG, environ={"CDP_PSEUDONYM_KEY": "k"})
    expected = spark.createDataFrame(
        [
            (
                "p1",
                hmac.new(b"k", b"ivan@mail.ru", hashlib.sha256).hexdigest(),
                hmac.new(b"k", b"+79123456789", hashlib.sha256).hexdigest(),
                3,
            )
        ],
        df.schema,
    )
    assertDataFrameEqual(out, expected)
    with pytest.raises(ConfigError):
        with_pseudonyms(df, CFG, environ={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("erasing Ivan.Petrov+x@GoogleMail.com now", "erasing <email> now"),
        ("phone 8 (912) 345-67-89 and +44 20 7946 0958", "phone <phone> and <phone>"),
        ("batch 12 on 2026-03-01 10:00:00 wrote 1200 rows", None),
        ("version 20260301 of table silver.crm", None),
    ],
)
def test_redact(text: str, expected: str | None) -> None:
    assert redact(text) == (text if expected is None else expected)


def test_log_records_are_redacted_on_every_handler(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("cdp_spark.test_redaction")
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install_log_redaction()
        install_log_redaction()  # twice: one filter
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        caplog.handler.addFilter(RedactingFilter())
        with caplog.at_level(logging.INFO):
            logger.info("merging %s into %s", "ivan@mail.ru", "+79123456789")
            try:
                raise ValueError("bad value ivan@mail.ru")
            except ValueError:
                logger.exception("failed for %s", "ivan@mail.ru")
        assert "ivan@mail.ru" not in caplog.text and "79123456789" not in caplog.text
        assert "merging <email> into <phone>" in caplog.text
    finally:
        root.removeHandler(handler)


def test_exports_get_raw_pii_only_when_the_destination_declares_it(
    spark: SparkSession,
) -> None:
    cols = ["person_id", "email", "phone_e164", "first_name", "churn_decile"]
    assert exportable_columns(CFG, "ads", cols) == ["person_id", "churn_decile"]
    allowed = load_config(
        "local",
        conf_dir=private_conf(),
        environ={},
        overrides={"privacy.raw_pii_destinations": ["call_centre"]},
    )
    assert exportable_columns(allowed, "call_centre", cols) == cols
    df = spark.createDataFrame(
        [("p1", "a@b.ru", None, "Ann", 3)],
        ", ".join(f"{c} {'int' if c == 'churn_decile' else 'string'}" for c in cols),
    )
    assert drop_raw_pii(df, allowed, "esp").columns == ["person_id", "churn_decile"]


def test_privacy_config_rejects_bad_names() -> None:
    for override in (
        {"privacy.pii_columns": ["email; drop table"]},
        {"privacy.pseudonymisation.secret_env": "not a name"},
        {"privacy.erasure_retention_hours": -1},
        {"privacy.identifier_columns": {"ssn": ["x"]}},
    ):
        with pytest.raises(ConfigError):
            load_config("local", conf_dir=private_conf(), environ={}, overrides=override)


def test_suppressed_reason_wins_over_other_reasons(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [("a@b.ru", "bad_type:x"), ("c@d.ru", None), (None, None)],
        "email_norm string, _reason string",
    )
    out = with_suppressed_reason(df, ["email_norm"], [identifier_hash("a@b.ru", b"k")], b"k")
    assert [r[1] for r in out.collect()] == ["suppressed", None, None]


def test_erase_job_arguments_and_identifier_from_the_environment() -> None:
    args = parse_erase_args(["--from-env", "--dry-run"])
    request = request_from_args(args, {"CDP_ERASE_PHONE": "+79123456789"})
    assert (request.kind, request.value, args.dry_run) == ("phone", "+79123456789", True)
    with pytest.raises(CdpError, match="exactly one"):
        request_from_args(args, {})
    with pytest.raises(SystemExit):
        parse_erase_args(["--email", "a@b.ru", "--phone", "1"])
