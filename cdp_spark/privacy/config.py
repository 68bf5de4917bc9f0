"""Configuration of privacy (``privacy:`` in ``conf/privacy.yaml``).

What is personal data (PII columns), how identifiers are found in any table (for erasure),
how they are hashed (erasure log, suppression list, pseudonymisation), how long deleted data
stays reachable by time travel, and which export destinations may receive raw PII.

Example:
    >>> PrivacyConfig(erasure_retention_hours=0).erasure_retention_hours
    0
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from cdp_spark._settings import Settings

IdKind = Literal["email", "phone", "id"]

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name (A-Z, 0-9, _)")
    return value


def _check_columns(values: list[str]) -> list[str]:
    bad = [v for v in values if not _COLUMN.match(v)]
    if bad:
        raise ValueError(f"not column names: {', '.join(map(repr, bad))}")
    return values


class PseudonymisationConfig(Settings):
    """Keyed hashing (HMAC-SHA256) of identifier columns in analytic tables.

    The secret is never in YAML: ``secret_env`` names the environment variable holding it.
    """

    enabled: bool = False
    secret_env: str = "CDP_PSEUDONYM_KEY"
    # Columns replaced by their keyed hash when a stage pseudonymises a table.
    columns: list[str] = Field(default_factory=list)

    @field_validator("secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        _check_env_name(value)
        return value

    @field_validator("columns")
    @classmethod
    def _column_names(cls, value: list[str]) -> list[str]:
        return _check_columns(value)


class PrivacyConfig(Settings):
    """PII columns, erasure retention, identifier hashing, suppression, export rules."""

    # Columns holding raw personal data, by name, in any table: redacted in logs, left out of
    # exports unless the destination is in raw_pii_destinations.
    pii_columns: list[str] = Field(default_factory=list)
    # Columns holding identifiers, by kind, beyond what conf/sources.yaml declares
    # (``identifier:``) and the naming conventions (``*_norm``, ``*_e164``, ``id_value``...).
    identifier_columns: dict[IdKind, list[str]] = Field(default_factory=dict)
    # Columns holding free text that may contain identifiers (raw lines, messages): erasure
    # searches them for any written form of the person's e-mails and phones.
    raw_text_columns: list[str] = Field(default_factory=list)
    # Columns holding SHA-256 / HMAC hex digests of normalised identifiers (ads audiences).
    hashed_identifier_columns: list[str] = Field(default_factory=list)
    # Hours deleted data stays reachable by time travel after an erasure (vacuum retention).
    erasure_retention_hours: int = Field(default=168, ge=0)
    # Environment variable with the key of the identifier hash (erasure log, suppression list).
    # Unset variable: plain SHA-256, with a warning (phones are guessable from a plain hash).
    hash_key_env: str | None = "CDP_PRIVACY_KEY"
    # Refuse to run erasure / suppression without the key above (recommended in production).
    require_hash_key: bool = False
    # Late files are checked against ops.suppression_list so an erased person is not re-created.
    suppression: bool = True
    # Export destinations that are allowed raw PII columns (e.g. a call-centre screen).
    raw_pii_destinations: list[str] = Field(default_factory=list)
    pseudonymisation: PseudonymisationConfig = PseudonymisationConfig()

    @field_validator("hash_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return _check_env_name(value)

    @field_validator("pii_columns", "raw_text_columns", "hashed_identifier_columns")
    @classmethod
    def _column_names(cls, value: list[str]) -> list[str]:
        return _check_columns(value)

    @field_validator("identifier_columns")
    @classmethod
    def _id_columns(cls, value: dict[IdKind, list[str]]) -> dict[IdKind, list[str]]:
        for columns in value.values():
            _check_columns(columns)
        return value
