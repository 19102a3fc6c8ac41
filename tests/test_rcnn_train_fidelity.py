"""The Mask R-CNN families' train-time settings against mmdetection 3.3.0 (`.venv-mmdet`):

- the train pipeline of `mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco` (the official release's 3x
  AutoAugment: flip, then multi-scale resize or resize -> RandomCrop(384-600, absolute_range,
  allow_negative_crop) -> multi-scale resize) on COCO images with polygon / RLE masks and a crowd box:
  mmdet runs its own CocoDataset + transforms with a fixed numpy seed and records every random call;
  mixaq's `apply_augment` takes the same choices; image, boxes, labels and masks must agree;
- AdamW's parameter groups: every parameter's (lr, weight decay) from mmengine's
  `DefaultOptimWrapperConstructor` with that config's `optim_wrapper` against `make_optimizer` with
  the R-CNN rule, on the same random models (names mapped by the checkpoint importer's renames);
- stochastic depth: the linear rule, and a QAT run sets it (train mode draws, eval does not).
"""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch


from benchmarks._mmdet import run_mmdet
from tests.test_detection_rcnn_qat import run_config, tiny_checkpoint, write_coco


def write_wide_coco(out, n: int = 6, seed: int = 4):  # noqa: ANN001, ANN201
    """Wide images (the crop then drops objects): 3-5 polygons across each, one RLE, a crowd box; the
    last image has one object at its left end (crops that miss it: `allow_negative_crop`)."""
    import pycocotools.mask as mask_util
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in range(n):
        h, w = 120 + 7 * i, 470 - 11 * i
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(img)
        images.append({"id": i + 1, "file_name": f"{i:03d}.png", "height": h, "width": w})
        count = 1 if i == n - 1 else 3 + i % 3
        for j in range(count):
            cx, cy, r = (j + 0.5) * w / count + rng.uniform(-10, 10), rng.uniform(25, h - 25), rng.uniform(8, 22)
            if count == 1:
                cx = 30.0
            angles = np.sort(rng.uniform(0, 2 * np.pi, 6))
            poly = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], 1)
            draw.polygon([tuple(q) for q in poly], fill=(200, 40 * j, 40))
            rle = mask_util.merge(mask_util.frPyObjects([poly.reshape(-1).tolist()], h, w))
            seg = [poly.reshape(-1).tolist()] if j != 1 else {"size": rle["size"], "counts": rle["counts"].decode()}
            x, y, bw, bh = mask_util.toBbox(rle).tolist()
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(rng.integers(3)) + 1,
                         "bbox": [x, y, bw, bh], "area": float(mask_util.area(rle)), "iscrowd": 0, "segmentation": seg})
        if i == 0:
            anns.append({"id": len(anns) + 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 30, 30], "area": 900.0,
                         "iscrowd": 1, "segmentation": {"size": [h, w], "counts": [5 * h + 5] + [30, h - 30] * 29 + [30]}})
        img.save(out / "images" / f"{i:03d}.png")
    cats = [{"id": k + 1, "name": name} for k, name in enumerate(("circle", "square", "triangle"))]
    (out / "instances.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return out / "images", out / "instances.json"


def _augment_from_calls(calls: list, scales: list, crop_scales: list, image_hw: tuple[int, int]):  # noqa: ANN202
    """mixaq's `Augment` for the random calls mmdet made: flip choice, policy choice, scale index,
    [crop h, crop w, offset top, offset left, scale index]."""
    from mixaq.models.detection._preprocess import rescale_size
    from mixaq.models.detection._rcnn_data import Augment

    values = [c[2] for c in calls]
    flip = values[0] == "horizontal"
    if values[1] == 0:
        assert len(values) == 3, calls
        return Augment(flip, tuple(scales[values[2]]))
    assert len(values) == 8, calls
    first = tuple(crop_scales[values[2]])
    h, w = rescale_size(image_hw, first)
    # mmdet's draw ranges are those draw_augment uses
    assert calls[3][1] == [min(h, 384), min(h, 600) + 1] and calls[4][1] == [min(w, 384), min(w, 600) + 1]
    return Augment(flip, tuple(scales[values[7]]), first, (values[3], values[4]), (values[5], values[6]))


def test_crop_pipeline_equals_mmdet(mmdet_python, tmp_path):
    from mixaq.models.detection._preprocess import read_bgr
    from mixaq.models.detection._rcnn_data import CROP_SCALES, OFFICIAL_SCALES, RCNNTrainData, apply_augment

    images, ann = write_wide_coco(tmp_path)
    data = RCNNTrainData(images, ann)
    draws = [[i % len(data.ids), 100 + i] for i in range(36)]
    out = tmp_path / "mmdet.pt"
    run_mmdet({"kind": "pipeline", "images": str(images), "ann": str(ann), "draws": draws, "out": str(out)},
              python=mmdet_python, timeout_s=600)
    results = torch.load(out, weights_only=False)
    crops = negatives = dropped = 0
    for (index, _), r in zip(draws, results):
        image_id = data.ids[index]
        assert r["file_name"] == data.coco.imgs[image_id]["file_name"]
        image = read_bgr(images / r["file_name"])
        boxes, labels, masks = data._instances(image_id)
        aug = _augment_from_calls(r["calls"], list(OFFICIAL_SCALES), list(CROP_SCALES), image.shape[:2])
        img, b, lab, m = apply_augment(image, boxes, labels, masks, aug)
        keep = ~r["ignore"].numpy().astype(bool)  # mmdet keeps the crowd box as an ignored instance
        assert np.array_equal(img, r["img"].numpy())
        np.testing.assert_allclose(b, r["boxes"].numpy()[keep], rtol=0, atol=1e-4)
        assert np.array_equal(lab, r["labels"].numpy()[keep])
        assert np.array_equal(m, r["masks"].numpy()[keep])
        if aug.crop_scale is not None:
            crops += 1
            negatives += len(lab) == 0
            dropped += len(lab) < len(labels)
    print(f"{len(draws)} items, {crops} through the crop policy, {dropped} of them dropping instances, "
          f"{negatives} left without any")
    assert crops >= 6 and dropped >= 1 and negatives >= 1, (crops, dropped, negatives)  # the crop branch and its filter ran


def _mmdet_to_ours(name: str) -> str:
    from mixaq.models.detection._official import _MMDET3_RENAMES

    for pattern, repl in _MMDET3_RENAMES:
        name = re.sub(pattern, repl, name)
    return name


@pytest.mark.parametrize("family", ["mask_rcnn", "cascade_mask_rcnn"])
def test_param_groups_equal_mmdet(mmdet_python, tmp_path, family):
    from benchmarks._oracle_check import MODEL, _config
    from mixaq.models._config import QuantConfig
    from mixaq.models._training import make_optimizer
    from mixaq.models._two_branch import convert_swin
    from mixaq.models.detection._detector import build_detector
    from mixaq.models.detection._rcnn_train import rcnn_no_decay

    out = tmp_path / "groups.json"
    spec = dict(MODEL, bbox_head="shared2fc" if family == "mask_rcnn" else "4conv1f", reg_class_agnostic=False)
    run_mmdet({"kind": "param_groups", "family": family, "model": spec, "out": str(out)}, python=mmdet_python)
    theirs = {_mmdet_to_ours(k): tuple(v) for k, v in json.loads(out.read_text()).items()}
    model = convert_swin(build_detector(_config(family, (1333, 800))), QuantConfig(4, 4, 4, learnable=True))
    opt = make_optimizer(model, 1e-4, 0.05, quant_lr=1e-3, no_decay=rcnn_no_decay)
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    ours, quant = {}, set()
    for name, p in model.named_parameters():
        g = group_of[id(p)]
        if ".act_quant." in name or ".weight_quant." in name:
            quant.add(name)
            assert g["weight_decay"] == 0.0 and g["lr_scale"] == 10.0
            continue
        ours[name] = (1e-4 * g["lr_scale"], g["weight_decay"])
    extra = {n for n in ours if n not in theirs}
    assert all("_low." in n for n in extra), sorted(extra)[:5]  # the two-branch LN copies only
    assert all(ours[n] == (1e-4, 0.0) for n in extra)
    assert set(theirs) <= set(ours), sorted(set(theirs) - set(ours))[:5]
    differ = {n: (ours[n], theirs[n]) for n in theirs if ours[n] != theirs[n]}
    assert not differ, list(differ.items())[:5]
    decayed = {n for n, v in theirs.items() if v[1] > 0}
    assert any(n.endswith(".bias") for n in decayed)  # mmdet decays biases; the default rule does not
    assert len(quant) > 0 and len(theirs) > 100


def test_drop_path_rule_and_qat_sets_it(tmp_path):
    from timm.layers import DropPath

    from mixaq.models.detection._detector import build_detector
    from mixaq.models.detection._rcnn_train import release_drop_path_rate, set_drop_path
    from mixaq.models.qat._config import load_finetune_config
    from mixaq.models.qat._loop import fine_tune
    from benchmarks._oracle_check import _config

    config = _config("mask_rcnn", (1333, 800))
    model = build_detector(config)
    assert release_drop_path_rate(config.swin_arch) == 0.2
    n = set_drop_path(model, 0.2)
    probs = [b.drop_path1.drop_prob if isinstance(b.drop_path1, DropPath) else 0.0
             for s in model.backbone.layers for b in s.blocks]
    assert n == 8 and np.allclose(probs, np.linspace(0, 0.2, 8))

    images, ann = write_coco(tmp_path)
    ckpt = tiny_checkpoint(tmp_path / "float.pth")
    run = load_finetune_config(run_config(tmp_path, images, ann, steps=1, drop_path_rate=0.5))
    seen = []
    from timm.models.swin_transformer import SwinTransformerBlock
    orig = SwinTransformerBlock.train

    def spy(self, mode=True):  # noqa: ANN001, ANN202
        if mode and isinstance(self.drop_path1, DropPath):
            seen.append(self.drop_path1.drop_prob)
        return orig(self, mode)

    SwinTransformerBlock.train = spy
    try:
        fine_tune(ckpt, tmp_path / "qat.pth", run, kind="qat", progress=False, device="cpu")
    finally:
        SwinTransformerBlock.train = orig
    assert seen and max(seen) == pytest.approx(0.5)


def test_rcnn_configs_carry_the_official_optimizer():
    from mixaq.models.qat._cli_common import CONFIG_DIR
    from mixaq.models.qat._config import load_finetune_config

    for name, scope in (("qat_rcnn.yaml", "all"), ("saqa_rcnn.yaml", "blocks")):
        t = load_finetune_config(CONFIG_DIR / name).train
        assert (t.lr, t.weight_decay, t.grad_clip, t.batch_size, t.train_scope) == (1e-4, 0.05, 0.0, 2, scope)
        assert t.drop_path_rate is None  # the family's release value (Swin-T 0.2)


def test_detector_flag_refuses_another_family(tmp_path, capsys):
    from mixaq.search.cli import main

    ckpt = tiny_checkpoint(tmp_path / "cascade.pth", family="cascade_mask_rcnn")
    assert main(["qat", "--checkpoint", str(ckpt), "--detector", "mask_rcnn", "--out", str(tmp_path / "q.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "its detector family is cascade_mask_rcnn, not mask_rcnn" in err[0]
    assert not (tmp_path / "q.pt").exists()
