"""mixaq's Mask R-CNN / Cascade Mask R-CNN against mmdetection on random small models (the oracle check).

`run_checks(families, workdir)`: a random small Swin detector (embed 32, window 7, FPN 64) built by
mixaq with weights scaled so that detections pass score_thr and masks are not empty, saved in the
official release's format (`{meta, state_dict, optimizer}`, `backbone.layers.*`, relative position
indices); mmdet's own `swin_converter` turns it into the mmdet 3.x format. mmdet runs the mmdet 3.x
file on synthetic PNGs of different sizes; mixaq's `Evaluator` runs both files. Ground truth for the
AP comparison is made from mmdet's confident detections (boxes jittered by a few pixels, masks as
segmentations), so AP is far from 0 and sensitive to any difference. Used by
tests/test_detection_oracle.py and benchmarks/bench_oracle.py.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from benchmarks._mmdet import run_mmdet

__all__ = ["MODEL", "IMAGE_HW", "Agreement", "make_checkpoint", "make_images", "run_checks"]

# The random test model: small enough for a CPU test, every part of the real one present.
MODEL: dict[str, Any] = dict(embed_dim=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=7, num_classes=5,
                             fpn_channels=64, fc_channels=128, mask_channels=32)
# Image sizes (h, w): none a multiple of the window at any stage, portrait and landscape.
IMAGE_HW: tuple[tuple[int, int], ...] = ((240, 320), (333, 250), (200, 410), (301, 301))
CLASS_NAMES = ("circle", "square", "triangle", "star", "cross")


def _config(family: str, scale: tuple[int, int]):  # noqa: ANN202 (RCNNConfig)
    from mixaq.models.detection._rcnn_config import CASCADE_STDS, RCNNConfig

    arch = {k: MODEL[k] for k in ("embed_dim", "depths", "num_heads", "window_size")}
    sizes = dict(num_classes=MODEL["num_classes"], fpn_channels=MODEL["fpn_channels"], fc_channels=MODEL["fc_channels"],
                 mask_channels=MODEL["mask_channels"], test={"scale": scale})
    if family == "mask_rcnn":
        return RCNNConfig(head="mask_rcnn", arch=arch, **sizes)
    # The official cascade's "4conv1f" heads: 4 convs + BN, 1 fc, class-specific regression.
    return RCNNConfig(head="cascade_mask_rcnn", arch=arch, bbox_convs=4, bbox_conv_norm=True, bbox_fcs=1,
                      stage_stds=CASCADE_STDS, **sizes)


def make_checkpoint(family: str, out: Path, seed: int = 0, scale: tuple[int, int] = (1333, 800)) -> Path:
    """A random `family` detector in the official release's file format at `out`."""
    from timm.models.swin_transformer import get_relative_position_index

    from mixaq.models.detection._detector import build_detector

    torch.manual_seed(seed)
    config = _config(family, scale)
    model = build_detector(config).eval()
    roi = model.roi_head
    box_heads = list(roi.bbox_head) if isinstance(roi.bbox_head, torch.nn.ModuleList) else [roi.bbox_head]
    mask_heads = list(roi.mask_head) if isinstance(roi.mask_head, torch.nn.ModuleList) else [roi.mask_head]
    with torch.no_grad():
        for name, p in model.backbone.named_parameters():
            if p.ndim == 1:  # LayerNorms away from the identity, so they matter
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.2)
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
            elif name.endswith("running_mean"):
                b.normal_(0.0, 0.1)
        for head in box_heads:
            head.fc_cls.weight.mul_(20.0)  # confident classes: scores well above score_thr 0.05
        for head in mask_heads:
            head.conv_logits.weight.mul_(30.0)
            head.conv_logits.bias.normal_(0.0, 1.0)
    state = dict(model.state_dict())
    for s, stage in enumerate(model.backbone.layers):
        for b in range(len(stage.blocks)):
            w = MODEL["window_size"]
            state[f"backbone.layers.{s}.blocks.{b}.attn.relative_position_index"] = get_relative_position_index(w, w)
    meta = {"mmdet_version": "2.11.0", "CLASSES": CLASS_NAMES, "epoch": 36}
    torch.save({"meta": meta, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, out)
    return out


def make_images(out_dir: Path, image_hw=IMAGE_HW) -> list[Path]:  # noqa: ANN001
    from PIL import Image

    from mixaq.models.data._synth import render_sample

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, hw in enumerate(image_hw):
        path = out_dir / f"{i:06d}.png"
        Image.fromarray(render_sample(7, i, hw).image).save(path)
        paths.append(path)
    return paths


def _ground_truth(reference: list[dict], paths: list[Path], out: Path, rng: np.random.Generator) -> Path:
    """A COCO instances file whose objects are mmdet's confident detections, boxes jittered."""
    import pycocotools.mask as mask_util
    from PIL import Image

    images, anns = [], []
    for i, (ref, path) in enumerate(zip(reference, paths)):
        w, h = Image.open(path).size
        images.append({"id": i + 1, "file_name": path.name, "height": h, "width": w})
        # mmdet's 12 most confident detections but every third: misses and false positives both count.
        for rank, (box, label, rle) in enumerate(zip(ref["boxes"], ref["labels"], ref["masks"])):
            if rank >= 12 or rank % 3 == 2:
                continue
            jittered = np.asarray(box) + rng.normal(0.0, 1.5, 4)
            x0, y0, x1, y1 = np.clip(jittered, 0.0, [w, h, w, h]).tolist()  # COCO boxes lie inside their image
            seg = {"size": rle["size"], "counts": rle["counts"]}
            area = float(mask_util.area({"size": rle["size"], "counts": rle["counts"].encode()}))
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(label) + 1,
                         "bbox": [x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)], "area": max(area, 1.0),
                         "iscrowd": 0, "segmentation": seg})
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(CLASS_NAMES)]
    out.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return out


@dataclass(frozen=True)
class Agreement:
    """How mixaq's detections compare with mmdet's on the same file and images."""

    family: str
    source_format: str
    n_reference: int
    n_mixaq: int
    matched: int  # box IoU >= 0.98, score within 0.01, same label, mask IoU >= 0.95
    max_score_diff: float
    min_box_iou: float
    min_mask_iou: float
    ap_bbox: tuple[float, float]  # (mixaq, mmdet)
    ap_segm: tuple[float, float]

    @property
    def fraction(self) -> float:
        return self.matched / max(self.n_reference, 1)


def _match(ours: list[dict], theirs: list[dict]) -> tuple[int, float, float, float]:
    """Greedy one-to-one matching within each image and label by box IoU (ties in score order may
    swap places between implementations, so order is not trusted)."""
    import pycocotools.mask as mask_util

    matched, max_ds, min_iou, min_miou = 0, 0.0, 1.0, 1.0
    for img in {d["image_id"] for d in theirs}:
        mine = [d for d in ours if d["image_id"] == img]
        refs = [d for d in theirs if d["image_id"] == img]
        used = set()
        for r in refs:
            cands = [(k, d) for k, d in enumerate(mine) if k not in used and d["category_id"] == r["category_id"]]
            if not cands:
                min_iou = 0.0
                continue
            ious = mask_util.iou([d["bbox"] for _, d in cands], [r["bbox"]], [0]).reshape(-1)
            j = int(np.argmax(ious))
            k, d = cands[j]
            used.add(k)
            seg = lambda s: {"size": s["size"], "counts": s["counts"].encode()}  # noqa: E731
            a, b = mask_util.decode(seg(d["segmentation"])), mask_util.decode(seg(r["segmentation"]))
            union = np.logical_or(a, b).sum()
            miou = 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
            ds = abs(d["score"] - r["score"])
            max_ds, min_iou, min_miou = max(max_ds, ds), min(min_iou, float(ious[j])), min(min_miou, miou)
            matched += int(ious[j] >= 0.98 and ds <= 0.01 and miou >= 0.95)
    return matched, max_ds, min_iou, min_miou


def _reference_results(reference: list[dict]) -> list[dict]:
    out = []
    for i, ref in enumerate(reference):
        for box, score, label, rle in zip(ref["boxes"], ref["scores"], ref["labels"], ref["masks"]):
            x0, y0, x1, y1 = box  # mmdet returns them sorted by score
            out.append({"image_id": i + 1, "category_id": int(label) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "score": float(score), "segmentation": rle})
    return out


def _coco_ap(ann: Path, results: list[dict], iou_type: str) -> float:
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann))
        dt = gt.loadRes([dict(r, segmentation=dict(r["segmentation"])) for r in results])
        ev = COCOeval(gt, dt, iouType=iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def run_checks(families: Sequence[str], workdir: Path, scale: tuple[int, int] = (1333, 800),
               formats: Sequence[str] = ("official", "mmdet3"), threads: int = 1, n_images: int = len(IMAGE_HW),
               timing: dict | None = None) -> list[Agreement]:
    """Agreement of mixaq with mmdet for a random model of each family, per checkpoint format.

    One oracle process converts every official file with mmdet's converter and runs mmdet on the
    mmdet 3.x files; then mixaq evaluates each file.
    """
    from mixaq.models.detection import Evaluator

    workdir.mkdir(parents=True, exist_ok=True)
    timing = {} if timing is None else timing
    paths = make_images(workdir / "images", IMAGE_HW[:n_images])
    files, tasks = {}, []
    for family in families:
        official = make_checkpoint(family, workdir / f"{family}_official.pth", scale=scale)
        mmdet3 = workdir / f"{family}_mmdet3.pth"
        files[family] = {"official": official, "mmdet3": mmdet3}
        model = dict(MODEL, bbox_head="shared2fc" if family == "mask_rcnn" else "4conv1fc", reg_class_agnostic=False,
                     scale=list(scale))
        tasks += [{"kind": "convert", "official": str(official), "out": str(mmdet3)},
                  {"kind": "detect", "family": family, "model": model, "checkpoint": str(mmdet3),
                   "images": [str(p) for p in paths], "out": str(workdir / f"{family}_mmdet.json")}]
    start = time.perf_counter()
    run_mmdet({"kind": "batch", "tasks": tasks, "threads": threads})
    timing["mmdet_s"] = time.perf_counter() - start
    agreements = []
    for family in families:
        reference = json.loads((workdir / f"{family}_mmdet.json").read_text())
        ann = _ground_truth(reference, paths, workdir / f"{family}_annotations.json", np.random.default_rng(0))
        ref_results = _reference_results(reference)
        ref_ap = (_coco_ap(ann, ref_results, "bbox"), _coco_ap(ann, ref_results, "segm"))
        for fmt in formats:
            ev = Evaluator(files[family][fmt], workdir / "images", ann=ann, calib_images=0, threads=threads,
                           device="cpu", test_scale=scale)
            start = time.perf_counter()
            result = ev.evaluate(None, None, keep_detections=True)
            timing[f"mixaq_{family}_{fmt}_s"] = time.perf_counter() - start
            ours = list(result.detections)
            matched, max_ds, min_iou, min_miou = _match(ours, ref_results)
            agreements.append(Agreement(family, fmt, len(ref_results), len(ours), matched, max_ds, min_iou, min_miou,
                                        (result.ap, ref_ap[0]), (result.ap_segm, ref_ap[1])))
    return agreements
