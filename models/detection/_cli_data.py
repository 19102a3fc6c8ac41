"""`mixaq data synth`: write the synthetic COCO-format dataset (images + instances json)."""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    synth = sub.add_parser("synth", help="render the synthetic shapes dataset deterministically")
    synth.add_argument("--out", required=True, help="directory to write (images/ and annotations.json)")
    synth.add_argument("--seed", type=int, default=0, help="dataset seed (the default val split uses 2)")
    synth.add_argument("--num-images", type=int, default=500)
    synth.add_argument("--size", type=int, default=256, help="square image side, px")
    synth.add_argument("--quiet", action="store_true")


def run(args: argparse.Namespace) -> int:
    from mixaq.simulator._errors import MixaqError
    from mixaq.models.detection._synth import write_synthetic

    from mixaq.simulator._paths import check_out_dir

    if args.num_images < 1 or args.size < 32:
        raise MixaqError("--num-images must be >= 1 and --size >= 32")
    check_out_dir(args.out)
    out = write_synthetic(args.out, args.num_images, args.seed, (args.size, args.size), progress=not args.quiet)
    print(f"wrote {args.num_images} images and annotations.json to {out}")
    return 0
