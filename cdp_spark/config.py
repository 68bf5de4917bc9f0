"""Typed configuration loaded from ``conf/*.yaml``, validated at job start.

Layout of the configuration folder::

    conf/
      profiles/local.yaml     # the embedded default: local[*], ./lakehouse, SQLite MLflow
      profiles/cluster.yaml   # a commented example for a real cluster
      sources.yaml            # what each source system exports and how to read it
      identity.yaml           # match rules, blocking, cardinality limits, blocklists
      profiles.yaml           # survivorship, lifecycle, KPIs, activation destinations
      segments.yaml           # audiences as boolean expressions over profile columns
      models.yaml             # features, models, champion margin, drift thresholds
      privacy.yaml            # PII columns, erasure retention, pseudonymisation

A profile holds the runtime settings (Spark, storage, MLflow, paths). The other files hold the
product settings shared by every profile. Any key can be overridden from the environment with
``CDP__<SECTION>__<KEY>`` (double underscores separate levels), for example
``CDP__SPARK__MASTER=local[2]`` or ``CDP__STORAGE__ENGINE=delta-rs``; values are parsed as YAML,
so ``CDP__SPARK__SHUFFLE_PARTITIONS=4`` is an integer.

Example:
    >>> cfg = load_config("local")            # doctest: +SKIP
    >>> cfg.storage.engine
    'auto'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cdp_spark.errors import ConfigError
from cdp_spark.identity.config import IdentityConfig
from cdp_spark.ml.config import ModelsConfig
from cdp_spark.privacy.config import PrivacyConfig
from cdp_spark.profiles.config import ActivationConfig, ProfilesConfig, SegmentConfig

ENV_PREFIX = "CDP__"
PROFILE_ENV = "CDP_PROFILE"
CONF_DIR_ENV = "CDP_CONF_DIR"
DEFAULT_PROFILE = "local"

_SPARK_TYPE = re.compile(
    r"^(string|int|long|double|boolean|date|timestamp|decimal\(\d+,\s*\d+\)|array<.+>|struct<.+>)$"
)


class _Model(BaseModel):
    # Unknown keys are errors: a typo in YAML must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkConfig(_Model):
    """How the Spark session is built."""

    master: str = "local[*]"
    app_name: str = "cdp"
    shuffle_partitions: int = Field(default=8, ge=1)
    driver_memory: str = "4g"
    # Maven coordinates for spark.jars.packages (clusters with Maven access only).
    packages: list[str] = Field(default_factory=list)
    # A local folder of jars (offline clusters): every *.jar in it goes on spark.jars.
    jars_dir: str | None = None
    # Extra Spark settings passed through verbatim.
    conf: dict[str, str] = Field(default_factory=dict)
    log_level: Literal["ERROR", "WARN", "INFO", "DEBUG"] = "WARN"


def _no_parent_segments(value: str) -> str:
    # A '..' segment makes a configured folder point somewhere else than it reads; absolute
    # paths and URIs are fine (the deployer chooses them), escapes in disguise are not.
    if ".." in value.replace("\\", "/").split("/"):
        raise ValueError(f"{value!r} must not contain '..' segments; write the folder directly")
    return value


class StorageConfig(_Model):
    """Where the lakehouse lives and which Delta engine writes it."""

    root: str = "lakehouse"
    engine: Literal["auto", "delta-spark", "delta-rs"] = "auto"
    vacuum_retention_hours: int = Field(default=168, ge=0)

    _root = field_validator("root")(_no_parent_segments)


class EnginesConfig(_Model):
    """Engine choices other than storage."""

    connected_components: Literal["auto", "graphframes", "dataframe", "local"] = "auto"


class MlflowConfig(_Model):
    """Where MLflow tracks runs and registers models."""

    tracking_uri: str = "sqlite:///mlflow.db"
    registry_uri: str | None = None
    experiment: str = "cdp"


class PathsConfig(_Model):
    """Folders outside the lakehouse."""

    landing: str = "data/landing"
    exports: str = "data/exports"

    _folders = field_validator("landing", "exports")(_no_parent_segments)


class StandardizeConfig(_Model):
    """Defaults used when parsing identifiers and times in silver."""

    default_region: str = Field(default="RU", min_length=2, max_length=2)
    default_timezone: str = "Europe/Moscow"
    junk_emails: list[str] = Field(default_factory=list)
    junk_phones: list[str] = Field(default_factory=list)


IdentifierKind = Literal["email", "phone", "customer_id", "loyalty_card", "cookie_id", "device_id"]


class SourceColumn(_Model):
    """One raw column of a source export."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: str = "string"
    required: bool = False
    identifier: IdentifierKind | None = None
    description: str | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if not _SPARK_TYPE.match(value.strip()):
            raise ValueError(
                f"unknown column type {value!r}; allowed: string, int, long, double, boolean, "
                "date, timestamp, decimal(p,s), array<...>, struct<...> (Spark DDL)"
            )
        return value.strip()


class SourceConfig(_Model):
    """How one source system's exports are found and read."""

    description: str = ""
    path: str
    pattern: str = "*"
    format: Literal["csv", "jsonl", "parquet"]
    encoding: str = "utf-8"
    delimiter: str = ","
    columns: list[SourceColumn] = Field(min_length=1)
    keys: list[str] = Field(default_factory=list)
    order_by: str | None = None
    event_time: str | None = None
    timezone: str | None = None  # for naive local timestamps (e.g. POS store time)

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        # Sources live under the landing folder; refuse escapes such as ../../etc.
        if Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError(f"source path {value!r} must be a folder under the landing directory")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern_inside(cls, value: str) -> str:
        # The pattern matches names inside the source folder: it cannot point elsewhere.
        if value.startswith("/") or ".." in value.replace("\\", "/").split("/"):
            raise ValueError(f"file pattern {value!r} must match files inside the source folder")
        return value

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


class CdpConfig(_Model):
    """The whole configuration in effect for a job."""

    profile: str = DEFAULT_PROFILE
    project_root: str = "."
    spark: SparkConfig = SparkConfig()
    storage: StorageConfig = StorageConfig()
    engines: EnginesConfig = EnginesConfig()
    mlflow: MlflowConfig = MlflowConfig()
    paths: PathsConfig = PathsConfig()
    standardize: StandardizeConfig = StandardizeConfig()
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    identity: IdentityConfig = IdentityConfig()
    profiles: ProfilesConfig = ProfilesConfig()
    segments: dict[str, SegmentConfig] = Field(default_factory=dict)
    activation: ActivationConfig = ActivationConfig()
    models: ModelsConfig = ModelsConfig()
    privacy: PrivacyConfig = PrivacyConfig()

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        # A source name becomes a table name (bronze.<name>): it must be one.
        bad = [n for n in value if not re.fullmatch(r"[a-z0-9_]+", n)]
        if bad:
            raise ValueError(f"source names must match [a-z0-9_]+, got {', '.join(map(repr, bad))}")
        return value

    def resolve(self, path: str) -> str:
        """An absolute path for ``path``, relative ones taken from the project root.

        URIs (``s3://``, ``abfss://``, ``file:/``...) are returned unchanged.
        """
        if "://" in path or path.startswith("file:"):
            return path
        p = Path(path)
        return str(p if p.is_absolute() else (Path(self.project_root) / p).resolve())

    @property
    def lakehouse_root(self) -> str:
        return self.resolve(self.storage.root)

    @property
    def landing_dir(self) -> str:
        return self.resolve(self.paths.landing)

    @property
    def mlflow_tracking_uri(self) -> str:
        uri = self.mlflow.tracking_uri
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            return "sqlite:///" + self.resolve(uri.removeprefix("sqlite:///"))
        return uri


def default_conf_dir() -> Path:
    """The configuration folder: ``$CDP_CONF_DIR``, else ``./conf``, else the repo's ``conf``."""
    if os.environ.get(CONF_DIR_ENV):
        return Path(os.environ[CONF_DIR_ENV])
    cwd_conf = Path.cwd() / "conf"
    if (cwd_conf / "profiles").is_dir():
        return cwd_conf
    return Path(__file__).resolve().parent.parent / "conf"


def load_config(
    profile: str | None = None,
    *,
    conf_dir: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> CdpConfig:
    """Load, merge and validate the configuration for ``profile``.

    Order of precedence (last wins): ``conf/*.yaml`` product files, the profile file,
    ``CDP__...`` environment variables, ``overrides`` (dotted keys, e.g. ``{"spark.master": "x"}``).

    Raises:
        ConfigError: with the file, the bad key and the allowed values.

    Example:
        >>> load_config("local", overrides={"storage.engine": "delta-rs"}).storage.engine
        'delta-rs'
    """
    environ = os.environ if environ is None else environ
    profile = profile or environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    conf = Path(conf_dir) if conf_dir else default_conf_dir()
    profile_file = conf / "profiles" / f"{profile}.yaml"
    if not profile_file.is_file():
        available = sorted(p.stem for p in (conf / "profiles").glob("*.yaml"))
        raise ConfigError(
            f"unknown profile {profile!r} (no {profile_file})",
            hint=f"available profiles: {', '.join(available) or 'none'}",
        )

    merged: dict[str, Any] = {}
    for product_file in sorted(conf.glob("*.yaml")):
        _deep_merge(merged, _read_yaml(product_file))
    _deep_merge(merged, _read_yaml(profile_file))
    _deep_merge(merged, _env_overrides(environ))
    for dotted, value in (overrides or {}).items():
        _deep_merge(merged, _nest(dotted.split("."), value))
    merged["profile"] = profile
    merged.setdefault("project_root", str(conf.resolve().parent))

    try:
        return CdpConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, profile_file), hint=_HINT) from None


_HINT = "fix the key in conf/ (or the CDP__... environment variable) and run again"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}", hint=_HINT) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys", hint=_HINT)
    return data


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if parts:
            _deep_merge(result, _nest(parts, yaml.safe_load(raw) if raw else raw))
    return result


def _nest(parts: list[str], value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {parts[-1]: value}
    for part in reversed(parts[:-1]):
        out = {part: out}
    return out


def _deep_merge(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _describe(exc: ValidationError, profile_file: Path) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            msg = f"got {err.get('input')!r}, allowed values: {expected}"
        lines.append(f"{key}: {msg}")
    return f"invalid configuration (profile {profile_file.stem}): " + "; ".join(lines)
