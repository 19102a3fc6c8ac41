"""Pareto extraction equals a brute-force non-dominated filter."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mixaq.search.space._pareto import front_order, pareto_mask


def brute_force(values: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """Textbook definition, one pair at a time."""
    keep = []
    for i, a in enumerate(values):
        if not feasible[i] or np.isnan(a).any():
            keep.append(False)
            continue
        dominated = False
        for j, b in enumerate(values):
            if j == i or not feasible[j] or np.isnan(b).any():
                continue
            if all(b[k] >= a[k] for k in range(len(a))) and any(b[k] > a[k] for k in range(len(a))):
                dominated = True
                break
        keep.append(not dominated)
    return np.array(keep, dtype=bool)


# Few distinct values so ties and duplicates are common; NaN marks unmeasured points.
_value = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, float("nan")])


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(
    arrays(np.float64, (n, 2), elements=_value),
    arrays(np.bool_, (n,)),
)))
def test_pareto_mask_matches_brute_force(case):
    values, feasible = case
    np.testing.assert_array_equal(pareto_mask(values, feasible), brute_force(values, feasible))


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 4)),
              elements=st.floats(-5, 5, allow_nan=False)))
def test_pareto_mask_any_objective_count_without_feasibility(values):
    np.testing.assert_array_equal(pareto_mask(values), brute_force(values, np.ones(len(values), bool)))


def test_large_input_uses_blocks_consistently():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 30, size=(2500, 2)).astype(float)
    mask = pareto_mask(values)
    # Front of integer points: for each kept point no other point is >= in both and > in one.
    kept = values[mask]
    for p in kept:
        assert not (((values >= p).all(axis=1)) & ((values > p).any(axis=1))).any()
    # Every dropped point is dominated by some kept point.
    for p in values[~mask]:
        assert (((kept >= p).all(axis=1)) & ((kept > p).any(axis=1))).any()


def test_front_order_sorts_by_requested_objective():
    values = np.array([[0.5, 2.0], [0.9, 1.0], [0.1, 3.0], [0.05, 0.5]])
    mask = pareto_mask(values)
    assert mask.tolist() == [True, True, True, False]
    assert front_order(values, mask, along=1).tolist() == [1, 0, 2]


def test_a_configuration_met_twice_is_one_front_point():
    from mixaq.search.space._pareto import first_of_duplicates

    values = np.array([[0.5, 2.0], [0.9, 1.0], [0.5, 2.0], [0.1, 0.1]])
    keys = np.array(["a", "b", "a", "c"], dtype=object)
    mask = pareto_mask(values)
    assert mask.tolist() == [True, True, True, False]  # equal points do not dominate each other
    assert first_of_duplicates(mask, keys).tolist() == [True, True, False, False]
