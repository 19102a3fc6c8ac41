"""Agreement with the real SCALE-Sim v3 (PyPI scalesim==3.0.0, run in `.venv-scalesim`).

The venv is built on first use with `make scalesim-venv` (needs PyPI; CI has it). Without it
the test skips and says why. One test, one subprocess per dataflow, small GEMMs: a few seconds.
"""
from __future__ import annotations

import pytest

from mixaq.simulator import MixaqError, gemm_cost, spec_from_mapping
from benchmarks._scalesim import ensure_scalesim_venv, run_scalesim

# Includes Swin's per-window attention GEMM (49x49 by 32) and edge folds on every side.
GEMMS = [(49, 49, 32), (10, 7, 5), (4, 4, 4), (9, 3, 17), (33, 20, 12), (1, 9, 4), (16, 12, 6)]
ARRAYS = [(4, 4), (8, 4), (3, 5)]


@pytest.fixture(scope="module")
def scalesim_python():
    try:
        return ensure_scalesim_venv()
    except MixaqError as exc:
        pytest.skip(f"real SCALE-Sim unavailable, its venv could not be built: {exc}")


def spec_for(dataflow: str, rows: int, cols: int):
    return spec_from_mapping(dict(
        name="scalesim", frequency_mhz=1000, array=dict(rows=rows, cols=cols, dataflow=dataflow),
        precision=dict(model="fixed", min_bits=8, max_bits=8), sram_kib=dict(ifmap=4096, filter=4096, ofmap=4096),
        dram_bytes_per_cycle=1e6, mapper=dict(fold_order="cols_outer", split_stream=False, search="folds"),
        energy_pj=dict(mac_8x8=1, sram_byte=1, dram_byte=1)))  # SCALE-Sim's configuration: nothing to map


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_matches_real_scalesim(scalesim_python, dataflow):
    for rows, cols in ARRAYS:
        reference, _ = run_scalesim(GEMMS, rows, cols, dataflow, python=scalesim_python)
        spec = spec_for(dataflow, rows, cols)
        for (m, n, k), ref in zip(GEMMS, reference):
            ours = gemm_cost(spec, m, n, k, 8, 8)
            where = f"{dataflow} {rows}x{cols} GEMM {m},{n},{k}"
            assert ref.stall_cycles == 0, where
            assert ours["compute_cycles"] == ref.compute_cycles, where
            # 8-bit operands: one byte per SCALE-Sim word. With buffers that hold everything both
            # fetch each input element from DRAM exactly once.
            assert ours["dram_read_bytes"] == ref.ifmap_dram_reads + ref.filter_dram_reads, where
            if dataflow == "os":  # ws/is: SCALE-Sim drains every K fold's partial sums to DRAM
                assert ours["dram_write_bytes"] == ref.ofmap_dram_writes, where
            # Only the prologue (a few bytes at 1 MB/cycle) separates our total from compute cycles.
            assert ours["stall_cycles"] < 1e-3, where
            assert ours["utilization"] == pytest.approx(m * n * k / (rows * cols * ref.compute_cycles), rel=1e-4), where


# ---- memory traffic -----------------------------------------------------------------------------
# SCALE-Sim's memory model as spec options: one DRAM port per operand SRAM, every K fold's partial
# sums written out and never read back, its loop order (column folds outermost), no stream
# chunking, one byte per word. Small SRAMs so that operands are re-fetched and ws/is GEMMs need
# several K folds. os gets a 4 KiB filter SRAM: with 1 KiB, SCALE-Sim's CALC-mode buffer (which
# forgets its whole window every half buffer of new addresses) re-reads parts of filter tiles that
# fit, up to 7 % more filter reads here -- see "Memory model vs SCALE-Sim" in docs/simulator.md.
MEMORY_GEMMS = [(20, 30, 40), (64, 48, 60), (50, 36, 52), (33, 60, 45), (60, 60, 24), (48, 64, 16)]
MEMORY_SRAM_KIB = {"os": (1, 4, 1), "ws": (1, 1, 1), "is": (1, 1, 1)}


def scalesim_memory_spec(dataflow: str, rows: int, cols: int, kib: tuple[int, int, int], **memory):
    return spec_from_mapping(dict(
        name="scalesim-memory", frequency_mhz=1000, array=dict(rows=rows, cols=cols, dataflow=dataflow),
        precision=dict(model="fixed", min_bits=8, max_bits=8),
        sram_kib=dict(ifmap=kib[0], filter=kib[1], ofmap=kib[2]), dram_bytes_per_cycle=4,
        memory=dict(dict(output_bits=8, psum_bits=8, dram_ports="per_operand", psum_policy="write_every_fold"), **memory),
        mapper=dict(fold_order="cols_outer", split_stream=False, search="folds"),
        energy_pj=dict(mac_8x8=1, sram_byte=1, dram_byte=1)))


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_scalesim_memory_options_reproduce_its_dram_traffic(scalesim_python, dataflow):
    kib = MEMORY_SRAM_KIB[dataflow]
    refetched = drained = 0
    for rows, cols in [(4, 4), (8, 4)]:
        reference, _ = run_scalesim(MEMORY_GEMMS, rows, cols, dataflow, sram_kib=kib, python=scalesim_python)
        spec = scalesim_memory_spec(dataflow, rows, cols, kib)
        for (m, n, k), ref in zip(MEMORY_GEMMS, reference):
            ours = gemm_cost(spec, m, n, k, 8, 8)
            where = f"{dataflow} {rows}x{cols} GEMM {m},{n},{k}"
            assert ours["compute_cycles"] == ref.compute_cycles, where
            assert ours["dram_read_bytes"] == pytest.approx(ref.ifmap_dram_reads + ref.filter_dram_reads, rel=0.01), where
            assert ours["dram_write_bytes"] == pytest.approx(ref.ofmap_dram_writes, rel=0.01), where
            refetched += ours["dram_read_bytes"] > m * k + k * n
            drained += ours["dram_write_bytes"] > m * n
            if dataflow != "os":  # the default keeps partial sums on chip when they fit: fewer writes
                kept = gemm_cost(scalesim_memory_spec(dataflow, rows, cols, (kib[0], kib[1], 64),
                                                      psum_policy="on_chip_when_fits"), m, n, k, 8, 8)
                assert kept["dram_write_bytes"] == m * n < ref.ofmap_dram_writes, where
    assert refetched >= 6, "buffers held everything: the test would not exercise re-fetching"
    assert dataflow == "os" or drained == 2 * len(MEMORY_GEMMS), "ws/is GEMMs should all need several K folds"
