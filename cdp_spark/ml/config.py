"""Configuration of features, models, scoring and monitoring (``models:`` in ``conf/models.yaml``)."""

from __future__ import annotations

from cdp_spark._settings import Settings


class ModelsConfig(Settings):
    """Feature windows, label horizons, estimators, champion margin, drift thresholds."""
