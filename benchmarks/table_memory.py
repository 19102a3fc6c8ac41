"""The memory model against SCALE-Sim 3.0.0: DRAM reads, writes and cycles on 216 GEMM cases.

    python -m benchmarks.table_memory [--csv memory_vs_scalesim.csv [--resume]] [--out table.md]

12 GEMM shapes (16..400 per dimension) × arrays 16×16 and 32×8 × dataflows os/ws/is, ifmap 16 KiB,
filter 16 KiB, ofmap 8 KiB, 8-bit words, run by the real SCALE-Sim in CALC mode (it sizes the
bandwidth itself: no stalls) and in USER mode at 4 and 16 words/cycle per port. Our cost model runs
each case in two configurations: `default` (the spec defaults: one shared DRAM port, partial sums
on chip when they fit, the mapper's fold order and stream chunking) and `scalesim` (one port per
operand, every K fold's partial sums written out, SCALE-Sim's column-folds-outer order, no
chunking). Partial sums are one 8-bit word in both (SCALE-Sim has a single word size). Every
number comes from this run (with --resume, SCALE-Sim's from the runs already in --csv; ours are always
recomputed from the code as it is); docs/simulator.md quotes the summary. SCALE-Sim's USER mode is
slow: the whole table takes about an hour.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

SHAPES = [(16, 16, 16), (49, 49, 32), (49, 32, 49), (64, 128, 64), (100, 200, 50), (196, 96, 96),
          (128, 384, 96), (400, 96, 96), (256, 256, 256), (400, 400, 64), (50, 400, 400), (400, 120, 300)]
ARRAYS = [(16, 16), (32, 8)]
DATAFLOWS = ["os", "ws", "is"]
SRAM_KIB = (16, 16, 8)
MODES = [None, 4, 16]  # None: CALC; else USER mode at that many words per cycle per port
CONFIGS = {
    "default": dict(memory=dict(output_bits=8, psum_bits=8), mapper={"search": "folds"}),  # the fold-level model
    "scalesim": dict(memory=dict(output_bits=8, psum_bits=8, dram_ports="per_operand", psum_policy="write_every_fold"),
                     mapper=dict(fold_order="cols_outer", split_stream=False, search="folds")),
}


def make_spec(dataflow: str, rows: int, cols: int, bandwidth: float, config: str):
    from mixaq.simulator import spec_from_mapping

    return spec_from_mapping(dict(
        name=f"{config}-{dataflow}-{rows}x{cols}", frequency_mhz=1000,
        array=dict(rows=rows, cols=cols, dataflow=dataflow),
        precision=dict(model="fixed", min_bits=8, max_bits=8),
        sram_kib=dict(ifmap=SRAM_KIB[0], filter=SRAM_KIB[1], ofmap=SRAM_KIB[2]), dram_bytes_per_cycle=bandwidth,
        energy_pj=dict(mac_8x8=1, sram_byte=1, dram_byte=1), **CONFIGS[config]))


def _mode_name(mode: int | None) -> str:
    return "CALC" if mode is None else f"USER{mode}"


def collect(python, done: list[dict] | None = None, save=None) -> list[dict]:
    """SCALE-Sim's numbers for every case; runs already in `done` are kept (only their SCALE-Sim
    columns), `save(rows)` is called after each SCALE-Sim run. Our numbers come from `add_ours`."""
    from tqdm import tqdm

    from benchmarks._scalesim import run_scalesim

    keep = ("dataflow", "array", "mode", "M", "N", "K")
    rows_out = [{key: value for key, value in r.items() if key in keep or key.startswith("ss_")} for r in done or []]
    have = {(r["dataflow"], r["array"], r["mode"]) for r in rows_out}
    # CALC first (fast, and what the traffic comparison needs), then the slow USER-mode runs.
    runs = [(df, a, mode) for mode in MODES for df in DATAFLOWS for a in ARRAYS
            if (df, f"{a[0]}x{a[1]}", _mode_name(mode)) not in have]
    for dataflow, (rows, cols), mode in tqdm(runs, desc="SCALE-Sim runs", file=sys.stderr):
        refs, seconds = run_scalesim(SHAPES, rows, cols, dataflow, sram_kib=SRAM_KIB, python=python,
                                     timeout_s=3600, bandwidth_words=mode)
        for (m, n, k), ref in zip(SHAPES, refs):
            rows_out.append(dict(dataflow=dataflow, array=f"{rows}x{cols}", mode=_mode_name(mode),
                                 M=m, N=n, K=k, ss_compute_cycles=ref.compute_cycles, ss_total_cycles=ref.total_cycles,
                                 ss_overall_cycles=ref.overall_cycles,
                                 ss_reads=ref.ifmap_dram_reads + ref.filter_dram_reads,
                                 ss_ifmap_reads=ref.ifmap_dram_reads, ss_filter_reads=ref.filter_dram_reads,
                                 ss_writes=ref.ofmap_dram_writes, ss_seconds=seconds / len(SHAPES)))
        if save is not None:
            save(rows_out)
    return rows_out


def add_ours(rows: list[dict]) -> list[dict]:
    """Each case with the cost model's numbers in both configurations, from the code as it is now."""
    from mixaq.simulator import gemm_cost

    out = []
    for r in rows:
        rows_, cols = map(int, r["array"].split("x"))
        bandwidth = 1e9 if r["mode"] == "CALC" else float(r["mode"][len("USER"):])  # CALC: no stalls
        row = dict(r)
        for config in CONFIGS:
            ours = gemm_cost(make_spec(r["dataflow"], rows_, cols, bandwidth, config), int(r["M"]), int(r["N"]),
                             int(r["K"]), 8, 8)
            row.update({f"{config}_compute_cycles": ours["compute_cycles"], f"{config}_cycles": ours["cycles"],
                        f"{config}_reads": ours["dram_read_bytes"], f"{config}_writes": ours["dram_write_bytes"]})
        out.append(row)
    return out


def _rel(a: float, b: float) -> float:
    return abs(a - b) / b if b else float(a != b)


def _summary(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{statistics.median(values):.1%} / {max(values):.1%}"


def markdown(rows: list[dict]) -> str:
    calc = [r for r in rows if r["mode"] == "CALC"]
    lines = [f"SCALE-Sim 3.0.0 vs the cost model, {len(calc)} GEMM cases per mode "
             f"({len(SHAPES)} shapes × {len(ARRAYS)} arrays × {len(DATAFLOWS)} dataflows, "
             f"SRAM {SRAM_KIB[0]}/{SRAM_KIB[1]}/{SRAM_KIB[2]} KiB):", "",
             "| quantity (CALC mode) | config | within 1 % | median / max difference |", "|---|---|---|---|"]
    equal = sum(r["default_compute_cycles"] == r["ss_compute_cycles"] for r in calc)
    lines.append(f"| compute cycles | both | {equal}/{len(calc)} equal | – |")
    for quantity, ours_key, ref_key in (("DRAM reads", "reads", "ss_reads"), ("DRAM writes", "writes", "ss_writes")):
        for config in CONFIGS:
            diffs = [_rel(r[f"{config}_{ours_key}"], r[ref_key]) for r in calc]
            close = sum(d <= 0.01 for d in diffs)
            lines.append(f"| {quantity} | {config} | {close}/{len(calc)} | {_summary(diffs)} |")
    for dataflow in DATAFLOWS:
        part = [r for r in calc if r["dataflow"] == dataflow]
        both = sum(_rel(r["scalesim_reads"], r["ss_reads"]) <= 0.01
                   and _rel(r["scalesim_writes"], r["ss_writes"]) <= 0.01 for r in part)
        lines.append(f"| reads and writes, {dataflow} | scalesim | {both}/{len(part)} | – |")
    lines += ["", "| USER mode | config | ours vs SCALE-Sim total cycles (array busy + stalls): median / max "
                  "difference | ours vs SCALE-Sim overall cycles (first DRAM read to last write) | "
                  "SCALE-Sim USER reads / its CALC reads: median / max |", "|---|---|---|---|---|"]
    calc_reads = {(r["dataflow"], r["array"], r["M"], r["N"], r["K"]): r["ss_reads"] for r in calc}
    for mode in [m for m in MODES if m is not None]:
        part = [r for r in rows if r["mode"] == f"USER{mode}"]
        if not part:
            continue
        inflation = [r["ss_reads"] / calc_reads[(r["dataflow"], r["array"], r["M"], r["N"], r["K"])] for r in part]
        for config in CONFIGS:
            total = [_rel(r[f"{config}_cycles"], r["ss_total_cycles"]) for r in part]
            overall = [_rel(r[f"{config}_cycles"], r["ss_overall_cycles"]) for r in part]
            infl = f"{statistics.median(inflation):.2f}× / {max(inflation):.1f}×" if config == "default" else ""
            lines.append(f"| {mode} words/cycle | {config} | {_summary(total)} | {_summary(overall)} | {infl} |")
    outliers = [r for r in calc if _rel(r["scalesim_reads"], r["ss_reads"]) > 0.01
                or _rel(r["scalesim_writes"], r["ss_writes"]) > 0.01]
    if outliers:
        lines += ["", "CALC cases where the `scalesim` configuration is more than 1 % off:", "",
                  "| dataflow | array | M×N×K | reads ours / SCALE-Sim (ifmap + filter) | writes ours / SCALE-Sim |",
                  "|---|---|---|---|---|"]
        for r in outliers:
            lines.append(f"| {r['dataflow']} | {r['array']} | {r['M']}×{r['N']}×{r['K']} | "
                         f"{r['scalesim_reads']:,.0f} / "
                         f"{r['ss_reads']:,} ({r['ss_ifmap_reads']:,} + {r['ss_filter_reads']:,}) | "
                         f"{r['scalesim_writes']:,.0f} / {r['ss_writes']:,} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.table_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=None, help="write every case as CSV (after each SCALE-Sim run)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the SCALE-Sim runs already in --csv (our numbers are always recomputed)")
    parser.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    args = parser.parse_args(argv)
    if args.resume and not args.csv:
        parser.error("--resume needs --csv")

    import pandas as pd

    from benchmarks._scalesim import ensure_scalesim_venv

    start = time.perf_counter()
    done = pd.read_csv(args.csv).to_dict("records") if args.resume and Path(args.csv).exists() else []
    save = (lambda rows: pd.DataFrame(rows).to_csv(args.csv, index=False)) if args.csv else None
    rows = add_ours(collect(ensure_scalesim_venv(), done, save))
    if args.csv:
        pd.DataFrame(rows).to_csv(args.csv, index=False)
    text = markdown(rows)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    print(f"({len(rows)} cases in {time.perf_counter() - start:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
