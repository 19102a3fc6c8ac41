"""`mixaq specs`: the shipped accelerator presets and hardware spaces, one line each."""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = "Use a name with --spec (presets) or --hw-space (spaces); `mixaq cost --spec NAME` costs one."


def run(args: argparse.Namespace) -> int:
    from mixaq.simulator import list_specs, load_spec
    from mixaq.simulator._area import spec_area

    from mixaq.search.hardware._hw_space import list_hw_spaces, load_hw_space

    names = list_specs()
    width = max(map(len, names + list_hw_spaces()), default=0)
    print("accelerator presets (--spec NAME):")
    for name in names:
        s = load_spec(name)
        print(f"  {name:<{width}}  {s.precision_model} {s.rows}x{s.cols} {s.dataflow}, {s.frequency_mhz:g} MHz, "
              f"{s.min_bits}-{s.max_bits} bit, {spec_area(s).total_mm2:.2f} mm²: {s.description}")
    print("hardware spaces (--hw-space NAME):")
    for name in list_hw_spaces():
        space = load_hw_space(name)
        budgets = ", ".join(f"{k} {v:g}" for k, v in space.budgets.items())
        sample = f", {space.sample:,} sampled" if space.sample and space.sample < space.size else ""
        knobs = ", ".join(k for k, _ in space.knobs)
        print(f"  {name:<{width}}  base {space.base.get('name', '?')}, {space.size:,} points{sample}"
              f"{'; budgets ' + budgets if budgets else ''}; knobs {knobs}")
    return 0
