"""The closed-form GEMM model against the event-driven tile simulation (`benchmarks/_tile_sim.py`).

    python -m benchmarks.table_oracle [--search tiles|folds] [--cases 60] [--seed 0] [--presets]
                                      [--csv oracle.csv] [--out table.md]

Random GEMMs (8..300 per dimension) on random specs: precision model, dataflow, array 4..16 per
side (tiles: 4..32), SRAMs 0.5..64 KiB, 2..64 bytes/cycle, every memory-model option, every mapper
objective (tiles: every `array.feed` too). `--presets` adds every shipped preset with the default
counting (bitfusion, int8_systolic, bitserial, loom) on every distinct GEMM of Swin-T at 224² at six
bit pairs. For each case `gemm_cost` picks a schedule (`--search tiles`: the tile mapper's tile sizes
and loop order, as `mixaq gemm --format json` reports them; `folds`: the fold-level schedules) and
the simulation replays it (tiles: tile by tile; folds: fold by fold); the table lists both numbers
and their difference. `tests/test_sim_oracle.py` runs the same generators and holds the tolerances
stated in docs/simulator.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

__all__ = ["compare", "random_cases"]


PRESETS = ("bitfusion", "int8_systolic", "bitserial", "loom")  # the shipped presets with the default counting
BIT_PAIRS = ((8, 8), (8, 4), (4, 4), (2, 4), (4, 2), (2, 2))


def random_cases(n_cases: int, seed: int = 0, search: str = "folds") -> list[tuple]:
    """(spec, m, n, k, act_bits, weight_bits) drawn from one seed; `search` is the specs' mapper."""
    import numpy as np

    from mixaq.simulator import spec_from_mapping

    rng = np.random.default_rng(seed)
    pick = lambda values: values[int(rng.integers(len(values)))]  # noqa: E731
    tiles = search == "tiles"
    cases = []
    for index in range(n_cases):
        model = pick(["fixed", "bitfusion", "bitserial"])
        sides = [4, 8, 16, 32] if tiles else [4, 8, 16]
        array = dict(rows=pick(sides), cols=pick(sides), dataflow=pick(["os", "ws", "is"]))
        if tiles:
            array["feed"] = pick(["systolic", "buffered", "ideal"])
        spec = spec_from_mapping(dict(
            name=f"oracle-{index}", frequency_mhz=500, array=array,
            precision=dict(model=model, min_bits=1 if model == "bitserial" else 2, max_bits=8,
                           serial=pick(["act", "both"])),
            sram_kib={name: pick([0.5, 1, 2, 8, 64]) for name in ("ifmap", "filter", "ofmap")},
            dram_bytes_per_cycle=pick([2, 4, 16, 64]),
            memory=dict(dram_ports=pick(["shared", "per_operand"]), psum_policy=pick(["on_chip_when_fits", "write_every_fold"])),
            mapper=dict(objective=pick(["latency", "dram", "energy", "edp"] if tiles else ["latency", "dram"]),
                        search=search),
            energy_pj=dict(mac_8x8=0.2, sram_byte=1.0, dram_byte=100.0)))
        m, n, k = (int(v) for v in rng.integers(8, 301, 3))
        cases.append((spec, m, n, k, int(rng.integers(2, 9)), int(rng.integers(2, 9))))
    return cases


def preset_cases(presets=PRESETS, bit_pairs=BIT_PAIRS, arch: str = "swin_t", image: int = 224) -> list[tuple]:
    """Every distinct GEMM (M, N, K) of `arch` at `image`² on each preset at each bit pair."""
    from mixaq.simulator import load_spec
    from mixaq.simulator._workload import build_workload
    from mixaq.simulator._arch import get_arch

    g = build_workload(get_arch(arch), (image, image)).gemm
    shapes = sorted({(int(m), int(n), int(k)) for m, n, k in zip(g.m, g.n, g.k)})
    return [(load_spec(p), m, n, k, ba, bw) for p in presets for (m, n, k) in shapes for ba, bw in bit_pairs]


def compare(cases: list[tuple]) -> list[dict]:
    """One row per case: the closed form's and the simulation's numbers (tile by tile for specs
    under the tile mapper, fold by fold under `mapper.search: folds`)."""
    from benchmarks._tile_sim import simulate_gemm, simulate_tiles
    from mixaq.simulator import gemm_cost
    from mixaq.simulator._mapper import LOOP_ORDERS

    rows = []
    for spec, m, n, k, ba, bw in cases:
        ours = gemm_cost(spec, m, n, k, ba, bw)
        if spec.mapper_search == "tiles":
            order = LOOP_ORDERS[int(ours["loop_order"])]
            sim = simulate_tiles(spec, m, n, k, ba, bw, tile_m=int(ours["tile_m"]), tile_n=int(ours["tile_n"]),
                                 tile_k=int(ours["tile_k"]), loop_order=order, pack=int(ours["pack"]))
            schedule = f"{int(ours['tile_m'])}/{int(ours['tile_n'])}/{int(ours['tile_k'])} {order}"
        else:
            sim = simulate_gemm(spec, m, n, k, ba, bw, fold_order=int(ours["fold_order"]),
                                stream_chunk=int(ours["stream_chunk"]), pack=int(ours["pack"]))
            schedule = f"{int(ours['stream_chunks'])} chunks"
        feed = f" {spec.array_feed}" if spec.mapper_search == "tiles" else ""
        rows.append(dict(
            spec=(f"{spec.name if spec.name in PRESETS else ''} {spec.precision_model} {spec.dataflow}{feed} "
                  f"{spec.rows}x{spec.cols} "
                  f"{spec.sram_ifmap_kib:g}/{spec.sram_filter_kib:g}/{spec.sram_ofmap_kib:g} KiB "
                  f"{spec.dram_bytes_per_cycle:g} B/c {spec.dram_ports} {spec.psum_policy} {spec.mapper_objective}"
                  ).strip(),
            gemm=f"{m}x{n}x{k} A{ba}W{bw}", chunks=int(ours["stream_chunks"]), schedule=schedule, folds=sim.folds,
            compute=ours["compute_cycles"], sim_compute=sim.compute_cycles,
            reads=ours["dram_read_bytes"], sim_reads=sim.dram_read_bytes,
            writes=ours["dram_write_bytes"], sim_writes=sim.dram_write_bytes,
            cycles=ours["cycles"], sim_cycles=sim.cycles, stall_share=ours["stall_cycles"] / ours["cycles"]))
    return rows


def _diff(row: dict, key: str) -> float:
    return row[f"sim_{key}"] / row[key] - 1.0


def markdown(rows: list[dict], table_rows: int | None = None) -> str:
    n = len(rows)
    traffic = [_diff(r, "reads") for r in rows] + [_diff(r, "writes") for r in rows]
    cycles = [_diff(r, "cycles") for r in rows]
    lines = [
        f"{n} cases: compute cycles equal in {sum(r['compute'] == r['sim_compute'] for r in rows)}; "
        f"DRAM reads equal in {sum(r['reads'] == r['sim_reads'] for r in rows)}, writes in "
        f"{sum(r['writes'] == r['sim_writes'] for r in rows)}; traffic (simulation / closed form − 1) "
        f"min {min(traffic):+.1%}, max {max(traffic):+.1%}; cycles within 1 % in "
        f"{sum(abs(c) <= 0.01 for c in cycles)}, within 5 % in {sum(abs(c) <= 0.05 for c in cycles)}, "
        f"within 10 % in {sum(abs(c) <= 0.10 for c in cycles)}, median {statistics.median(cycles):+.2%}, "
        f"range {min(cycles):+.1%} .. {max(cycles):+.1%}.", "",
        "| spec | GEMM | schedule | reads: model / simulation | writes: model / simulation | cycles: model / simulation (diff) | stall share |",
        "|---|---|---|---|---|---|---|"]
    for r in rows[:table_rows]:
        lines.append(f"| {r['spec']} | {r['gemm']} | {r['schedule']} | {r['reads']:,.0f} / {r['sim_reads']:,.0f} | "
                     f"{r['writes']:,.0f} / {r['sim_writes']:,.0f} | {r['cycles']:,.0f} / {r['sim_cycles']:,.0f} "
                     f"({_diff(r, 'cycles'):+.1%}) | {r['stall_share']:.0%} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.table_oracle", description=__doc__.splitlines()[0])
    parser.add_argument("--search", choices=("tiles", "folds"), default="tiles",
                        help="the mapper of the random specs: the tile mapper (default) or the fold-level schedules")
    parser.add_argument("--cases", type=int, default=60, help="random cases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--presets", action="store_true",
                        help="also every shipped preset on every distinct Swin-T 224 GEMM at six bit pairs")
    parser.add_argument("--rows", type=int, default=None, help="table rows to print (default: all)")
    parser.add_argument("--csv", default=None, help="write every case as CSV")
    parser.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    args = parser.parse_args(argv)
    if args.cases < 0:
        parser.error(f"--cases must be >= 0, got {args.cases}")
    cases = random_cases(args.cases, args.seed, args.search) + (preset_cases() if args.presets else [])
    if not cases:
        parser.error("no cases: give --cases N > 0 or --presets")
    rows = compare(cases)
    text = markdown(rows, args.rows)
    print(text)
    if args.csv:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.csv, index=False)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
