"""The closed-form GEMM model (`simulator/_gemm.py`) against an event-driven tile simulation written
separately (`benchmarks/_tile_sim.py`), on the schedule the mapper chose.

Tolerances (docs/simulator.md, "Memory model vs an event-driven tile simulation", explains the
outliers): compute cycles equal; DRAM traffic never below the simulation's and at most 15 % above
(the closed form re-fetches an operand all-or-nothing, the simulation keeps a smaller last tile
that fits); cycles within 10 % in at least 90 % of the cases and within −15 % .. +50 % in all (the
closed form spreads compulsory traffic over the whole GEMM; the simulation sees it front-loaded).
"""
from __future__ import annotations

import pytest

from benchmarks._tile_sim import simulate_gemm
from benchmarks.table_oracle import compare, random_cases
from mixaq.simulator import gemm_cost, spec_from_mapping


def test_tile_simulation_by_hand():
    """os, 4×4 array, GEMM 8×4×10 in two row folds, one shared port of 1 byte/cycle: fold 0 waits
    for its 40 + 40 input bytes (t = 80), fold 1's ifmap tile is requested when fold 0 starts and
    arrives at 120; each fold's 16 output bytes queue behind it: the last lands at 152."""
    spec = spec_from_mapping(dict(
        name="hand", frequency_mhz=1000, array=dict(rows=4, cols=4, dataflow="os"),
        precision=dict(model="fixed", min_bits=8, max_bits=8), sram_kib=dict(ifmap=64, filter=64, ofmap=64),
        dram_bytes_per_cycle=1, mapper=dict(search="folds"), energy_pj=dict(mac_8x8=1, sram_byte=1, dram_byte=1)))
    sim = simulate_gemm(spec, 8, 4, 10, 8, 8, fold_order=0, stream_chunk=10, pack=1)
    assert (sim.folds, sim.compute_cycles, sim.dram_read_bytes, sim.dram_write_bytes, sim.cycles) == (2, 31, 120, 32, 152)
    ours = gemm_cost(spec, 8, 4, 10, 8, 8)
    assert (ours["compute_cycles"], ours["dram_read_bytes"], ours["dram_write_bytes"], ours["cycles"]) == (31, 120, 32, 152)


def test_closed_form_agrees_with_the_tile_simulation_on_random_cases():
    rows = compare(random_cases(100, seed=0))
    assert len(rows) >= 50
    cycles_close = 0
    for r in rows:
        where = f"{r['spec']} {r['gemm']}"
        assert r["compute"] == r["sim_compute"], where
        for key in ("reads", "writes"):
            assert r[f"sim_{key}"] <= r[key] * (1 + 1e-12), where
            assert r[f"sim_{key}"] >= 0.85 * r[key], where
        ratio = r["sim_cycles"] / r["cycles"]
        assert 0.85 <= ratio <= 1.5, where
        cycles_close += abs(ratio - 1) <= 0.10
    assert cycles_close >= 0.9 * len(rows)
    # the random cases really exercise the memory system: re-fetches, stalls and chunking
    assert sum(r["stall_share"] > 0.2 for r in rows) >= 10
    assert sum(r["chunks"] > 1 for r in rows) >= 5


@pytest.mark.parametrize("ports", ["shared", "per_operand"])
def test_simulation_sees_more_bandwidth_and_more_ports_as_faster(ports):
    base = dict(name="p", frequency_mhz=1000, array=dict(rows=8, cols=8, dataflow="ws"),
                precision=dict(model="fixed", min_bits=8, max_bits=8), sram_kib=dict(ifmap=1, filter=1, ofmap=1),
                memory=dict(dram_ports=ports), mapper=dict(search="folds"), energy_pj=dict(mac_8x8=1, sram_byte=1, dram_byte=1))
    times = []
    for bandwidth in (1, 4, 16):
        spec = spec_from_mapping(dict(base, dram_bytes_per_cycle=bandwidth))
        ours = gemm_cost(spec, 120, 70, 90, 8, 8)
        times.append(simulate_gemm(spec, 120, 70, 90, 8, 8, fold_order=int(ours["fold_order"]),
                                   stream_chunk=int(ours["stream_chunk"]), pack=1).cycles)
    assert times[0] > times[1] > times[2]
