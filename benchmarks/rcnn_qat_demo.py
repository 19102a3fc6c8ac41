"""Float -> W4A4 PTQ -> 200 QAT steps on a tiny Mask R-CNN (CPU): does QAT recover what PTQ loses?

    python -m benchmarks.rcnn_qat_demo --out runs/rcnn_qat_demo [--float-steps 500 --qat-steps 200]

1. A COCO file with masks is written: filled polygons of three classes told apart by shape only
   (random colours), among unannotated pentagons / hexagons on noise, `--train` training images and
   `--val` validation images (another seed), 160-200 px a side.
2. A tiny Swin Mask R-CNN (embed 32, depths 2-2-2-2, FPN 64) is trained in float from random weights
   with mmdet's losses (`rcnn_losses`), the configs' AdamW groups and stochastic depth 0.2, the train
   pipeline with the crop policy off (the images are smaller than its 384 px crops), lr 1e-3 cosine.
3. Box / mask AP on the val split: float, W4A4 PTQ (MSE observers, 8 calibration images), then
   `mixaq qat` (`fine_tune`, LSQ, uniform W4A4) for `--qat-steps` steps from the float model, and its AP.

Prints one line per model and writes OUT/result.json. One seed, tiny data: a must-show that the
pipeline works end to end, not an accuracy claim.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

CLASSES = ("circle", "square", "triangle")
ARCH = dict(embed_dim=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=7)
SCALES = [[224, 160], [256, 192]]  # (long, short) training scales; test scale (256, 192)


def write_coco(out: Path, n: int, seed: int) -> tuple[Path, Path]:
    """`n` images with 1-4 filled polygons each: the class is the shape (circle ~ 24-gon, square,
    triangle), the colour is random, the background is noise with 2-5 unannotated pentagons and
    hexagons of random colours (so the backbone has to tell shapes apart); polygon masks, one RLE each."""
    import numpy as np
    import pycocotools.mask as mask_util
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []

    def polygon(k: int, r: float, w: int, h: int):  # noqa: ANN202
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        angles = rng.uniform(0, 2 * np.pi) + np.arange(k) * 2 * np.pi / k
        return np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)

    def colour() -> tuple[int, int, int]:
        return tuple(int(v) for v in rng.integers(40, 256, 3))

    for i in range(n):
        h, w = int(rng.integers(160, 201)), int(rng.integers(160, 201))
        img = Image.fromarray(rng.integers(0, 110, (h, w, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(2, 6))):  # distractors, drawn first (objects may cover them)
            draw.polygon([tuple(p) for p in polygon(int(rng.integers(5, 7)), rng.uniform(8, 26), w, h)], fill=colour())
        images.append({"id": i + 1, "file_name": f"{i:05d}.png", "height": h, "width": w})
        for j in range(int(rng.integers(1, 5))):
            label = int(rng.integers(3))
            poly = polygon((24, 4, 3)[label], rng.uniform(10, 32), w, h)
            draw.polygon([tuple(p) for p in poly], fill=colour())
            flat = poly.reshape(-1).tolist()
            rle = mask_util.merge(mask_util.frPyObjects([flat], h, w))
            x, y, bw, bh = mask_util.toBbox(rle).tolist()
            seg = [flat] if j else {"size": rle["size"], "counts": rle["counts"].decode()}
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": label + 1, "bbox": [x, y, bw, bh],
                         "area": float(mask_util.area(rle)), "iscrowd": 0, "segmentation": seg})
        img.save(out / "images" / f"{i:05d}.png")
    cats = [{"id": k + 1, "name": name} for k, name in enumerate(CLASSES)]
    ann = out / "instances.json"
    ann.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return out / "images", ann


def train_float(images: Path, ann: Path, out: Path, steps: int, batch: int, seed: int = 0) -> dict:
    """Float training of the tiny Mask R-CNN on the shared loop's pieces; writes a mixaq checkpoint."""
    import math

    import torch

    from mixaq.models._training import make_optimizer, optimizer_step
    from mixaq.models.detection._checkpoint import save_checkpoint
    from mixaq.models.detection._detector import build_detector
    from mixaq.models.detection._rcnn_config import RCNNConfig
    from mixaq.models.detection._rcnn_data import RCNNTrainData, collate_rcnn
    from mixaq.models.detection._rcnn_loss import rcnn_losses
    from mixaq.models.detection._rcnn_train import rcnn_no_decay, set_drop_path

    torch.manual_seed(seed)
    config = RCNNConfig(arch=ARCH, num_classes=3, fpn_channels=64, fc_channels=128, mask_channels=32,
                        test={"scale": (256, 192)})
    model = build_detector(config)
    set_drop_path(model, 0.2)
    model.train()
    data = RCNNTrainData(images, ann, scales=[tuple(s) for s in SCALES], seed=seed, repeats=1000, crop_scales=None)
    opt = make_optimizer(model, 1e-3, 0.05, no_decay=rcnn_no_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    began, losses = time.perf_counter(), []
    for step in range(steps):
        lr = 1e-3 * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * step / steps))
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_scale"]
        batch_items = [data[step * batch + k] for k in range(batch)]
        b = collate_rcnn(batch_items, config.test.mean, config.test.std, config.test.pad_divisor)
        loss = optimizer_step(rcnn_losses(model, b), opt, params, 5.0, "float training diverged", "lower the lr")
        losses.append(float(loss.detach()))
        if step % 50 == 0 or step == steps - 1:
            print(f"  float step {step}: loss {sum(losses[-50:]) / len(losses[-50:]):.3f}", flush=True)
    set_drop_path(model, 0.0)
    model.eval()
    save_checkpoint(out, model, config, [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)])
    return {"steps": steps, "batch": batch, "seconds": round(time.perf_counter() - began, 1),
            "loss_first_50": round(sum(losses[:50]) / min(50, len(losses)), 4),
            "loss_last_50": round(sum(losses[-50:]) / min(50, len(losses)), 4)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rcnn_qat_demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/rcnn_qat_demo")
    parser.add_argument("--train", type=int, default=400)
    parser.add_argument("--val", type=int, default=80)
    parser.add_argument("--float-steps", type=int, default=500)
    parser.add_argument("--qat-steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--act-bits", type=int, default=4, help="activation bits of PTQ and QAT (weights: 4)")
    parser.add_argument("--reuse", default=None,
                        help="OUT of an earlier run: its data and float model (no float training here)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    import torch
    import yaml

    from mixaq.models import QuantConfig
    from mixaq.models.evaluation._evaluate import Evaluator
    from mixaq.models.qat._config import load_finetune_config
    from mixaq.models.qat._loop import fine_tune

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    result: dict = {"command": "python -m benchmarks.rcnn_qat_demo " + " ".join(sys.argv[1:] if argv is None else argv)}
    if args.reuse:
        base = Path(args.reuse)
        train_images, train_ann = base / "train" / "images", base / "train" / "instances.json"
        val_images, val_ann = base / "val" / "images", base / "val" / "instances.json"
        float_ckpt = base / "float.pth"
        result["float_training"] = json.loads((base / "result.json").read_text()).get("float_training") \
            if (base / "result.json").is_file() else f"reused {float_ckpt}"
    else:
        train_images, train_ann = write_coco(out / "train", args.train, seed=1)
        val_images, val_ann = write_coco(out / "val", args.val, seed=2)
        float_ckpt = out / "float.pth"
        result["float_training"] = train_float(train_images, train_ann, float_ckpt, args.float_steps, args.batch)

    def ap(ckpt: Path, quant) -> dict:  # noqa: ANN001
        ev = Evaluator(str(ckpt), str(val_images), ann=str(val_ann), calib_images=8, device="cpu", threads=args.threads)
        r = ev.evaluate(quant, None)
        return {"box_ap": round(100 * r.ap, 2), "mask_ap": round(100 * r.ap_segm, 2)}

    a = args.act_bits
    quant, name = QuantConfig(a, a, 4, observer="mse", weight_observer="mse"), f"W4A{a}"  # as QAT starts
    result["float"] = ap(float_ckpt, None)
    print(f"float: box AP {result['float']['box_ap']}, mask AP {result['float']['mask_ap']}", flush=True)
    result["ptq"] = {"bits": name, **ap(float_ckpt, quant)}
    print(f"{name} PTQ: box AP {result['ptq']['box_ap']}, mask AP {result['ptq']['mask_ap']}", flush=True)
    cfg = {"data": {"images": str(train_images), "ann": str(train_ann), "scales": SCALES, "crop": False},
           "quant": {"high_act_bits": a, "low_act_bits": a, "weight_bits": 4, "observer": "mse", "weight_observer": "mse"},
           "train": {"seed": 3, "steps": args.qat_steps, "batch_size": args.batch, "lr": 1e-4, "quant_lr": 1e-3,
                     "warmup_steps": 10, "checkpoint_every": args.qat_steps, "log_every": 10, "calib_images": 8,
                     "threads": args.threads, "grad_clip": 0.0}}
    (out / "qat.yaml").write_text(yaml.safe_dump(cfg))
    summary = fine_tune(float_ckpt, out / "qat.pth", load_finetune_config(out / "qat.yaml"), kind="qat",
                        progress=False, device="cpu")
    records = [json.loads(line) for line in Path(summary["log"]).read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    result["qat"] = {"steps": summary["steps_done"], "seconds": summary["seconds"], "loss_first": round(losses[0], 4),
                     "loss_last": round(losses[-1], 4), **ap(out / "qat.pth", quant)}
    print(f"{name} QAT {summary['steps_done']} steps: box AP {result['qat']['box_ap']}, mask AP {result['qat']['mask_ap']} "
          f"(loss {losses[0]:.3f} -> {losses[-1]:.3f})", flush=True)
    result["seconds"] = round(time.perf_counter() - began, 1)
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
