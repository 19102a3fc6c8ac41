"""`mixaq qat|adapt --nproc N`: N processes on this machine through torch's own elastic launcher
(`torch.distributed.launcher.elastic_launch`, what `torchrun --standalone` runs), one per GPU (or
per CPU core with gloo), and one readable line when a rank dies.

The launcher process itself loads nothing: it checks `--nproc` against the devices, starts the
workers (each runs the same command with the same arguments, read from an environment variable)
and waits. Workers find their rank in torch's environment variables (`models._distributed`).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from mixaq.core._errors import MixaqError

__all__ = ["ARGS_ENV", "check_nproc", "launch", "worker_main"]

ARGS_ENV = "MIXAQ_LAUNCH_ARGS"  # the command and its parsed arguments, for the workers


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_nproc(nproc: int, device: str) -> None:
    """One-line errors before any work: `nproc` processes must each get a device of `device`. On
    CUDA a device is a visible GPU; on CPU (gloo) a core this process may run on (more processes than
    cores only time-slice: no faster, and gloo's collectives then time out under load)."""
    if nproc < 1:
        raise MixaqError(f"--nproc must be >= 1, got {nproc}")
    if device.startswith("cuda:"):
        raise MixaqError(f"--nproc uses one GPU per process (cuda:0 .. cuda:{nproc - 1}); --device {device} names "
                         "one: pass --device cuda (or set CUDA_VISIBLE_DEVICES)")
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise MixaqError(f"--nproc {nproc} --device cuda: no CUDA GPU is available here (torch {torch.__version__})")
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        n = torch.cuda.device_count()
        if nproc > n:
            raise MixaqError(f"--nproc {nproc}: only {n} GPU(s) visible (one process per GPU)")
        return
    n = _cpu_count()
    if nproc > n:
        raise MixaqError(f"--nproc {nproc} on CPU: only {n} core(s) available to this process (one process per core)")


def _describe(failures: dict) -> str:  # noqa: ANN001 (rank -> torch's ProcessFailure)
    """The rank that caused the stop: not one stopped by the agent (SIGTERM) or one that only lost
    contact with a dead peer (PEER_LOST_EXIT); a signal by name, else the exit code."""
    from mixaq.models._distributed import PEER_LOST_EXIT

    def cause(f) -> bool:  # noqa: ANN001
        return f.exitcode not in (PEER_LOST_EXIT, -15)

    rank, f = min(((r, f) for r, f in failures.items() if cause(f)), default=min(failures.items()),
                  key=lambda rf: (rf[1].timestamp, rf[0]))
    how = f"was killed by {f.signal_name()}" if f.exitcode < 0 else f"exited with code {f.exitcode}"
    return f"rank {rank} (pid {f.pid}) {how}"


def launch(command: str, args: argparse.Namespace, nproc: int, timeout_s: float) -> int:
    """Run `mixaq <command>` with `args` on `nproc` local processes; 0 when every rank finished."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"mixaq-{os.getpid()}",
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0",
                          rdzv_configs={"join_timeout": int(timeout_s), "timeout": int(timeout_s)},
                          max_restarts=0, monitor_interval=0.2, start_method="spawn")
    code = "import sys; from mixaq.models.qat._launch import worker_main; sys.exit(worker_main())"
    saved = os.environ.get(ARGS_ENV)
    os.environ[ARGS_ENV] = json.dumps({"command": command, "args": vars(args)})
    quiet = logging.getLogger("torch.distributed.elastic")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the agent's per-event INFO/WARNING lines; failures come back as the exception
    try:
        elastic_launch(config, entrypoint=sys.executable)("-c", code)
    except ChildFailedError as exc:
        resume = Path(args.out).with_name(Path(args.out).name + ".resume")
        hint = (f"; {resume} holds the last checkpoint: rerun with --resume to continue" if resume.is_file()
                else "")
        raise MixaqError(f"{_describe(exc.failures)}; the job stopped (all {nproc} processes){hint}") from None
    finally:
        quiet.setLevel(level)
        if saved is None:
            os.environ.pop(ARGS_ENV, None)
        else:
            os.environ[ARGS_ENV] = saved
    return 0


def worker_main() -> int:
    """A launched rank: the command with the launcher's arguments; errors as one line (the dispatcher's
    format, with the rank), exit 2."""
    import importlib

    spec = json.loads(os.environ[ARGS_ENV])
    command, args = spec["command"], argparse.Namespace(**spec["args"])
    module = importlib.import_module(f"mixaq.models.qat._cli_{command}")
    try:
        return int(module.run(args) or 0)
    except (MixaqError, FileNotFoundError) as exc:
        print(f"mixaq {command}: error: rank {os.environ.get('RANK', '?')}: {exc}", file=sys.stderr)
        return 2
