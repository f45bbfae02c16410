"""Statistics of step-time samples. Pure functions of NumPy arrays.

Descriptive statistics (median, quantiles, IQR, coefficient of variation) follow the
textbook definitions numpy and scipy implement.

Confidence intervals are built at run level, because the run (one process) is the unit of
independent evidence: steps of one process share its fate (placement, allocator state,
turbo luck), so they are not independent samples. With two or more runs:

* the median step time gets a Student t interval on the log of the run medians
  (:func:`median_ci`), transformed back: log, because step times vary by factors;
* a ratio of medians gets a Welch t interval on the difference of the mean log run
  medians of the two sides (:func:`ratio_of_medians_ci`), which allows the two sides
  different run-to-run spreads.

A seeded two-level simulation (:mod:`reports.coverage`) shows these hold their nominal
coverage at 3, 5 and 10 runs, where the hierarchical bootstrap used before did not (77% at
3 runs for a "95%" interval). With 2 runs the t quantile has one degree of freedom and the
interval is very wide: that is what two runs can say.

With a single run there is no run-level interval. The functions then fall back to the
percentile bootstrap of the run's steps (checked against ``scipy.stats.bootstrap`` in the
tests), which covers step-to-step noise only, not run-to-run variation: callers must flag
it (the report does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy import special
from scipy import stats as sps

Samples = ArrayLike
CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0


def _array(samples: Samples) -> np.ndarray:
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1:
        raise ValueError(f"samples must be one-dimensional, got shape {x.shape}")
    finite = np.isfinite(x)
    return x if finite.all() else x[finite]


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


def covers_runs(groups: Sequence[Samples]) -> bool:
    """Whether :func:`median_ci` of ``groups`` is a run-level interval (two or more runs
    with samples), rather than a single run's step-to-step interval."""
    return sum(1 for g in groups if _array(g).size) >= 2


def _sorted_median(x: np.ndarray) -> float:
    # np.median's overhead is several times the work for a run of a few hundred steps, and
    # the coverage simulation computes hundreds of thousands of them.
    return 0.5 * float(x[(x.size - 1) // 2] + x[x.size // 2])


def log_run_medians(groups: Sequence[Samples]) -> np.ndarray:
    """The log of each run's median: the run-level observations the intervals use.

    Raises:
      ValueError: no samples, or a run whose median is not positive.
    """
    return _log_medians(_groups(groups))


def _log_medians(arrays: list[np.ndarray]) -> np.ndarray:
    medians = np.array([_sorted_median(np.sort(a)) for a in arrays])
    if (medians <= 0).any():
        raise ValueError("run-level intervals need positive step times")
    return np.log(medians)


def _t_quantile(confidence: float, df: float) -> float:
    # scipy.special's ufunc: the same quantile as scipy.stats.t.ppf without its overhead
    return float(special.stdtrit(df, 0.5 + confidence / 2))


def _t_interval(center: float, se: float, df: float, confidence: float) -> tuple[float, float]:
    half = _t_quantile(confidence, df) * se if se > 0 else 0.0
    return float(np.exp(center - half)), float(np.exp(center + half))


def _resampled_medians(sample: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of ``n`` bootstrap resamples of one sample, drawn in blocks of about a
    million values (a 25-epoch run has tens of thousands of steps)."""
    block = max(1, 1_000_000 // sample.size)
    return np.concatenate(
        [
            np.median(sample[rng.integers(sample.size, size=(min(block, n - i), sample.size))], 1)
            for i in range(0, n, block)
        ]
    )


def _percentiles(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1 - confidence) / 2
    low, high = np.quantile(replicates, [alpha, 1 - alpha])
    return float(low), float(high)


def median_ci(
    groups: Sequence[Samples],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """Confidence interval of the median step time; ``groups`` holds each run's samples.

    Two or more runs: the t interval (n - 1 degrees of freedom) of the mean log run
    median, exponentiated. One run: the percentile bootstrap of its steps, which does not
    cover run-to-run variation (see :func:`covers_runs`). A single sample gives (x, x).
    """
    arrays = _groups(groups)
    if len(arrays) == 1:
        rng = np.random.default_rng(seed)
        return _percentiles(_resampled_medians(arrays[0], n_resamples, rng), confidence)
    logs = _log_medians(arrays)
    se = float(logs.std(ddof=1) / np.sqrt(logs.size))
    return _t_interval(float(logs.mean()), se, logs.size - 1, confidence)


def welch_log_ratio(
    numerator: Sequence[Samples], denominator: Sequence[Samples]
) -> tuple[float, float, float]:
    """Difference of the mean log run medians (numerator - denominator), its standard
    error and its Welch-Satterthwaite degrees of freedom; both sides need two runs."""
    return _welch(_log_medians(_groups(numerator)), _log_medians(_groups(denominator)))


def _welch(top: np.ndarray, bottom: np.ndarray) -> tuple[float, float, float]:
    if min(top.size, bottom.size) < 2:
        raise ValueError("a Welch interval needs two or more runs on each side")
    v_top, v_bottom = top.var(ddof=1) / top.size, bottom.var(ddof=1) / bottom.size
    se = float(np.sqrt(v_top + v_bottom))
    parts = v_top**2 / (top.size - 1) + v_bottom**2 / (bottom.size - 1)
    # With no spread on either side the degrees of freedom are undefined; the interval is
    # then the point, whatever the quantile.
    df = float((v_top + v_bottom) ** 2 / parts) if parts > 0 else float(top.size + bottom.size - 2)
    return float(top.mean() - bottom.mean()), se, df


def ratio_of_medians_ci(
    numerator: Sequence[Samples],
    denominator: Sequence[Samples],
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """Confidence interval of median(numerator) / median(denominator).

    Two or more runs on each side: the Welch t interval of the difference of mean log run
    medians (:func:`welch_log_ratio`), exponentiated. Otherwise the two sides' pooled steps
    are bootstrapped independently, which covers step-to-step noise only.
    """
    top, bottom = _groups(numerator), _groups(denominator)
    if min(len(top), len(bottom)) >= 2:
        return _t_interval(*_welch(_log_medians(top), _log_medians(bottom)), confidence)
    rng = np.random.default_rng(seed)
    pooled_top, pooled_bottom = np.concatenate(top), np.concatenate(bottom)
    ratios = _resampled_medians(pooled_top, n_resamples, rng) / _resampled_medians(
        pooled_bottom, n_resamples, rng
    )
    return _percentiles(ratios, confidence)


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
