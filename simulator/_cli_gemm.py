"""`mixaq gemm`: cost of one (M×K)·(K×N) GEMM on an accelerator spec."""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]

_KEYS = ("compute_cycles", "stall_cycles", "total_cycles", "bound", "pack", "macs", "bops", "dram_read_bytes",
         "dram_write_bytes", "sram_bytes", "utilization", "latency_ms", "mac_energy_pj", "sram_energy_pj",
         "dram_energy_pj", "static_energy_pj", "energy_pj", "power_mw")
# The chosen schedule: tiles and loop order (tile mapper) or stream chunks and fold order (fold schedules).
_TILE_KEYS = ("tile_m", "tile_n", "tile_k", "loop_order", "tiles")
_FOLD_KEYS = ("stream_chunks", "stream_chunk", "fold_order")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", default="bitfusion", help="preset name (see specs/) or a spec YAML path")
    parser.add_argument("--m", type=int, required=True, help="ifmap rows (tokens)")
    parser.add_argument("--n", type=int, required=True, help="output columns (filters)")
    parser.add_argument("--k", type=int, required=True, help="reduction length")
    parser.add_argument("--act-bits", type=int, default=None, help="ifmap bits (default: the array's max)")
    parser.add_argument("--weight-bits", type=int, default=None, help="filter bits (default: the array's max)")
    add_mapper_objective(parser)
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")


def add_mapper_objective(parser: argparse.ArgumentParser) -> None:
    """`--mapper-objective` (cost, gemm, sweep): overrides the spec's `mapper.objective`."""
    parser.add_argument("--mapper-objective", choices=("latency", "dram", "energy", "edp"), default=None,
                        help="what the mapper minimizes per GEMM (default: the spec's mapper.objective, "
                             "latency unless set)")


def with_objective(spec, objective):
    """The spec with its mapper objective replaced (None: unchanged)."""
    import dataclasses

    return spec if objective is None else dataclasses.replace(spec, mapper_objective=objective)


def run(args: argparse.Namespace) -> int:
    from mixaq.core._cli_format import format_number, render_csv, render_json
    from mixaq.simulator._mapper import LOOP_ORDERS
    from mixaq.core._errors import MixaqError
    from mixaq.simulator._gemm import gemm_cost
    from mixaq.simulator._spec import FOLD_ORDERS, load_spec

    spec = with_objective(load_spec(args.spec), args.mapper_objective)
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
    seconds = cost["latency_ms"] * 1e-3
    cost["power_mw"] = cost["energy_pj"] * 1e-9 / seconds if seconds > 0 else 0.0
    # Roofline: memory-bound when moving its DRAM bytes takes longer than its compute.
    ports = 3.0 if spec.dram_ports == "per_operand" else 1.0
    dram_time = (cost["dram_read_bytes"] + cost["dram_write_bytes"]) / (spec.dram_bytes_per_cycle * ports)
    cost["bound"] = "memory" if dram_time > cost["compute_cycles"] else "compute"
    result = {key: cost[key] for key in _KEYS}
    if spec.mapper_search == "tiles":
        result.update({key: cost[key] for key in _TILE_KEYS})
        result["loop_order"] = LOOP_ORDERS[int(cost["loop_order"])]  # outermost loop first
    else:
        result.update({key: cost[key] for key in _FOLD_KEYS})
        result["fold_order"] = FOLD_ORDERS[1 + int(cost["fold_order"])]  # 0 -> rows_outer, 1 -> cols_outer
    header = {"spec": spec.name, "dataflow": spec.dataflow, "array": f"{spec.rows}x{spec.cols}", "feed": spec.array_feed,
              "mapper": f"{spec.mapper_search}, {spec.mapper_objective}",
              "M": args.m, "N": args.n, "K": args.k, "act_bits": act, "weight_bits": weight}
    if args.format == "json":
        print(render_json({**header, **result}))
    elif args.format == "csv":
        row = {**header, **result}
        print(render_csv([row], list(row)))
    else:
        width = max(map(len, list(header) + list(result)))
        for key, value in {**header, **result}.items():
            print(f"{key:<{width}}  {format_number(value)}")
    return 0
