"""GPU check for a bare GPU machine: random-weight Swin-T Mask R-CNN at 800x1333, synthetic images.

Needs python3 with torch, torchvision, timm, OpenCV, pandas, numpy, and mixaq installed from the wheel
folder `make gpu-wheels` builds (mixaq without its torch pin, pycocotools, optuna, ...); no network,
no COCO, no checkpoint. Imports only `mixaq.*` (the script travels in the wheel folder):

    python3 -m venv --system-site-packages /tmp/mixaq-gpu
    /tmp/mixaq-gpu/bin/pip install --no-index --find-links gpu-wheels --no-deps gpu-wheels/mixaq-*.whl
    /tmp/mixaq-gpu/bin/pip install --no-index --find-links gpu-wheels -r gpu-wheels/requirements.txt
    /tmp/mixaq-gpu/bin/python gpu-wheels/gpu_check.py --out gpu_check.json

Prints, in order (one line each, then the whole result as JSON):

1. eval images/s of the float model, uniform W4A8 and MixA-Q W4 A8/A4 at 50 % low-bit windows (model
   only: the images are prepared beforehand; detection post-processing and mask pasting included),
   their time relative to float (goal <= 1.3x) and the float time of 5000 images (goal <= 5 min);
2. CUDA-vs-CPU detections on a few images (matched share, max box / score difference);
3. one QAT step (uniform W4A4, LSQ, drop path 0.2, the configs' AdamW groups) at 2 images per GPU:
   seconds per step, peak memory, and the epoch time that implies for 1 and 8 GPUs;
4. with 2+ GPUs: the same step under DistributedDataParallel on 2 processes (NCCL).

`--device cpu --tiny` runs every part on a small model and small images in seconds (the test suite
runs it; the DDP part then uses 2 CPU processes with gloo when `--ddp-cpu` is given).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from typing import Any

COCO_TRAIN_IMAGES = 117_266  # train2017 images with annotations (mmdet's filter_empty_gt)
FULL_HW = (800, 1333)  # (h, w) of the synthetic images: the test scale's landscape size
TINY_HW = (128, 200)


def _config(tiny: bool):  # noqa: ANN202 (RCNNConfig)
    from mixaq.models.detection._rcnn_config import RCNNConfig

    if not tiny:
        return RCNNConfig()  # Swin-T, FPN 256, 80 classes: the official Mask R-CNN
    return RCNNConfig(arch=dict(embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4], window_size=7),
                      num_classes=5, fpn_channels=32, fc_channels=64, mask_channels=16,
                      test={"scale": (max(TINY_HW), min(TINY_HW)), "rpn_nms_pre": 300, "rpn_max_per_img": 100,
                            "max_per_img": 20})


def random_model(tiny: bool, seed: int = 0):  # noqa: ANN201
    """A random Mask R-CNN whose classifier is confident enough to give detections (as the oracle's)."""
    import torch

    from mixaq.models.detection._detector import build_detector

    torch.manual_seed(seed)
    model = build_detector(_config(tiny)).eval()
    with torch.no_grad():
        for name, p in model.backbone.named_parameters():
            if p.ndim == 1:  # LayerNorms away from the identity
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.2)
        model.roi_head.bbox_head.fc_cls.weight.mul_(20.0)
        model.roi_head.mask_head.conv_logits.weight.mul_(30.0)
    return model


def synthetic(n: int, hw: tuple[int, int], offset: int = 0) -> list:
    """(PreparedImage, SynthSample) of `n` synthetic scenes at `hw` (BGR, resized as the test pipeline)."""
    from mixaq.models.data._synth import render_sample
    from mixaq.models.detection._preprocess import prepare_bgr

    out = []
    for i in range(n):
        s = render_sample(11, offset + i, hw)
        out.append((prepare_bgr(s.image[:, :, ::-1].copy(), (max(hw), min(hw))), s))
    return out


def _sync(dev) -> None:  # noqa: ANN001
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def eval_speed(model, samples: list, dev, repeats: int = 1) -> dict[str, Any]:  # noqa: ANN001
    """Seconds per image of float, uniform W4A8 and MixA-Q W4 A8/A4 50 % (best of `repeats`)."""
    import torch

    from mixaq.models import MixConfig, QuantConfig, calibrating, convert_swin, set_mix

    images = [p for p, _ in samples]

    def timed(m) -> float:  # noqa: ANN001
        with torch.no_grad():
            m(images[:1])  # warm-up (kernels, allocator)
            _sync(dev)
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                m(images)
                _sync(dev)
                best = min(best, (time.perf_counter() - start) / len(images))
        return best

    seconds = {"float": timed(model)}
    for name, quant, mix in (("uniform W4A8", QuantConfig(8, 8, 4), None),
                             ("MixA-Q W4 A8/A4 50%", QuantConfig(8, 4, 4), MixConfig(low_ratios=0.5))):
        q = convert_swin(copy.deepcopy(model), quant).eval()
        with torch.no_grad(), calibrating(q):
            q(images[:1])
        set_mix(q, mix)
        seconds[name] = timed(q)
        del q
    return {"images": len(images), "images_per_s": {k: round(1 / v, 2) for k, v in seconds.items()},
            "time_vs_float": {k: round(v / seconds["float"], 3) for k, v in seconds.items()},
            "float_5000_images_min": round(5000 * seconds["float"] / 60, 2),
            "goals": {"time_vs_float_max": 1.3, "float_5000_images_min_max": 5.0}}


def _iou(a, b):  # noqa: ANN001, ANN202
    import torchvision

    return torchvision.ops.box_iou(a, b)


def agreement(model, samples: list, dev) -> dict[str, Any]:  # noqa: ANN001
    """Detections of the model on `dev` against the same model on the CPU: a CPU detection is matched
    by a `dev` detection of the same class with box IoU >= 0.9 (each used once, by score order)."""
    import torch

    cpu_model = copy.deepcopy(model).cpu().eval()
    images = [p for p, _ in samples]
    totals = {"cpu": 0, "device": 0, "matched": 0}
    box_diff = score_diff = 0.0
    with torch.no_grad():
        for im in images:
            ref = cpu_model([im])[0]
            got = {k: v.cpu() for k, v in model([im])[0].items()}
            totals["cpu"] += len(ref["scores"])
            totals["device"] += len(got["scores"])
            if not len(ref["scores"]) or not len(got["scores"]):
                continue
            iou = _iou(ref["boxes"], got["boxes"].to(ref["boxes"].dtype))
            iou[ref["labels"][:, None] != got["labels"][None, :]] = 0
            used = torch.zeros(len(got["scores"]), dtype=torch.bool)
            for i in torch.argsort(ref["scores"], descending=True).tolist():
                cand = iou[i].clone()
                cand[used] = 0
                j = int(cand.argmax())
                if cand[j] >= 0.9:
                    used[j] = True
                    totals["matched"] += 1
                    box_diff = max(box_diff, float((ref["boxes"][i] - got["boxes"][j]).abs().max()))
                    score_diff = max(score_diff, float((ref["scores"][i] - got["scores"][j]).abs()))
    share = totals["matched"] / max(totals["cpu"], totals["device"], 1)
    return {"images": len(images), "detections_cpu": totals["cpu"], "detections_device": totals["device"],
            "matched": totals["matched"], "matched_share": round(share, 4), "max_box_diff_px": round(box_diff, 4),
            "max_score_diff": round(score_diff, 6)}


def train_batch(samples: list, config):  # noqa: ANN001, ANN201 (TrainBatch)
    """The synthetic scenes as a training batch: boxes from the scene, masks filling each box's ellipse."""
    import numpy as np
    import torch

    from mixaq.models.detection._rcnn_data import collate_rcnn
    from mixaq.models.detection._rcnn_loss import TrainTarget

    items = []
    for prepared, s in samples:
        h, w = prepared.image.shape[1:]
        sx, sy = w / s.image.shape[1], h / s.image.shape[0]
        xywh = s.boxes_xywh * np.array([sx, sy, sx, sy], np.float32)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1).astype(np.float32)
        yy, xx = np.mgrid[0:h, 0:w]
        masks = np.stack([(((xx + 0.5 - (b[0] + b[2]) / 2) / max((b[2] - b[0]) / 2, 1)) ** 2
                           + ((yy + 0.5 - (b[1] + b[3]) / 2) / max((b[3] - b[1]) / 2, 1)) ** 2 <= 1).astype(np.uint8)
                          for b in boxes]) if len(boxes) else np.zeros((0, h, w), np.uint8)
        labels = torch.from_numpy(s.labels % config.num_classes)
        items.append((prepared.image, TrainTarget(torch.from_numpy(boxes), labels, torch.from_numpy(masks))))
    return collate_rcnn(items, config.test.mean, config.test.std, config.test.pad_divisor)


def qat_model(model, dev):  # noqa: ANN001, ANN201
    """Uniform W4A4 with learned (LSQ) steps, calibrated on one image on `dev`, drop path 0.2, train mode."""
    import torch

    from mixaq.models import QuantConfig, calibrating, convert_swin, set_mix
    from mixaq.models.detection._rcnn_train import set_drop_path

    q = convert_swin(copy.deepcopy(model).to(dev), QuantConfig(4, 4, 4, learnable=True)).eval()
    with torch.no_grad(), calibrating(q):
        q([synthetic(1, FULL_HW if model.config.num_classes == 80 else TINY_HW, offset=900)[0][0]])
    set_mix(q, None)
    set_drop_path(q, 0.2)
    return q.train()


def qat_step(model, batch, dev, steps: int) -> dict[str, Any]:  # noqa: ANN001
    """Seconds per QAT step (after one warm-up step) and the peak memory of the process on `dev`."""
    import torch

    from mixaq.models._training import make_optimizer, optimizer_step, to_device
    from mixaq.models.detection._rcnn_loss import rcnn_losses
    from mixaq.models.detection._rcnn_train import rcnn_no_decay

    q = qat_model(model, dev)
    opt = make_optimizer(q, 1e-4, 0.05, quant_lr=1e-3, no_decay=rcnn_no_decay)
    params = [p for p in q.parameters() if p.requires_grad]
    batch = to_device(batch, dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times, losses = [], []
    for k in range(steps + 1):
        _sync(dev)
        start = time.perf_counter()
        loss = optimizer_step(rcnn_losses(q, batch), opt, params, 0.0, "QAT step diverged", "")
        _sync(dev)
        losses.append(float(loss.detach()))
        if k:
            times.append(time.perf_counter() - start)
    per_step = sum(times) / len(times)
    out: dict[str, Any] = {"images_per_gpu": len(batch.img_hw), "image_hw": list(batch.images.shape[2:]),
                           "seconds_per_step": round(per_step, 4), "losses": [round(v, 4) for v in losses]}
    if dev.type == "cuda":
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 3)
        out["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved(dev) / 2**30, 3)
    per_image = per_step / len(batch.img_hw)
    out["epoch_hours_1gpu"] = round(COCO_TRAIN_IMAGES * per_image / 3600, 2)
    out["epoch_hours_8gpu_linear"] = round(COCO_TRAIN_IMAGES * per_image / 8 / 3600, 2)
    return out


class _Losses:
    """`module(batch) -> losses`: the loss computation as a forward, so DDP's hooks see it."""

    @staticmethod
    def wrap(model):  # noqa: ANN001, ANN205
        import torch.nn as nn

        from mixaq.models.detection._rcnn_loss import rcnn_losses

        class LossForward(nn.Module):
            def __init__(self, inner: nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, batch):  # noqa: ANN001, ANN202
                return rcnn_losses(self.inner, batch)

        return LossForward(model)


def _ddp_worker(rank: int, world: int, tiny: bool, backend: str, port: int, result_file: str) -> None:
    import torch
    import torch.distributed as dist

    from mixaq.models._training import make_optimizer, optimizer_step
    from mixaq.models.detection._rcnn_train import rcnn_no_decay

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        dev = torch.device(f"cuda:{rank}") if backend == "nccl" else torch.device("cpu")
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        else:
            torch.set_num_threads(1)
        hw = TINY_HW if tiny else FULL_HW
        base = random_model(tiny)  # same seed on every rank: equal initial weights
        q = qat_model(base, dev)
        if any(isinstance(m, torch.nn.BatchNorm2d) for m in q.modules()):
            q = torch.nn.SyncBatchNorm.convert_sync_batchnorm(q)
        ddp = torch.nn.parallel.DistributedDataParallel(_Losses.wrap(q), device_ids=[rank] if dev.type == "cuda" else None,
                                                        find_unused_parameters=True)
        batch = train_batch(synthetic(2, hw, offset=10 * rank), base.config)  # each rank its own 2 images
        opt = make_optimizer(q, 1e-4, 0.05, quant_lr=1e-3, no_decay=rcnn_no_decay)
        params = [p for p in q.parameters() if p.requires_grad]
        times = []
        for _ in range(3):
            _sync(dev)
            start = time.perf_counter()
            optimizer_step(ddp(batch), opt, params, 0.0, "DDP step diverged", "")
            _sync(dev)
            times.append(time.perf_counter() - start)
        check = torch.cat([p.detach().reshape(-1)[:1000] for p in params]).double().sum().reshape(1).to(dev)
        gathered = [torch.zeros_like(check) for _ in range(world)]
        dist.all_gather(gathered, check)
        if rank == 0:
            same = all(torch.equal(g, gathered[0]) for g in gathered)
            out = {"processes": world, "backend": backend, "seconds_per_step": round(sum(times[1:]) / 2, 4),
                   "weights_equal_across_ranks": bool(same)}
            if dev.type == "cuda":
                out["peak_memory_gib_rank0"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 3)
            with open(result_file, "w") as f:
                json.dump(out, f)
    finally:
        dist.destroy_process_group()


def ddp_step(tiny: bool, backend: str) -> dict[str, Any]:
    import socket
    import tempfile

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        result = os.path.join(tmp, "ddp.json")
        mp.spawn(_ddp_worker, args=(2, tiny, backend, port, result), nprocs=2, join=True)
        with open(result) as f:
            return json.load(f)


def write_synthetic_coco(out: str, n: int, hw: tuple[int, int]) -> tuple[str, str]:
    """`n` synthetic scenes as a COCO instances file with masks (an ellipse polygon inside each box)."""
    import numpy as np
    from PIL import Image

    from mixaq.models.data._synth import render_sample

    images_dir = os.path.join(out, "images")
    os.makedirs(images_dir, exist_ok=True)
    images, anns = [], []
    t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    for i in range(n):
        s = render_sample(11, 500 + i, hw)
        Image.fromarray(s.image).save(os.path.join(images_dir, f"{i:03d}.png"))
        images.append({"id": i + 1, "file_name": f"{i:03d}.png", "height": hw[0], "width": hw[1]})
        for (x, y, w, h), label in zip(s.boxes_xywh.tolist(), s.labels.tolist()):
            poly = np.stack([x + w / 2 + w / 2 * np.cos(t), y + h / 2 + h / 2 * np.sin(t)], 1).reshape(-1).tolist()
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": label + 1, "bbox": [x, y, w, h],
                         "area": float(np.pi * w * h / 4), "iscrowd": 0, "segmentation": [poly]})
    cats = [{"id": k + 1, "name": f"class{k}"} for k in range(int(max(a["category_id"] for a in anns)))]
    ann = os.path.join(out, "instances.json")
    with open(ann, "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)
    return images_dir, ann


def mixaq_qat_nproc(tiny: bool, device: str, nproc: int = 2, steps: int = 2) -> dict[str, Any]:
    """`mixaq qat --nproc N` end to end (torch's elastic launcher, one process per device, DDP): a
    random model saved as a checkpoint whose classes fit a synthetic COCO file with masks, 2 steps."""
    import subprocess
    import tempfile

    import torch

    from mixaq.models.detection._checkpoint import save_checkpoint

    hw = TINY_HW if tiny else FULL_HW
    with tempfile.TemporaryDirectory(prefix="mixaq-gpu-check-") as tmp:
        images, ann = write_synthetic_coco(tmp, 2 * nproc, hw)
        with open(ann) as f:
            cats = json.load(f)["categories"]
        from dataclasses import replace

        from mixaq.models.detection._detector import build_detector

        config = replace(_config(tiny), num_classes=len(cats))  # the synthetic scenes' classes
        torch.manual_seed(1)
        model = build_detector(config)
        ckpt = os.path.join(tmp, "float.pth")
        save_checkpoint(ckpt, model, config, cats)
        scales = [[max(hw), min(hw)]]
        cfg = os.path.join(tmp, "qat.yaml")
        with open(cfg, "w") as f:
            json.dump({"data": {"scales": scales, "crop": not tiny},  # JSON is YAML
                       "quant": {"high_act_bits": 4, "low_act_bits": 4, "weight_bits": 4},
                       "train": {"seed": 0, "steps": steps, "batch_size": 2, "lr": 1e-4, "warmup_steps": 1,
                                 "grad_clip": 0.0, "checkpoint_every": steps, "log_every": 1, "calib_images": 2,
                                 "threads": 1}}, f)
        cmd = [sys.executable, "-m", "mixaq.search.cli", "qat", "--nproc", str(nproc), "--checkpoint", ckpt,
               "--data", images, "--ann", ann, "--config", cfg, "--out", os.path.join(tmp, "qat.pth"),
               "--device", device, "--no-progress"]
        began = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        out = {"command": "mixaq qat --nproc %d --device %s (%d steps of 2 images per process)" % (nproc, device, steps),
               "returncode": proc.returncode, "seconds": round(time.perf_counter() - began, 1),
               "checkpoint_written": os.path.isfile(os.path.join(tmp, "qat.pth"))}
        if proc.returncode != 0:
            out["stderr_tail"] = proc.stderr.strip().splitlines()[-3:]
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--tiny", action="store_true", help="small model and images (CPU test of the script)")
    parser.add_argument("--images", type=int, default=None, help="eval images per configuration (default 30; tiny 2)")
    parser.add_argument("--agree-images", type=int, default=None, help="images for CUDA vs CPU (default 3; tiny 1)")
    parser.add_argument("--qat-steps", type=int, default=None, help="timed QAT steps after a warm-up (default 5; tiny 1)")
    parser.add_argument("--ddp-cpu", action="store_true", help="run the 2-process step on the CPU with gloo")
    parser.add_argument("--no-ddp", action="store_true", help="skip the 2-process step")
    parser.add_argument("--out", default=None, help="also write the JSON result here")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    import torch

    import mixaq.models  # noqa: F401  (fails here, in one line, when the wheel is not installed)
    from mixaq.models._device import strict_fp32, resolve_device

    dev = resolve_device(args.device)
    tiny = args.tiny
    hw = TINY_HW if tiny else FULL_HW
    n_eval = args.images or (2 if tiny else 30)
    n_agree = args.agree_images or (1 if tiny else 3)
    n_steps = args.qat_steps or (1 if tiny else 5)
    began = time.perf_counter()
    result: dict[str, Any] = {"torch": torch.__version__, "device": str(dev),
                              "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                              "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
                              "model": "tiny Mask R-CNN" if tiny else "Swin-T Mask R-CNN (random weights)",
                              "image_hw": list(hw)}
    print(f"gpu_check: torch {torch.__version__}, {result['device_name']}, {result['model']} at {hw[0]}x{hw[1]}",
          flush=True)
    model = random_model(tiny).to(dev)
    samples = synthetic(max(n_eval, n_agree, 2), hw)
    with strict_fp32(dev):
        result["eval"] = eval_speed(model, samples[:n_eval], dev)
        e = result["eval"]
        print("eval images/s: " + ", ".join(f"{k} {v}" for k, v in e["images_per_s"].items())
              + " | time vs float: " + ", ".join(f"{k} {v}x" for k, v in e["time_vs_float"].items() if k != "float")
              + f" (goal <= 1.3x) | 5000 images float: {e['float_5000_images_min']} min (goal <= 5)", flush=True)
        result["section_seconds"] = {"eval": round(time.perf_counter() - began, 1)}
        mark = time.perf_counter()
        result["agreement"] = agreement(model, samples[:n_agree], dev)
        result["section_seconds"]["agreement"] = round(time.perf_counter() - mark, 1)
        a = result["agreement"]
        print(f"{dev.type} vs cpu: {a['matched']} of {a['detections_cpu']} cpu / {a['detections_device']} "
              f"{dev.type} detections matched (IoU >= 0.9, same class), max box diff {a['max_box_diff_px']} px, "
              f"max score diff {a['max_score_diff']}", flush=True)
    mark = time.perf_counter()
    batch = train_batch(samples[:2], model.config)
    result["qat_step"] = qat_step(model, batch, dev, n_steps)
    result["section_seconds"]["qat_step"] = round(time.perf_counter() - mark, 1)
    mark = time.perf_counter()
    s = result["qat_step"]
    mem = f", peak memory {s['peak_memory_gib']} GiB (reserved {s['peak_reserved_gib']})" if "peak_memory_gib" in s else ""
    print(f"QAT W4A4 step at {s['images_per_gpu']} images of {s['image_hw'][0]}x{s['image_hw'][1]} (padded): "
          f"{s['seconds_per_step']} s{mem}; epoch of {COCO_TRAIN_IMAGES} images: {s['epoch_hours_1gpu']} h on 1 "
          f"device, {s['epoch_hours_8gpu_linear']} h on 8 (linear)", flush=True)
    del model
    if args.no_ddp:
        result["ddp"] = "skipped (--no-ddp)"
    elif dev.type == "cuda" and result["gpus"] >= 2:
        result["ddp"] = ddp_step(tiny, "nccl")
    elif args.ddp_cpu:
        result["ddp"] = ddp_step(tiny, "gloo")
    else:
        result["ddp"] = f"skipped ({result['gpus']} GPU(s); needs 2)"
    d = result["ddp"]
    print("DDP 2 processes: " + (d if isinstance(d, str) else
                                 f"{d['backend']}, {d['seconds_per_step']} s/step, weights equal across ranks: "
                                 f"{d['weights_equal_across_ranks']}"
                                 + (f", peak memory rank 0 {d['peak_memory_gib_rank0']} GiB" if 'peak_memory_gib_rank0' in d else "")),
          flush=True)
    if isinstance(result["ddp"], dict):
        result["mixaq_qat_nproc"] = mixaq_qat_nproc(tiny, "cuda" if dev.type == "cuda" else "cpu")
        m = result["mixaq_qat_nproc"]
        print(f"{m['command']}: exit {m['returncode']} in {m['seconds']} s, checkpoint written: "
              f"{m['checkpoint_written']}" + (f" | {' '.join(m['stderr_tail'])}" if "stderr_tail" in m else ""),
              flush=True)
    result["section_seconds"]["ddp"] = round(time.perf_counter() - mark, 1)
    result["seconds"] = round(time.perf_counter() - began, 1)
    print(f"gpu_check: done in {result['seconds']} s", flush=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
