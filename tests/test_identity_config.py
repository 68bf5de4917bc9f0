"""The identity stage's switch for fuzzy CRM links is separate from `cdp resolve`'s matcher."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from cdp_spark.config import load_config
from cdp_spark.identity.stage import fuzzy_enabled

REPO_CONF = Path(__file__).resolve().parent.parent / "conf"


@pytest.mark.parametrize(
    ("crm_links", "matcher", "expected"),
    [(False, True, False), (True, True, True), (True, False, False), (False, False, False)],
)
def test_fuzzy_links_need_both_switches(crm_links: bool, matcher: bool, expected: bool) -> None:
    cfg = load_config(
        "local",
        conf_dir=REPO_CONF,
        environ={},
        overrides={"identity.fuzzy_crm_links": crm_links, "identity.fuzzy.enabled": matcher},
    )
    assert fuzzy_enabled(SimpleNamespace(cfg=cfg)) is expected  # type: ignore[arg-type]


def test_shipped_config_keeps_fuzzy_crm_links_off_and_the_matcher_on() -> None:
    cfg = load_config("local", conf_dir=REPO_CONF, environ={})
    assert (cfg.identity.fuzzy_crm_links, cfg.identity.fuzzy.enabled) == (False, True)
