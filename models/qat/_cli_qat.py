"""`mixaq qat`: LSQ-style quantization-aware training of the uniform quantized detector."""
from __future__ import annotations

import argparse

from mixaq.models.qat._cli_common import _bits, add_common_arguments

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "qat.yaml")
    parser.add_argument("--act-bits", type=_bits, default=None,
                        help="activation bits of the uniform model (override quant.high_act_bits)")


def run(args: argparse.Namespace) -> int:
    from mixaq.models.qat._cli_common import run_fine_tune

    return run_fine_tune(args, "qat", {"high_act_bits": args.act_bits}, {})
