"""Statistics of step-time samples. Pure functions of NumPy arrays.

Descriptive statistics (median, quantiles, IQR, coefficient of variation) follow the
textbook definitions numpy and scipy implement. Confidence intervals come from a seeded
*hierarchical* bootstrap: steps of one process are correlated (same placement, same
allocator state, same turbo luck), so with several runs the runs are resampled first and
steps within each chosen run second; with a single run it reduces to the ordinary
percentile bootstrap (checked against ``scipy.stats.bootstrap`` in the tests).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

Samples = ArrayLike
CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0


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


def robust_cv(samples: Samples) -> float:
    """The quartile coefficient of variation: 0.7413 * IQR / median, which equals the CV
    for normal data but ignores a few outliers; NaN for no samples or a zero median."""
    m = median(samples)
    if not m or m != m:
        return float("nan")
    return 0.7413 * iqr(samples) / m


def geometric_mean(values: Samples) -> float:
    """The geometric mean of positive ratios (``scipy.stats.gmean``); no clipping, so a
    slowdown (ratio < 1) pulls it down as much as the same speedup pushes it up."""
    x = _array(values)
    if not x.size:
        return float("nan")
    if (x <= 0).any():
        raise ValueError("geometric mean needs positive values")
    return float(sps.gmean(x))


def _groups(groups: Sequence[Samples]) -> list[np.ndarray]:
    arrays = [a for a in (_array(g) for g in groups) if a.size]
    if not arrays:
        raise ValueError("no samples")
    return arrays


def _resampled_medians(groups: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of ``n`` hierarchical resamples: runs with replacement, then steps."""
    medians = np.empty(n)
    for b in range(n):
        picks = rng.integers(len(groups), size=len(groups))
        pooled = np.concatenate(
            [groups[i][rng.integers(groups[i].size, size=groups[i].size)] for i in picks]
        )
        medians[b] = np.median(pooled)
    return medians


def _interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha])
    return float(low), float(high)


def median_ci(
    groups: Sequence[Samples],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median of pooled ``groups``.

    ``groups`` holds the samples of each run; runs are resampled, then steps in each.
    A single sample gives the degenerate interval (x, x).
    """
    arrays = _groups(groups)
    rng = np.random.default_rng(seed)
    return _interval(_resampled_medians(arrays, n_resamples, rng), confidence)


def ratio_of_medians_ci(
    numerator: Sequence[Samples],
    denominator: Sequence[Samples],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """Bootstrap CI of median(numerator) / median(denominator), the two resampled
    independently (hierarchically, as in :func:`median_ci`)."""
    top, bottom = _groups(numerator), _groups(denominator)
    rng = np.random.default_rng(seed)
    ratios = _resampled_medians(top, n_resamples, rng) / _resampled_medians(
        bottom, n_resamples, rng
    )
    return _interval(ratios, confidence)


def scipy_median_ci(
    samples: Samples,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """``scipy.stats.bootstrap``'s percentile interval of the median of one sample."""
    x = _array(samples)
    statistic: Callable[..., float] = np.median
    result = sps.bootstrap(
        (x,),
        statistic,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
        vectorized=False,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
