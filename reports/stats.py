"""Descriptive statistics of step-time samples. Pure functions of NumPy arrays."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

Samples = ArrayLike


def _array(samples: Samples) -> np.ndarray:
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"samples must be one-dimensional, got shape {x.shape}")
    return x[np.isfinite(x)]


def median(samples: Samples) -> float:
    """The median; NaN for no samples."""
    x = _array(samples)
    return float(np.median(x)) if x.size else float("nan")


def quantile(samples: Samples, q: float) -> float:
    """The ``q``-quantile (linear interpolation, numpy's default / Hyndman-Fan type 7)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q={q!r} must be within [0, 1]")
    x = _array(samples)
    return float(np.quantile(x, q)) if x.size else float("nan")


def iqr(samples: Samples) -> float:
    """Interquartile range, p75 - p25."""
    return quantile(samples, 0.75) - quantile(samples, 0.25)


def coefficient_of_variation(samples: Samples) -> float:
    """Sample standard deviation (ddof=1) over the mean; NaN below two samples."""
    x = _array(samples)
    if x.size < 2 or x.mean() == 0:
        return float("nan")
    return float(x.std(ddof=1) / x.mean())
