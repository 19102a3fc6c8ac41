"""Flags and config handling shared by `mixaq qat` and `mixaq adapt`."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from mixaq.core._util import json_ready
from mixaq.models._cli_args import add_training_run_flags
from mixaq.models.detection._registry import FAMILY_NAMES
from mixaq.models.qat._config import METHODS, TRAIN_SCOPES

__all__ = ["CONFIG_DIR", "add_common_arguments", "run_fine_tune"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def _bits(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bits must be an integer 2..8, got {text!r}") from None


def add_common_arguments(parser: argparse.ArgumentParser, default_config: str) -> None:
    parser.add_argument("--checkpoint", default=None,
                        help="detector checkpoint to start from (default: the embedded default model)")
    parser.add_argument("--config", default=str(CONFIG_DIR / default_config),
                        help=f"YAML with data/quant/train[/adapt] sections (default: models/qat/configs/{default_config})")
    parser.add_argument("--data", default=None,
                        help="training images directory (with --ann: replaces the config's data section; COCO with "
                             "masks for the Mask R-CNN families)")
    parser.add_argument("--ann", default=None, help="COCO instances json of --data")
    parser.add_argument("--out", required=True, help="checkpoint to write (rewritten every train.checkpoint_every steps)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted run that was writing --out (from OUT.resume)")
    parser.add_argument("--log", default=None, help="JSON-lines log (default: OUT with .log.jsonl)")
    parser.add_argument("--weight-bits", type=_bits, default=None, help="override quant.weight_bits")
    parser.add_argument("--train-scope", choices=TRAIN_SCOPES, default=None, help="override train.train_scope")
    parser.add_argument("--detector", default=None, choices=FAMILY_NAMES,
                        help="the detector family --checkpoint must be (refused in one line before any work "
                             "otherwise); an official / mmdet file is read as this family")
    parser.add_argument("--method", choices=METHODS, default=None,
                        help="override train.method: lsq (learned steps, default) or ofq (StatsQ weights, "
                             "query-key reparameterization, CGA over the last train.cga_fraction of the steps)")
    add_training_run_flags(parser)
    parser.add_argument("--nproc", type=int, default=None,
                        help="processes on this machine, one per GPU (CPU: per core, gloo), started by torch's elastic "
                             "launcher (as `torchrun --nproc_per_node N`); train.batch_size is per process")
    parser.add_argument("--dist-timeout", type=float, default=1800.0,
                        help="seconds any rank waits for the others (process group and every collective)")


def run_fine_tune(args: argparse.Namespace, kind: str, quant_overrides: dict, adapt_overrides: dict) -> int:
    from mixaq.core._errors import MixaqError
    from mixaq.models.evaluation._evaluate import DEFAULT_CHECKPOINT
    from mixaq.models.qat._config import load_finetune_config
    from mixaq.models.qat._loop import fine_tune

    from mixaq.models._device import check_device_name
    from mixaq.core._paths import check_out_file

    check_device_name(args.device)
    check_out_file(args.out)
    from mixaq.models._distributed import in_launched_job
    from mixaq.models.qat._launch import ARGS_ENV, check_nproc

    if args.dist_timeout <= 0:
        raise MixaqError(f"--dist-timeout must be > 0 seconds, got {args.dist_timeout}")
    if args.nproc is not None:
        if in_launched_job() and ARGS_ENV not in os.environ:
            raise MixaqError("--nproc inside a job torchrun started: torchrun already made the processes; drop --nproc")
        if not in_launched_job():
            check_nproc(args.nproc, args.device)
    if args.log is not None:
        check_out_file(args.log, "--log")
    config_path = Path(args.config)
    run = load_finetune_config(config_path)
    train_over = {k: v for k, v in (("steps", args.steps), ("max_minutes", args.max_minutes), ("threads", args.threads),
                                    ("train_scope", args.train_scope), ("method", args.method)) if v is not None}
    if train_over.get("steps", 1) < 1:
        raise MixaqError("--steps must be >= 1")
    if (args.data is None) != (args.ann is None):
        raise MixaqError("--data and --ann go together (an images directory and its COCO instances json)")
    if args.data is not None:
        run = replace(run, data={"images": str(Path(args.data).resolve()), "ann": str(Path(args.ann).resolve())})
    quant_over = {k: v for k, v in {**quant_overrides, "weight_bits": args.weight_bits}.items() if v is not None}
    try:
        run = replace(run, train=replace(run.train, **train_over), quant=replace(run.quant, **quant_over),
                      adapt={**run.adapt, **{k: v for k, v in adapt_overrides.items() if v is not None}})
    except TypeError as exc:  # pragma: no cover - flags map onto known fields
        raise MixaqError(str(exc)) from None
    source = Path(args.checkpoint) if args.checkpoint else DEFAULT_CHECKPOINT
    if args.detector is not None and not args.resume:
        from mixaq.models.qat._loop import checkpoint_family

        found = checkpoint_family(source, args.detector)
        if found != args.detector:
            what = "the embedded default model" if not args.checkpoint else str(source)
            raise MixaqError(f"{what}: its detector family is {found}, not {args.detector} (--detector)"
                             + ("; pass --checkpoint with a Mask R-CNN file" if not args.checkpoint else ""))
    if args.nproc is not None and args.nproc > 1 and not in_launched_job():
        from mixaq.models.qat._launch import launch

        return launch("qat" if kind == "qat" else "adapt", args, args.nproc, args.dist_timeout)
    from mixaq.models._distributed import DistContext

    dist, device = DistContext.from_environment(args.device, args.dist_timeout)
    try:
        summary = fine_tune(source, args.out, run, kind=kind, resume=args.resume, config_dir=config_path.parent,
                            log_path=args.log, progress=not args.quiet, device=device, dist=dist)
    except Exception as exc:
        if not dist.distributed or not _peer_lost(exc):
            raise
        from mixaq.core._errors import first_line
        from mixaq.models._distributed import PEER_LOST_EXIT

        # One write with its newline: the launcher stops this rank at once, and a line cut before
        # its newline runs into the launcher's own (seen once in CI).
        sys.stderr.write(f"mixaq {'qat' if kind == 'qat' else 'adapt'}: rank {dist.rank} stopped: another rank of "
                         f"the job ended ({first_line(exc)})\n")
        sys.stderr.flush()
        return PEER_LOST_EXIT
    finally:
        dist.close()
    if dist.main:
        print(json.dumps(json_ready(summary), indent=2))
    return 0


def _peer_lost(exc: BaseException) -> bool:
    """A collective failed because another rank is gone (gloo: connection closed / reset; NCCL: a
    timeout or a remote error), as opposed to this rank's own error."""
    import torch.distributed as dist

    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(k in text for k in ("Connection closed", "Connection reset", "gloo",
                                                                     "NCCL", "Broken pipe", "timed out"))
