"""Configuration of identity resolution (``identity:`` in ``conf/identity.yaml``)."""

from __future__ import annotations

from cdp_spark._settings import Settings
from cdp_spark.identity.fuzzy_config import FuzzyConfig


class IdentityConfig(Settings):
    """Match rules, blocking, thresholds, cardinality limits and blocklists."""

    fuzzy: FuzzyConfig = FuzzyConfig()
