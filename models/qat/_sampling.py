"""Ratio configurations for SAQA: uniform-sum sampling of per-pair low-bit (and pruning) ratios.

Sampling each pair's ratio independently makes the *total* cluster in the middle (a sum of P
uniforms), so the extremes - nearly all high or nearly all low - are rarely trained. Uniform-sum
sampling draws the total S uniformly first and splits it across pairs with a flat Dirichlet draw,
redrawing the split (never S) while any ratio exceeds the cap, so S stays exactly uniform and the
split is uniform on the capped simplex {r : sum r = S, 0 <= r_p <= cap}.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mixaq.simulator import MixaqError

__all__ = ["uniform_sum_ratios", "MixSampler"]

# Splits drawn per rejection round; the acceptance rate is >= ~4% up to 12 pairs (see _capped_split).
_DRAWS_PER_ROUND = 256
_MAX_ROUNDS = 10_000


def _capped_split(rng: np.random.Generator, total: float, num_pairs: int, cap: float) -> np.ndarray:
    """A uniform point of {r >= 0, sum r = total, r <= cap} (needs total <= cap * num_pairs).

    For total above half the maximum the complement t = cap - r (sum t = cap*P - total) is drawn
    instead: the map is an affine bijection, so it keeps the distribution uniform and keeps the
    rejection rate bounded by that of the half-full simplex.
    """
    complement = total > 0.5 * cap * num_pairs
    budget = cap * num_pairs - total if complement else total
    for _ in range(_MAX_ROUNDS):
        splits = budget * rng.dirichlet(np.ones(num_pairs), size=_DRAWS_PER_ROUND)  # (D, P)
        ok = np.flatnonzero((splits <= cap).all(axis=1))
        if ok.size:
            r = splits[ok[0]]
            return cap - r if complement else r
    raise MixaqError(f"could not split total {total} over {num_pairs} pairs under cap {cap}")  # pragma: no cover


def uniform_sum_ratios(rng: np.random.Generator, num_pairs: int, max_ratio: float = 0.8,
                       total_range: tuple[float, float] | None = None) -> np.ndarray:
    """(num_pairs,) ratios in [0, max_ratio] whose sum is uniform on `total_range`
    (default: the full range [0, max_ratio * num_pairs])."""
    if num_pairs < 1:
        raise MixaqError(f"num_pairs must be >= 1, got {num_pairs}")
    if not 0.0 < max_ratio <= 1.0:
        raise MixaqError(f"max_ratio must lie in (0, 1], got {max_ratio}")
    full = max_ratio * num_pairs
    lo, hi = (0.0, full) if total_range is None else (float(total_range[0]), float(total_range[1]))
    if not 0.0 <= lo <= hi <= full + 1e-12:
        raise MixaqError(f"total_range must satisfy 0 <= lo <= hi <= {full:g} (max_ratio * pairs), got {total_range}")
    total = min(rng.uniform(lo, hi), full)
    # Float error of the split may overshoot the cap by an ulp; clip keeps the contract exact.
    return np.clip(_capped_split(rng, total, num_pairs, max_ratio), 0.0, max_ratio)


@dataclass(frozen=True)
class MixSampler:
    """A fresh `MixConfig` per training step, reproducible from (seed, step).

    Two-way steps: low-bit ratios by uniform-sum sampling. With probability `prune_probability` a
    step is three-way: the *demoted* ratio (low + pruned) of every pair is drawn by uniform-sum
    sampling and a share u_p ~ U(0, `max_prune_share`) of it is pruned, the rest goes low-bit; so
    the demoted total stays uniform and no ratio (nor low + pruned) exceeds `max_ratio`.
    """

    num_pairs: int
    max_ratio: float = 0.8
    prune_probability: float = 0.0
    max_prune_share: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.prune_probability <= 1.0:
            raise MixaqError(f"adapt: prune_probability must lie in [0, 1], got {self.prune_probability}")
        if not 0.0 <= self.max_prune_share <= 1.0:
            raise MixaqError(f"adapt: max_prune_share must lie in [0, 1], got {self.max_prune_share}")
        if not 0.0 < self.max_ratio <= 1.0:
            raise MixaqError(f"adapt: max_ratio must lie in (0, 1], got {self.max_ratio}")

    def ratios(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(low_ratios, prune_ratios), each (num_pairs,), for training step `step`."""
        rng = np.random.default_rng([self.seed, step])
        demoted = uniform_sum_ratios(rng, self.num_pairs, self.max_ratio)
        if rng.uniform() < self.prune_probability:
            pruned = demoted * rng.uniform(0.0, self.max_prune_share, size=self.num_pairs)
            return demoted - pruned, pruned
        return demoted, np.zeros(self.num_pairs)

    def mix(self, step: int):  # noqa: ANN201 (models.MixConfig; torch-side import kept lazy)
        from mixaq.models._config import MixConfig

        low, pruned = self.ratios(step)
        return MixConfig(low_ratios=tuple(low.tolist()), prune_ratios=tuple(pruned.tolist()))
