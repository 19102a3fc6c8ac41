"""Images/s of Swin-T Mask R-CNN at 800x1333: float vs uniform W4A8 vs MixA-Q W4A8/A4 at 50 % low-bit windows.

Without a checkpoint (CPU default): a randomly initialised official Swin-T Mask R-CNN (80 classes),
synthetic 800x1333 images, model inference only (decode and resize excluded):

    python -m benchmarks.bench_rcnn --images 3

With a checkpoint and COCO on a GPU machine (docs/gpu_check.md): the `Evaluator` end to end
(data-loader workers decode and resize, inference, COCOeval box + mask AP) on `--images` val images
for each configuration, and with `--full` the float model on all of val2017:

    python -m benchmarks.bench_rcnn --device cuda --checkpoint C --coco-root val2017 --ann instances_val2017.json \
        --images 500 --full --out runs/gpu_check.json

Goals (issue 10): fake-quant <= 1.3x float time on CPU and GPU; val2017 (5000 images) float in
<= 5 min on one H200. Ratios are measured in one run; the output is JSON.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path


def _random_model(device):  # noqa: ANN001, ANN202
    import torch

    from mixaq.models.detection._detector import build_detector
    from mixaq.models.detection._rcnn_config import RCNNConfig

    torch.manual_seed(0)
    return build_detector(RCNNConfig()).eval().to(device)  # Swin-T, FPN 256, 80 classes


def _samples(n: int):  # noqa: ANN202
    from mixaq.models.detection._preprocess import prepare_bgr
    from mixaq.models.data._synth import render_sample

    return [prepare_bgr(render_sample(11, i, (800, 1333)).image[:, :, ::-1], (1333, 800)) for i in range(n)]


def _timed(model, samples, repeats: int, sync) -> float:  # noqa: ANN001
    """Best-of-`repeats` seconds per image (one warm-up pass first)."""
    import torch

    with torch.no_grad():
        model(samples[:1])
        sync()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            model(samples)
            sync()
            best = min(best, (time.perf_counter() - start) / len(samples))
    return best


def bench_random(n_images: int, repeats: int, device: str, threads: int | None) -> dict:
    import torch

    from mixaq.models import MixConfig, QuantConfig, calibrating, convert_swin, set_mix
    from mixaq.models._device import resolve_device

    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)  # noqa: E731
    model = _random_model(dev)
    samples = _samples(n_images)
    seconds = {"float": _timed(model, samples, repeats, sync)}
    for name, quant, mix in (("uniform W4A8", QuantConfig(8, 8, 4), None),
                             ("MixA-Q W4A8/A4 50%", QuantConfig(8, 4, 4), MixConfig(low_ratios=0.5))):
        q = convert_swin(copy.deepcopy(model), quant).eval()
        with torch.no_grad(), calibrating(q):
            q(samples[:1])
        set_mix(q, mix)
        seconds[name] = _timed(q, samples, repeats, sync)
    return {"setting": "random Swin-T Mask R-CNN, synthetic 800x1333 images, inference only",
            "device": str(dev), "threads": torch.get_num_threads(), "images": n_images, "repeats": repeats,
            "images_per_s": {k: round(1.0 / v, 3) for k, v in seconds.items()},
            "time_vs_float": {k: round(v / seconds["float"], 3) for k, v in seconds.items()}}


def bench_checkpoint(args: argparse.Namespace) -> dict:
    from mixaq.models import MixConfig, QuantConfig
    from mixaq.models.evaluation._evaluate import Evaluator

    ev = Evaluator(args.checkpoint, args.coco_root, ann=args.ann, max_images=args.images, calib_images=args.calib,
                   device=args.device, workers=args.workers, threads=args.threads, progress=True)
    out = {"setting": f"{Path(args.checkpoint).name}, {len(ev.eval_ids)} COCO images, Evaluator end to end",
           "device": str(ev.device), "images": len(ev.eval_ids), "runs": {}}
    for name, quant, mix in (("float", None, None), ("uniform W4A8", QuantConfig(8, 8, 4), None),
                             ("MixA-Q W4A8/A4 50%", QuantConfig(8, 4, 4), MixConfig(low_ratios=0.5))):
        if quant is not None:
            ev._quantized(quant, None)  # calibrate outside the timing
        r = ev.evaluate(quant, mix)
        out["runs"][name] = {"seconds": round(r.seconds, 2), "images_per_s": round(r.n_images / r.seconds, 3),
                             "ap": round(r.ap, 4), "ap_segm": round(r.ap_segm, 4)}
    base = out["runs"]["float"]["seconds"]
    out["time_vs_float"] = {k: round(v["seconds"] / base, 3) for k, v in out["runs"].items()}
    if args.full:
        full = Evaluator(args.checkpoint, args.coco_root, ann=args.ann, calib_images=0, device=args.device,
                         workers=args.workers, threads=args.threads, progress=True)
        r = full.evaluate(None, None)
        out["val2017_float"] = {"images": r.n_images, "seconds": round(r.seconds, 1), "minutes": round(r.seconds / 60, 2),
                                "ap": round(r.ap, 4), "ap_segm": round(r.ap_segm, 4), "goal_minutes": 5.0}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_rcnn", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=1, help="timed passes (random model; best is kept)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--checkpoint", default=None, help="with --coco-root/--ann: measure the real model on COCO")
    parser.add_argument("--coco-root", default=None)
    parser.add_argument("--ann", default=None)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--calib", type=int, default=32)
    parser.add_argument("--full", action="store_true", help="also time the float model on the whole split")
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args([] if argv is None else argv)  # `python -m benchmarks` calls main()
    if args.checkpoint:
        result = bench_checkpoint(args)
    else:
        result = bench_random(args.images, args.repeats, args.device, args.threads)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
