"""Uniform-sum ratio sampling for SAQA: sums uniform, ratios capped, splits uniform given the sum."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from mixaq.models.qat import MixSampler, uniform_sum_ratios
from mixaq.simulator import MixaqError

N_DRAWS = 3000


@pytest.mark.parametrize("num_pairs", [1, 3, 6, 12])
def test_sums_are_uniform_and_ratios_capped(num_pairs):
    rng = np.random.default_rng(num_pairs)
    draws = np.stack([uniform_sum_ratios(rng, num_pairs, 0.8) for _ in range(N_DRAWS)])  # (D, P)
    assert draws.min() >= 0.0 and draws.max() <= 0.8
    sums = draws.sum(1)
    full = 0.8 * num_pairs
    assert stats.kstest(sums / full, "uniform").pvalue > 1e-3
    # both ends are actually reached, not just the middle
    assert (sums < 0.1 * full).mean() > 0.05 and (sums > 0.9 * full).mean() > 0.05


def test_independent_sampling_fails_the_same_test():
    """The test has power: per-pair independent ratios give a sum that clusters in the middle."""
    rng = np.random.default_rng(0)
    sums = rng.uniform(0, 0.8, size=(N_DRAWS, 6)).sum(1)
    assert stats.kstest(sums / 4.8, "uniform").pvalue < 1e-6


@pytest.mark.parametrize("total", [0.3, 1.2])
def test_split_is_uniform_given_the_sum(total):
    """Two pairs: given S, r_0 is uniform on [max(0, S - cap), min(cap, S)], below and above the
    half-way point where the sampler switches to the complement."""
    rng = np.random.default_rng(1)
    r0 = np.array([uniform_sum_ratios(rng, 2, 0.8, total_range=(total, total))[0] for _ in range(N_DRAWS)])
    lo, hi = max(0.0, total - 0.8), min(0.8, total)
    assert r0.min() >= lo - 1e-12 and r0.max() <= hi + 1e-12
    assert stats.kstest((r0 - lo) / (hi - lo), "uniform").pvalue > 1e-3


def test_split_is_uniform_on_the_capped_simplex_for_more_pairs():
    """Near the maximum total the feasible set is a small simplex around the cap; the complement
    draw must cover it uniformly: each pair's shortfall (cap - r) is Beta(1, P-1)-distributed."""
    rng = np.random.default_rng(2)
    P, cap, total = 4, 0.8, 3.0  # shortfall budget 0.2 < cap, so the cap never binds on it
    draws = np.stack([uniform_sum_ratios(rng, P, cap, total_range=(total, total)) for _ in range(N_DRAWS)])
    np.testing.assert_allclose(draws.sum(1), total, atol=1e-9)
    shortfall = (cap - draws[:, 0]) / (P * cap - total)
    assert stats.kstest(shortfall, stats.beta(1, P - 1).cdf).pvalue > 1e-3


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), num_pairs=st.integers(1, 16), max_ratio=st.floats(0.05, 1.0),
       lo=st.floats(0, 1), width=st.floats(0, 1))
def test_ratios_respect_cap_and_range(seed, num_pairs, max_ratio, lo, width):
    full = max_ratio * num_pairs
    total_range = (lo * full, min(full, lo * full + width * full))
    r = uniform_sum_ratios(np.random.default_rng(seed), num_pairs, max_ratio, total_range)
    assert r.shape == (num_pairs,) and r.min() >= 0 and r.max() <= max_ratio
    assert total_range[0] - 1e-9 <= r.sum() <= total_range[1] + 1e-9


def test_three_way_configurations():
    sampler = MixSampler(num_pairs=6, prune_probability=0.5, max_prune_share=0.5, seed=3)
    low, pruned = map(np.stack, zip(*(sampler.ratios(s) for s in range(N_DRAWS))))
    demoted = low + pruned
    assert low.min() >= 0 and pruned.min() >= 0 and demoted.max() <= 0.8 + 1e-12
    three_way = pruned.sum(1) > 0
    assert 0.45 < three_way.mean() < 0.55
    assert np.all(pruned <= 0.5 * demoted + 1e-12)
    # the demoted total stays uniform on three-way steps and on two-way steps
    for rows in (three_way, ~three_way):
        assert stats.kstest(demoted[rows].sum(1) / 4.8, "uniform").pvalue > 1e-3


def test_sampler_is_a_function_of_seed_and_step():
    a, b = MixSampler(num_pairs=3, seed=5), MixSampler(num_pairs=3, seed=5)
    assert a.mix(7) == b.mix(7)
    assert a.mix(7) != a.mix(8) and a.mix(7) != MixSampler(num_pairs=3, seed=6).mix(7)
    mix = a.mix(7)
    assert len(mix.low_ratios) == 3 and mix.prune_ratios == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("kwargs", [{"prune_probability": 1.5}, {"max_prune_share": -0.1}, {"max_ratio": 0.0}])
def test_bad_sampler_settings(kwargs):
    with pytest.raises(MixaqError):
        MixSampler(num_pairs=3, **kwargs)


def test_bad_ratio_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(MixaqError, match="total_range"):
        uniform_sum_ratios(rng, 3, 0.8, total_range=(0.0, 3.0))
    with pytest.raises(MixaqError, match="num_pairs"):
        uniform_sum_ratios(rng, 0)
