"""`mixaq demo`: the main job on the embedded default model, its synthetic val split and a preset spec."""
from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from mixaq.search.cli._sweep import add_search_arguments, execute, print_summary

__all__ = ["add_arguments", "run", "DEMO_DEFAULTS"]

# Sized to finish in well under 10 minutes on 2 CPU cores (see docs/search.md for measured times).
# The paper's training-free setting: per-pair low-bit ratios 0-0.8 at W4 A8/A4, a 3-AP-point
# budget against uniform A8. Pruning is left to the pruning-only baseline: on the small default
# model even 10-20 % pruned windows cost 5-30 AP points (see docs/search.md).
DEMO_DEFAULTS = {"n_trials": 30, "search": ("low",), "max_map_drop": 0.03, "max_images": 32, "calib_images": 16,
                 "spec": "bitfusion", "cost": "bops", "study": "demo", "population": 8, "baseline_points": 2}


def _default_out() -> Path:
    return Path(os.environ.get("MIXAQ_CACHE", Path.home() / ".cache" / "mixaq")) / "demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_search_arguments(parser)
    parser.set_defaults(**DEMO_DEFAULTS)
    parser.add_argument("--out", default=None,
                        help=f"run directory (default {_default_out()}); re-running resumes the study there")
    parser.add_argument("--readme-image", default=None, help="also copy pareto.png to this path")


def run(args: argparse.Namespace) -> int:
    from mixaq.core._errors import MixaqError

    out = Path(args.out) if args.out else _default_out()
    if args.readme_image and Path(args.readme_image).is_dir():
        raise MixaqError(f"--readme-image {args.readme_image!r} is a directory; name the PNG file to write")
    result = execute(args, out)
    print_summary(result, out)
    if args.readme_image:
        dest = Path(args.readme_image)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out / "pareto.png", dest)
        print(f"copied the Pareto plot to {dest}")
    print(f"plots: {(out / 'pareto.png').resolve()} (and .svg, breakdown.*, speedup_bops_vs_cycles.*)")
    return 0
