"""The `mixaq` command: a thin dispatcher (here, with the search commands `sweep|plot|demo` beside it).

Each subcommand lives with the package that owns its concern and is imported only when run,
so `mixaq cost` never pays for torch. A command module exposes
`add_arguments(parser)` and `run(args) -> int`.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from mixaq.core._errors import MixaqError

__all__ = ["main", "COMMANDS"]

# name -> (module, one-line help). Order is the order `mixaq --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "gemm": ("mixaq.simulator._cli_gemm", "cost of one GEMM on an accelerator spec"),
    "cost": ("mixaq.simulator._cli_cost", "per-layer cost of a Swin backbone under a window precision assignment"),
    "data": ("mixaq.models.data._cli_data", "generate the synthetic COCO-format dataset"),
    "train": ("mixaq.models.evaluation._cli_train", "train a detector (CPU) from a config file"),
    "eval": ("mixaq.models.evaluation._cli_eval", "measured fake-quant box (and mask) mAP + simulated cost of one configuration"),
    "qat": ("mixaq.models.qat._cli_qat", "quantization-aware training of the uniform quantized detector"),
    "adapt": ("mixaq.models.qat._cli_adapt", "sparsity-aware quantization adaptation (SAQA) of the two-branch model"),
    "sweep": ("mixaq.search.cli._sweep", "Optuna search over precision configs: mAP vs simulated speedup"),
    "plot": ("mixaq.search.cli._plot", "redraw a study's Pareto plots from its storage"),
    "demo": ("mixaq.search.cli._demo", "the main job on the embedded default model, data and spec"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error (exit 2), not the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _top_help() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: mixaq <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `mixaq <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_top_help())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"mixaq: error: unknown command {name!r} (choose from {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module_name, help_ = COMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            print(f"mixaq: error: command {name!r} is not implemented yet", file=sys.stderr)
            return 2
        raise
    parser = _Parser(prog=f"mixaq {name}", description=help_)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except (MixaqError, FileNotFoundError) as exc:
        # Our validation raises these with a one-line message naming the problem.
        print(f"mixaq {name}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path our checks did not foresee (permissions, a file in the way): still one line
        where = " -> ".join(repr(str(f)) for f in (exc.filename, exc.filename2) if f is not None)
        print(f"mixaq {name}: error: {exc.strerror or exc}{': ' + where if where else ''}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mixaq {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
