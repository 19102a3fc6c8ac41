"""`mixaq data synth|stats`: write a synthetic COCO-format dataset; measure image statistics."""
from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixaq.models.data._synth import GENERATORS

    sub = parser.add_subparsers(dest="action", required=True)
    synth = sub.add_parser("synth", help="render a synthetic dataset deterministically")
    synth.add_argument("--out", required=True, help="directory to write (images/ and annotations.json)")
    synth.add_argument("--generator", default="shapes", choices=GENERATORS,
                       help="shapes: flat shapes on striped, noisy ground (tests); scenes: photograph-like "
                            "statistics (docs/scenes.md)")
    synth.add_argument("--seed", type=int, default=0, help="dataset seed (the default val split uses 2)")
    synth.add_argument("--num-images", type=int, default=500)
    synth.add_argument("--size", type=int, default=256, help="square image side, px")
    synth.add_argument("--quiet", action="store_true")

    stats = sub.add_parser("stats", help="spectrum slope, inside/outside-box texture, smooth background, "
                                         "size shares (the docs/scenes.md table)")
    stats.add_argument("--generator", default=None,
                       help=f"comma-separated generators to measure ({', '.join(GENERATORS)}); "
                            "default: all, unless --data/--coco-root is given")
    stats.add_argument("--data", default=None, help="a dataset dir (images/ + annotations.json) to measure too")
    stats.add_argument("--coco-root", default=None, help="an images dir to measure too (with --ann)")
    stats.add_argument("--ann", default=None, help="COCO instances json for --coco-root")
    stats.add_argument("--seed", type=int, default=2, help="generator seed (2: the val seed)")
    stats.add_argument("--num-images", type=int, default=200, help="images per source (the first N)")
    stats.add_argument("--size", type=int, default=256, help="square side of generated images, px")
    stats.add_argument("--csv", default=None, help="also write the table as CSV")
    stats.add_argument("--quiet", action="store_true")


def _run_synth(args: argparse.Namespace) -> int:
    from mixaq.models.data._synth import write_synthetic
    from mixaq.core._errors import MixaqError
    from mixaq.core._paths import check_out_dir

    if args.num_images < 1 or args.size < 32:
        raise MixaqError("--num-images must be >= 1 and --size >= 32")
    check_out_dir(args.out)
    out = write_synthetic(args.out, args.num_images, args.seed, (args.size, args.size), generator=args.generator,
                          progress=not args.quiet)
    print(f"wrote {args.num_images} {args.generator} images and annotations.json to {out}")
    return 0


def _run_stats(args: argparse.Namespace) -> int:
    from mixaq.core._errors import MixaqError
    from mixaq.models.data._stats_table import measure_sources, stats_markdown

    if args.num_images < 1 or args.size < 32:
        raise MixaqError("--num-images must be >= 1 and --size >= 32")
    if (args.coco_root is None) != (args.ann is None):
        raise MixaqError("give both --coco-root and --ann")
    if args.csv:
        from mixaq.core._paths import check_out_file

        check_out_file(args.csv, "--csv")
    datasets = ([("data", args.data)] if args.data else []) + (
        [("coco", (args.coco_root, args.ann))] if args.coco_root else [])
    if args.generator is not None:
        generators = [g.strip() for g in args.generator.split(",") if g.strip()]
        if not generators:
            raise MixaqError("--generator: give at least one generator name")
    else:
        from mixaq.models.data._synth import GENERATORS

        generators = [] if datasets else list(GENERATORS)
    table = measure_sources(generators, datasets, seed=args.seed, num_images=args.num_images,
                            image_hw=(args.size, args.size), progress=not args.quiet)
    print(stats_markdown(table))
    if args.csv:
        table.to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    return 0


def run(args: argparse.Namespace) -> int:
    return {"synth": _run_synth, "stats": _run_stats}[args.action](args)
