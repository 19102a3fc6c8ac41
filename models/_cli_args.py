"""Command-line flags that several `mixaq` commands share, declared once (torch-free: `--help` stays fast)."""
from __future__ import annotations

import argparse

from mixaq.models._device import DEVICE_HELP

__all__ = ["add_progress_flags", "add_training_run_flags"]


def add_progress_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--progress/--no-progress` into `args.quiet` (`--quiet`: the old name of `--no-progress`)."""
    parser.add_argument("--progress", dest="quiet", action="store_false", help="progress bar (default)")
    parser.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true",
                        help="no progress bar (--quiet: the old name)")


def add_training_run_flags(parser: argparse.ArgumentParser) -> None:
    """What `mixaq train`, `qat` and `adapt` override of a config's run: steps, wall clock, threads,
    device, progress bar."""
    parser.add_argument("--steps", type=int, default=None, help="override train.steps")
    parser.add_argument("--max-minutes", type=float, default=None, help="override train.max_minutes (wall clock)")
    parser.add_argument("--threads", type=int, default=None, help="override train.threads")
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    add_progress_flags(parser)
