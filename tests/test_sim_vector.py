"""The vector unit's memory traffic (`simulator/_vector.py`): SRAM always, DRAM when its tensors do not
stay on chip (`vector_unit.dram`), bandwidth-bound cycles, and the network totals that include it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixaq.simulator import (MixaqError, WindowAssignment, estimate, estimate_batch, estimate_specs,
                             fractions_from_pair_ratios, get_arch, load_spec, spec_from_mapping, vector_cost)
from mixaq.simulator._workload import build_workload


def _spec(**over):
    base = dict(name="v", frequency_mhz=1000, array=dict(rows=4, cols=4, dataflow="ws"),
                precision=dict(model="fixed", min_bits=8, max_bits=8), sram_kib=dict(ifmap=1, filter=1, ofmap=1),
                dram_bytes_per_cycle=4, vector_unit=dict(lanes=16),
                energy_pj=dict(mac_8x8=1, sram_byte=1, dram_byte=100, vector_op=0.5))
    base.update(over)
    return spec_from_mapping(base)


def test_vector_traffic_by_hand():
    """LayerNorm of 100 rows × 96 at 8 bits, 5 ops per element, 16 lanes, a 1 KiB ofmap SRAM (512 bytes
    in its working half), one shared port of 4 bytes/cycle: 9,600 bytes in and 9,600 out do not fit,
    so both cross DRAM; 19,200 / 4 = 4,800 DRAM cycles against ⌈48,000 / 16⌉ = 3,000 lane cycles:
    1,800 stall cycles. Two rows (384 bytes in + out) fit: SRAM only."""
    spec = _spec()
    out = vector_cost(spec, np.array([100.0, 2.0]), 96, 5)
    np.testing.assert_array_equal(out["vector_cycles"], [3000, 60])
    np.testing.assert_array_equal(out["sram_bytes"], [19200, 384])
    np.testing.assert_array_equal(out["dram_read_bytes"], [9600, 0])
    np.testing.assert_array_equal(out["dram_write_bytes"], [9600, 0])
    np.testing.assert_array_equal(out["stall_cycles"], [1800, 0])
    np.testing.assert_array_equal(out["cycles"], [4800, 60])
    np.testing.assert_allclose(out["energy_pj"], [48000 * 0.5 + 19200 * 1 + 19200 * 100, 960 * 0.5 + 384])
    # one port per operand: reads and writes overlap (9,600 / 4 = 2,400 < 3,000 lane cycles)
    per_port = vector_cost(_spec(memory=dict(dram_ports="per_operand")), 100.0, 96, 5)
    assert (per_port["stall_cycles"], per_port["cycles"]) == (0.0, 3000.0)
    # the other policies: always DRAM (even what fits), never DRAM
    always = vector_cost(_spec(vector_unit=dict(lanes=16, dram="always")), 2.0, 96, 5)
    assert (always["dram_read_bytes"], always["dram_write_bytes"], always["cycles"]) == (192.0, 192.0, 96.0)
    never = vector_cost(_spec(vector_unit=dict(lanes=16, dram="never")), 100.0, 96, 5)
    assert (never["dram_read_bytes"] + never["dram_write_bytes"], never["cycles"]) == (0.0, 3000.0)
    # a reduction reads its rows and writes one value per row (read/write widths)
    norm = vector_cost(spec, 100.0, 96, 1, read_width=96, write_width=1)
    assert (norm["sram_bytes"], norm["dram_read_bytes"], norm["dram_write_bytes"]) == (9700.0, 9600.0, 100.0)


def test_fractional_rows_interpolate_and_count_scales():
    spec = _spec()
    lo, hi = (vector_cost(spec, float(r), 16, 5) for r in (15, 16))  # 480 bytes fit the 512-byte half, 512 too
    mid = vector_cost(spec, 15.25, 16, 5, count=3.0)
    for key in ("vector_cycles", "stall_cycles", "sram_bytes", "dram_read_bytes", "energy_pj"):
        assert mid[key] == pytest.approx(3.0 * (lo[key] + 0.25 * (hi[key] - lo[key])), rel=1e-12), key


def test_bad_vector_dram_value_is_one_line():
    with pytest.raises(MixaqError, match="vector_unit.dram: must be one of fits, always, never"):
        _spec(vector_unit=dict(dram="sometimes"))


PRESETS = ["bitfusion", "int8_systolic", "bitserial", "loom"]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(spec=st.sampled_from(PRESETS), policy=st.sampled_from(["fits", "always", "never"]),
       ratio=st.sampled_from([0.0, 0.3, 0.8]), prune=st.sampled_from([0.0, 0.2]),
       kib=st.sampled_from([0.25, 4, 64, 4096]), bandwidth=st.sampled_from([1, 16, 64]))
def test_vector_traffic_is_at_least_compulsory(spec, policy, ratio, prune, kib, bandwidth):
    """Every vector row moves at least its compulsory bytes (rows × count × (read + write) elements at
    output width) through SRAM; through DRAM exactly those under `always`, none under `never`, all
    or none under `fits`; its cycles are at least its DRAM time; the totals are the sums of the rows."""
    s = dataclasses.replace(load_spec(spec), vector_dram=policy, sram_ofmap_kib=kib, dram_bytes_per_cycle=bandwidth)
    arch, hw = get_arch("swin_nano"), (64, 96)
    a = WindowAssignment.from_pair_ratios(arch, hw, ratio, prune, 8, 4, 4)
    report = estimate(s, arch, hw, a)
    t = report.table
    vec = t["unit"] == "vector"
    wl = build_workload(arch, hw)
    v = wl.vector
    width = {key: (r, w) for key, r, w in zip(zip(v.stage, v.block, v.op, v.branch), v.read_width, v.write_width)}
    keys = list(zip(t["stage"][vec], t["block"][vec], t["op"][vec], t["branch"][vec]))
    read_w = np.array([width[key][0] for key in keys])
    write_w = np.array([width[key][1] for key in keys])
    element = s.output_bits / 8
    compulsory = t["M"][vec] * t["count"][vec] * (read_w + write_w) * element
    assert np.all(compulsory > 0)
    np.testing.assert_allclose(t["sram_bytes"][vec], compulsory, rtol=1e-12)
    dram = t["dram_read_bytes"][vec] + t["dram_write_bytes"][vec]
    if policy == "always":
        np.testing.assert_allclose(dram, compulsory, rtol=1e-12)
    elif policy == "never":
        assert not dram.any()
    else:
        assert np.all(np.isclose(dram, 0) | (dram >= compulsory * (1 - 1e-12)))
    ports = 1.0 if s.dram_ports == "shared" else 0.5
    assert np.all(t["cycles"][vec] >= dram * ports / bandwidth * (1 - 1e-12))
    tot = report.totals
    for key in ("sram_bytes", "dram_read_bytes", "dram_write_bytes", "stall_cycles", "vector_cycles", "cycles",
                "energy_pj", "sram_energy_pj", "dram_energy_pj", "vector_energy_pj", "static_energy_pj"):
        assert t[key].sum() == pytest.approx(getattr(tot, key), rel=1e-12), key
    assert tot.energy_pj == pytest.approx(tot.mac_energy_pj + tot.sram_energy_pj + tot.dram_energy_pj
                                          + tot.vector_energy_pj + tot.static_energy_pj, rel=1e-12)


def test_vector_traffic_reaches_batch_and_many_spec_paths():
    """`estimate_batch` and `estimate_specs` carry the vector unit's traffic as `estimate` does, and
    the policy really moves energy (the breakdown no longer shows ≈ 0 for vector ops)."""
    arch, hw = get_arch("swin_nano"), (64, 96)
    low, pruned = fractions_from_pair_ratios(arch, hw, np.array([[0.0] * arch.num_pairs, [0.5] * arch.num_pairs]), 0.0)
    base = dataclasses.replace(load_spec("bitfusion"), static_power_mw=3.0)
    specs = [dataclasses.replace(base, vector_dram=p, sram_ofmap_kib=kib) for p in ("fits", "always", "never")
             for kib in (1.0, 64.0)]
    many = estimate_specs(specs, arch, hw, low, pruned, 8, 4, 4)
    for h, spec in enumerate(specs):
        one = estimate_batch(spec, arch, hw, low, pruned, 8, 4, 4)
        for key in one.columns:
            np.testing.assert_allclose(many[key][h], one[key].to_numpy(), rtol=1e-12, err_msg=f"{h} {key}")
    dram = {(s.vector_dram, s.sram_ofmap_kib): many["dram_energy_pj"][h, 0] for h, s in enumerate(specs)}
    assert dram[("never", 1.0)] < dram[("fits", 1.0)] <= dram[("always", 1.0)]
    assert dram[("never", 64.0)] < dram[("fits", 64.0)] < dram[("always", 64.0)]
