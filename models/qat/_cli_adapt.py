"""`mixaq adapt`: sparsity-aware quantization adaptation (SAQA) of the two-branch model."""
from __future__ import annotations

import argparse

from mixaq.models.qat._cli_common import _bits, add_common_arguments

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "saqa.yaml")
    parser.add_argument("--high-bits", "--high-act-bits", type=_bits, default=None, help="override quant.high_act_bits")
    parser.add_argument("--low-bits", "--low-act-bits", type=_bits, default=None, help="override quant.low_act_bits")
    parser.add_argument("--prune-probability", type=float, default=None,
                        help="share of steps with three-way (prune + low-bit) configurations")
    parser.add_argument("--distill-weight", type=float, default=None,
                        help="weight of the low-branch distillation on important windows (0 = off)")


def run(args: argparse.Namespace) -> int:
    from mixaq.models.qat._cli_common import run_fine_tune

    return run_fine_tune(args, "saqa", {"high_act_bits": args.high_bits, "low_act_bits": args.low_bits},
                         {"prune_probability": args.prune_probability, "distill_weight": args.distill_weight})
