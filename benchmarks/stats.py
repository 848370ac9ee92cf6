"""Interval estimates and paired tests for benchmark runs: bootstrap CIs, exact McNemar, paired bootstrap.

All resampling is seeded, so a summary or a comparison of the same files prints the same numbers
every time. The bootstrap is the plain percentile bootstrap:

    rng = numpy.random.default_rng(seed)
    for b in range(n_boot): idx_b = rng.integers(0, n, size=n); stat_b = mean(x[idx_b])
    CI = quantiles of stat_b at (1 - level) / 2 and (1 + level) / 2   (numpy's default "linear")

Drawing the index matrix in row chunks gives the same numbers as drawing it row by row (numpy's
Generator consumes its stream in order), which is what the tests check against.

Note: a rate of exactly 0 or 1 gets the degenerate interval [0, 0] or [1, 1] from a percentile
bootstrap; with n images that means "fewer than about 3/n" (rule of three), not certainty.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: Replicates per interval. Monte-Carlo error at n = 48 (the default grid), measured over 20 seeds:
#: sd of a 95% bound 0.006 for 24/48 and 0.009 for 12/48, i.e. the bound moves by at most one step of
#: 1/48 between seeds; well inside the interval widths (~0.28). The seed makes it reproducible anyway.
N_BOOT = 2000
SEED = 0
LEVEL = 0.95
# Elements of the (replicates x n) index matrix drawn at once: bounds memory at ~16 MB for any n.
_CHUNK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Estimate:
    """A statistic with its bootstrap interval. ``count`` is the number of successes for rates."""

    value: float | None
    lo: float | None
    hi: float | None
    n: int
    count: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def fmt(self, digits: int = 2) -> str:
        """``0.42 [0.28, 0.56]`` (or ``-`` when there is nothing to estimate)."""
        if self.value is None:
            return "-"
        if self.lo is None:
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def _boot_means(x: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement) of the 1-D array ``x``; shape ``(n_boot,)``."""
    n = len(x)
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // n)
    out = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        stop = min(n_boot, start + rows)
        out[start:stop] = x[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return out


def bootstrap_mean(
    values: Sequence[float], n_boot: int = N_BOOT, level: float = LEVEL, seed: int = SEED
) -> Estimate:
    """Mean of ``values`` with a percentile-bootstrap interval.

    >>> bootstrap_mean([1, 1, 1]).fmt()
    '1.00 [1.00, 1.00]'
    """
    if not 0 < level < 1:
        raise ValueError(f"`level` must be in (0, 1), got {level}")
    x = np.asarray([float(v) for v in values], dtype=float)
    if len(x) == 0:
        return Estimate(None, None, None, 0)
    means = _boot_means(x, n_boot, seed)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return Estimate(float(x.mean()), float(lo), float(hi), len(x))


def bootstrap_rate(
    successes: Sequence[bool], n_boot: int = N_BOOT, level: float = LEVEL, seed: int = SEED
) -> Estimate:
    """Share of true values with a percentile-bootstrap interval; ``count`` = number of successes."""
    flags = [bool(s) for s in successes]
    est = bootstrap_mean(flags, n_boot=n_boot, level=level, seed=seed)
    return Estimate(est.value, est.lo, est.hi, est.n, count=sum(flags))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts.

    ``b`` = pairs where only run A has the outcome, ``c`` = only run B. Under "no difference" each
    discordant pair is a fair coin, so ``p = min(1, 2 * P(Binomial(b + c, 1/2) <= min(b, c)))``.
    Exact rather than the chi-square form because benchmark grids are small (48 images give
    typically 5-15 discordant pairs, where the chi-square approximation is poor).

    >>> round(mcnemar_exact(1, 9), 4)
    0.0215
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    # log-space sum: 0.5 ** n underflows to 0 for n > 1074.
    k = min(b, c)
    logs = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2)
        for i in range(k + 1)
    ]
    m = max(logs)
    tail = math.exp(m) * sum(math.exp(v - m) for v in logs)
    return float(min(1.0, 2.0 * tail))


@dataclass(frozen=True)
class PairedTest:
    """Paired comparison of run B against run A on ``n`` matched images.

    Binary outcomes: ``a``/``b`` are the two rates, ``only_a``/``only_b`` the discordant counts and
    ``p`` the exact McNemar p-value. Continuous: ``a``/``b`` means, ``diff`` = mean(B - A) with its
    paired-bootstrap interval ``lo``/``hi`` and p-value.
    """

    test: str
    n: int
    a: float | None
    b: float | None
    diff: float | None
    lo: float | None
    hi: float | None
    p: float | None
    only_a: int | None = None
    only_b: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def mcnemar_test(a: Sequence[bool], b: Sequence[bool]) -> PairedTest:
    """Exact McNemar test on paired binary outcomes ``a[i]``, ``b[i]`` of the same image i."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes must have equal length, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return PairedTest("mcnemar", 0, None, None, None, None, None, None, 0, 0)
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    ra, rb = sum(map(bool, a)) / n, sum(map(bool, b)) / n
    return PairedTest(
        "mcnemar", n, ra, rb, rb - ra, None, None, mcnemar_exact(only_a, only_b), only_a, only_b
    )


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], n_boot: int = N_BOOT, level: float = LEVEL, seed: int = SEED
) -> PairedTest:
    """Paired bootstrap on ``d = b - a``: mean difference, percentile interval and a two-sided p-value.

    The p-value resamples the centred differences ``d - mean(d)`` (the null of no mean difference)
    and counts how often ``|mean| >= |mean(d)|``: ``p = (1 + hits) / (1 + n_boot)``, so it is never 0.
    """
    if len(a) != len(b):
        raise ValueError(f"paired values must have equal length, got {len(a)} and {len(b)}")
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = len(x)
    if n == 0:
        return PairedTest("paired_bootstrap", 0, None, None, None, None, None, None)
    d = y - x
    obs = float(d.mean())
    means = _boot_means(d, n_boot, seed)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    null = means - obs  # resampling d - mean(d) shifts every replicate mean by exactly -obs
    hits = int(np.sum(np.abs(null) >= abs(obs) - 1e-12))
    p = (1 + hits) / (1 + n_boot)
    return PairedTest("paired_bootstrap", n, float(x.mean()), float(y.mean()), obs, float(lo), float(hi), p)
