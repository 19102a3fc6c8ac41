"""The closed-form GEMM model against the event-driven tile simulation (`benchmarks/_tile_sim.py`).

    python -m benchmarks.table_oracle [--cases 60] [--seed 0] [--csv oracle.csv] [--out table.md]

Random GEMMs (8..300 per dimension) on random specs: precision model, dataflow, array 4..16 per
side, SRAMs 0.5..64 KiB, 2..64 bytes/cycle, every memory-model option and both mapper objectives.
For each, `gemm_cost` picks a schedule and the tile simulation replays that schedule fold by fold;
the table lists both numbers and their difference. `tests/test_sim_oracle.py` runs the same
generator and holds the tolerances stated in docs/simulator.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

__all__ = ["compare", "random_cases"]


def random_cases(n_cases: int, seed: int = 0) -> list[tuple]:
    """(spec, m, n, k, act_bits, weight_bits) drawn from one seed."""
    import numpy as np

    from mixaq.simulator import spec_from_mapping

    rng = np.random.default_rng(seed)
    pick = lambda values: values[int(rng.integers(len(values)))]  # noqa: E731
    cases = []
    for index in range(n_cases):
        model = pick(["fixed", "bitfusion", "bitserial"])
        spec = spec_from_mapping(dict(
            name=f"oracle-{index}", frequency_mhz=500,
            array=dict(rows=pick([4, 8, 16]), cols=pick([4, 8, 16]), dataflow=pick(["os", "ws", "is"])),
            precision=dict(model=model, min_bits=1 if model == "bitserial" else 2, max_bits=8,
                           serial=pick(["act", "both"])),
            sram_kib={name: pick([0.5, 1, 2, 8, 64]) for name in ("ifmap", "filter", "ofmap")},
            dram_bytes_per_cycle=pick([2, 4, 16, 64]),
            memory=dict(dram_ports=pick(["shared", "per_operand"]), psum_policy=pick(["on_chip_when_fits", "write_every_fold"])),
            mapper=dict(objective=pick(["latency", "dram"]), search="folds"),  # the oracle simulates fold schedules
            energy_pj=dict(mac_8x8=0.2, sram_byte=1.0, dram_byte=100.0)))
        m, n, k = (int(v) for v in rng.integers(8, 301, 3))
        cases.append((spec, m, n, k, int(rng.integers(2, 9)), int(rng.integers(2, 9))))
    return cases


def compare(cases: list[tuple]) -> list[dict]:
    """One row per case: the closed form's and the tile simulation's numbers."""
    from benchmarks._tile_sim import simulate_gemm
    from mixaq.simulator import gemm_cost

    rows = []
    for spec, m, n, k, ba, bw in cases:
        ours = gemm_cost(spec, m, n, k, ba, bw)
        sim = simulate_gemm(spec, m, n, k, ba, bw, fold_order=int(ours["fold_order"]),
                            stream_chunk=int(ours["stream_chunk"]), pack=int(ours["pack"]))
        rows.append(dict(
            spec=(f"{spec.precision_model} {spec.dataflow} {spec.rows}x{spec.cols} "
                  f"{spec.sram_ifmap_kib:g}/{spec.sram_filter_kib:g}/{spec.sram_ofmap_kib:g} KiB "
                  f"{spec.dram_bytes_per_cycle:g} B/c {spec.dram_ports} {spec.psum_policy} {spec.mapper_objective}"),
            gemm=f"{m}x{n}x{k} A{ba}W{bw}", chunks=int(ours["stream_chunks"]), folds=sim.folds,
            compute=ours["compute_cycles"], sim_compute=sim.compute_cycles,
            reads=ours["dram_read_bytes"], sim_reads=sim.dram_read_bytes,
            writes=ours["dram_write_bytes"], sim_writes=sim.dram_write_bytes,
            cycles=ours["cycles"], sim_cycles=sim.cycles, stall_share=ours["stall_cycles"] / ours["cycles"]))
    return rows


def _diff(row: dict, key: str) -> float:
    return row[f"sim_{key}"] / row[key] - 1.0


def markdown(rows: list[dict]) -> str:
    n = len(rows)
    traffic = [_diff(r, "reads") for r in rows] + [_diff(r, "writes") for r in rows]
    cycles = [_diff(r, "cycles") for r in rows]
    lines = [
        f"{n} random cases: compute cycles equal in {sum(r['compute'] == r['sim_compute'] for r in rows)}; "
        f"DRAM reads equal in {sum(r['reads'] == r['sim_reads'] for r in rows)}, writes in "
        f"{sum(r['writes'] == r['sim_writes'] for r in rows)}; traffic (simulation / closed form − 1) "
        f"min {min(traffic):+.1%}, max {max(traffic):+.1%}; cycles within 1 % in "
        f"{sum(abs(c) <= 0.01 for c in cycles)}, within 5 % in {sum(abs(c) <= 0.05 for c in cycles)}, "
        f"within 10 % in {sum(abs(c) <= 0.10 for c in cycles)}, median {statistics.median(cycles):+.2%}, "
        f"range {min(cycles):+.1%} .. {max(cycles):+.1%}.", "",
        "| spec | GEMM | chunks | reads: model / simulation | writes: model / simulation | cycles: model / simulation (diff) | stall share |",
        "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['spec']} | {r['gemm']} | {r['chunks']} | {r['reads']:,.0f} / {r['sim_reads']:,.0f} | "
                     f"{r['writes']:,.0f} / {r['sim_writes']:,.0f} | {r['cycles']:,.0f} / {r['sim_cycles']:,.0f} "
                     f"({_diff(r, 'cycles'):+.1%}) | {r['stall_share']:.0%} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.table_oracle", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", default=None, help="write every case as CSV")
    parser.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    args = parser.parse_args(argv)
    rows = compare(random_cases(args.cases, args.seed))
    text = markdown(rows)
    print(text)
    if args.csv:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.csv, index=False)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
