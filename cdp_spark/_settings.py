"""The base of every configuration model: frozen, and unknown keys are errors.

Kept apart from :mod:`cdp_spark.config` so that the section models living next to their
features (``cdp_spark/identity/config.py``...) can share it without an import cycle.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Settings(BaseModel):
    """A configuration section: a typo in YAML must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)
