"""Holdout metrics, their plots, and the population stability index.

Pure numpy / matplotlib: no Spark, no MLflow, so each function is easy to test by hand.

Example:
    >>> m = evaluate([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> round(m["roc_auc"], 2)
    0.75
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve

PSI_EPSILON = 1e-4


def lift_by_decile(y: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray) -> np.ndarray:
    """Positive rate of each score decile (highest first) divided by the overall rate.

    Example:
        >>> float(lift_by_decile([1] + [0] * 9, [0.9] + [0.1] * 9)[0])
        10.0
    """
    y_arr, p_arr = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(-p_arr, kind="stable")
    base = y_arr.mean() if len(y_arr) else 0.0
    if base == 0:
        return np.zeros(10)
    groups = np.array_split(y_arr[order], 10)
    return np.array([g.mean() / base if len(g) else 0.0 for g in groups])


def calibration_error(
    y: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray, bins: int = 10
) -> float:
    """Expected calibration error: |mean score - positive rate| per score quantile bin,
    weighted by the bin's size.

    Example:
        >>> float(calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], bins=1))
        0.0
    """
    y_arr, p_arr = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    order = np.argsort(p_arr, kind="stable")
    total = 0.0
    for idx in np.array_split(order, bins):
        if len(idx):
            total += len(idx) * abs(p_arr[idx].mean() - y_arr[idx].mean())
    return total / max(len(y_arr), 1)


def evaluate(y: Sequence[int] | np.ndarray, p: Sequence[float] | np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC, Brier score, top-decile lift and calibration error of scores ``p``.

    Example:
        >>> sorted(evaluate([0, 1, 0, 1], [0.2, 0.7, 0.3, 0.9]))[:4]
        ['brier', 'calibration_error', 'lift_top_decile', 'positive_rate']
    """
    y_arr, p_arr = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    both = len(set(y_arr.tolist())) == 2
    return {
        "roc_auc": float(roc_auc_score(y_arr, p_arr)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y_arr, p_arr)) if both else float("nan"),
        "brier": float(brier_score_loss(y_arr, p_arr)),
        "lift_top_decile": float(lift_by_decile(y_arr, p_arr)[0]),
        "calibration_error": calibration_error(y_arr, p_arr),
        "positive_rate": float(y_arr.mean()) if len(y_arr) else float("nan"),
        "rows": float(len(y_arr)),
    }


# --- plots -----------------------------------------------------------------------------------


def _figure(title: str) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # headless: jobs and tests have no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.set_title(title)
    return fig, ax


def roc_figure(y: np.ndarray, curves: Mapping[str, np.ndarray], title: str) -> Any:
    """ROC curves of several scorings of the same holdout (the model and its baselines).

    Example:
        >>> roc_figure(y, {"model": p, "recency": r}, "churn")        # doctest: +SKIP
    """
    fig, ax = _figure(title)
    for name, p in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def calibration_figure(y: np.ndarray, p: np.ndarray, title: str, bins: int = 10) -> Any:
    """Mean score vs positive rate per score quantile bin.

    Example:
        >>> calibration_figure(y, p, "churn")                            # doctest: +SKIP
    """
    fig, ax = _figure(title)
    order = np.argsort(p, kind="stable")
    xs, ys = [], []
    for idx in np.array_split(order, bins):
        if len(idx):
            xs.append(float(np.mean(p[idx])))
            ys.append(float(np.mean(y[idx])))
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect")
    ax.plot(xs, ys, "o-", label="model")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed positive rate")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def lift_figure(y: np.ndarray, p: np.ndarray, title: str) -> Any:
    """Lift of each score decile (1 = the highest scores).

    Example:
        >>> lift_figure(y, p, "churn")                                  # doctest: +SKIP
    """
    fig, ax = _figure(title)
    ax.bar(range(1, 11), lift_by_decile(y, p))
    ax.axhline(1.0, color="k", ls=":", lw=1)
    ax.set_xlabel("score decile (1 = highest)")
    ax.set_ylabel("lift")
    return fig


def importance_figure(importances: Mapping[str, float], title: str, top: int = 20) -> Any:
    """Horizontal bars of the largest permutation importances (drop in ROC AUC).

    Example:
        >>> importance_figure({"tenure_days": 0.01}, "churn")          # doctest: +SKIP
    """
    fig, ax = _figure(title)
    items = sorted(importances.items(), key=lambda kv: kv[1], reverse=True)[:top][::-1]
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set_xlabel("mean drop in ROC AUC when shuffled")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


# --- population stability --------------------------------------------------------------------


def psi(
    expected: Sequence[float], actual: Sequence[float], *, epsilon: float = PSI_EPSILON
) -> float:
    """Population stability index of two distributions over the same bins.

    ``sum((a - e) * ln(a / e))``, proportions floored at ``epsilon`` so that an empty bin does
    not make it infinite. Inputs are counts or proportions (each is normalised).

    Example:
        >>> round(psi([0.5, 0.5], [0.25, 0.75]), 4)
        0.2747
    """
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape:
        raise ValueError(f"psi: {len(e)} expected bins vs {len(a)} actual bins")
    e = np.maximum(e / e.sum() if e.sum() > 0 else e, epsilon)
    a = np.maximum(a / a.sum() if a.sum() > 0 else a, epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """Distinct inner bin edges at the quantiles of the non-missing ``values``.

    Example:
        >>> quantile_edges(np.array([1.0, 2.0, 3.0, 4.0, np.nan]), 2)
        [2.5]
    """
    v = values[~np.isnan(values)]
    if len(v) == 0:
        return []
    qs = np.quantile(v, [i / bins for i in range(1, bins)])
    return sorted({float(q) for q in qs if math.isfinite(q)})


def bin_shares(values: np.ndarray, edges: Sequence[float]) -> list[float]:
    """Share of ``values`` in each bin: ``len(edges) + 1`` value bins, then one missing bin.

    A value ``x`` falls in bin ``i`` = number of edges strictly below it (Spark computes the
    same index in :func:`cdp_spark.ml.monitoring.feature_drift`).

    Example:
        >>> bin_shares(np.array([1.0, 3.0, np.nan, 3.0]), [2.0])
        [0.25, 0.5, 0.25]
    """
    missing = np.isnan(values)
    idx = np.searchsorted(np.asarray(edges, dtype=float), values[~missing], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float).tolist()
    counts.append(float(missing.sum()))
    n = max(len(values), 1)
    return [c / n for c in counts]
