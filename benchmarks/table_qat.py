"""The QAT/SAQA results table: measured mAP and simulated BOPs speedup of trained quantized models.

    python -m benchmarks.table_qat --qat-w4a4 Q4.pt [--qat-w4a3 Q3.pt] [--qat-w4a2 Q2.pt] [--saqa S.pt]
        [--float CKPT] [--out docs/results_qat.md] [--csv rows.csv] [--max-images N]

The checkpoints come from `mixaq qat` / `mixaq adapt` (see docs/qat.md). Everything in the table is
computed in this run: COCOeval on the fake-quantized detector with its trained quantizers, the
simulator for the cost, and the simulator again to choose the ratios that reach each target speedup.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.table_qat", description=__doc__.splitlines()[0])
    parser.add_argument("--float", dest="float_model", default=None,
                        help="the float detector the QAT runs started from (default: the embedded default model)")
    parser.add_argument("--qat-w4a4", required=True, help="`mixaq qat` checkpoint, W4A4 (SAQA's starting point)")
    parser.add_argument("--qat-w4a3", default=None, help="`mixaq qat --act-bits 3` checkpoint")
    parser.add_argument("--qat-w4a2", default=None, help="`mixaq qat --act-bits 2` checkpoint")
    parser.add_argument("--saqa", default=None, help="`mixaq adapt` checkpoint (W4 A4/A2)")
    parser.add_argument("--data", default=None, help="default: the default model's synthetic val split")
    parser.add_argument("--targets", default="1.25,1.35,1.5", help="BOPs speedups over uniform W4A4 to match")
    parser.add_argument("--prune-per-low", type=float, default=0.5,
                        help="pruning rows: prune ratio = this x low ratio in every pair")
    parser.add_argument("--no-sparsevit", action="store_true", help="skip the pruning-only rows")
    parser.add_argument("--max-images", type=int, default=None)
    parser.add_argument("--calib-images", "--calib", dest="calib_images", type=int, default=32)
    parser.add_argument("--spec", default="bitfusion")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    parser.add_argument("--csv", default=None, help="also write every row as CSV")
    parser.add_argument("--cache", default=None,
                        help="CSV of an earlier run: rows with the same checkpoint file and setting are reused")
    parser.add_argument("--note", action="append", default=[], help="a line added under the header (repeatable)")
    args = parser.parse_args(argv)

    import torch

    from mixaq.models.detection._checkpoint import load_checkpoint
    from mixaq.models.evaluation._evaluate import DEFAULT_CHECKPOINT, ensure_default_val, val_generator
    from mixaq.models.data._coco import resolve_data
    from mixaq.models.qat._table import TableCheckpoints, qat_markdown, qat_table

    torch.set_num_threads(max(1, args.threads))
    start = time.perf_counter()
    path = lambda p: None if p is None else Path(p)  # noqa: E731
    ckpts = TableCheckpoints(float_model=path(args.float_model) or DEFAULT_CHECKPOINT, qat_w4a4=Path(args.qat_w4a4),
                             qat_w4a3=path(args.qat_w4a3), qat_w4a2=path(args.qat_w4a2), saqa=path(args.saqa))
    # default data: the val split of the generator the float model was trained on
    data = resolve_data(args.data if args.data else
                        ensure_default_val(generator=val_generator(load_checkpoint(ckpts.float_model).get("extra"))))
    targets = tuple(float(t) for t in args.targets.split(","))
    import pandas as pd

    cache = pd.read_csv(args.cache) if args.cache and Path(args.cache).is_file() else None
    df = qat_table(ckpts, data, spec=args.spec, targets=targets, prune_per_low=args.prune_per_low,
                   max_images=args.max_images, calib_images=args.calib_images, sparsevit=not args.no_sparsevit, cache=cache)
    reused = int(df.reused.astype(bool).sum())
    command = "python -m benchmarks.table_qat " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    first = df.iloc[0]
    lines = [
        "# QAT and SAQA results on the embedded default model" if args.float_model is None
        else f"# QAT and SAQA results: {args.float_model}",
        "",
        f"Produced on {dt.date.today().isoformat()} by (this CPU, {time.perf_counter() - start:.0f} s):",
        "",
        "```",
        command,
        "```",
        "",
        f"- evaluation: {int(first.n_images)} val images of the default synthetic split (COCOeval box AP, ×100); "
        f"uniform / high branches and restored low branches use the trained LSQ steps, a branch without trained "
        f"steps (MixA-Q without SAQA: the 2-bit low branch) is calibrated on {args.calib_images} other images (MSE observer)",
        f"- cost: the Swin backbone on `{args.spec}`, speedups over uniform W4A4 from the windows each model "
        "actually ran (recorded); `target` is the BOPs speedup the per-pair ratios were chosen for "
        "(every pair the same ratio, smallest on a 0.001 grid that reaches it)",
        f"- pruning rows: prune ratio = {args.prune_per_low} × low ratio; pruning-only rows prune the "
        "least important windows of the QAT W4A4 model (SparseViT's rule, no low-bit windows)",
        *([f"- {reused} of {len(df)} rows were measured by an earlier run on the same checkpoint files "
            f"(`--cache {args.cache}`); the command above without `--cache` re-measures all"] if reused else []),
        *[f"- {n}" for n in args.note],
        "",
        qat_markdown(df, args.spec),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
