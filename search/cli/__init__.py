"""The `mixaq` command: a thin dispatcher (here, with the search commands `sweep|plot|demo|specs` beside it).

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
    "specs": ("mixaq.search.cli._specs", "list the shipped accelerator presets and hardware spaces"),
}


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's default at the end of its help, unless the help already names it (or there is none)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in text or default in (None, False, argparse.SUPPRESS)
                or isinstance(action, (argparse._HelpAction, argparse._StoreConstAction))):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else str(default)
        return f"{text} (default {shown.replace('%', '%%')})".lstrip()


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error (exit 2), not the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _top_help() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: mixaq <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `mixaq <command> --help` for a command's options; `mixaq --version` prints the version."]
    return "\n".join(lines)


_MAX_MESSAGE = 600  # characters: a message quoting a huge value must not flood the terminal


def _error(name: str, message: str) -> None:
    """The one line every error ends as: secrets of any URL in it redacted, newlines folded, length
    capped (the last defence: the messages themselves quote only short prefixes of bad values)."""
    from mixaq.search.study._storage import redact_text

    text = " ".join(redact_text(message).split())
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + " …"
    print(f"mixaq {name}: error: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        return _quiet_on_closed_pipe(lambda: print(_top_help()))
    if argv[0] in ("-V", "--version"):
        return _quiet_on_closed_pipe(lambda: print(f"mixaq {_version()}"))
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"mixaq: error: unknown command {name!r} (choose from {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(module_name)
    parser = _Parser(prog=f"mixaq {name}", description=help_, formatter_class=_HelpFormatter)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        code = int(module.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except (MixaqError, FileNotFoundError) as exc:
        # Our validation raises these with a one-line message naming the problem.
        _error(name, str(exc))
        return 2
    except OSError as exc:  # a path our checks did not foresee (permissions, a file in the way): still one line
        where = " -> ".join(repr(str(f)) for f in (exc.filename, exc.filename2) if f is not None)
        _error(name, f"{exc.strerror or exc}{': ' + where if where else ''}")
        return 2
    except KeyboardInterrupt:
        print(f"mixaq {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A full disk surfaces from deep inside a library (SQLite's "database or disk is full",
        # Optuna's "Should not reach." assertion raised while handling the OSError): one line.
        full = _disk_full(exc)
        if full is None:
            raise
        _error(name, f"the disk is full ({full}); earlier results are intact, rerun to resume once there is space")
        return 2


def _disk_full(exc: BaseException) -> str | None:
    seen = 0
    while exc is not None and seen < 20:
        text = str(exc)
        if (isinstance(exc, OSError) and exc.errno == 28) or "disk is full" in text or "No space left" in text:
            return text.splitlines()[0][:160] if text else "ENOSPC"
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mixaq")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _closed_pipe() -> int:
    """The reader went away (`mixaq eval ... | head`): stop quietly with the status a shell gives a
    process killed by SIGPIPE (141), and point stdout at /dev/null so the exit flush cannot complain."""
    import os
    import signal

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 128 + int(getattr(signal, "SIGPIPE", 13))


def _quiet_on_closed_pipe(write) -> int:  # noqa: ANN001
    try:
        write()
        sys.stdout.flush()
        return 0
    except BrokenPipeError:
        return _closed_pipe()


if __name__ == "__main__":
    sys.exit(main())
