"""`mixaq eval`: measured fake-quant box (and mask) mAP of one precision configuration, plus its simulated cost."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from mixaq.models._config import OBSERVERS, STRATEGIES
from mixaq.core._util import json_ready
from mixaq.models._config import IMPORTANCE, MINMAX

__all__ = ["add_arguments", "run", "parse_bits", "build_configs", "cost_summary"]


_AUTO = "auto"


def parse_bits(text: str) -> int | None:
    """'8' -> 8; 'float' / 'none' / 'fp32' -> None (float pass-through)."""
    if text.lower() in ("float", "none", "fp32", "fp"):
        return None
    if text == _AUTO:
        return _AUTO
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bits must be an integer or 'float', got {text!r}") from None


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None


def _scale(text: str) -> tuple[int, int]:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        values = ()
    if len(values) != 2 or min(values) < 32:
        raise argparse.ArgumentTypeError(f"expected LONG,SHORT edge limits >= 32 px, e.g. 1333,800; got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model and data")
    from mixaq.models._device import DEVICE_HELP
    from mixaq.models.detection._registry import FAMILY_NAMES

    g.add_argument("--checkpoint", default=None,
                   help="detector checkpoint: ours, or an official-release / mmdet-zoo Swin (Cascade) Mask R-CNN "
                        "file (default: the embedded default model)")
    g.add_argument("--detector", default=None, choices=FAMILY_NAMES,
                   help="force the detector family of --checkpoint (default: inferred from the file)")
    g.add_argument("--data", default=None, help="dataset dir with images/ and annotations.json "
                   "(default: the default model's synthetic val split, generated on first use)")
    g.add_argument("--coco-root", default=None, help="image directory of a COCO-format dataset (with --ann)")
    g.add_argument("--ann", default=None, help="COCO instances json (with --coco-root)")
    g.add_argument("--calib-images", "--calib", dest="calib_images", type=int, default=32,
                   help="PTQ calibration images (taken from the end, never evaluated); --calib is an alias")
    g.add_argument("--max-images", type=int, default=None, help="evaluate at most this many images")
    g.add_argument("--batch-size", type=int, default=16)
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    g.add_argument("--device", default="auto", help=DEVICE_HELP)
    g.add_argument("--loader-workers", type=int, default=0,
                   help="data-loader processes decoding images ahead of the model (as `mixaq sweep --loader-workers`)")
    g.add_argument("--test-scale", type=_scale, default=None, metavar="LONG,SHORT",
                   help="keep-ratio test scale of the Mask R-CNN families (default 1333,800, the reference's)")
    q = parser.add_argument_group("precision")
    q.add_argument("--high-bits", "--high-act-bits", type=parse_bits, default=8, help="high-branch activation bits or 'float'")
    q.add_argument("--low-bits", "--low-act-bits", type=parse_bits, default=4, help="low-branch activation bits or 'float'")
    q.add_argument("--weight-bits", type=parse_bits, default=_AUTO,
                   help="weight bits or 'float' (default: 4, or float when both activation widths are float)")
    q.add_argument("--observer", default=MINMAX, choices=OBSERVERS,
                   help="PTQ calibration: a per-tensor activation range observer, or repq (RepQ-ViT: "
                        "folded per-channel post-LN quantizers, log√2 attention, its percentile search "
                        "elsewhere) / repq_minmax (the same with min-max ranges elsewhere); docs/models.md")
    m = parser.add_argument_group("window mix (one value for every block pair, or one per pair)")
    m.add_argument("--low-ratio", type=float, default=None, help="low-bit window ratio of every pair")
    m.add_argument("--low-ratios", type=_floats, default=None, help="per-pair low-bit ratios, e.g. 0.3,0.5,0.7")
    m.add_argument("--prune-ratio", type=float, default=None)
    m.add_argument("--prune-ratios", type=_floats, default=None)
    m.add_argument("--low-threshold", type=float, default=None, help="threshold mode: importance/mean below -> low")
    m.add_argument("--low-thresholds", type=_floats, default=None)
    m.add_argument("--prune-threshold", type=float, default=None)
    m.add_argument("--prune-thresholds", type=_floats, default=None)
    m.add_argument("--strategy", default=IMPORTANCE, choices=STRATEGIES)
    m.add_argument("--seed", type=int, default=0, help="seed of the random strategy")
    o = parser.add_argument_group("output")
    o.add_argument("--spec", default="bitfusion", help="accelerator spec (preset name or YAML path) for the cost")
    o.add_argument("--format", default="table", choices=("table", "json"), type=lambda v: "table" if v == "text" else v,
                   help="table (text; `text` is the old name) or json")
    o.add_argument("--progress", action=argparse.BooleanOptionalAction, default=False, help="inference progress bar")
    o.add_argument("--save-detections", default=None, metavar="OUT.json",
                   help="write the detections in COCO results format (bbox xywh, the annotation file's category "
                        "ids, score, RLE segmentation for mask families)")


def _pick(args: argparse.Namespace, one: str, many: str):  # noqa: ANN202 (float | tuple | None)
    from mixaq.core._errors import MixaqError

    a, b = getattr(args, one), getattr(args, many)
    if a is not None and b is not None:
        raise MixaqError(f"give --{one.replace('_', '-')} or --{many.replace('_', '-')}, not both")
    return a if a is not None else (tuple(b) if b is not None else None)


def build_configs(args: argparse.Namespace):  # noqa: ANN201 (QuantConfig, MixConfig | None)
    """(QuantConfig, MixConfig or None) from the parsed flags."""
    from mixaq.core._errors import MixaqError
    from mixaq.models import MixConfig, QuantConfig

    weight_bits = args.weight_bits
    if weight_bits == _AUTO:
        # `--high-bits float --low-bits float` alone means the float model, weights included.
        weight_bits = None if args.high_bits is None and args.low_bits is None else 4
    quant = QuantConfig(high_act_bits=args.high_bits, low_act_bits=args.low_bits, weight_bits=weight_bits,
                        observer=args.observer)
    ratios = {k: _pick(args, k[:-1], k) for k in ("low_ratios", "prune_ratios")}
    thresholds = {k: _pick(args, k[:-1], k) for k in ("low_thresholds", "prune_thresholds")}
    has_ratio = any(v is not None for v in ratios.values())
    has_threshold = any(v is not None for v in thresholds.values())
    if has_ratio and has_threshold:
        raise MixaqError("ratio flags (--low-ratio…) and threshold flags (--low-threshold…) exclude each other")
    if not (has_ratio or has_threshold):
        return quant, None
    chosen = thresholds if has_threshold else ratios
    mix = MixConfig(mode="threshold" if has_threshold else "ratio", strategy=args.strategy, seed=args.seed,
                    **{k: v for k, v in chosen.items() if v is not None})
    return quant, mix


def cost_summary(spec_name: str, arch, image_hw, assignment) -> dict:  # noqa: ANN001
    """Simulated cost of `assignment` and its speedup over the uniform high-bit model on `spec_name`."""
    from mixaq.simulator import estimate, load_spec, reference_cost

    spec = load_spec(spec_name)
    report = estimate(spec, arch, image_hw, assignment)
    baseline = reference_cost(spec, arch, image_hw, assignment.high_act_bits, assignment.weight_bits)
    return {
        "spec": spec_name,
        "baseline": f"uniform W{assignment.weight_bits}A{assignment.high_act_bits}",
        "totals": json_ready(report.totals),
        "baseline_totals": json_ready(baseline.totals),
        "speedup": json_ready(report.speedup_over(baseline)),
    }


def _check_before_loading(args: argparse.Namespace, quant) -> None:  # noqa: ANN001
    """Options that would otherwise fail only after the model, the data and the whole evaluation
    (the cost on `--spec` is computed last): checked before anything loads."""

    from mixaq import simulator
    from mixaq.core._errors import MixaqError

    for flag, value, least in (("--max-images", args.max_images, 1), ("--calib-images", args.calib_images, 0),
                               ("--batch-size", args.batch_size, 1), ("--threads", args.threads, 1)):
        if value is not None and value < least:
            raise MixaqError(f"{flag} must be >= {least}, got {value}")
    for flag, path in (("--checkpoint", args.checkpoint), ("--data", args.data), ("--coco-root", args.coco_root),
                       ("--ann", args.ann)):
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{flag} {path} does not exist")
    from mixaq.models._device import check_device_name
    from mixaq.core._paths import check_out_file

    check_device_name(args.device)
    if args.loader_workers < 0:
        raise MixaqError(f"--loader-workers must be >= 0, got {args.loader_workers}")
    if args.save_detections is not None:
        check_out_file(args.save_detections, "--save-detections")
    spec = simulator.load_spec(args.spec)
    for flag, bits in (("--high-bits", quant.high_act_bits), ("--low-bits", quant.low_act_bits),
                       ("--weight-bits", quant.weight_bits)):
        if bits is not None:
            spec.check_bits(flag, bits)


def run(args: argparse.Namespace) -> int:
    from mixaq.core._errors import MixaqError
    from mixaq.models.evaluation._evaluate import Evaluator

    quant, mix = build_configs(args)
    if (args.coco_root is None) != (args.ann is None):
        raise MixaqError("--coco-root and --ann go together")
    if args.data is not None and args.coco_root is not None:
        raise MixaqError("give --data or --coco-root/--ann, not both")
    _check_before_loading(args, quant)
    evaluator = Evaluator(args.checkpoint, args.coco_root if args.ann else args.data, ann=args.ann,
                          max_images=args.max_images, calib_images=args.calib_images, batch_size=args.batch_size,
                          threads=args.threads, progress=args.progress, detector=args.detector,
                          device=args.device, workers=args.loader_workers, test_scale=args.test_scale)
    all_float = quant.high_act_bits is None and quant.low_act_bits is None and quant.weight_bits is None
    result = evaluator.evaluate(None if all_float and mix is None else quant, mix,
                                keep_detections=args.save_detections is not None)
    if args.save_detections is not None:
        from mixaq.core._paths import atomic_write_text

        atomic_write_text(args.save_detections, json.dumps(list(result.detections)))
    a = result.assignment
    out = {
        **result.stats(),
        "segm": result.segm_stats() if result.has_segm else None,
        "detector": evaluator.config.head,
        "device": str(evaluator.device),
        "n_images": result.n_images,
        "seconds": round(result.seconds, 3),
        "checkpoint": str(evaluator.checkpoint),
        "quant": {"high_act_bits": quant.high_act_bits, "low_act_bits": quant.low_act_bits,
                  "weight_bits": quant.weight_bits, "observer": quant.observer},
        "mix": json_ready(mix) if mix is not None else None,
        "windows": {"low_fraction": list(a.low_fraction), "pruned_fraction": list(a.pruned_fraction)},
    }
    if None in (a.high_act_bits, a.low_act_bits, a.weight_bits):
        out["cost"] = None  # float tensors have no integer-accelerator cost
    else:
        out["cost"] = cost_summary(args.spec, evaluator.arch, evaluator.image_hw, a)
    if args.format == "json":
        print(json.dumps(json_ready(out), indent=2))
        return 0
    names = {"ap": "AP", "ap50": "AP50", "ap75": "AP75", "ap_small": "APs", "ap_medium": "APm", "ap_large": "APl"}
    print(f"checkpoint {out['checkpoint']}  images {result.n_images}  ({result.seconds:.1f} s)")
    print("box  " + "  ".join(f"{names[k]} {out[k]:.4f}" for k in names))
    if out["segm"] is not None:
        print("mask " + "  ".join(f"{names[k]} {out['segm'][k + '_segm']:.4f}" for k in names))
    bits = lambda b: "float" if b is None else b  # noqa: E731
    print(f"bits: W{bits(quant.weight_bits)} high A{bits(quant.high_act_bits)} low A{bits(quant.low_act_bits)}")
    print("low-bit fraction per block:   " + " ".join(f"{v:.3f}" for v in a.low_fraction))
    print("pruned fraction per block:    " + " ".join(f"{v:.3f}" for v in a.pruned_fraction))
    if out["cost"] is None:
        print("cost: n/a (float tensors)")
    else:
        c = out["cost"]
        t = c["totals"]
        print(f"cost on {c['spec']}: " + "  ".join(f"{k} {t[k]:.4g}" for k in ("bops", "cycles", "latency_ms", "energy_pj")
                                                  if k in t))
        print(f"speedup over {c['baseline']}: " + "  ".join(f"{k} {v:.3f}x" for k, v in c["speedup"].items()))
    return 0
