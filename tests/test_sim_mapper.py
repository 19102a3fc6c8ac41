"""The tile mapper (`mapper.search: tiles`): properties on every shipped preset, the objectives, and
the closed forms against an explicit walk over tiles and folds."""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from benchmarks.mapper_gaps import best_uniform_cycles
from mixaq.simulator import gemm_cost, list_specs, load_spec
from mixaq.simulator._gemm import DATAFLOW_ROLES
from mixaq.simulator import _mapper
from mixaq.simulator._mapper import LOOP_ORDERS
from mixaq.simulator._precision import PRECISION_MODELS

PRESETS = list_specs()
# Bit Fusion's simulator pads weights to rows x perf_factor along K: narrower operands and taller
# arrays can move more bytes in its counting, so monotonicity holds only for our own counting.
OWN_COUNTING = [name for name in PRESETS if not load_spec(name).pad_to_array]
# The @example rows are counterexamples earlier candidate sets had (docs/simulator.md, "Known gaps of
# the tile mapper"). Run on random seeds (MIXAQ_PROPERTY_EXAMPLES=300, `--hypothesis-seed` 0..400) the
# properties hold on all 401 seeds. Before the candidates that do not move with the buffers
# (`_mapper_candidates`: the dimension less one on the array, the stream in 12 and 16 tiles) 3 failed,
# a bigger SRAM costing 1.0-1.1 % more cycles (225 and 280: bitfusion 1×171×192 A2 W2, twice the
# filter SRAM; 346: bitfusion 1617×1×50 A2 W2, twice the ifmap SRAM); now @examples.
# CI runs one fixed seed so that a regression fails every run and an open gap does not fail at random.
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
FIXED = seed(1)
# MIXAQ_PROPERTY_EXAMPLES=300 runs the properties on `--hypothesis-seed` with that many examples and no
# example database (how the random-seed counts in docs/simulator.md were measured).
if os.environ.get("MIXAQ_PROPERTY_EXAMPLES"):
    PROPERTY = settings(PROPERTY, max_examples=int(os.environ["MIXAQ_PROPERTY_EXAMPLES"]), database=None)
    FIXED = lambda test: test  # noqa: E731
dims = st.integers(1, 2500)


def bits_of(spec, draw_a, draw_w):
    lo, hi = spec.min_bits, spec.max_bits
    return lo + draw_a % (hi - lo + 1), lo + draw_w % (hi - lo + 1)


def psum_round_trip(spec, m, n) -> float:
    """Cycles to write M×N partial sums and read them back through the DRAM port."""
    return 2.0 * m * n * spec.psum_bits / 8.0 / spec.dram_bytes_per_cycle


@FIXED
@PROPERTY
@given(name=st.sampled_from(PRESETS), m=dims, n=dims, k=dims, a=st.integers(0, 7), w=st.integers(0, 7),
       axis=st.sampled_from("mnk"), cut=st.floats(0.05, 0.95))
@example(name="bitfusion", m=128, n=130, k=1366, a=2, w=4, axis="n", cut=19 / 130)
@example(name="bitserial", m=193, n=167, k=129, a=1, w=0, axis="m", cut=49 / 193)  # non-uniform: see below
@example(name="bitserial", m=287, n=87, k=185, a=0, w=1, axis="m", cut=206 / 287)
@example(name="bitfusion_isca18", m=113, n=183, k=1153, a=0, w=5, axis="n", cut=64 / 183)
@example(name="bitfusion", m=1981, n=1112, k=2250, a=6, w=2, axis="n", cut=503 / 1112)
@example(name="bitserial", m=77, n=526, k=2433, a=0, w=0, axis="m", cut=0.5)  # non-uniform, see below
@example(name="loom", m=157, n=1633, k=129, a=0, w=0, axis="n", cut=0.5)
@example(name="bitfusion_isca18", m=103, n=993, k=637, a=0, w=5, axis="n", cut=0.5)
@example(name="bitserial", m=1281, n=100, k=65, a=0, w=0, axis="m", cut=0.5)
@example(name="bitfusion", m=112, n=993, k=1171, a=0, w=5, axis="n", cut=0.5)
@example(name="bitserial", m=65, n=313, k=313, a=0, w=7, axis="n", cut=0.5)
@example(name="bitserial", m=2017, n=193, k=65, a=0, w=0, axis="m", cut=0.5)
def test_splitting_a_gemm_never_beats_the_whole(name, m, n, k, a, w, axis, cut):
    spec = load_spec(name)
    ba, bw = bits_of(spec, a, w)
    size = {"m": m, "n": n, "k": k}[axis]
    first = max(1, min(size - 1, round(size * cut)))
    if size < 2:
        return
    parts = []
    for part in (first, size - first):
        shape = {**dict(m=m, n=n, k=k), axis: part}
        parts.append(gemm_cost(spec, shape["m"], shape["n"], shape["k"], ba, bw)["cycles"])
    split = sum(parts) + (psum_round_trip(spec, m, n) if axis == "k" else 0.0)
    whole = gemm_cost(spec, m, n, k, ba, bw)["cycles"]
    if whole > 1.05 * split:
        # The one thing a split can do that the whole cannot: tile its two parts differently (the
        # mapper's schedules use one tile size per dimension). Then the whole must still be within
        # 1 % of the best uniform tiling an exhaustive search finds, the tolerance of its candidate
        # set elsewhere (docs/simulator.md, "Known gaps": bitserial 193x167x129 split along M at 49
        # is 10 % cheaper and every uniform tiling dearer; 77x526x2433 split in halves 5.4 %
        # cheaper, the mapper 1 cycle above the exhaustive search's 116,779).
        assert whole <= 1.01 * best_uniform_cycles(spec, m, n, k, ba, bw), (whole, parts)


@FIXED
@PROPERTY
@given(name=st.sampled_from(PRESETS), m=dims, n=dims, k=dims, w=st.integers(0, 7), high=st.sampled_from([8, 6, 4]))
def test_halving_activation_bits_at_most_doubles_speed(name, m, n, k, w, high):
    spec = load_spec(name)
    if high // 2 < spec.min_bits or high > spec.max_bits:
        return
    _, bw = bits_of(spec, 0, w)
    fast = gemm_cost(spec, m, n, k, high // 2, bw)["cycles"]
    slow = gemm_cost(spec, m, n, k, high, bw)["cycles"]
    assert slow <= 2.0 * 1.05 * fast
    assert fast <= slow or spec.pad_to_array


@FIXED
@PROPERTY
@given(name=st.sampled_from(OWN_COUNTING), m=dims, n=dims, k=dims, a=st.integers(0, 7), w=st.integers(0, 7),
       grow=st.sampled_from(["rows", "cols", "sram_ifmap_kib", "sram_filter_kib", "sram_ofmap_kib",
                             "dram_bytes_per_cycle"]), factor=st.sampled_from([2, 4]))
@example(name="loom", m=75, n=649, k=301, a=0, w=0, grow="sram_filter_kib", factor=2)
@example(name="bitserial", m=2017, n=193, k=513, a=0, w=0, grow="sram_ifmap_kib", factor=2)
@example(name="bitserial", m=2017, n=449, k=795, a=0, w=0, grow="sram_ifmap_kib", factor=2)
@example(name="bitserial", m=2497, n=2497, k=807, a=0, w=0, grow="sram_ifmap_kib", factor=2)
@example(name="bitfusion", m=177, n=417, k=1169, a=3, w=0, grow="sram_ofmap_kib", factor=2)
@example(name="loom", m=1463, n=6, k=105, a=7, w=0, grow="sram_ifmap_kib", factor=2)
@example(name="bitserial", m=2433, n=1431, k=874, a=0, w=0, grow="sram_ifmap_kib", factor=2)  # seed 76
# Seeds 225 and 280: the shipped spec's N = 170 was the widest's unsplit fill (32,768 / 192) and won by
# being 171 less one (a one-column last tile); twice the filter SRAM had it only split (553 vs 547).
@example(name="bitfusion", m=1, n=171, k=192, a=0, w=0, grow="sram_filter_kib", factor=2)
# Seed 346: M = 164 (half the stream's fill) was near the pipeline's best, 14 tiles (1,845 vs 1,826).
@example(name="bitfusion", m=1617, n=1, k=50, a=0, w=0, grow="sram_ifmap_kib", factor=2)
# Found by fills at 2w and 4w unsplit (seed 64) and at twice the widest on the stream (seed 346): more
# buffer-bound fills give the shipped spec tiles the bigger one does not have.
@example(name="bitfusion", m=1, n=82, k=100, a=0, w=0, grow="sram_filter_kib", factor=2)
@example(name="bitfusion", m=1153, n=1, k=50, a=1, w=1, grow="sram_ifmap_kib", factor=2)
def test_more_hardware_never_costs_more_cycles(name, m, n, k, a, w, grow, factor):
    spec = load_spec(name)
    if spec.mapper_objective != "latency":
        return
    ba, bw = bits_of(spec, a, w)
    bigger = dataclasses.replace(spec, **{grow: getattr(spec, grow) * factor})
    large, small = gemm_cost(bigger, m, n, k, ba, bw), gemm_cost(spec, m, n, k, ba, bw)
    # One exception, physical: a buffered array fills and drains once per tile over the lines the
    # tile uses, so a wider array that needs fewer folds pays a deeper fill (found by hypothesis:
    # 1×34×1 on bitfusion with 64 columns, 37.3 vs 36.7 cycles). Bounded by the extra lines per tile.
    # The candidate tiles count array lines in powers of two from a quarter fold up, so a doubled array
    # loses its smallest line count: 1 % (found: 33.36 vs 33.32 cycles, int8_systolic 33×1×1).
    # Likewise the tiles that fill a buffer move with its size (found: 577.3 vs 576.9 cycles,
    # bitfusion 307×1×112 with twice the ifmap SRAM). Bandwidth changes no candidate: exact.
    slack = 0.01 * small["cycles"] if grow != "dram_bytes_per_cycle" else 0.0
    if spec.array_feed == "buffered" and grow in ("rows", "cols"):
        slack += max(large["tiles"], small["tiles"]) * (2 * (bigger.rows - spec.rows) + bigger.cols - spec.cols)
    assert large["cycles"] <= small["cycles"] + slack


@FIXED
@PROPERTY
@given(name=st.sampled_from(PRESETS), m=dims, n=dims, k=dims, a=st.integers(0, 7), w=st.integers(0, 7))
def test_bounds_hold(name, m, n, k, a, w):
    spec = load_spec(name)
    ba, bw = bits_of(spec, a, w)
    got = gemm_cost(spec, m, n, k, ba, bw)
    assert got["compute_cycles"] >= m * n * k / got["peak_macs_per_cycle"] - 1e-9
    assert got["dram_read_bytes"] >= (m * k * ba + k * n * bw) / 8.0 - 1e-6
    assert got["dram_write_bytes"] >= m * n * spec.output_bits / 8.0 - 1e-6
    assert got["cycles"] >= (got["dram_read_bytes"] + got["dram_write_bytes"]) / spec.dram_bytes_per_cycle - 1e-6
    assert got["tile_m"] <= m and got["tile_n"] <= n and got["tile_k"] <= k


@pytest.mark.parametrize("name", PRESETS)
def test_pruning_changes_no_choice(name, monkeypatch):
    """Branch and bound (lower bounds against the best probed tiling) only skips candidates that cannot
    win: every field equals the exhaustive evaluation of the same candidates, batched and single."""
    spec = load_spec(name)
    rng = np.random.default_rng(7)
    m, n, k = (rng.integers(1, 3000, 40).astype(float) for _ in range(3))
    ba, bw = (rng.integers(spec.min_bits, spec.max_bits + 1, 40).astype(float) for _ in range(2))
    model, roles = PRECISION_MODELS[spec.precision_model], DATAFLOW_ROLES[spec.dataflow]
    results = {}
    for prune in (True, False):
        monkeypatch.setattr(_mapper, "_PRUNE", prune)
        _mapper._MEMO.clear()
        batched = _mapper.mapped(spec, model, roles, m, n, k, ba, bw)
        singles = []
        for i in range(3):  # one GEMM at a time: the scalar path
            _mapper._MEMO.clear()
            singles.append(_mapper.mapped(spec, model, roles, *(x[i:i + 1] for x in (m, n, k, ba, bw))))
        results[prune] = (batched, *singles)
    _mapper._MEMO.clear()
    for pruned, full in zip(results[True], results[False]):
        for key in full:
            np.testing.assert_array_equal(pruned[key], full[key], err_msg=key)


@pytest.mark.parametrize("name", PRESETS)
def test_lower_bounds_never_exceed_what_they_bound(name):
    """The search's bounds, each against every candidate it bounds: a tiling's `lower` against its
    best loop order, and an array-tile pair's bound (the coupled traffic one of the second round)
    against the best of all its tilings. A bound above either could prune the optimum."""
    spec = load_spec(name)
    rng = np.random.default_rng(3)
    model, roles = PRECISION_MODELS[spec.precision_model], DATAFLOW_ROLES[spec.dataflow]
    values = _mapper.spec_values(spec, roles)
    for m, n, k in [(195, 768, 3072), (2598, 384, 3072), (49, 49, 32)] + [
            tuple(rng.integers(1, 3000, 3).astype(float)) for _ in range(4)]:
        one = lambda x: np.array([float(x)])  # noqa: E731
        ba, bw = one(spec.min_bits), one(spec.max_bits)
        pack = np.broadcast_to(model.reduction_pack(ba, bw, spec.min_bits, spec.max_bits), (1,)).astype(float)
        passes = np.broadcast_to(model.serial_passes(ba, bw, spec.serial_operands), (1,)).astype(float)
        cols = _mapper._columns(values, one(m), one(n), one(k), ba, bw, pack, passes, np.ones(1))
        gid, rank, t0, t1, _ = _mapper._pairs(cols, (one(m), one(n), one(k)), ba, bw, pack)
        stats = _mapper._array_stats(cols, t0, t1)
        every = _mapper._expand(cols, cols, (gid, rank, t0, t1), stats, slice(None))
        fits = every["terms"]["feasible"]
        total = _mapper._orders(cols, every["terms"], only_total=True)["total"].min(axis=0)
        assert np.all(every["terms"]["lower"][fits] <= total[fits] * (1 + 1e-9)), (name, m, n, k)
        best = np.full(len(t0), np.inf)
        np.minimum.at(best, every["pair"][fits], total[fits])
        bound = _mapper._pair_bound(cols, t0, t1, stats, traffic=True)
        assert np.all(bound <= best * (1 + 1e-9)), (name, m, n, k, np.max(bound / best))


def test_bitfusion_preset_splits_and_bits():
    """The lead's pre-stop check (issue 20): Swin stage-3 fc2 whole is no dearer than fed as 128 +
    68 rows, and A8 over A4 is at most ~2× (the array's throughput gain)."""
    spec = load_spec("bitfusion")
    whole = gemm_cost(spec, 196, 384, 1536, 8, 8)["cycles"]
    split = gemm_cost(spec, 128, 384, 1536, 8, 8)["cycles"] + gemm_cost(spec, 68, 384, 1536, 8, 8)["cycles"]
    assert whole <= 1.05 * split
    assert whole / gemm_cost(spec, 196, 384, 1536, 4, 8)["cycles"] <= 2.05
    assert (spec.rows, spec.cols, spec.array_feed) == (16, 32, "buffered")


@pytest.mark.parametrize("name", PRESETS)
def test_objectives_win_on_their_own_metric(name):
    base = load_spec(name)
    results = {obj: gemm_cost(dataclasses.replace(base, mapper_objective=obj), 700, 300, 900, base.max_bits,
                              base.max_bits) for obj in ("latency", "dram", "energy", "edp")}
    dram = {obj: r["dram_read_bytes"] + r["dram_write_bytes"] for obj, r in results.items()}
    for obj, r in results.items():
        assert results["latency"]["cycles"] <= r["cycles"]
        assert dram["dram"] <= dram[obj]
        assert results["energy"]["energy_pj"] <= r["energy_pj"] * (1 + 1e-12)
        assert (results["edp"]["energy_pj"] * results["edp"]["cycles"]
                <= r["energy_pj"] * r["cycles"] * (1 + 1e-12))


def walk_compute(spec, m, n, k, ba, bw, tm, tn, tk, pack) -> int:
    """Compute cycles by visiting every tile and fold (what the closed forms sum without visiting)."""
    roles = {"os": ("m", "n", "k", 1), "ws": ("k", "n", "m", 2), "is": ("k", "m", "n", 2)}[spec.dataflow]
    total = 0
    for i in range(0, m, tm):
        for j in range(0, n, tn):
            for l in range(0, k, tk):
                size = {"m": min(tm, m - i), "n": min(tn, n - j), "k": math.ceil(min(tk, k - l) / pack)}
                r_len, c_len, t_len = size[roles[0]], size[roles[1]], size[roles[2]]
                r_folds = [min(spec.rows, r_len - x) for x in range(0, r_len, spec.rows)]
                c_folds = [min(spec.cols, c_len - y) for y in range(0, c_len, spec.cols)]
                if spec.array_feed == "systolic":
                    total += sum(t_len + roles[3] * r + c - 2 for r in r_folds for c in c_folds)
                else:
                    total += len(r_folds) * len(c_folds) * t_len
                    if spec.array_feed == "buffered":
                        total += roles[3] * r_folds[0] + c_folds[0] - 2
    return total


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("feed", ["systolic", "buffered", "ideal"])
def test_compute_closed_forms_equal_a_walk_over_tiles(dataflow, feed):
    rng = np.random.default_rng(3)
    for _ in range(25):
        spec = dataclasses.replace(load_spec("bitfusion"), dataflow=dataflow, array_feed=feed,
                                   rows=int(rng.integers(1, 20)), cols=int(rng.integers(1, 20)),
                                   sram_ifmap_kib=float(rng.choice([0.5, 2, 32])),
                                   sram_filter_kib=float(rng.choice([0.5, 2, 32])),
                                   sram_ofmap_kib=float(rng.choice([0.5, 2, 32])))
        m, n, k = (int(x) for x in rng.integers(1, 300, 3))
        ba, bw = (int(x) for x in rng.integers(2, 9, 2))
        got = gemm_cost(spec, m, n, k, ba, bw)
        want = walk_compute(spec, m, n, k, ba, bw, int(got["tile_m"]), int(got["tile_n"]), int(got["tile_k"]),
                            int(got["pack"]))
        assert got["compute_cycles"] == want, (spec, m, n, k, ba, bw, got)
        assert 0 <= got["loop_order"] < len(LOOP_ORDERS)


def test_traffic_by_hand():
    """ws 16×32, buffers that hold A and C but only a quarter of B: B streams once (it is only
    re-fetched across the M loop, which the mapper makes one tile), A and outputs once."""
    spec = dataclasses.replace(load_spec("bitfusion"), sram_filter_kib=32.0, sram_ifmap_kib=1024.0,
                               sram_ofmap_kib=1024.0, dram_bytes_per_cycle=1e6)
    m, n, k = 256, 256, 512
    got = gemm_cost(spec, m, n, k, 8, 8)
    assert got["dram_read_bytes"] == m * k + k * n and got["dram_write_bytes"] == m * n
    # Bit Fusion's counting reads every output tile back before accumulating, even with K in one tile.
    bf = dataclasses.replace(spec, output_readback=True)
    got = gemm_cost(bf, m, n, k, 8, 8)
    assert got["dram_write_bytes"] == m * n and got["dram_read_bytes"] == m * k + k * n + m * n


def test_a_k_that_fits_one_tile_keeps_the_large_stream_tiles_at_8_bits():
    """Found by hypothesis: the stream-tile fill sizes assumed 32-bit partial sums in the output
    buffer even when K fits one tile, so A8 missed the tiles A4 used and took 2.13× A4's cycles."""
    spec = load_spec("loom")
    slow, fast = (gemm_cost(spec, 1055, 131, 94, a, 1)["cycles"] for a in (8, 4))
    assert slow <= 2.0 * fast


def test_memos_stay_bounded(monkeypatch):
    """A process that keeps mapping new GEMMs (a co-exploration, continuous fractions) holds at most
    `_MEMO_LIMIT` rows per memo, and a memo emptied to make room still answers every GEMM asked."""
    from mixaq.simulator import _gemm

    spec = load_spec("bitfusion")
    model, roles = PRECISION_MODELS[spec.precision_model], DATAFLOW_ROLES[spec.dataflow]
    monkeypatch.setattr(_mapper, "_MEMO_LIMIT", 8)
    monkeypatch.setattr(_gemm, "_SCALAR_MEMO_LIMIT", 8)
    _mapper._MEMO.clear()
    ms = np.arange(1.0, 31.0)
    for start in range(0, 30, 6):  # batches of 6: hits and misses mixed after the first
        m = ms[max(0, start - 3):start + 6]
        got = _mapper.mapped(spec, model, roles, m, np.full(len(m), 96.0), np.full(len(m), 64.0),
                             np.full(len(m), 8.0), np.full(len(m), 8.0))
        assert all(len(memo) <= 8 for memo in _mapper._MEMO.values())
        for i, mi in enumerate(m):  # the same answer as a fresh single mapping
            one = _mapper.mapped_one(spec, model, roles, float(mi), 96.0, 64.0, 8.0, 8.0)
            assert got["total"][i] == one[_mapper.MAPPED_FIELDS.index("total")]
    for mi in ms:
        gemm_cost(spec, float(mi), 96.0, 64.0, 8.0, 8.0)
    assert len(spec.__dict__["_gemm_plan"].memo) <= 8
    _mapper._MEMO.clear()
