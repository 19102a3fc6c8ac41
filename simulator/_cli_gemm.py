"""`mixaq gemm`: cost of one (M×K)·(K×N) GEMM on an accelerator spec."""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]

_KEYS = ("compute_cycles", "stall_cycles", "total_cycles", "stream_chunks", "stream_chunk", "fold_order", "pack",
         "macs", "bops", "dram_read_bytes", "dram_write_bytes", "sram_bytes", "utilization", "latency_ms",
         "mac_energy_pj", "sram_energy_pj", "dram_energy_pj", "energy_pj")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", default="bitfusion", help="preset name (see specs/) or a spec YAML path")
    parser.add_argument("--m", type=int, required=True, help="ifmap rows (tokens)")
    parser.add_argument("--n", type=int, required=True, help="output columns (filters)")
    parser.add_argument("--k", type=int, required=True, help="reduction length")
    parser.add_argument("--act-bits", type=int, default=None, help="ifmap bits (default: the array's max)")
    parser.add_argument("--weight-bits", type=int, default=None, help="filter bits (default: the array's max)")
    parser.add_argument("--format", choices=("table", "json"), default="table")


def run(args: argparse.Namespace) -> int:
    from mixaq.core._cli_format import format_number, render_json
    from mixaq.core._errors import MixaqError
    from mixaq.simulator._gemm import gemm_cost
    from mixaq.simulator._spec import FOLD_ORDERS, load_spec

    spec = load_spec(args.spec)
    for name in ("m", "n", "k"):
        if getattr(args, name) <= 0:
            raise MixaqError(f"--{name} must be a positive integer, got {getattr(args, name)}")
    act = spec.max_bits if args.act_bits is None else args.act_bits
    weight = spec.max_bits if args.weight_bits is None else args.weight_bits
    spec.check_bits("--act-bits", act)
    spec.check_bits("--weight-bits", weight)
    cost = {key: float(value) for key, value in gemm_cost(spec, args.m, args.n, args.k, act, weight).items()}
    cost["total_cycles"] = cost["cycles"]
    cost["latency_ms"] = cost["cycles"] * spec.cycle_ns * 1e-6
    result = {key: cost[key] for key in _KEYS}
    result["fold_order"] = FOLD_ORDERS[1 + int(cost["fold_order"])]  # 0 -> rows_outer, 1 -> cols_outer
    header = {"spec": spec.name, "dataflow": spec.dataflow, "array": f"{spec.rows}x{spec.cols}",
              "M": args.m, "N": args.n, "K": args.k, "act_bits": act, "weight_bits": weight}
    if args.format == "json":
        print(render_json({**header, **result}))
    else:
        width = max(map(len, list(header) + list(result)))
        for key, value in {**header, **result}.items():
            print(f"{key:<{width}}  {format_number(value)}")
    return 0
