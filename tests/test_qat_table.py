"""Ratios for a target BOPs speedup come from the simulator and are the smallest that reach it."""
from __future__ import annotations

import numpy as np
import pytest

from mixaq import simulator
from mixaq.models.qat import matched_ratios
from mixaq.simulator import MixaqError

ARCH = simulator.get_arch("swin_micro")
HW = (256, 256)


def _speedup(low, prune):
    spec = simulator.load_spec("bitfusion")
    lf, pf = simulator.fractions_from_pair_ratios(ARCH, HW, np.full((1, ARCH.num_pairs), low), np.full((1, ARCH.num_pairs), prune))
    bops = simulator.estimate_batch_arrays(spec, ARCH, HW, lf, pf, 4, 2, 4)["bops"][0]
    base = simulator.estimate_batch_arrays(spec, ARCH, HW, np.zeros((1, ARCH.num_blocks)), np.zeros((1, ARCH.num_blocks)), 4, 4, 4)["bops"][0]
    return base / bops


@pytest.mark.parametrize("target", [1.1, 1.25, 1.35, 1.5])
@pytest.mark.parametrize("prune_per_low", [0.0, 0.5, None])
def test_matched_ratios_are_minimal_and_reach_the_target(target, prune_per_low):
    low, prune, predicted = matched_ratios(ARCH, HW, target, prune_per_low=prune_per_low)
    assert predicted >= target and predicted == pytest.approx(_speedup(low, prune))
    step = 0.001
    if prune_per_low is None:
        assert low == 0 and _speedup(0.0, prune - step) < target
    else:
        assert prune == pytest.approx(prune_per_low * low)
        assert _speedup(low - step, prune_per_low * (low - step)) < target
    if prune_per_low == 0.0:
        # BOPs scale with activation bits: a MAC share rho at 2 instead of 4 bits gives 4 / (4 - 2 rho),
        # and floors only lower rho below the ratio, so the ratio is at least 2 (1 - 1/target)
        assert low >= 2 * (1 - 1 / target) - 1e-9


def test_out_of_reach():
    with pytest.raises(MixaqError, match="out of reach"):
        matched_ratios(ARCH, HW, 1.8, prune_per_low=0.0)  # at most 4 / (4 - 1.6) = 1.67x with ratios <= 0.8
