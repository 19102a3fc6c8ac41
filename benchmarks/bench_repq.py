"""PTQ calibration time of RepQ-ViT (`repq`, `repq_minmax`) vs min-max on the default detector,
and (`--ablation`) which part of RepQ-ViT gains or loses AP.

    python -m benchmarks.bench_repq [--repeats 5] [--threads 1]
    python -m benchmarks.bench_repq --ablation [--max-images 100] [--bits 8 4]

Timing: same images (the 32 calibration images of the default val split), same W4 A8/A4 setting;
each calibration is conversion + observer forwards + freezing (the folds' per-channel searches
included). Observers are interleaved round by round so machine load hits them alike; the ratios
(minimum and median of per-round ratios) come from this one run.

Ablation: uniform W4A<bits> with `repq`, then with parts of it swapped for min-max -- the post-softmax
log√2 quantizer (`attn`), the fold (`fold`: per-tensor min-max on qkv_in / fc1_in instead), or
the RepQ-ViT percentile search of a remaining target (q, k, v, proj_in, fc2_in) -- box AP each.
"""
from __future__ import annotations

import argparse
import statistics
import sys

OBSERVERS = ("minmax", "repq", "repq_minmax")
REMAINING = ("q", "k", "v", "proj_in", "fc2_in")
# variant -> targets whose quantizers become per-tensor min-max ("fold" drops the folds)
ABLATIONS: dict[str, tuple[str, ...]] = {
    "repq": (),
    "attn -> minmax": ("attn",),
    "fold -> minmax": ("fold",),
    "remaining -> minmax (= repq_minmax)": REMAINING,
    "only fold (attn, remaining -> minmax)": ("attn", *REMAINING),
    "only log2 attn (fold, remaining -> minmax)": ("fold", *REMAINING),
    **{f"{t} -> minmax": (t,) for t in REMAINING},
}


def ablation(ev, bits: int) -> dict[str, float]:  # noqa: ANN001 (models.detection.Evaluator)
    """Box AP of each ABLATIONS variant at W4A<bits> (calibrated on the evaluator's images)."""
    import copy

    import torch

    from mixaq.models import QuantConfig, calibrating, convert_swin
    from mixaq.models._two_branch import FOLDED_TARGETS, converted_blocks

    out = {}
    for i, (name, swapped) in enumerate(ABLATIONS.items()):
        # A distinct (unused) percentile makes each variant its own evaluator cache entry.
        quant = QuantConfig(bits, bits, 4, observer="repq", percentile=90.0 + i / 10)
        model = convert_swin(copy.deepcopy(ev.model), quant).eval()
        for _, block in converted_blocks(model):
            targets = [t for t in swapped if t != "fold"]
            if "fold" in swapped:
                block.repq = None
                targets += list(FOLDED_TARGETS)
            for branch in block.act_quant.values():
                for target in targets:
                    branch[target].configure(bits, False, "minmax", quant.percentile, False, "uniform")
        with torch.no_grad(), calibrating(model):
            for start in range(0, len(ev.calib_ids), ev.batch_size):
                model([ev._image(j) for j in ev.calib_ids[start:start + ev.batch_size]])
        ev._cache[(quant, None)] = model
        out[name] = ev.evaluate(quant).ap
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_repq", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ablation", action="store_true", help="AP of RepQ-ViT with its parts swapped for min-max")
    parser.add_argument("--max-images", type=int, default=100, help="evaluated images (--ablation)")
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 4], help="activation bits (--ablation)")
    args = parser.parse_args([] if argv is None else argv)

    from mixaq.models import QuantConfig
    from mixaq.models.evaluation._evaluate import Evaluator

    if args.ablation:
        ev = Evaluator(max_images=args.max_images, threads=args.threads)
        minmax = {bits: ev.evaluate(QuantConfig(bits, bits, 4)).ap for bits in args.bits}
        print(f"box AP x100, {len(ev.eval_ids)} images, float {100 * ev.evaluate(None).ap:.1f}")
        print(f"{'variant':<45} " + " ".join(f"{f'W4A{b}':>7}" for b in args.bits))
        print(f"{'minmax':<45} " + " ".join(f"{100 * minmax[b]:7.1f}" for b in args.bits))
        rows = {bits: ablation(ev, bits) for bits in args.bits}
        for name in ABLATIONS:
            print(f"{name:<45} " + " ".join(f"{100 * rows[b][name]:7.1f}" for b in args.bits))
        return 0

    ev = Evaluator(max_images=1, threads=args.threads)
    seconds: dict[str, list[float]] = {o: [] for o in OBSERVERS}
    for _ in range(args.repeats):
        for observer in OBSERVERS:
            quant = QuantConfig(8, 4, 4, observer=observer)
            ev._cache.pop((quant, None), None)  # calibrate afresh
            ev._quantized(quant)
            seconds[observer].append(ev.calibration_seconds[(quant, None)])
    print(f"calibration on {len(ev.calib_ids)} images, W4 A8/A4, {args.threads} torch thread(s), "
          f"{args.repeats} interleaved rounds")
    print(f"{'observer':<12} {'min s':>7} {'median s':>9} {'ratio of minima':>16} {'median ratio':>13}")
    base = seconds["minmax"]
    for observer, values in seconds.items():
        ratios = [v / b for v, b in zip(values, base)]
        print(f"{observer:<12} {min(values):7.2f} {statistics.median(values):9.2f} "
              f"{min(values) / min(base):15.2f}× {statistics.median(ratios):12.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
