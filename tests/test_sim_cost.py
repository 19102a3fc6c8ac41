"""Whole-backbone costing: estimate / estimate_batch contracts and invariants."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixaq.simulator import (
    CostTotals,
    MixaqError,
    WindowAssignment,
    baseline_for,
    estimate,
    estimate_batch,
    fractions_from_pair_ratios,
    get_arch,
    load_spec,
)

SWIN_T = get_arch("swin_t")
IMAGE = (800, 1333)
SPECS = ["bitfusion", "int8_systolic", "bitserial", "loom"]


@pytest.mark.parametrize("spec", SPECS)
def test_zero_ratios_reproduce_the_uniform_baseline_exactly(spec):
    mixed_zero = WindowAssignment.from_pair_ratios(SWIN_T, IMAGE, 0.0, 0.0, 8, 4, 4)
    uniform = WindowAssignment.uniform(SWIN_T, 8, 4)
    a, b = estimate(spec, SWIN_T, IMAGE, mixed_zero), estimate(spec, SWIN_T, IMAGE, uniform)
    assert a.totals == b.totals
    assert a.speedup_over(b) == {"bops": 1.0, "cycles": 1.0, "latency": 1.0, "energy": 1.0}
    # Low bits equal to high bits and nothing pruned: only MixA-Q's overhead ops may differ.
    same_bits = estimate(spec, SWIN_T, IMAGE, WindowAssignment.from_pair_ratios(SWIN_T, IMAGE, 0.5, 0.0, 8, 8, 4))
    assert same_bits.totals.macs == b.totals.macs and same_bits.totals.bops == b.totals.bops


def test_batch_rows_equal_single_estimates_exactly():
    rng = np.random.default_rng(0)
    low_ratios = rng.integers(0, 9, (40, SWIN_T.num_pairs)) / 10
    prune_ratios = rng.integers(0, 3, (40, SWIN_T.num_pairs)) / 10
    low, pruned = fractions_from_pair_ratios(SWIN_T, IMAGE, low_ratios, prune_ratios)
    high_bits = rng.choice([6, 8], 40)
    df = estimate_batch("bitfusion", SWIN_T, IMAGE, low, pruned, high_bits, 4, 4)
    assert len(df) == 40
    assert {"macs", "bops", "cycles", "latency_ms", "energy_pj", "dram_bytes"} <= set(df.columns)
    for i in range(0, 40, 7):
        a = WindowAssignment.from_pair_ratios(SWIN_T, IMAGE, low_ratios[i], prune_ratios[i], int(high_bits[i]), 4, 4)
        np.testing.assert_array_equal(a.low_fraction, low[i])
        single = estimate("bitfusion", SWIN_T, IMAGE, a).totals
        for column in df.columns:
            assert df[column].iloc[i] == getattr(single, column), column


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(low=st.lists(st.floats(0, 0.8), min_size=12, max_size=12), pruned=st.lists(st.floats(0, 0.2), min_size=12, max_size=12),
       spec=st.sampled_from(SPECS))
def test_batch_equals_single_for_arbitrary_fractions(low, pruned, spec):
    """Fractions that are not whole window counts (averages over images) take the same path."""
    a = WindowAssignment(tuple(low), tuple(pruned), 8, 4, 4)
    single = estimate(spec, SWIN_T, IMAGE, a).totals
    df = estimate_batch(spec, SWIN_T, IMAGE, [low, [0.0] * 12], [pruned, [0.0] * 12], 8, 4, 4)
    assert df.iloc[0].to_dict() == single.as_dict()


def test_more_low_bit_windows_lower_bops_as_the_paper_computes():
    """BOPs = MACs·b_w·b_a. Weight layers follow the paper's average-bits rule (4 -> 2 bits:
    4 - 2ρ); QKᵀ and AV multiply two activations, so their BOPs fall with the bits squared."""
    base = estimate("bitfusion", SWIN_T, IMAGE, WindowAssignment.uniform(SWIN_T, 4, 4))
    previous = base.totals.bops
    for ratio in (0.2, 0.5, 0.8):
        report = estimate("bitfusion", SWIN_T, IMAGE, WindowAssignment.from_pair_ratios(SWIN_T, IMAGE, ratio, 0, 4, 2, 4))
        t = report.table
        act_act = np.isin(t["op"], ("qk", "av"))
        low = t["branch"] == "low"
        weight_macs, act_macs = t["macs"][~act_act].sum(), t["macs"][act_act].sum()
        rho_w = t["macs"][~act_act & low].sum() / weight_macs  # MAC-weighted low-bit shares
        rho_a = t["macs"][act_act & low].sum() / act_macs
        want = weight_macs * 4 * (4 - 2 * rho_w) + act_macs * (16 * (1 - rho_a) + 4 * rho_a)
        assert report.totals.bops == pytest.approx(want, rel=1e-12)
        assert report.totals.macs == pytest.approx(base.totals.macs, rel=1e-12)
        assert report.totals.bops < previous
        previous = report.totals.bops


def test_pruning_removes_exactly_the_pruned_windows_work():
    full = estimate("bitfusion", SWIN_T, IMAGE, WindowAssignment.uniform(SWIN_T, 8, 4))
    pruned = estimate("bitfusion", SWIN_T, IMAGE, WindowAssignment.from_pair_ratios(SWIN_T, IMAGE, 0.0, 0.5, 8, 4, 4))
    t_full, t_pruned = full.table, pruned.table
    for op in ("qk", "av"):  # per-window GEMMs scale exactly with the kept window count
        kept = 1 - np.asarray(pruned.assignment.pruned_fraction)
        blocks = t_full["block"][t_full["op"] == op]
        want = (t_full["macs"][t_full["op"] == op] * kept[blocks]).sum()
        assert t_pruned["macs"][t_pruned["op"] == op].sum() == pytest.approx(want, rel=1e-12)
    assert pruned.totals.macs < full.totals.macs
    assert "pruned" not in set(t_pruned["branch"])


def test_report_structure_and_totals_add_up():
    a = WindowAssignment.from_pair_ratios(SWIN_T, IMAGE, 0.5, 0.1, 8, 4, 4)
    report = estimate("bitfusion", "swin_t", IMAGE, a)
    df = report.per_op
    for column in ("stage", "block", "op", "branch", "M", "N", "K", "act_bits", "weight_bits", "macs", "bops",
                   "cycles", "stall_cycles", "dram_read_bytes", "energy_pj", "utilization"):
        assert column in df.columns
    assert set(df["branch"]) == {"high", "low", "all"}
    ops = set(df["op"])
    assert {"patch_embed", "qkv", "qk", "softmax", "av", "proj", "fc1", "gelu", "fc2", "merge", "norm1", "norm2",
            "gather_scatter", "importance_tokens"} <= ops
    assert df["macs"].sum() == pytest.approx(report.totals.macs, rel=1e-12)
    assert df["cycles"].sum() == pytest.approx(report.totals.cycles, rel=1e-12)
    assert df["energy_pj"].sum() == pytest.approx(report.totals.energy_pj, rel=1e-12)
    assert sum(r["cycles"] for r in report.stage_summary()) == pytest.approx(report.totals.cycles, rel=1e-12)
    t = report.totals
    assert t.cycles == pytest.approx(t.compute_cycles + t.vector_cycles + t.stall_cycles, rel=1e-12)
    assert t.latency_ms == pytest.approx(t.cycles / 500e3)
    assert t.energy_pj == pytest.approx(t.mac_energy_pj + t.sram_energy_pj + t.dram_energy_pj + t.vector_energy_pj
                                        + t.static_energy_pj)
    doubled = t + t
    assert isinstance(doubled, CostTotals) and doubled.macs == 2 * t.macs and sum([t, t]) == doubled
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.macs = 0
    speed = report.speedup_over(estimate("bitfusion", SWIN_T, IMAGE, baseline_for(a, SWIN_T)))
    assert speed == report.speedup_over()  # default baseline: uniform at the high bits
    assert set(speed) == {"bops", "cycles", "latency", "energy"}
    assert all(v > 1 for v in speed.values())


def test_fixed_precision_array_gains_only_from_memory():
    a = WindowAssignment.from_pair_ratios(SWIN_T, IMAGE, 0.8, 0.0, 8, 4, 4)
    mixed = estimate("int8_systolic", SWIN_T, IMAGE, a)
    base = estimate("int8_systolic", SWIN_T, IMAGE, baseline_for(a, SWIN_T))
    assert mixed.totals.mac_energy_pj == pytest.approx(base.totals.mac_energy_pj, rel=1e-12)
    assert mixed.totals.dram_bytes < base.totals.dram_bytes
    assert mixed.speedup_over(base)["bops"] > 1.5


def test_bad_inputs_raise_one_line_errors():
    with pytest.raises(MixaqError, match="high_act_bits is None"):
        estimate("bitfusion", SWIN_T, IMAGE, WindowAssignment.uniform(SWIN_T, None, 4))
    with pytest.raises(MixaqError, match="weight_bits is None"):
        estimate("bitfusion", SWIN_T, IMAGE, WindowAssignment.uniform(SWIN_T, 8, None))
    with pytest.raises(MixaqError, match="low_act_bits=1"):
        estimate("bitfusion", SWIN_T, IMAGE, WindowAssignment.from_pair_ratios(SWIN_T, IMAGE, 0.5, 0, 8, 1, 4))
    # Float low bits are fine while no window is low-bit.
    estimate("bitfusion", SWIN_T, IMAGE, WindowAssignment.from_pair_ratios(SWIN_T, IMAGE, 0.0, 0, 8, None, 4))
    with pytest.raises(MixaqError, match="blocks"):
        estimate("bitfusion", SWIN_T, IMAGE, WindowAssignment.uniform(get_arch("swin_nano"), 8, 4))
    with pytest.raises(MixaqError, match=r"shape \(A, 12\)"):
        estimate_batch("bitfusion", SWIN_T, IMAGE, np.zeros((3, 6)), np.zeros((3, 6)), 8, 4, 4)
    with pytest.raises(MixaqError, match="low \\+ pruned <= 1"):
        estimate_batch("bitfusion", SWIN_T, IMAGE, np.full((2, 12), 0.7), np.full((2, 12), 0.5), 8, 4, 4)
    with pytest.raises(MixaqError, match=r"weight_bits must be a scalar or have shape \(2,\)"):
        estimate_batch("bitfusion", SWIN_T, IMAGE, np.zeros((2, 12)), 0.0, 8, 4, [4, 4, 4])
    with pytest.raises(MixaqError, match="image size"):
        estimate("bitfusion", SWIN_T, "big", WindowAssignment.uniform(SWIN_T))


def test_other_archs_and_spec_objects():
    spec = load_spec("loom")
    for name in ("swin_s", "swin_micro"):
        arch = get_arch(name)
        report = estimate(spec, arch, 512, WindowAssignment.from_pair_ratios(arch, (512, 512), 0.3, 0.1, 6, 3, 4))
        assert report.totals.macs > 0 and report.image_hw == (512, 512)
        assert set(report.per_op["block"]) >= set(range(arch.num_blocks))
