"""LSQ against OFQ on the same budget: uniform QAT W4A4 / W4A2 and MixA-Q W4 A4/A2 after SAQA, with each
method's oscillation counts.

    python -m benchmarks.table_ofq --lsq DIR --ofq DIR [--max-images N] [--targets 1.25,1.5] [--out FILE]

Each DIR holds `qat_w4a4_<m>.pt`, `qat_w4a2_<m>.pt` and `saqa_<m>.pt` (m = lsq / ofq), as written by
the commands in docs/qat.md ("LSQ against OFQ"). Everything in the table is computed in this run:
COCOeval box AP on the first N val images of the default split with each checkpoint's trained
quantizers (an OFQ checkpoint brings its StatsQ weights and QKR attention), the simulator for the
MixA-Q ratios matched to each BOPs speedup over uniform W4A4 (every pair the same low ratio, no
pruning), and the oscillation counts each run logged (`extra["qat"]["oscillation"]`: weights whose
integer code changed against the direction of their previous change, per step, summed over layers).
"""
from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
import time
from pathlib import Path

METHODS = ("lsq", "ofq")


def oscillation(extra: dict) -> tuple[float, float, int]:
    """(oscillated weights per step, switched per step, weights tracked) summed over a run's layers."""
    layers = (extra.get("qat") or {}).get("oscillation") or {}
    if not layers:
        return float("nan"), float("nan"), 0
    steps = max(t["steps"] for t in layers.values()) or 1
    return (sum(t["oscillated"] for t in layers.values()) / steps, sum(t["switched"] for t in layers.values()) / steps,
            sum(t["weights"] for t in layers.values()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.table_ofq", description=__doc__.splitlines()[0])
    for m in METHODS:
        parser.add_argument(f"--{m}", required=True, help=f"folder with qat_w4a4_{m}.pt, qat_w4a2_{m}.pt, saqa_{m}.pt")
    parser.add_argument("--max-images", type=int, default=150)
    parser.add_argument("--calib-images", type=int, default=32)
    parser.add_argument("--targets", default="1.25,1.5", help="BOPs speedups over uniform W4A4 for the MixA-Q rows")
    parser.add_argument("--spec", default="bitfusion")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-start", action="store_true",
                        help="skip the starting-point rows (float model; W4A4 with each method's quantizers, untrained)")
    parser.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    args = parser.parse_args(argv)

    from mixaq.simulator import MixaqError

    files = {(m, k): Path(getattr(args, m)) / f"{k}_{m}.pt" for m in METHODS for k in ("qat_w4a4", "qat_w4a2", "saqa")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        print(f"error: checkpoint not found: {missing[0]}", file=sys.stderr)
        return 2

    import numpy as np
    import torch

    from mixaq.models import MixConfig, QuantConfig
    from mixaq.models.evaluation._evaluate import Evaluator, ensure_default_val
    from mixaq.models.qat._table import matched_ratios

    torch.set_num_threads(max(1, args.threads))
    start = time.perf_counter()
    targets = tuple(float(t) for t in args.targets.split(","))
    data = None
    rows = []
    if not args.no_start:
        # where both runs start: the float model, and W4A4 calibrated with each method's quantizers (step 0)
        ev = Evaluator(None, ensure_default_val(), max_images=args.max_images, calib_images=args.calib_images)
        data = ev.dataset
        nothing = (float("nan"), float("nan"), 0, {})
        rows.append(("float", "embedded default model", "–", ev.evaluate(None).stats()["ap"], *nothing))
        for m, quant in (("lsq", QuantConfig(4, 4, 4, observer="mse", weight_observer="mse")),
                         ("ofq", QuantConfig(4, 4, 4, observer="mse", weight_observer="statsq", qkr=True))):
            rows.append((m, "W4A4 at step 0 (calibrated, untrained)", "–", ev.evaluate(quant).stats()["ap"], *nothing))
    for m in METHODS:
        for kind, quant, label in (("qat_w4a4", QuantConfig(4, 4, 4, observer="mse"), "QAT W4A4"),
                                   ("qat_w4a2", QuantConfig(2, 2, 4, observer="mse"), "QAT W4A2")):
            ev = Evaluator(files[(m, kind)], data or ensure_default_val(), max_images=args.max_images,
                           calib_images=args.calib_images)
            data = ev.dataset
            res = ev.evaluate(quant)
            rows.append((m, label, "–", res.stats()["ap"], *oscillation(ev.extra), ev.extra["qat"]))
        ev = Evaluator(files[(m, "saqa")], data, max_images=args.max_images, calib_images=args.calib_images)
        mixed = QuantConfig(4, 2, 4, observer="mse")
        osc = oscillation(ev.extra)
        rows.append((m, "SAQA, every window high (W4A4)", "–", ev.evaluate(mixed).stats()["ap"], *osc, ev.extra["qat"]))
        for t in targets:
            try:
                low, _, _ = matched_ratios(ev.arch, ev.image_hw, t, spec=args.spec, prune_per_low=0.0)
            except MixaqError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            res = ev.evaluate(mixed, MixConfig(low_ratios=low))
            rows.append((m, f"MixA-Q A4/A2 after SAQA, {t:.2f}× BOPs", f"{low:.3f}", res.stats()["ap"], *osc, ev.extra["qat"]))

    command = "python -m benchmarks.table_ofq " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    lines = [
        "| method | model | low ratio per pair | AP | oscillating weights / step | code changes / step | "
        "weights tracked | training |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m, label, low, ap, osc, switched, weights, q in rows:
        train = q.get("run", {}).get("train", {})
        trained = "–" if not q else (
            f"{q.get('kind', '?').upper()} {q.get('steps_done', '?')} steps ×{train.get('batch_size', '?')}, "
            f"{q.get('seconds', 0) / 60:.1f} min" + (" (stopped early)" if not q.get("finished", True) else ""))
        lines.append(f"| {m.upper() if m in METHODS else m} | {label} | {low} | {100 * ap:.1f} | "
                     f"{'–' if not np.isfinite(osc) else f'{osc:.0f}'} | "
                     f"{'–' if not np.isfinite(switched) else f'{switched:.0f}'} | {weights} | {trained} |")
    text = "\n".join([
        f"Produced on {dt.date.today().isoformat()} ({time.perf_counter() - start:.0f} s) by:", "", "```", command, "```", "",
        f"AP ×100 on the first {args.max_images} val images of the default split (COCOeval box AP); "
        f"ratios matched on `{args.spec}` (every pair the same low ratio, no pruning). "
        "Oscillation: weights whose integer code changed against the direction of their previous change, per "
        "step (run mean over all block linears); code changes: all weights whose code changed, per step.", "", *lines, ""])
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
