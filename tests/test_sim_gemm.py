"""GEMM cost model: SCALE-Sim closed forms, precision scaling, traffic and its invariants."""
from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixaq.simulator import gemm_cost, spec_from_mapping, vector_cost
from mixaq.simulator._gemm import GEMM_FIELDS

HUGE_KIB = 1 << 20  # buffers that hold any test GEMM: no re-fetch, no chunking


def make_spec(model="fixed", dataflow="os", rows=8, cols=8, kib=(HUGE_KIB,) * 3, dram=1e6, min_bits=None,
              max_bits=8, serial="act", memory=None, mapper=None):
    min_bits = min_bits if min_bits is not None else (1 if model == "bitserial" else 2)
    return spec_from_mapping(dict(
        name="t", frequency_mhz=500, array=dict(rows=rows, cols=cols, dataflow=dataflow),
        precision=dict(model=model, min_bits=min_bits, max_bits=max_bits, serial=serial),
        sram_kib=dict(ifmap=kib[0], filter=kib[1], ofmap=kib[2]), dram_bytes_per_cycle=dram,
        memory=memory or {}, mapper={"search": "folds", **(mapper or {})},  # the tile mapper: test_sim_mapper.py
        energy_pj=dict(mac_8x8=0.2, sram_byte=1.0, dram_byte=100.0, static_mw=5.0)))


def scalesim_closed_form(dataflow: str, m: int, n: int, k: int, rows: int, cols: int) -> int:
    """SCALE-Sim v3 stall-free compute cycles, written out from its per-fold demand matrices."""
    c = math.ceil
    if dataflow == "os":
        return c(m / rows) * c(n / cols) * (k + rows + cols - 2) - 1
    if dataflow == "ws":
        return c(k / rows) * c(n / cols) * (2 * rows + cols - 2 + m) - 1
    return c(k / rows) * c(m / cols) * (2 * rows + cols - 2 + n) - 1


SHAPES = [1, 2, 3, 7, 8, 9, 16, 31, 49, 64, 65, 96, 127, 200]
ARRAYS = [(1, 1), (1, 4), (4, 1), (4, 4), (8, 16), (16, 8), (32, 32), (7, 5)]


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize("rows,cols", ARRAYS)
def test_compute_cycles_equal_scalesim_closed_form(dataflow, rows, cols):
    spec = make_spec(dataflow=dataflow, rows=rows, cols=cols)
    grid = np.array(list(itertools.product(SHAPES, SHAPES, SHAPES)), dtype=np.float64)
    m, n, k = grid.T
    got = gemm_cost(spec, m, n, k, 8, 8)
    want = [scalesim_closed_form(dataflow, *map(int, shape), rows, cols) for shape in grid]
    np.testing.assert_array_equal(got["compute_cycles"], want)
    np.testing.assert_array_equal(got["stream_chunks"], 1.0)
    np.testing.assert_array_equal(got["stall_cycles"] >= 0, True)


@pytest.mark.parametrize("dataflow", ["ws", "is"])
def test_chunked_stream_costs_the_sum_of_its_sub_gemms(dataflow):
    """Tiny buffers force the stream (M for ws, N for is) into chunks; each chunk is a GEMM."""
    rows, cols = 8, 4
    spec = make_spec(dataflow=dataflow, rows=rows, cols=cols, kib=(1, 1, 1), dram=4)
    checked = 0
    for m, n, k in itertools.product([50, 333, 1000], [40, 300, 777], [24, 100]):
        got = gemm_cost(spec, m, n, k, 8, 8)
        chunks = int(got["stream_chunks"])
        stream = m if dataflow == "ws" else n
        parts = np.diff(np.linspace(0, stream, chunks + 1).round().astype(int))
        assert parts.min() >= 1
        sub = [(p, n, k) if dataflow == "ws" else (m, p, k) for p in parts]
        assert got["compute_cycles"] == sum(scalesim_closed_form(dataflow, *s, rows, cols) for s in sub)
        checked += chunks > 1
    assert checked > 0, "no shape needed chunking: the test would not exercise it"


def bitfusion_macs_per_unit(act_bits: int, weight_bits: int) -> int:
    """Bit Fusion (ISCA 2018, Fig. 3): a Fusion Unit of sixteen 2-bit BitBricks fuses into one
    8x8, two 8x4, four 4x4 / 8x2, eight 4x2 or sixteen 2x2 multipliers; an operand is padded up
    to the next brick width it can be built from (2, 4 or 8 bits)."""
    width = lambda b: next(w for w in (2, 4, 8) if b <= w)  # noqa: E731
    bricks_per_mac = (width(act_bits) // 2) * (width(weight_bits) // 2)
    return 16 // bricks_per_mac


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_bitfusion_scaling_matches_brick_arithmetic(dataflow):
    rows, cols = 16, 8
    spec = make_spec(model="bitfusion", dataflow=dataflow, rows=rows, cols=cols)
    for (m, n, k), ba, bw in itertools.product([(49, 49, 32), (100, 96, 384), (3, 7, 1000)], range(2, 9), range(2, 9)):
        per_unit = bitfusion_macs_per_unit(ba, bw)
        got = gemm_cost(spec, m, n, k, ba, bw)
        # Fused multipliers consume consecutive reduction elements: K shrinks by the MACs per unit.
        assert got["compute_cycles"] == scalesim_closed_form(dataflow, m, n, math.ceil(k / per_unit), rows, cols)
        assert got["bops"] == m * n * k * ba * bw
        assert got["peak_macs_per_cycle"] == rows * cols * per_unit
        assert got["mac_energy_pj"] == pytest.approx(m * n * k * 0.2 / per_unit)


@pytest.mark.parametrize("serial", ["act", "both"])
@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_bitserial_cycles_scale_the_streamed_dimension_by_bits(dataflow, serial):
    spec = make_spec(model="bitserial", dataflow=dataflow, rows=8, cols=8, serial=serial)
    m, n, k = 60, 50, 40
    native = gemm_cost(spec, m, n, k, 1, 1)["compute_cycles"]
    assert native == scalesim_closed_form(dataflow, m, n, k, 8, 8)
    for ba, bw in [(2, 8), (4, 4), (8, 3)]:
        steps = ba * bw if serial == "both" else ba
        stretched = {"os": (m, n, k * steps), "ws": (m * steps, n, k), "is": (m, n * steps, k)}[dataflow]
        assert gemm_cost(spec, m, n, k, ba, bw)["compute_cycles"] == scalesim_closed_form(dataflow, *stretched, 8, 8)


def test_fixed_array_low_bits_save_bytes_not_cycles():
    spec = make_spec(model="fixed", dataflow="ws", rows=16, cols=16)
    m, n, k = 200, 96, 384
    full, low = gemm_cost(spec, m, n, k, 8, 8), gemm_cost(spec, m, n, k, 4, 2)
    assert full["compute_cycles"] == low["compute_cycles"]
    assert full["mac_energy_pj"] == low["mac_energy_pj"]
    # Buffers hold everything: DRAM traffic is exactly compulsory, operands packed at their width.
    assert low["dram_read_bytes"] == (m * k * 4 + k * n * 2) / 8
    assert full["dram_read_bytes"] == m * k + k * n
    assert low["dram_write_bytes"] == full["dram_write_bytes"] == m * n  # outputs requantized to 8 bits


def test_refetch_when_tiles_do_not_fit_and_stalls_when_dram_is_slow():
    big = make_spec(dataflow="os", rows=16, cols=16)
    small = make_spec(dataflow="os", rows=16, cols=16, kib=(2, 2, 2))
    slow = make_spec(dataflow="os", rows=16, cols=16, kib=(2, 2, 2), dram=1)
    m, n, k = 512, 512, 512
    a, b, c = (gemm_cost(s, m, n, k, 8, 8) for s in (big, small, slow))
    assert a["dram_read_bytes"] == 2 * m * k
    # os: a 16-row ifmap tile (8 KiB) does not fit 1 KiB; the filter (256 KiB) neither: re-fetch.
    assert b["dram_read_bytes"] > 10 * a["dram_read_bytes"]
    assert a["compute_cycles"] == b["compute_cycles"] == c["compute_cycles"]
    assert c["stall_cycles"] >= (c["dram_read_bytes"] + c["dram_write_bytes"]) - c["compute_cycles"]
    assert c["cycles"] == c["compute_cycles"] + c["stall_cycles"]


def test_fractional_rows_interpolate_and_empty_gemms_cost_nothing():
    spec = make_spec(dataflow="ws")
    lo, hi, mid = (gemm_cost(spec, m, 64, 64, 8, 8) for m in (100.0, 101.0, 100.25))
    for key in ("cycles", "macs", "dram_read_bytes", "energy_pj"):
        assert mid[key] == pytest.approx(0.75 * lo[key] + 0.25 * hi[key])
    empty = gemm_cost(spec, 0, 64, 64, 8, 8)
    assert all(float(empty[key]) == 0 for key in ("cycles", "macs", "dram_read_bytes", "energy_pj"))
    counted = gemm_cost(spec, 49, 49, 32, 8, 8, count=12)
    single = gemm_cost(spec, 49, 49, 32, 8, 8)
    assert counted["cycles"] == 12 * single["cycles"]


def test_scalar_and_array_paths_agree_exactly():
    """One set of equations, two namespaces: Python floats for a single GEMM, numpy for batches.
    4,000 random GEMMs on 50 random specs (every memory-model option, fractional rows, counts,
    empty GEMMs) must give bit-identical numbers, the mapper's choice included."""
    rng = np.random.default_rng(14)
    checked = 0
    for _ in range(50):
        model = rng.choice(["fixed", "bitfusion", "bitserial"])
        spec = make_spec(
            model, rng.choice(["os", "ws", "is"]), int(rng.integers(1, 33)), int(rng.integers(1, 33)),
            tuple(float(rng.choice([0.25, 1, 2, 8, 64, 4096])) for _ in range(3)), float(rng.choice([1, 4, 16, 1e6])),
            serial=rng.choice(["act", "both"]),
            memory=dict(dram_ports=str(rng.choice(["shared", "per_operand"])),
                        psum_policy=str(rng.choice(["on_chip_when_fits", "write_every_fold"])),
                        psum_bits=int(rng.choice([8, 16, 32]))),
            mapper=dict(objective=str(rng.choice(["latency", "traffic"])),
                        fold_order=str(rng.choice(["any", "rows_outer", "cols_outer"])),
                        split_stream=bool(rng.integers(2)), search=str(rng.choice(["folds", "tiles"]))))
        size = 80
        m = rng.integers(0, 700, size).astype(float)
        m[: size // 4] += rng.choice([0.0, 0.25, 0.5], size // 4)  # fractional rows interpolate
        n, k = rng.integers(1, 700, size), rng.integers(1, 700, size)
        ba, bw = rng.integers(2, 9, size), rng.integers(2, 9, size)
        count = rng.choice([1.0, 3.0, 0.5], size)
        batched = gemm_cost(spec, m, n, k, ba, bw, count)
        # Large batches pick their values another way (gathers instead of one stacked copy).
        large = gemm_cost(spec, np.tile(m, 200), np.tile(n, 200), np.tile(k, 200), np.tile(ba, 200),
                          np.tile(bw, 200), np.tile(count, 200))
        for i in range(size):
            one = gemm_cost(spec, float(m[i]), int(n[i]), int(k[i]), int(ba[i]), int(bw[i]), float(count[i]))
            assert set(one) == set(GEMM_FIELDS) == set(batched)
            for key in GEMM_FIELDS:
                assert type(one[key]) is float, key
                assert one[key] == batched[key][i] == large[key][i + size * 157], (key, spec, m[i], n[i], k[i], ba[i],
                                                                                 bw[i], count[i])
            checked += 1
    assert checked == 4000


def test_vector_unit_cycles():
    spec = make_spec()
    out = vector_cost(spec, np.array([10.0, 0.0, 2.5]), 96, 5)
    np.testing.assert_array_equal(out["cycles"][:2], [math.ceil(10 * 96 * 5 / 16), 0])
    assert out["cycles"][2] == pytest.approx(0.5 * math.ceil(2 * 480 / 16) + 0.5 * math.ceil(3 * 480 / 16))


# ---- properties ---------------------------------------------------------------------------------

memory_options = st.fixed_dictionaries(dict(dram_ports=st.sampled_from(["shared", "per_operand"]),
                                             psum_policy=st.sampled_from(["on_chip_when_fits", "write_every_fold"])))
mapper_options = st.fixed_dictionaries(dict(fold_order=st.sampled_from(["any", "rows_outer", "cols_outer"]),
                                            split_stream=st.booleans(), search=st.sampled_from(["folds", "tiles"])))
spec_args = dict(
    model=st.sampled_from(["fixed", "bitfusion", "bitserial"]),
    dataflow=st.sampled_from(["os", "ws", "is"]),
    rows=st.integers(1, 64), cols=st.integers(1, 64),
    kib=st.tuples(*[st.sampled_from([0.25, 1, 4, 16, 64, 1024])] * 3),
    dram=st.sampled_from([1, 4, 16, 64]),
    serial=st.sampled_from(["act", "both"]),
    memory=memory_options,
    mapper=mapper_options,
)
gemm_args = dict(m=st.integers(1, 3000), n=st.integers(1, 3000), k=st.integers(1, 3000),
                 act_bits=st.integers(2, 8), weight_bits=st.integers(2, 8))
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def lower_bits_pair(spec, m, n, k, act_bits, weight_bits, drop_act, drop_weight):
    high = gemm_cost(spec, m, n, k, act_bits, weight_bits)
    low = gemm_cost(spec, m, n, k, max(2, act_bits - drop_act), max(2, weight_bits - drop_weight))
    return high, low


def traffic(cost) -> float:
    return float(cost["dram_read_bytes"] + cost["dram_write_bytes"])


@PROPERTY
@given(**spec_args, **gemm_args, drop_act=st.integers(0, 6), drop_weight=st.integers(0, 6))
def test_fewer_bits_never_cost_more_cycles_or_bops(model, dataflow, rows, cols, kib, dram, serial, memory, mapper, m,
                                                   n, k, act_bits, weight_bits, drop_act, drop_weight):
    """Latency mapper (the default): every schedule open to wider operands stays open, cheaper."""
    spec = make_spec(model, dataflow, rows, cols, kib, dram, serial=serial, memory=memory, mapper=mapper)
    high, low = lower_bits_pair(spec, m, n, k, act_bits, weight_bits, drop_act, drop_weight)
    assert low["cycles"] <= high["cycles"]
    assert low["bops"] <= high["bops"]


@PROPERTY
@given(**spec_args, **gemm_args, drop_act=st.integers(0, 6), drop_weight=st.integers(0, 6))
def test_fewer_bits_never_cost_more_dram_traffic(model, dataflow, rows, cols, kib, dram, serial, memory, mapper, m, n,
                                                 k, act_bits, weight_bits, drop_act, drop_weight):
    spec = dataclasses.replace(make_spec(model, dataflow, rows, cols, kib, dram, serial=serial, memory=memory,
                                         mapper=mapper), mapper_objective="traffic")
    high, low = lower_bits_pair(spec, m, n, k, act_bits, weight_bits, drop_act, drop_weight)
    assert traffic(low) <= traffic(high) * (1 + 1e-12)
    assert low["bops"] <= high["bops"]


def test_latency_mapper_may_trade_traffic_for_speed():
    """Found by hypothesis: with 3-bit activations the fastest schedule chunks the stream; at 2
    bits one unchunked pass is faster but refetches. The traffic mapper never makes that trade."""
    spec = make_spec("fixed", "ws", 18, 4, (8, 8, 8), 16)
    high, low = gemm_cost(spec, 342, 9, 144, 3, 2), gemm_cost(spec, 342, 9, 144, 2, 2)
    assert low["cycles"] <= high["cycles"] and traffic(low) > traffic(high)
    frugal = dataclasses.replace(spec, mapper_objective="traffic")
    high, low = gemm_cost(frugal, 342, 9, 144, 3, 2), gemm_cost(frugal, 342, 9, 144, 2, 2)
    assert traffic(low) <= traffic(high)


@PROPERTY
@given(**spec_args, **gemm_args)
def test_cycles_bounded_by_peak_throughput_and_traffic_by_compulsory(model, dataflow, rows, cols, kib, dram, serial,
                                                                     memory, mapper, m, n, k, act_bits, weight_bits):
    spec = make_spec(model, dataflow, max(rows, 2), max(cols, 2), kib, dram, serial=serial, memory=memory,
                     mapper=mapper)
    out = gemm_cost(spec, m, n, k, act_bits, weight_bits)
    macs = m * n * k
    # peak = R·C·perf_factor (Bit Fusion), R·C/serial steps (bit-serial), R·C (fixed)
    assert out["compute_cycles"] >= macs / out["peak_macs_per_cycle"]
    assert 0 < out["utilization"] <= 1
    assert out["cycles"] >= out["compute_cycles"]
    ports = 3 if spec.dram_ports == "per_operand" else 1  # ifmap, filter, ofmap ports work in parallel
    assert out["cycles"] >= (out["dram_read_bytes"] + out["dram_write_bytes"]) / (ports * dram) * (1 - 1e-12)
    assert out["dram_read_bytes"] >= (m * k * act_bits + k * n * weight_bits) / 8 * (1 - 1e-12)
    assert out["dram_write_bytes"] >= m * n * spec.output_bits / 8 * (1 - 1e-12)
    assert out["sram_bytes"] >= out["dram_read_bytes"] + out["dram_write_bytes"]


# ---- memory-model options -----------------------------------------------------------------------

both_objectives = st.sampled_from(["latency", "traffic"])


@PROPERTY
@given(**spec_args, **gemm_args, objective=both_objectives, factor=st.sampled_from([1.5, 2, 4, 16]))
def test_more_bandwidth_never_costs_more_cycles(model, dataflow, rows, cols, kib, dram, serial, memory, mapper,
                                                objective, factor, m, n, k, act_bits, weight_bits):
    """Every schedule's time is non-increasing in bandwidth, and the traffic mapper's choice (the
    fewest bytes, ties by time) does not depend on it."""
    spec = make_spec(model, dataflow, rows, cols, kib, dram, serial=serial, memory=memory,
                     mapper=dict(mapper, objective=objective))
    faster = dataclasses.replace(spec, dram_bytes_per_cycle=dram * factor)
    slow, fast = gemm_cost(spec, m, n, k, act_bits, weight_bits), gemm_cost(faster, m, n, k, act_bits, weight_bits)
    assert fast["cycles"] <= slow["cycles"]
    if objective == "traffic":
        assert traffic(fast) == traffic(slow)


@PROPERTY
@given(**spec_args, **gemm_args, objective=both_objectives)
def test_per_operand_ports_never_cost_more_than_one_shared_port(model, dataflow, rows, cols, kib, dram, serial, memory,
                                                                mapper, objective, m, n, k, act_bits, weight_bits):
    """Three ports of B bytes/cycle move any schedule's traffic at least as fast as one port of B."""
    spec = make_spec(model, dataflow, rows, cols, kib, dram, serial=serial, memory=dict(memory, dram_ports="shared"),
                     mapper=dict(mapper, objective=objective))
    ports = dataclasses.replace(spec, dram_ports="per_operand")
    shared, split = gemm_cost(spec, m, n, k, act_bits, weight_bits), gemm_cost(ports, m, n, k, act_bits, weight_bits)
    assert split["cycles"] <= shared["cycles"]


@PROPERTY
@given(**spec_args, **gemm_args, objective=both_objectives)
def test_write_every_fold_never_writes_less(model, dataflow, rows, cols, kib, dram, serial, memory, mapper, objective,
                                            m, n, k, act_bits, weight_bits):
    """Draining every K fold writes (folds − 1) partial sums plus the outputs; keeping them on chip
    writes the outputs plus at most the same spills."""
    spec = make_spec(model, dataflow, rows, cols, kib, dram, serial=serial,
                     memory=dict(memory, psum_policy="on_chip_when_fits"), mapper=dict(mapper, objective=objective))
    drain = dataclasses.replace(spec, psum_policy="write_every_fold")
    kept, every = gemm_cost(spec, m, n, k, act_bits, weight_bits), gemm_cost(drain, m, n, k, act_bits, weight_bits)
    assert every["dram_write_bytes"] >= kept["dram_write_bytes"]


def test_write_every_fold_drains_each_k_fold_and_reads_nothing_back():
    """ws, K = 100 on 16 rows: 7 K folds. SCALE-Sim's policy writes 6 partial-sum copies plus the
    outputs; ours (buffers too small to keep them) writes and reads back the same 6."""
    m, n, k = 300, 64, 100
    base = dict(dataflow="ws", rows=16, cols=16, kib=(4, 4, 1), memory=dict(psum_bits=32, output_bits=8))
    kept = gemm_cost(make_spec(**base), m, n, k, 8, 8)
    every = gemm_cost(make_spec(**dict(base, memory=dict(base["memory"], psum_policy="write_every_fold"))), m, n, k, 8, 8)
    assert every["dram_write_bytes"] == m * n + 6 * m * n * 4
    assert every["dram_read_bytes"] == kept["dram_read_bytes"] - 6 * m * n * 4
    assert kept["dram_write_bytes"] == every["dram_write_bytes"]
    roomy = gemm_cost(make_spec(**dict(base, kib=(4, 4, 4096))), m, n, k, 8, 8)
    assert roomy["dram_write_bytes"] == m * n  # on chip when they fit


def test_per_operand_ports_overlap_the_three_streams():
    """os with slow DRAM: the ifmap, filter and output streams each get their own port."""
    base = dict(dataflow="os", rows=8, cols=8, kib=(1, 1, 1), dram=2)
    shared = gemm_cost(make_spec(**base), 200, 200, 200, 8, 8)
    ports = gemm_cost(make_spec(**base, memory=dict(dram_ports="per_operand")), 200, 200, 200, 8, 8)
    moved = shared["dram_read_bytes"] + shared["dram_write_bytes"]
    assert moved == ports["dram_read_bytes"] + ports["dram_write_bytes"]  # same schedule, same bytes
    assert shared["cycles"] == moved / 2  # DRAM-bound on one port of 2 bytes/cycle
    assert moved / 2 / 3 <= ports["cycles"] < shared["cycles"]


def test_fold_order_and_split_stream_restrict_the_mapper():
    m, n, k = 2000, 96, 384
    base = dict(dataflow="ws", rows=16, cols=16, kib=(8, 8, 8), dram=16)
    free = gemm_cost(make_spec(**base), m, n, k, 8, 8)
    assert free["stream_chunks"] > 1  # the mapper chunks M to fit the buffers
    whole = gemm_cost(make_spec(**base, mapper=dict(split_stream=False)), m, n, k, 8, 8)
    assert whole["stream_chunks"] == 1 and whole["cycles"] >= free["cycles"]
    for order, value in (("rows_outer", 0.0), ("cols_outer", 1.0)):
        fixed = gemm_cost(make_spec(**base, mapper=dict(fold_order=order)), m, n, k, 8, 8)
        assert fixed["fold_order"] == value and fixed["cycles"] >= free["cycles"]
