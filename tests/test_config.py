"""Configuration: profiles load, environment overrides apply, bad keys are named clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdp_spark.config import CdpConfig, load_config
from cdp_spark.errors import ConfigError

REPO_CONF = Path(__file__).resolve().parent.parent / "conf"


def _conf_dir(tmp_path: Path, profile_yaml: str, **product_files: str) -> Path:
    (tmp_path / "profiles").mkdir(parents=True)
    (tmp_path / "profiles" / "local.yaml").write_text(profile_yaml, encoding="utf-8")
    for name, text in product_files.items():
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_local_profile_is_the_embedded_default() -> None:
    cfg = load_config("local", conf_dir=REPO_CONF, environ={})
    assert cfg.profile == "local"
    assert cfg.spark.master == "local[*]"
    assert cfg.storage.engine == "auto"
    assert cfg.lakehouse_root == str((REPO_CONF.parent / "lakehouse").resolve())
    assert cfg.mlflow_tracking_uri == "sqlite:///" + str((REPO_CONF.parent / "mlflow.db").resolve())


def test_cluster_example_profile_validates() -> None:
    cfg = load_config("cluster", conf_dir=REPO_CONF, environ={})
    assert cfg.storage.engine == "delta-spark"
    assert cfg.lakehouse_root == "s3a://my-company-lake/cdp"
    assert any(p.startswith("io.delta:delta-spark_4.2_2.13:") for p in cfg.spark.packages)


def test_environment_overrides_nested_keys_with_yaml_types() -> None:
    env = {
        "CDP__SPARK__MASTER": "local[2]",
        "CDP__SPARK__SHUFFLE_PARTITIONS": "3",
        "CDP__STORAGE__ENGINE": "delta-rs",
        "UNRELATED": "x",
    }
    cfg = load_config("local", conf_dir=REPO_CONF, environ=env)
    assert (cfg.spark.master, cfg.spark.shuffle_partitions, cfg.storage.engine) == (
        "local[2]",
        3,
        "delta-rs",
    )


def test_profile_from_environment_and_explicit_overrides_win() -> None:
    cfg = load_config(
        conf_dir=REPO_CONF,
        environ={"CDP_PROFILE": "cluster", "CDP__STORAGE__ENGINE": "auto"},
        overrides={"storage.engine": "delta-rs"},
    )
    assert cfg.profile == "cluster"
    assert cfg.storage.engine == "delta-rs"


def test_bad_choice_names_key_and_allowed_values(tmp_path: Path) -> None:
    conf = _conf_dir(tmp_path, "storage:\n  engine: delta\n")
    with pytest.raises(ConfigError) as err:
        load_config("local", conf_dir=conf, environ={})
    message = str(err.value)
    assert "storage.engine" in message
    assert "'delta'" in message
    assert "'auto', 'delta-spark' or 'delta-rs'" in message


def test_unknown_key_is_an_error_not_ignored(tmp_path: Path) -> None:
    conf = _conf_dir(tmp_path, "spark:\n  mastr: local[2]\n")
    with pytest.raises(ConfigError, match=r"spark\.mastr: unknown key"):
        load_config("local", conf_dir=conf, environ={})


def test_env_override_is_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"engines\.connected_components: got 'magic'"):
        load_config(
            "local", conf_dir=REPO_CONF, environ={"CDP__ENGINES__CONNECTED_COMPONENTS": "magic"}
        )


def test_unknown_profile_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError) as err:
        load_config("prod", conf_dir=REPO_CONF, environ={})
    assert err.value.hint is not None
    assert "cluster" in err.value.hint and "local" in err.value.hint


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    conf = _conf_dir(tmp_path, "spark: [unclosed\n")
    with pytest.raises(ConfigError, match=r"local\.yaml: not valid YAML"):
        load_config("local", conf_dir=conf, environ={})


def test_source_declarations_are_validated(tmp_path: Path) -> None:
    sources = (
        "sources:\n"
        "  shop:\n"
        "    path: ../../etc\n"
        "    format: xml\n"
        "    columns:\n"
        "      - {name: id, type: varchar}\n"
    )
    conf = _conf_dir(tmp_path, "{}\n", sources=sources)
    with pytest.raises(ConfigError) as err:
        load_config("local", conf_dir=conf, environ={})
    message = str(err.value)
    assert "sources.shop.path" in message and "under the landing directory" in message
    assert "sources.shop.format: got 'xml'" in message
    assert "sources.shop.columns.0.type" in message and "unknown column type 'varchar'" in message


def test_relative_paths_resolve_against_project_root_and_uris_pass_through() -> None:
    cfg = CdpConfig(project_root="/srv/cdp")
    assert cfg.resolve("lakehouse") == "/srv/cdp/lakehouse"
    assert cfg.resolve("/data/x") == "/data/x"
    assert cfg.resolve("s3a://bucket/x") == "s3a://bucket/x"
