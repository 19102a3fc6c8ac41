"""`mixaq cost`: per-stage cost of a Swin backbone under a window precision assignment."""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]

_STAGE_COLUMNS = ("stage", "macs", "bops", "compute_cycles", "vector_cycles", "stall_cycles", "cycles", "latency_ms",
                  "energy_pj", "dram_bytes", "low_mac_share")
_OP_COLUMNS = ("stage", "block", "op", "branch", "unit", "count", "M", "N", "K", "act_bits", "weight_bits", "macs",
               "bops", "compute_cycles", "vector_cycles", "stall_cycles", "cycles", "stream_chunks", "utilization",
               "dram_read_bytes", "dram_write_bytes", "energy_pj")
# The columns a `total` row carries: sums of the rows above it (each a `CostTotals` field). Shares,
# shapes, bit widths and utilizations do not add up, so the total row leaves them empty.
_ADDITIVE = ("macs", "bops", "compute_cycles", "vector_cycles", "stall_cycles", "cycles", "latency_ms", "energy_pj",
             "dram_bytes", "dram_read_bytes", "dram_write_bytes")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", default="bitfusion", help="preset name (see specs/) or a spec YAML path")
    parser.add_argument("--arch", default="swin_t", help="swin_t|swin_s|swin_b|swin_micro|swin_nano or a YAML of SwinArch fields")
    parser.add_argument("--image", default="800x1333", help="input HxW (or one side for a square), e.g. 800x1333")
    parser.add_argument("--high-bits", "--high-act-bits", type=int, default=8, help="activation bits of high-bit windows")
    parser.add_argument("--low-bits", "--low-act-bits", type=int, default=4, help="activation bits of low-bit windows")
    parser.add_argument("--weight-bits", type=int, default=4)
    low = parser.add_mutually_exclusive_group()
    low.add_argument("--low-ratio", type=float, default=0.0, help="low-bit window ratio of every block pair")
    low.add_argument("--low-ratios", default=None, help="comma-separated low-bit ratio per block pair")
    prune = parser.add_mutually_exclusive_group()
    prune.add_argument("--prune-ratio", type=float, default=0.0, help="pruned window ratio of every block pair")
    prune.add_argument("--prune-ratios", default=None, help="comma-separated pruned ratio per block pair")
    parser.add_argument("--baseline-bits", type=int, default=None,
                        help="activation bits of the uniform baseline (default: --high-bits)")
    parser.add_argument("--per-op", action="store_true", help="list every op and branch instead of stages")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")


def _ratios(text: str | None, scalar: float, flag: str, scalar_flag: str):
    import math

    from mixaq.core._errors import MixaqError

    if text is None:
        values, flag, shown = [scalar], scalar_flag, scalar
    else:
        try:
            values = [float(x) for x in text.split(",") if x.strip()]
        except ValueError:
            raise MixaqError(f"{flag}: expected comma-separated numbers, got {text!r}") from None
        shown = text
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values):
        raise MixaqError(f"{flag}: ratios must lie in [0, 1], got {shown}")
    return scalar if text is None else values


def _image(text: str) -> tuple[int, int]:
    from mixaq.core._errors import MixaqError

    parts = text.lower().replace("×", "x").split("x")
    try:
        sides = [int(p) for p in parts]
    except ValueError:
        raise MixaqError(f"--image: expected HxW such as 800x1333, got {text!r}") from None
    if len(sides) not in (1, 2) or min(sides) <= 0:
        raise MixaqError(f"--image: expected HxW with positive sides, got {text!r}")
    return (sides[0], sides[-1])


def _arch(text: str):
    from pathlib import Path

    from mixaq.simulator._arch import get_arch
    from mixaq.core._errors import MixaqError

    from mixaq.core._yaml import read_yaml

    path = Path(text)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        data = read_yaml(path, "arch file")
        if not isinstance(data, dict):
            raise MixaqError(f"arch file {path}: expected a mapping of SwinArch fields")
        try:
            return get_arch(data)
        except MixaqError as exc:  # name the file the bad field came from
            raise MixaqError(f"arch file {path}: {str(exc).removeprefix('arch: ')}") from None
    return get_arch(text)


def run(args: argparse.Namespace) -> int:
    from mixaq.simulator._arch import WindowAssignment
    from mixaq.simulator._area import spec_area
    from mixaq.core._cli_format import render_csv, render_json, render_table
    from mixaq.simulator._cost import estimate, reference_cost
    from mixaq.simulator._spec import load_spec

    spec, arch, image_hw = load_spec(args.spec), _arch(args.arch), _image(args.image)
    low_ratios = _ratios(args.low_ratios, args.low_ratio, "--low-ratios", "--low-ratio")
    prune_ratios = _ratios(args.prune_ratios, args.prune_ratio, "--prune-ratios", "--prune-ratio")
    # Every width the user named must run on the spec, even one no window uses (ratio 0).
    for flag, bits in (("--high-bits", args.high_bits), ("--low-bits", args.low_bits),
                       ("--weight-bits", args.weight_bits), ("--baseline-bits", args.baseline_bits)):
        if bits is not None:
            spec.check_bits(flag, bits)
    assignment = WindowAssignment.from_pair_ratios(arch, image_hw, low_ratios, prune_ratios,
                                                   args.high_bits, args.low_bits, args.weight_bits)
    report = estimate(spec, arch, image_hw, assignment)
    base_bits = args.high_bits if args.baseline_bits is None else args.baseline_bits
    baseline = reference_cost(spec, arch, image_hw, base_bits, args.weight_bits)
    speedup = report.speedup_over(baseline)
    totals = report.totals.as_dict()
    area = spec_area(spec)
    if args.per_op:
        t = report.table
        rows = [{col: t[col][i] for col in _OP_COLUMNS} for i in range(len(t["op"]))]
        columns = _OP_COLUMNS
    else:
        rows, columns = report.stage_summary(), _STAGE_COLUMNS
    if args.format == "json":
        payload = {
            "spec": spec.name, "arch": args.arch, "image": list(image_hw),
            "assignment": {"high_act_bits": args.high_bits, "low_act_bits": args.low_bits,
                           "weight_bits": args.weight_bits, "low_ratios": low_ratios, "prune_ratios": prune_ratios,
                           "low_fraction": list(assignment.low_fraction),
                           "pruned_fraction": list(assignment.pruned_fraction)},
            "totals": {**totals, "area_mm2": area.total_mm2}, "area": area.as_dict(),
            "baseline": {"act_bits": base_bits, "totals": baseline.totals.as_dict()},
            "speedup": speedup, ("per_op" if args.per_op else "stages"): rows,
        }
        print(render_json(payload))
        return 0
    total_row = {"stage": "total", "block": "", "op": "total", **{k: totals[k] for k in _ADDITIVE}}
    if args.format == "csv":
        print(render_csv(rows + [total_row], columns))
        return 0
    print(f"{_arch_name(args.arch)} at {image_hw[0]}x{image_hw[1]} on {spec.name} ({spec.dataflow} {spec.rows}x{spec.cols}, "
          f"{spec.precision_model}, {spec.frequency_mhz:g} MHz): W{args.weight_bits} A{args.high_bits}/A{args.low_bits}, "
          f"low ratios {low_ratios}, prune ratios {prune_ratios}")
    print(render_table(rows + [total_row], columns))
    print("speedup over uniform A{} W{}: ".format(base_bits, args.weight_bits)
          + ", ".join(f"{k} {v:.3f}x" for k, v in speedup.items()))
    print(f"area {area.total_mm2:.3f} mm2 at 45 nm (array {area.array_mm2:.3f}, SRAM {area.sram_mm2:.3f}, "
          f"vector {area.vector_mm2:.3f}, other {area.other_mm2:.3f}; docs/simulator.md, Area)")
    return 0


def _arch_name(text: str) -> str:
    from pathlib import Path

    return Path(text).stem if text.endswith((".yaml", ".yml", ".json")) else text
