"""The MixA-Q paper's PTQ table on the real setting: an official Swin (Cascade) Mask R-CNN, COCO val2017.

    python -m benchmarks.table_paper --checkpoint mask_rcnn_swin_tiny_patch4_window7_1x.pth \
        --coco-root COCO/val2017 --ann COCO/annotations/instances_val2017.json --device cuda --out runs/paper

Rows: float, uniform W4A8, uniform W4A4, and MixA-Q W4A8/A4 at the low-bit window ratios whose
simulated BOPs speedup over W4A8 is ~1.24x and ~1.35x (the paper's operating points; solved on the
simulator for the checkpoint's backbone at 800x1333), each with importance, random and reversed
window selection; box and mask AP (COCOeval) and the simulated speedups of what the model recorded.
With `--sweep-trials N` it then runs `mixaq sweep` on the same model and data (box AP objective,
or `--metric map_segm`). Everything is measured in this run; the output names the command.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from mixaq.models._config import OBSERVERS, PAPER_PTQ_OBSERVER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.table_paper", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="official-release or mmdet-zoo Swin (Cascade) Mask R-CNN")
    parser.add_argument("--detector", default=None, help="force the family (default: inferred from the file)")
    parser.add_argument("--coco-root", required=True, help="COCO val2017 image directory")
    parser.add_argument("--ann", required=True, help="instances_val2017.json")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=4, help="image-decoding processes")
    parser.add_argument("--calib", type=int, default=32, help="PTQ calibration images (taken from the end)")
    parser.add_argument("--max-images", type=int, default=None, help="evaluate at most N images (default: all)")
    parser.add_argument("--observer", default=PAPER_PTQ_OBSERVER, choices=OBSERVERS,
                        help=f"PTQ activation observer (default {PAPER_PTQ_OBSERVER}: RepQ-ViT, the paper's PTQ)")
    parser.add_argument("--speedups", default="1.24,1.35", help="target BOPs speedups over W4A8")
    parser.add_argument("--seeds", type=int, default=1, help="seeds of the random selection")
    parser.add_argument("--spec", default="bitfusion")
    parser.add_argument("--sweep-trials", type=int, default=0, help="then run a sweep of N trials (0: no sweep)")
    parser.add_argument("--metric", default="map", choices=("map", "map_segm"),
                        help="the sweep's accuracy objective: box (map) or mask (map_segm) mAP")
    parser.add_argument("--test-scale", default=None, help="keep-ratio test scale LONG,SHORT (default 1333,800)")
    parser.add_argument("--out", required=True, help="directory for table.md, table.csv and the sweep")
    args = parser.parse_args(argv)

    from mixaq.models.evaluation._evaluate import Evaluator
    from benchmarks._ptq_table import ptq_table, ratio_for_speedup, table_markdown

    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    observer = args.observer
    ev = Evaluator(args.checkpoint, args.coco_root, ann=args.ann, max_images=args.max_images, calib_images=args.calib,
                   detector=args.detector, device=args.device, workers=args.workers, progress=True,
                   test_scale=tuple(int(v) for v in args.test_scale.split(",")) if args.test_scale else None)
    targets = [float(v) for v in args.speedups.split(",") if v.strip()]
    ratios = [ratio_for_speedup(args.spec, ev.arch, ev.image_hw, t) for t in targets]
    df = ptq_table(ev, spec=args.spec, low_ratios=ratios, observer=observer, random_seeds=tuple(range(args.seeds)))
    df.to_csv(out / "table.csv", index=False)
    command = f"python -m benchmarks.table_paper {' '.join(sys.argv[1:] if argv is None else argv)}"
    text = "\n".join([
        f"# PTQ on {Path(args.checkpoint).name} ({ev.config.head}), COCO val2017",
        "",
        f"Produced by `{command}` on {dt.date.today().isoformat()} ({time.perf_counter() - start:.0f} s, "
        f"device {ev.device}).",
        "",
        f"- {len(ev.eval_ids)} images evaluated, {len(ev.calib_ids)} calibration images; observer `{observer}`",
        f"- low-bit ratios {', '.join(f'{r:.3f}' for r in ratios)} for target BOPs speedups "
        f"{', '.join(f'{t:g}x' for t in targets)} over W4A8 on `{args.spec}` at {ev.image_hw[0]}x{ev.image_hw[1]}",
        "",
        table_markdown(df, args.spec),
        "",
    ])
    (out / "table.md").write_text(text)
    print(text)
    if args.sweep_trials:
        from mixaq.search.cli import main as mixaq

        sweep = ["sweep", "--checkpoint", args.checkpoint, "--coco-root", args.coco_root, "--ann", args.ann,
                 "--device", args.device, "--loader-workers", str(args.workers), "--calib-images", str(args.calib),
                 "--n-trials", str(args.sweep_trials), "--objectives", f"{args.metric},speedup_bops",
                 "--observer", observer, "--spec", args.spec,
                 "--out", str(out / "sweep")]
        if args.max_images:
            sweep += ["--max-images", str(args.max_images)]
        if args.detector:
            sweep += ["--detector", args.detector]
        return mixaq(sweep)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
