"""`mixaq train`: train a detector on CPU from a YAML config."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML with model/data/train[/val] sections "
                        "(see models/detection/configs/)")
    parser.add_argument("--out", required=True,
                        help="checkpoint path to write (rewritten every checkpoint_every steps)")
    parser.add_argument("--log", default=None, help="JSON-lines training log (default: OUT with .log.jsonl)")
    parser.add_argument("--init-backbone", default=None,
                        help="timm-format Swin state dict (.pth/.safetensors) to start the backbone from")
    parser.add_argument("--steps", type=int, default=None, help="override train.steps")
    parser.add_argument("--max-minutes", type=float, default=None, help="override train.max_minutes (wall clock)")
    parser.add_argument("--threads", type=int, default=None, help="override train.threads")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: a GPU if there is one)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from mixaq.core._errors import MixaqError
    from mixaq.models.evaluation._train import load_run_config, train

    from mixaq.models._device import check_device_name
    from mixaq.core._paths import check_out_file

    check_device_name(args.device)
    check_out_file(args.out)
    if args.log is not None:
        check_out_file(args.log, "--log")
    overrides = {k: v for k, v in (("steps", args.steps), ("max_minutes", args.max_minutes),
                                   ("threads", args.threads)) if v is not None}
    if overrides.get("steps", 1) < 1:
        raise MixaqError("--steps must be >= 1")
    config_path = Path(args.config)
    run_cfg = load_run_config(config_path)
    if overrides:
        run_cfg = replace(run_cfg, train=replace(run_cfg.train, **overrides))
    summary = train(run_cfg, args.out, config_dir=config_path.parent, init_backbone=args.init_backbone,
                    log_path=args.log, progress=not args.quiet, device=args.device)
    print(json.dumps(summary, indent=2))
    return 0
