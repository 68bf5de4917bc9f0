"""Configuration of features, models, scoring and monitoring (``models:`` in ``conf/models.yaml``).

Example:
    >>> cfg = ModelsConfig()
    >>> (cfg.features.horizon_days, cfg.churn.registered_name, cfg.training.champion_margin)
    (30, 'cdp_churn', 0.005)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from cdp_spark._settings import Settings

EstimatorKind = Literal["hist_gradient_boosting", "logistic_regression", "recency_rank"]


class FeatureSourcesConfig(Settings):
    """Which source (a key of ``sources:``) plays which role; ``null`` when a shop has none.

    A role whose source is not declared or whose silver table does not exist yet is skipped:
    its features are null (see docs/models.md, "Missing sources").
    """

    orders: str | None = "orders"
    pos: str | None = "pos_sales"
    web: str | None = "web_events"
    email: str | None = "email_events"
    support: str | None = "support_tickets"
    crm: str | None = "crm_contacts"


class FeaturesConfig(Settings):
    """Windows, horizon and the few facts the features need about the data."""

    windows_days: list[int] = Field(default_factory=lambda: [30, 90], min_length=1)
    horizon_days: int = Field(default=30, ge=1)
    sources: FeatureSourcesConfig = FeatureSourcesConfig()
    # Currency rates and the ticket sentiment lexicon are the profiles' (profiles.fx_rates,
    # profiles.sentiment in conf/profiles.yaml): one definition of money and of a complaint.

    @field_validator("windows_days")
    @classmethod
    def _sorted_unique(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError("windows must be >= 1 day")
        return sorted(set(value))


class EstimatorConfig(Settings):
    """The estimator a model trains and its settings."""

    kind: EstimatorKind = "hist_gradient_boosting"
    learning_rate: float = Field(default=0.05, gt=0)
    max_iter: int = Field(default=200, ge=1)
    max_leaf_nodes: int = Field(default=15, ge=2)
    min_samples_leaf: int = Field(default=40, ge=1)
    l2_regularization: float = Field(default=1.0, ge=0)
    calibration: Literal["isotonic", "sigmoid", "none"] = "isotonic"
    calibration_folds: int = Field(default=3, ge=2)
    # Inverse regularisation strength of the logistic regression.
    logistic_c: float = Field(default=1.0, gt=0)


class ModelSpec(Settings):
    """One model: its registered name, its label column and its estimator."""

    registered_name: str
    label: Literal["label_churn", "label_purchase"]
    estimator: EstimatorConfig = EstimatorConfig()


class TrainingConfig(Settings):
    """How a training run samples, splits, compares and promotes."""

    max_rows: int = Field(default=500_000, ge=100)
    holdout_fraction: float = Field(default=0.25, gt=0, lt=1)
    seed: int = 42
    champion_alias: str = "champion"
    champion_metric: Literal["roc_auc", "pr_auc"] = "roc_auc"
    champion_margin: float = Field(default=0.005, ge=0)
    min_labelled_rows: int = Field(default=200, ge=10)
    min_positives: int = Field(default=20, ge=1)
    warn_labelled_rows: int = Field(default=5_000, ge=0)
    min_history_days: int = Field(default=14, ge=1)
    compare_baselines: bool = True
    permutation_repeats: int = Field(default=5, ge=1)
    permutation_max_rows: int = Field(default=5_000, ge=100)


class MonitoringConfig(Settings):
    """Drift of features and scores against the training data."""

    psi_bins: int = Field(default=10, ge=2)
    psi_threshold: float = Field(default=0.2, gt=0)


class ModelsConfig(Settings):
    """Feature windows, label horizons, estimators, champion margin, drift thresholds."""

    features: FeaturesConfig = FeaturesConfig()
    churn: ModelSpec = ModelSpec(registered_name="cdp_churn", label="label_churn")
    propensity: ModelSpec = ModelSpec(
        registered_name="cdp_purchase_propensity", label="label_purchase"
    )
    training: TrainingConfig = TrainingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()

    def spec(self, model: str) -> ModelSpec:
        """The spec of ``churn`` or ``propensity``.

        Example:
            >>> ModelsConfig().spec("propensity").label
            'label_purchase'
        """
        if model == "churn":
            return self.churn
        if model == "propensity":
            return self.propensity
        raise ValueError(f"unknown model {model!r}; models: churn, propensity")
