"""Intervals and paired tests, so a difference between two runs is not mistaken for noise.

- `interval(xs)`: a 95 % interval for the mean of per-case values: Wilson's score interval
  when every value is 0 or 1 (pass, execution), else a percentile bootstrap over cases.
- `paired(a, b)`: B minus A over the same cases: the mean difference, its 95 % paired
  bootstrap interval, and a two-sided p-value: McNemar's exact test when both sides are
  0/1 per case, else an exact (or, for many cases, Monte Carlo) sign-flip permutation test.

Resampling uses a fixed seed, so the same reports always give the same figures.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

Z95 = 1.959963984540054
BOOTSTRAP = 2000
SEED = 20240601
ALPHA = 0.05


def _binary(xs: Sequence[float]) -> bool:
    return all(x in (0.0, 1.0) for x in xs)


def wilson(k: int, n: int, z: float = Z95) -> list[float] | None:
    """Wilson score interval for k successes in n trials."""
    if n == 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # at 0 or n the bound is exact; say so rather than 0.9999999999999998
    return [0.0 if k == 0 else max(0.0, centre - half), 1.0 if k == n else min(1.0, centre + half)]


def _percentiles(samples: list[float]) -> list[float]:
    samples.sort()
    lo = samples[int(0.025 * (len(samples) - 1))]
    hi = samples[int(math.ceil(0.975 * (len(samples) - 1)))]
    return [lo, hi]


def bootstrap(xs: Sequence[float], reps: int = BOOTSTRAP, seed: int = SEED) -> list[float] | None:
    """Percentile bootstrap interval of the mean, resampling cases."""
    n = len(xs)
    if n == 0:
        return None
    rng = random.Random(seed)
    means = [sum(xs[rng.randrange(n)] for _ in range(n)) / n for _ in range(reps)]
    return _percentiles(means)


def interval(xs: Sequence[float]) -> list[float] | None:
    """95 % interval of the mean of per-case values (None without cases)."""
    if not xs:
        return None
    if _binary(xs):
        return wilson(int(sum(xs)), len(xs))
    return bootstrap(xs)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (b: A only, c: B only)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def sign_flip(diffs: Sequence[float], reps: int = 20000, seed: int = SEED) -> float:
    """Two-sided p-value of a paired permutation (sign-flip) test of mean difference 0."""
    nz = [d for d in diffs if d != 0]
    if not nz:
        return 1.0
    observed = abs(sum(nz))
    if len(nz) <= 16:  # exact: every sign pattern
        total = hits = 0
        for mask in range(2 ** len(nz)):
            s = sum(d if mask >> i & 1 else -d for i, d in enumerate(nz))
            total += 1
            hits += abs(s) >= observed - 1e-12
        return hits / total
    rng = random.Random(seed)
    hits = sum(abs(sum(d if rng.random() < 0.5 else -d for d in nz)) >= observed - 1e-12
               for _ in range(reps))
    return (hits + 1) / (reps + 1)


def paired(a: Sequence[float], b: Sequence[float], reps: int = BOOTSTRAP,
           seed: int = SEED) -> dict[str, object]:
    """B minus A over paired per-case values: difference, ci95, p_value, test, n."""
    n = len(a)
    if n == 0 or n != len(b):
        return {"difference": None, "ci95": None, "p_value": None, "test": None, "n": n}
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    rng = random.Random(seed)
    boot = [sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(reps)]
    if _binary(a) and _binary(b):
        only_a = sum(1 for x, y in zip(a, b, strict=True) if x > y)
        only_b = sum(1 for x, y in zip(a, b, strict=True) if y > x)
        p, test = mcnemar_exact(only_a, only_b), "mcnemar-exact"
    else:
        p, test = sign_flip(diffs), "sign-flip permutation"
    return {"difference": sum(diffs) / n, "ci95": _percentiles(boot), "p_value": p,
            "test": test, "n": n}


def distinguishable(result: dict[str, object], alpha: float = ALPHA) -> bool:
    p = result.get("p_value")
    return isinstance(p, float) and p < alpha
