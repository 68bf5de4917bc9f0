"""The scikit-learn estimators a model can train, and the recency-rank baseline.

Every estimator takes a pandas DataFrame of the feature columns (NaN for missing values) and
has ``predict_proba``; that is what MLflow's pyfunc flavour serves (``predict_proba``).

Example:
    >>> est = make_estimator(EstimatorConfig(kind="logistic_regression"), direction=1, seed=1)
    >>> type(est).__name__
    'Pipeline'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from cdp_spark.ml.config import EstimatorConfig

RECENCY_COLUMN = "days_since_last_purchase"


class RecencyRankClassifier(ClassifierMixin, BaseEstimator):
    """Baseline: the score is the rank of the days since the last purchase.

    ``direction=1`` (churn): the longer ago, the higher the score; ``direction=-1``
    (propensity): the more recent, the higher. Someone who never bought scores as the least
    recent. The score is the share of training rows ranked below, so it lies in [0, 1].

    Example:
        >>> X = pd.DataFrame({"days_since_last_purchase": [1.0, 5.0, 9.0]})
        >>> m = RecencyRankClassifier(direction=1).fit(X, [0, 0, 1])
        >>> m.predict_proba(pd.DataFrame({"days_since_last_purchase": [9.0, None]}))[:, 1]
        array([0.66666667, 1.        ])
    """

    def __init__(self, direction: int = 1, column: str = RECENCY_COLUMN) -> None:
        self.direction = direction
        self.column = column

    def fit(self, X: pd.DataFrame, y: Any) -> RecencyRankClassifier:
        values = X[self.column].to_numpy(dtype=float)
        self.sorted_ = np.sort(values[~np.isnan(values)])
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        values = X[self.column].to_numpy(dtype=float)
        n = max(len(self.sorted_), 1)
        rank = np.searchsorted(self.sorted_, np.nan_to_num(values, nan=np.inf), side="left") / n
        rank = np.where(np.isnan(values), 1.0, rank)  # never bought: the least recent
        score = rank if self.direction > 0 else 1.0 - rank
        return np.column_stack([1.0 - score, score])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def make_estimator(ecfg: EstimatorConfig, *, direction: int, seed: int) -> Any:
    """A fresh, unfitted estimator for ``ecfg``.

    ``direction`` only matters for the recency baseline (1 for churn, -1 for propensity).

    Example:
        >>> type(make_estimator(EstimatorConfig(calibration="none"), direction=1, seed=0)).__name__
        'HistGradientBoostingClassifier'
    """
    if ecfg.kind == "recency_rank":
        return RecencyRankClassifier(direction=direction)
    if ecfg.kind == "logistic_regression":
        return Pipeline(
            [
                # Missing values (never bought, no e-mail) carry signal: keep an indicator.
                (
                    "impute",
                    SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                ),
                ("scale", StandardScaler()),
                ("model", LogisticRegression(C=ecfg.logistic_c, max_iter=2000)),
            ]
        )
    booster = HistGradientBoostingClassifier(
        learning_rate=ecfg.learning_rate,
        max_iter=ecfg.max_iter,
        max_leaf_nodes=ecfg.max_leaf_nodes,
        min_samples_leaf=ecfg.min_samples_leaf,
        l2_regularization=ecfg.l2_regularization,
        random_state=seed,
    )
    if ecfg.calibration == "none":
        return booster
    return CalibratedClassifierCV(booster, method=ecfg.calibration, cv=ecfg.calibration_folds)
