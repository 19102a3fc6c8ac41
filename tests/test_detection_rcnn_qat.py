"""`mixaq qat` / `mixaq adapt` on the Mask R-CNN families (CPU, tiny random models, a tiny COCO file
with polygon and RLE masks, a crowd box and an image without annotations)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mixaq.simulator import MixaqError


def write_coco(out: Path, n: int = 6, seed: int = 0, masks: bool = True,
               size: tuple[int, int] | None = None) -> tuple[Path, Path]:
    """Images with filled polygons (one colour per class) and their COCO annotations (`size`: every
    image (h, w), else sizes that differ)."""
    import pycocotools.mask as mask_util
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    colours = [(230, 40, 40), (40, 200, 40), (40, 40, 230)]
    for i in range(n):
        h, w = size or (150 + 10 * i, 200 - 8 * i)
        img = Image.fromarray(rng.integers(0, 60, (h, w, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(img)
        images.append({"id": i + 1, "file_name": f"{i:03d}.png", "height": h, "width": w})
        for j in range(0 if i == n - 1 else 3):  # the last image has no annotation
            label = int(rng.integers(3))
            cx, cy, r = rng.uniform(40, w - 40), rng.uniform(40, h - 40), rng.uniform(15, 35)
            angles = np.sort(rng.uniform(0, 2 * np.pi, 6))
            poly = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)
            draw.polygon([tuple(p) for p in poly], fill=colours[label])
            flat = poly.reshape(-1).tolist()
            rle = mask_util.merge(mask_util.frPyObjects([flat], h, w))
            x, y, bw, bh = mask_util.toBbox(rle).tolist()
            seg = flat if j != 1 else {"size": rle["size"], "counts": rle["counts"].decode()}
            ann = {"id": len(anns) + 1, "image_id": i + 1, "category_id": label + 1, "bbox": [x, y, bw, bh],
                   "area": float(mask_util.area(rle)), "iscrowd": 0}
            if masks:
                ann["segmentation"] = [seg] if isinstance(seg, list) else seg
            anns.append(ann)
        if i == 0:  # a crowd region: never ground truth
            anns.append({"id": len(anns) + 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 30, 30], "area": 900.0,
                         "iscrowd": 1, "segmentation": {"size": [h, w], "counts": [5 * h + 5] + [30, h - 30] * 29 + [30]}})
        img.save(out / "images" / f"{i:03d}.png")
    cats = [{"id": k + 1, "name": name} for k, name in enumerate(("circle", "square", "triangle"))]
    ann_path = out / "instances.json"
    ann_path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return out / "images", ann_path


def tiny_checkpoint(path: Path, family: str = "mask_rcnn") -> Path:
    """A random tiny detector (3 classes) in mixaq's format."""
    from mixaq.models.detection._checkpoint import save_checkpoint
    from mixaq.models.detection._detector import build_detector
    from mixaq.models.detection._rcnn_config import CASCADE_STDS, RCNNConfig

    arch = dict(embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4], window_size=7)
    sizes = dict(num_classes=3, fpn_channels=32, fc_channels=64, mask_channels=16, test={"scale": (256, 160)})
    if family == "mask_rcnn":
        config = RCNNConfig(head="mask_rcnn", arch=arch, **sizes)
    else:
        config = RCNNConfig(head="cascade_mask_rcnn", arch=arch, bbox_convs=4, bbox_conv_norm=True, bbox_fcs=1,
                            stage_stds=CASCADE_STDS, **sizes)
    torch.manual_seed(0)
    model = build_detector(config)
    save_checkpoint(path, model, config, [{"id": k + 1, "name": n} for k, n in enumerate(("circle", "square", "triangle"))])
    return path


def run_config(tmp: Path, images: Path, ann: Path, steps: int, **train) -> Path:
    cfg = {"data": {"images": str(images), "ann": str(ann), "scales": [[256, 160], [224, 140]]},
           "quant": {"high_act_bits": 4, "low_act_bits": 4, "weight_bits": 4, "observer": "minmax"},
           "adapt": {"prune_probability": 0.5},
           "train": {"seed": 0, "steps": steps, "batch_size": 2, "lr": 2e-4, "quant_lr": 1e-3, "warmup_steps": 1,
                     "checkpoint_every": 2, "log_every": 1, "calib_images": 2, "threads": 1, **train}}
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_train_data_pipeline(tmp_path):
    """Crowd boxes and the empty image are not ground truth; flips and scales are seeded per position;
    boxes, masks and image stay aligned."""
    from mixaq.models.detection._rcnn_data import RCNNTrainData

    images, ann = write_coco(tmp_path)
    data = RCNNTrainData(images, ann, scales=[(256, 160)], seed=3, repeats=2)
    assert len(data.ids) == 5 and len(data) == 10  # the image without annotations is skipped (filter_empty_gt)
    img, target = data[0]
    assert img.dtype == torch.uint8 and target.masks.shape[1:] == img.shape[1:]
    assert target.boxes.shape == (3, 4)  # the crowd region is dropped
    again = data[0][1]
    assert torch.equal(again.boxes, target.boxes)
    # masks lie inside their boxes (+1 px for the nearest resize)
    for box, m in zip(target.boxes, target.masks):
        ys, xs = torch.nonzero(m, as_tuple=True)
        assert xs.min() >= box[0] - 1.5 and xs.max() <= box[2] + 1.5 and ys.min() >= box[1] - 1.5
    flips = {bool(torch.equal(data[p][0], data[p + 5][0])) for p in range(5)}
    assert False in flips  # another pass flips some image differently


def test_coco_without_masks_is_one_line(tmp_path):
    from mixaq.models.detection._rcnn_data import RCNNTrainData

    images, ann = write_coco(tmp_path, masks=False)
    with pytest.raises(MixaqError, match="has no 'segmentation'"):
        RCNNTrainData(images, ann)


def test_qat_then_adapt_on_mask_rcnn(tmp_path):
    """A short QAT run: the loss falls, the checkpoint evaluates; SAQA from it; resume continues."""
    from mixaq.models.evaluation._evaluate import Evaluator
    from mixaq.models.qat._config import load_finetune_config
    from mixaq.models.qat._loop import fine_tune

    images, ann = write_coco(tmp_path)
    ckpt = tiny_checkpoint(tmp_path / "float.pth")
    run = load_finetune_config(run_config(tmp_path, images, ann, steps=12, lr=1e-3))
    summary = fine_tune(ckpt, tmp_path / "qat.pth", run, kind="qat", progress=False, device="cpu")
    assert summary["steps_done"] == 12
    records = [json.loads(line) for line in Path(summary["log"]).read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert {"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss_mask"} <= set(records[0])
    assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses

    evaluator = Evaluator(str(tmp_path / "qat.pth"), str(images), ann=str(ann), calib_images=1, device="cpu")
    result = evaluator.evaluate()
    assert 0.0 <= result.ap <= 1.0 and result.n_images >= 1

    run_saqa = load_finetune_config(run_config(tmp_path, images, ann, steps=4))
    run_saqa = type(run_saqa)(run_saqa.data, type(run_saqa.quant)(**{**run_saqa.quant.__dict__, "low_act_bits": 2}),
                              run_saqa.train, run_saqa.adapt)
    out = fine_tune(tmp_path / "qat.pth", tmp_path / "saqa.pth", run_saqa, kind="saqa", progress=False, device="cpu")
    assert out["steps_done"] == 4


def test_qat_rejects_other_inputs(tmp_path):
    from mixaq.models.qat._config import load_finetune_config
    from mixaq.models.qat._loop import fine_tune

    images, ann = write_coco(tmp_path)
    ckpt = tiny_checkpoint(tmp_path / "float.pth")
    synthetic = load_finetune_config(run_config(tmp_path, images, ann, steps=2))
    synthetic = type(synthetic)({"synthetic": {"seed": 0, "num_images": 8}}, synthetic.quant, synthetic.train)
    with pytest.raises(MixaqError, match="COCO instances file with masks"):
        fine_tune(ckpt, tmp_path / "x.pth", synthetic, kind="qat", progress=False, device="cpu")
