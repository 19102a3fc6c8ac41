"""Run the real SCALE-Sim v3 (PyPI `scalesim==3.0.0`) on GEMMs, as a reference for our closed forms.

SCALE-Sim needs numpy < 2.4 and writes report files, so it lives in its own virtual environment
(`make scalesim-venv` -> `.venv-scalesim/`) and runs in a subprocess inside a scratch directory.
Used by the tests and `benchmarks/bench_simulator.py`; nothing in the cost model depends on it.
"""
from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mixaq.simulator import MixaqError
from benchmarks._refvenv import REPO_ROOT, ensure_venv

__all__ = ["SCALESIM_VENV", "ScaleSimResult", "ensure_scalesim_venv", "run_scalesim"]

SCALESIM_VENV = REPO_ROOT / ".venv-scalesim"

# Facts about scalesim 3.0.0: every GEMM topology row needs a trailing comma; a layout file must
# exist even when unused; get_total_cycles() is broken, so the per-layer report items are read.
_DRIVER = r'''
import json, sys, time
from scalesim.scale_sim import scalesim
cfg, topo, layout, out = sys.argv[1:5]
start = time.perf_counter()
sim = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout, input_type_gemm=True)
sim.run_scale(top_path=out)
seconds = time.perf_counter() - start
rows = []
for layer in sim.runner.single_layer_sim_object_list:
    c = layer.get_compute_report_items()
    d = layer.get_detail_report_items()
    rows.append(dict(compute_cycles=int(c[1]) - int(c[2]), total_cycles=int(c[1]), overall_cycles=int(c[0]),
                     stall_cycles=int(c[2]), mapping_efficiency=c[4], compute_util=c[5],
                     ifmap_sram_reads=int(d[2]), filter_sram_reads=int(d[5]), ofmap_sram_writes=int(d[8]),
                     ifmap_dram_reads=int(d[11]), filter_dram_reads=int(d[14]), ofmap_dram_writes=int(d[17])))
print(json.dumps({"seconds": seconds, "layers": rows}))
'''

_CONFIG = """[general]
run_name = mixaq

[architecture_presets]
ArrayHeight : {rows}
ArrayWidth : {cols}
IfmapSramSzkB : {ifmap_kib}
FilterSramSzkB : {filter_kib}
OfmapSramSzkB : {ofmap_kib}
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : {bandwidth}
Dataflow : {dataflow}
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : {bandwidth}
IfmapSRAMBankNum : 1
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : {bandwidth}
FilterSRAMBankNum : 1
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : {mode}
UseRamulatorTrace : False
"""


@dataclass(frozen=True)
class ScaleSimResult:
    """SCALE-Sim's per-layer report (counts in words: one word = one operand element).

    `total_cycles` run from the array's first to its last cycle (compute + stalls);
    `overall_cycles` from the first DRAM read to the last DRAM write (prologue and drain too).
    """

    compute_cycles: int
    total_cycles: int
    overall_cycles: int
    stall_cycles: int
    mapping_efficiency: float
    compute_util: float
    ifmap_sram_reads: int
    filter_sram_reads: int
    ofmap_sram_writes: int
    ifmap_dram_reads: int
    filter_dram_reads: int
    ofmap_dram_writes: int


def ensure_scalesim_venv(timeout_s: float = 600.0) -> Path:
    """Build `.venv-scalesim` with `make scalesim-venv` if needed; returns its python.

    Raises MixaqError (one line, with the tail of make's output) when it cannot be built,
    e.g. without access to PyPI.
    """
    return ensure_venv(SCALESIM_VENV, "scalesim-venv", timeout_s)


def run_scalesim(gemms: Sequence[tuple[int, int, int]], rows: int, cols: int, dataflow: str,
                 sram_kib: tuple[float, float, float] = (4096, 4096, 4096), python: Path | None = None,
                 timeout_s: float = 600.0, bandwidth_words: int | None = None) -> tuple[list[ScaleSimResult], float]:
    """SCALE-Sim results for GEMMs (M, N, K) on one array, and its in-process run time in seconds
    (setup + simulation, without the subprocess's interpreter start).

    Without `bandwidth_words`, bandwidth mode CALC lets SCALE-Sim size DRAM bandwidth itself, so
    stall cycles are 0 and its compute cycles are the stall-free counts our closed forms
    reproduce. With it, USER mode gives each of the ifmap, filter and ofmap SRAMs its own DRAM port
    of that many words per cycle (SCALE-Sim reads the ifmap/filter port widths from the layout
    section's bank bandwidth and the ofmap's from `Bandwidth`; all three are set).
    """
    python = python or ensure_scalesim_venv()
    mode = "CALC" if bandwidth_words is None else "USER"
    with tempfile.TemporaryDirectory(prefix="mixaq-scalesim-") as tmp:
        work = Path(tmp)
        (work / "scale.cfg").write_text(_CONFIG.format(rows=rows, cols=cols, dataflow=dataflow,
                                                       ifmap_kib=sram_kib[0], filter_kib=sram_kib[1],
                                                       ofmap_kib=sram_kib[2], mode=mode,
                                                       bandwidth=bandwidth_words or 10))
        lines = ["Layer, M, N, K,"] + [f"g{i}, {m}, {n}, {k}," for i, (m, n, k) in enumerate(gemms)]
        (work / "gemm.csv").write_text("\n".join(lines) + "\n")
        (work / "layout.csv").write_text("Layer,\n")
        (work / "driver.py").write_text(_DRIVER)
        (work / "out").mkdir()
        proc = subprocess.run([str(python), "driver.py", "scale.cfg", "gemm.csv", "layout.csv", "out"], cwd=work,
                              capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-2:])
        raise MixaqError(f"SCALE-Sim run failed (exit {proc.returncode}): {tail}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return [ScaleSimResult(**r) for r in report["layers"]], float(report["seconds"])
