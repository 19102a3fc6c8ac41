"""The closed-form GEMM model (`simulator/_gemm.py`, `simulator/_mapper.py`) against an event-driven
simulation written separately (`benchmarks/_tile_sim.py`), on the schedule the mapper chose: fold by
fold for the fold-level schedules (`mapper.search: folds`), tile by tile for the tile mapper.

Tolerances (docs/simulator.md, "Memory model vs an event-driven tile simulation", explains the
outliers): compute cycles equal; DRAM traffic never below the simulation's and at most 15 % above
(the closed form re-fetches an operand all-or-nothing, the simulation keeps a smaller last tile
that fits); cycles within 10 % in at least 90 % of the cases and within −15 % .. +50 % in all (the
closed form spreads compulsory traffic over the whole GEMM; the simulation sees it front-loaded).
"""
from __future__ import annotations

import pytest

from benchmarks._tile_sim import simulate_gemm, simulate_tiles
from benchmarks.table_oracle import compare, preset_cases, random_cases
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
    _check_agreement(rows, traffic_floor=0.85, cycle_ratio=(0.85, 1.5), close_share=0.9)
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


# ---- the tile mapper ---------------------------------------------------------------------------------

def _hand_spec(ofmap_kib):
    return spec_from_mapping(dict(
        name="hand", frequency_mhz=1000, array=dict(rows=4, cols=4, dataflow="ws", feed="ideal"),
        precision=dict(model="fixed", min_bits=8, max_bits=8), sram_kib=dict(ifmap=64, filter=64, ofmap=ofmap_kib),
        dram_bytes_per_cycle=1, energy_pj=dict(mac_8x8=1, sram_byte=1, dram_byte=1)))


@pytest.mark.parametrize("prefetch", ["half", "tile"])
def test_tile_mapper_simulation_by_hand(prefetch):
    """ws 4×4 array fed without fill (`ideal`), GEMM 8×4×4 at 8 bits in two 4×4×4 tiles (order mnk), one
    shared port of 1 byte/cycle. Tile 0 waits for A0 and B (16 + 16 bytes: t = 32) and computes 4
    cycles (4 streamed rows); A1 lands at 48 (B stays), tile 1 runs 48..52; each tile's 16 output bytes
    queue behind: 48..64 and 64..80. The mapper chooses this schedule and its closed form says the same."""
    spec = _hand_spec(64)
    sim = simulate_tiles(spec, 8, 4, 4, 8, 8, tile_m=4, tile_n=4, tile_k=4, loop_order="mnk", pack=1, prefetch=prefetch)
    assert (sim.folds, sim.compute_cycles, sim.dram_read_bytes, sim.dram_write_bytes, sim.cycles) == (2, 8, 48, 32, 80)
    ours = gemm_cost(spec, 8, 4, 4, 8, 8)
    assert (ours["tile_m"], ours["tile_n"], ours["tile_k"], ours["loop_order"]) == (4, 4, 4, 0)
    assert (ours["compute_cycles"], ours["dram_read_bytes"], ours["dram_write_bytes"], ours["cycles"]) == (8, 48, 32, 80)


def test_tile_simulation_spills_partial_sums_by_hand():
    """GEMM 8×4×8 in 4×4×4 tiles, K outermost (order kmn), an ofmap SRAM whose working half (64 bytes)
    holds one 4×4 tile of 32-bit partial sums: at k = 0 the second output tile evicts the first (64
    bytes out), at k = 1 each comes back (64 in) and evicts the other, then leaves at 8 bits (16 out).
    Reads: A 4 × 16, B 2 × 16, partial sums 2 × 64 = 224; writes 2 × 64 + 2 × 16 = 160; compute 4 × 4."""
    sim = simulate_tiles(_hand_spec(0.125), 8, 4, 8, 8, 8, tile_m=4, tile_n=4, tile_k=4, loop_order="kmn", pack=1)
    assert (sim.folds, sim.compute_cycles, sim.dram_read_bytes, sim.dram_write_bytes) == (4, 16, 224, 160)
    assert sim.cycles >= (224 + 160) / 1


def _check_agreement(rows, traffic_floor: float, cycle_ratio: tuple[float, float], close_share: float):
    """Equal compute; the simulation's DRAM bytes never above the closed form's (less where an edge
    tile fits that a full one would not) and at least `traffic_floor` of them; its cycles within
    `cycle_ratio` of the closed form's, and within 10 % in `close_share` of the rows."""
    cycles_close = 0
    for r in rows:
        where = f"{r['spec']} {r['gemm']} {r.get('schedule', '')}"
        assert r["compute"] == r["sim_compute"], where
        for key in ("reads", "writes"):
            assert r[f"sim_{key}"] <= r[key] * (1 + 1e-12), where
            assert r[f"sim_{key}"] >= traffic_floor * r[key], where
        ratio = r["sim_cycles"] / r["cycles"]
        assert cycle_ratio[0] <= ratio <= cycle_ratio[1], where
        cycles_close += abs(ratio - 1) <= 0.10
    assert cycles_close >= close_share * len(rows)


def _check_tiles(rows, close_share):
    _check_agreement(rows, traffic_floor=0.2, cycle_ratio=(0.9, 1.8), close_share=close_share)


def test_tile_mapper_agrees_with_the_tile_simulation_on_random_cases():
    """docs/simulator.md, "Tile mapper vs the tile-by-tile simulation", states these tolerances and why."""
    rows = compare(random_cases(100, seed=0, search="tiles"))
    _check_tiles(rows, 0.9)
    assert sum(r["stall_share"] > 0.2 for r in rows) >= 10  # the memory system really binds
    assert sum(r["folds"] > 20 for r in rows) >= 20  # many tiles, not one
    assert len({r["schedule"].split()[1] for r in rows}) >= 4  # several loop orders


def test_tile_mapper_agrees_with_the_tile_simulation_on_the_presets():
    rows = compare(preset_cases(bit_pairs=((8, 4), (2, 2))))
    assert len(rows) >= 150
    _check_tiles(rows, 0.9)
