"""Cost model speed: vs the real SCALE-Sim on the same GEMMs, one full Swin-T 800x1333 assignment,
batch throughput, and `mixaq cost` wall time vs a bare `python -c "import numpy"`. All ratios are
measured in this one run, on this machine.

    python -m benchmarks.bench_simulator
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_cli import wall_seconds

__all__ = ["main"]

IMAGE = (800, 1333)
# Swin-T stage 0 GEMMs: one window-head's QKᵀ (49 tokens, head dim 32), one window's fc1
# (96 -> 384) and eight windows' fc1. SCALE-Sim's time grows with simulated cycles, ours does not.
SCALESIM_GEMMS = [(49, 49, 32), (49, 384, 96), (392, 384, 96)]
GOALS = {"scalesim": 1e4, "single_ms": 2.0, "batch_per_s": 1e5, "cli_ratio": 3.0, "mapper_ms": 1.0}


def _best_seconds(fn, repeat: int, number: int = 1) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times)


def bench_vs_scalesim() -> None:
    from mixaq.simulator import MixaqError, gemm_cost, spec_from_mapping
    from benchmarks._scalesim import ensure_scalesim_venv, run_scalesim

    rows = cols = 16
    spec = spec_from_mapping(dict(
        name="ws16", frequency_mhz=500, array=dict(rows=rows, cols=cols, dataflow="ws"),
        precision=dict(model="fixed", min_bits=8, max_bits=8), sram_kib=dict(ifmap=4096, filter=4096, ofmap=4096),
        dram_bytes_per_cycle=1e6, mapper=dict(fold_order="cols_outer", split_stream=False, search="folds"),
        energy_pj=dict(mac_8x8=0.2, sram_byte=1, dram_byte=100)))  # the SCALE-Sim configuration: nothing to map
    try:
        python = ensure_scalesim_venv()
    except MixaqError as exc:
        print(f"SCALE-Sim comparison skipped: {exc}")
        return
    for m, n, k in SCALESIM_GEMMS:
        (ref,), scalesim_s = run_scalesim([(m, n, k)], rows, cols, "ws", python=python)
        ours_s = _best_seconds(lambda: gemm_cost(spec, m, n, k, 8, 8), repeat=5, number=200)
        many = 10000  # the same GEMM 10k times in one vectorized call: per-GEMM cost when batched
        batched_s = _best_seconds(lambda: gemm_cost(spec, np.full(many, m), n, k, 8, 8), repeat=3) / many
        ours = int(gemm_cost(spec, m, n, k, 8, 8)["compute_cycles"])
        agree = "equal" if ours == ref.compute_cycles else f"DIFFER (ours {ours})"
        print(f"GEMM {m}x{n}x{k} on ws {rows}x{cols}: SCALE-Sim {ref.compute_cycles:,} cycles in {scalesim_s:.3f} s "
              f"(in-process); cost model {ours_s * 1e6:.0f} us per call, {batched_s * 1e6:.2f} us per GEMM batched; "
              f"cycles {agree}; speed ratio {scalesim_s / ours_s:,.0f}x per call, {scalesim_s / batched_s:,.0f}x "
              f"batched (goal >= {GOALS['scalesim']:,.0f}x)")


def _unseen_seconds(spec, shapes: list, per_call: int = 1, repeat: int = 3) -> float:
    """Seconds per GEMM to map `shapes` none of which the process has mapped (memo emptied before
    each pass), `per_call` GEMMs to a `gemm_cost` call; the best of `repeat` passes."""
    from mixaq.simulator import gemm_cost
    from mixaq.simulator._mapper import _MEMO

    m, n, k, a = (np.array(x, dtype=float) for x in zip(*shapes))
    w = max(4, spec.min_bits)
    best = np.inf
    for _ in range(repeat):
        _MEMO.clear()
        spec.__dict__.pop("_gemm_plan", None)
        start = time.perf_counter()
        if per_call == 1:
            for mi, ni, ki, ai in shapes:
                gemm_cost(spec, mi, ni, ki, max(ai, spec.min_bits), w)
        else:
            for i in range(0, len(shapes), per_call):
                gemm_cost(spec, m[i:i + per_call], n[i:i + per_call], k[i:i + per_call],
                          np.maximum(a[i:i + per_call], spec.min_bits), w)
        best = min(best, (time.perf_counter() - start) / len(shapes))
    return best


def bench_mapper() -> None:
    """The tile mapper on GEMMs it has not seen (no memo hit): Swin-like random shapes (M uniform in
    1..4000, N and K from Swin-T's widths), one call per GEMM on every preset, and 25 per call; and
    shapes with every dimension uniform in 1..2500 (nothing alike)."""
    from mixaq.simulator import gemm_cost, list_specs, load_spec

    rng = np.random.default_rng(0)
    shapes = [(int(m), int(n), int(k), int(a)) for m, n, k, a in zip(rng.integers(1, 4000, 200),
                                                                     rng.choice([96, 192, 384, 768, 1536, 49], 200),
                                                                     rng.choice([32, 96, 192, 384, 768, 3072], 200),
                                                                     rng.choice([2, 4, 8], 200))]
    uniform = [tuple(int(x) for x in row) for row in np.column_stack([rng.integers(1, 2501, (200, 3)),
                                                                      rng.choice([2, 4, 8], 200)])]
    single = {name: _unseen_seconds(load_spec(name), shapes)
              for name in ["bitfusion"] + [x for x in list_specs() if x != "bitfusion"]}
    spec = load_spec("bitfusion")
    spread = _unseen_seconds(spec, uniform)
    batched = _unseen_seconds(spec, shapes, per_call=25)
    again = _best_seconds(lambda: [gemm_cost(spec, m, n, k, a, 4) for m, n, k, a in shapes], repeat=3) / len(shapes)
    others = ", ".join(f"{name} {seconds * 1e3:.2f}" for name, seconds in single.items() if name != "bitfusion")
    print(f"tile mapper, one GEMM it has not seen (bitfusion, 200 Swin-like shapes, best of 3 passes): "
          f"{single['bitfusion'] * 1e3:.2f} ms per call (goal <= {GOALS['mapper_ms']:g} ms); every dimension "
          f"uniform in 1..2500: {spread * 1e3:.2f} ms; memoized {again * 1e6:.1f} us per call; 25 GEMMs per call "
          f"{batched * 1e3:.2f} ms per GEMM; the other presets, one per call (ms): {others}")


def bench_single_assignment() -> None:
    from mixaq.simulator import WindowAssignment, estimate, get_arch, load_spec

    arch, spec = get_arch("swin_t"), load_spec("bitfusion")
    a = WindowAssignment.from_pair_ratios(arch, IMAGE, [0.5, 0.3, 0.6, 0.2, 0.7, 0.4], 0.1, 8, 4, 4)
    first = _best_seconds(lambda: estimate(spec, arch, (801, 1333), a), repeat=1)  # workload not cached yet
    warm = _best_seconds(lambda: estimate(spec, arch, IMAGE, a), repeat=7, number=5)
    table = _best_seconds(lambda: estimate(spec, arch, IMAGE, a).per_op, repeat=3)
    print(f"one Swin-T {IMAGE[0]}x{IMAGE[1]} assignment (estimate, totals + per-op arrays): {warm * 1e3:.2f} ms "
          f"(goal <= {GOALS['single_ms']:.0f} ms); first call at a new size {first * 1e3:.1f} ms; "
          f"with the pandas per_op table {table * 1e3:.1f} ms")


def bench_batch() -> None:
    from mixaq.simulator import estimate_batch_arrays, fractions_from_pair_ratios, get_arch, load_spec

    arch, spec = get_arch("swin_t"), load_spec("bitfusion")
    rng = np.random.default_rng(0)
    n_grid = 20000
    low_r = rng.integers(0, 9, (n_grid, arch.num_pairs)) / 10  # the paper's 0..0.8 step 0.1 knobs
    prune_r = rng.integers(0, 4, (n_grid, arch.num_pairs)) / 10
    low, pruned = fractions_from_pair_ratios(arch, IMAGE, low_r, prune_r)
    grid_s = _best_seconds(lambda: estimate_batch_arrays(spec, arch, IMAGE, low, pruned, 8, 4, 4), repeat=3)
    n_cont = 50  # every block's M is new: each of its GEMMs is mapped once (first call)
    low_c = rng.uniform(0, 0.8, (n_cont, arch.num_blocks))  # e.g. per-image averages: no two alike
    pruned_c = rng.uniform(0, 0.2, (n_cont, arch.num_blocks))

    start = time.perf_counter()
    estimate_batch_arrays(spec, arch, IMAGE, low_c, pruned_c, 8, 4, 4)  # first call: maps every new GEMM
    cont_s = time.perf_counter() - start
    print(f"batch, Swin-T {IMAGE[0]}x{IMAGE[1]} on bitfusion: {n_grid / grid_s:,.0f} assignments/s with ratios on "
          f"the 0.1 grid (goal >= {GOALS['batch_per_s']:,.0f}/s); {n_cont / cont_s:,.0f}/s with continuous "
          f"per-block fractions (worst case: nothing repeats)")


def bench_cli_wall() -> None:
    bin_dir = Path(sys.executable).parent
    mixaq = bin_dir / "mixaq"
    cost_argv = ["--spec", "bitfusion", "--arch", "swin_t", "--image", "800x1333", "--high-bits", "8",
                 "--low-bits", "4", "--weight-bits", "4", "--low-ratio", "0.5"]
    cmd = [str(mixaq), "cost", *cost_argv] if mixaq.exists() else [sys.executable, "-m", "mixaq.search.cli", "cost", *cost_argv]
    wall_seconds(cmd, 1)  # warm the page cache for both
    numpy_s = wall_seconds([sys.executable, "-c", "import numpy"], 7)
    cost_s = wall_seconds(cmd, 7)
    gemm_s = wall_seconds(cmd[:-len(cost_argv) - 1] + ["gemm", "--m", "3136", "--n", "288", "--k", "96"], 7)
    print(f"`mixaq cost` wall {cost_s:.3f} s, `mixaq gemm` {gemm_s:.3f} s, bare `python -c 'import numpy'` "
          f"{numpy_s:.3f} s: ratio {cost_s / numpy_s:.2f}x (goal <= {GOALS['cli_ratio']:.0f}x; medians of 7)")


def main() -> None:
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    bench_mapper()
    bench_batch()
    bench_single_assignment()
    bench_vs_scalesim()
    bench_cli_wall()


if __name__ == "__main__":
    main()
