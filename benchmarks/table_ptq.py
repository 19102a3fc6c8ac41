"""The PTQ results table of the README: measured mAP and simulated BOPs speedup on the default model.

    python -m benchmarks.table_ptq --out docs/results_ptq.md [--csv results.csv] [--max-images N]
                                   [--observers minmax,repq]

Everything in the table is computed in this run (COCOeval on the fake-quantized detector, the
simulator for the cost); nothing is copied from elsewhere.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.table_ptq", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the embedded default model")
    parser.add_argument("--data", default=None, help="default: the default model's synthetic val split")
    parser.add_argument("--max-images", type=int, default=None)
    parser.add_argument("--calib-images", "--calib", dest="calib_images", type=int, default=32)
    parser.add_argument("--spec", default="bitfusion")
    parser.add_argument("--observers", default="minmax,repq",
                        help="PTQ observers (minmax, percentile, mse, repq, repq_minmax), one table each and side by side")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the random selection")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    parser.add_argument("--csv", default=None, help="also write every row as CSV")
    args = parser.parse_args(argv)

    from mixaq.models.evaluation._evaluate import Evaluator
    from mixaq.models._config import OBSERVERS
    from benchmarks._ptq_table import ptq_table, side_by_side, table_markdown

    start = time.perf_counter()
    ev = Evaluator(args.checkpoint, args.data, max_images=args.max_images, calib_images=args.calib_images,
                   threads=args.threads)
    observers = [o.strip() for o in args.observers.split(",") if o.strip()]
    bad = [o for o in observers if o not in OBSERVERS]
    if bad:
        parser.error(f"--observers: unknown {bad} (known: {', '.join(OBSERVERS)})")
    sections, frames, calib = [], {}, {}
    for observer in observers:
        df = ptq_table(ev, spec=args.spec, observer=observer, random_seeds=tuple(range(args.seeds)))
        df.insert(0, "observer", observer)
        frames[observer] = df
        calib[observer] = {f"W{q.weight_bits}A{q.high_act_bits}/A{q.low_act_bits}": s
                           for (q, _), s in ev.calibration_seconds.items() if q.observer == observer}
        sections += [f"## PTQ observer: `{observer}`", "", table_markdown(df, args.spec), ""]
    timing = ["| observer | " + " | ".join(next(iter(calib.values()))) + " |",
              "|---|" + "---|" * len(next(iter(calib.values())))]
    timing += [f"| {o} | " + " | ".join(f"{s:.1f} s" for s in c.values()) + " |" for o, c in calib.items()]
    extra = ev.extra
    header = [
        "# PTQ results on the embedded default model" if args.checkpoint is None else f"# PTQ results: {args.checkpoint}",
        "",
        f"Produced by `python -m benchmarks.table_ptq {' '.join(sys.argv[1:] if argv is None else argv)}` "
        f"on {dt.date.today().isoformat()} "
        f"({time.perf_counter() - start:.0f} s on this machine's CPU).",
        "",
        f"- detector: `{ev.checkpoint.name}`, Swin `{ev.config.arch}` + FPN + {ev.config.head.upper()}, "
        f"input {ev.image_hw[0]}×{ev.image_hw[1]}; trained {extra.get('steps_done', '?')} steps",
        f"- evaluation: {ev.eval_ids.__len__()} val images (COCOeval box AP, shown ×100), "
        f"PTQ calibration on {len(ev.calib_ids)} other images (per-tensor activation ranges from the "
        "observer named per table; `repq` = RepQ-ViT: folded per-channel post-LN quantizers and log√2 attention, "
        "docs/models.md), per-channel min-max 4-bit weights; all activations of every Swin block quantized, "
        "FPN and head in float",
        f"- cost: simulated on `{args.spec}`; BOPs and latency of the Swin backbone, speedups over uniform W4A8",
        f"- random selection: mean ± std over {args.seeds} seeds",
        "",
        "## Side by side (AP ×100; Δ float = AP − float AP)",
        "",
        side_by_side(frames),
        "",
        f"## Calibration time ({len(ev.calib_ids)} images; model conversion + observer forwards + freezing)",
        "",
        *timing,
        "",
        *sections,
    ]
    text = "\n".join(header)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.csv:
        import pandas as pd

        pd.concat(frames.values()).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
