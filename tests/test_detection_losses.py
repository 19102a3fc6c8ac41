"""Training losses of mixaq's Mask R-CNN / Cascade Mask R-CNN against mmdetection 3.3.0 (`.venv-mmdet`).

Random small models (benchmarks/_oracle_check.make_checkpoint, official format; mmdet loads them
through its own converter), one padded batch of three images of different sizes with polygon and
RLE masks, a crowd box (an ignored instance on mmdet's side, dropped on ours) and an image without
annotations. Both samplers draw by the same deterministic rule, so every loss term and the
gradients of backbone, neck and head parameters must agree within 1e-4 (relative).

The cascade runs in float64 on both sides: its BatchNorm box heads amplify float32 rounding so that
float32 gradients of the backbone differ from float64 ones by ~2e-3 within mixaq alone (measured),
more than the tolerance; Mask R-CNN runs in float32.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch


from benchmarks._mmdet import run_mmdet


def deterministic_choice(gallery: torch.Tensor, num: int, priors: torch.Tensor) -> torch.Tensor:
    """The driver's `_deterministic_choice`: a fixed pick by the priors' coordinates (order-free)."""
    b = priors[gallery].double()
    key = (b[:, 0] * 0.618 + b[:, 1] * 0.382 + b[:, 2] * 0.271 + b[:, 3] * 0.829) % 17.3
    return gallery[torch.argsort(key, stable=True)[:num]]


# (ours, mmdet 3.x) parameter names whose gradients are compared.
GRADS = {
    "mask_rcnn": [("backbone.patch_embed.proj.weight", "backbone.patch_embed.projection.weight"),
                  ("backbone.layers.2.blocks.1.mlp.fc2.weight", "backbone.stages.2.blocks.1.ffn.layers.1.weight"),
                  ("neck.fpn_convs.0.conv.weight",) * 2, ("neck.lateral_convs.3.conv.bias",) * 2,
                  ("rpn_head.rpn_conv.weight",) * 2, ("rpn_head.rpn_reg.bias",) * 2,
                  ("roi_head.bbox_head.fc_cls.weight",) * 2, ("roi_head.bbox_head.fc_reg.weight",) * 2,
                  ("roi_head.bbox_head.shared_fcs.0.weight",) * 2,
                  ("roi_head.mask_head.conv_logits.weight",) * 2, ("roi_head.mask_head.convs.0.conv.weight",) * 2],
    "cascade_mask_rcnn": [("backbone.patch_embed.proj.weight", "backbone.patch_embed.projection.weight"),
                          ("backbone.layers.1.blocks.0.mlp.fc1.weight", "backbone.stages.1.blocks.0.ffn.layers.0.0.weight"),
                          ("neck.fpn_convs.1.conv.weight",) * 2, ("rpn_head.rpn_cls.weight",) * 2,
                          ("roi_head.bbox_head.0.fc_reg.weight",) * 2, ("roi_head.bbox_head.1.shared_convs.0.conv.weight",) * 2,
                          ("roi_head.bbox_head.2.shared_convs.3.bn.weight",) * 2, ("roi_head.bbox_head.2.fc_cls.bias",) * 2,
                          ("roi_head.mask_head.1.conv_logits.weight",) * 2, ("roi_head.mask_head.2.upsample.weight",) * 2],
}

IMAGE_HW = ((240, 320), (200, 290), (256, 176))


def _polygon(rng: np.random.Generator, h: int, w: int) -> list[float]:
    cx, cy = rng.uniform(0.25 * w, 0.75 * w), rng.uniform(0.25 * h, 0.75 * h)
    r = rng.uniform(0.1, 0.3) * min(h, w)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 7))
    radii = r * rng.uniform(0.6, 1.0, 7)
    xs = np.clip(cx + radii * np.cos(angles), 0, w - 1)
    ys = np.clip(cy + radii * np.sin(angles), 0, h - 1)
    return np.stack([xs, ys], 1).reshape(-1).tolist()


def make_batch(seed: int = 3):  # noqa: ANN201
    """Images, targets (boxes from the masks' extents as COCO's are), crowd boxes; image 3 is empty."""
    import pycocotools.mask as mask_util

    from mixaq.models.detection._rcnn_config import TestSettings
    from mixaq.models.detection._rcnn_loss import TrainBatch, TrainTarget, pad_batch

    rng = np.random.default_rng(seed)
    t = TestSettings()
    mean, std = torch.tensor(t.mean).view(3, 1, 1), torch.tensor(t.std).view(3, 1, 1)
    images, targets, crowds = [], [], []
    for k, (h, w) in enumerate(IMAGE_HW):
        images.append((torch.from_numpy(rng.integers(0, 256, (3, h, w))).float() - mean) / std)
        n = (4, 3, 0)[k]
        masks, boxes = [], []
        for j in range(n):
            rles = mask_util.frPyObjects([_polygon(rng, h, w)], h, w)
            if j == 1:  # one RLE annotation: the same bitmap path
                rles = [mask_util.merge(rles)]
            m = mask_util.decode(mask_util.merge(rles))
            masks.append(m)
            x, y, bw, bh = mask_util.toBbox(mask_util.encode(np.asfortranarray(m)))
            boxes.append([x, y, x + bw, y + bh])
        labels = torch.from_numpy(rng.integers(0, 5, n)).long()
        target = TrainTarget(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), labels,
                             torch.from_numpy(np.stack(masks)) if n else torch.zeros(0, h, w, dtype=torch.uint8))
        targets.append(target)
        crowds.append(torch.tensor([[10.0, 12.0, 90.0, 100.0]]) if k == 0 else torch.zeros(0, 4))
    batch = TrainBatch(pad_batch(images), IMAGE_HW, tuple(targets))
    return batch, crowds


@pytest.mark.parametrize("family,dtype", [("mask_rcnn", "float32"), ("cascade_mask_rcnn", "float64")])
def test_losses_and_gradients_equal_mmdet(mmdet_python, tmp_path, family, dtype):
    from benchmarks._oracle_check import MODEL, make_checkpoint
    from mixaq.models.detection._checkpoint import load_detector
    from mixaq.models.detection._rcnn_loss import TrainBatch, TrainTarget, rcnn_losses

    ckpt = make_checkpoint(family, tmp_path / "official.pth", seed=1)
    batch, crowds = make_batch()
    torch.save({"images": batch.images, "img_hw": [list(hw) for hw in batch.img_hw],
                "targets": [{"boxes": t.boxes, "labels": t.labels, "masks": t.masks, "crowd": c}
                            for t, c in zip(batch.targets, crowds)]}, tmp_path / "batch.pt")
    model_spec = dict(MODEL, bbox_head="shared2fc" if family == "mask_rcnn" else "4conv1f", reg_class_agnostic=False)
    run_mmdet({"kind": "loss", "family": family, "model": model_spec, "official": str(ckpt),
               "inputs": str(tmp_path / "batch.pt"), "grads": [m for _, m in GRADS[family]],
               "deterministic_sampler": True, "out": str(tmp_path / "ref.pt"), "threads": 1, "dtype": dtype}, python=mmdet_python)
    ref = torch.load(tmp_path / "ref.pt", weights_only=True)

    dt = getattr(torch, dtype)
    model = load_detector(ckpt)[0].train().to(dt)
    batch = TrainBatch(batch.images.to(dt), batch.img_hw,
                       tuple(TrainTarget(t.boxes.to(dt), t.labels, t.masks) for t in batch.targets))
    losses = rcnn_losses(model, batch, choose=deterministic_choice)
    assert set(losses) == set(ref["losses"]), (sorted(losses), sorted(ref["losses"]))
    for name, value in losses.items():
        expected = ref["losses"][name]
        assert expected.abs() > 1e-5, (name, expected)  # every term is exercised
        assert torch.allclose(value.detach().double(), expected.double(), rtol=1e-4, atol=0), (name, value.item(), expected.item())
    sum(losses.values()).backward()
    params = dict(model.named_parameters())
    for ours, theirs in GRADS[family]:
        g, r = params[ours].grad.double(), ref["grads"][theirs].double()
        assert r.abs().max() > 0, theirs
        err = ((g - r).abs().max() / r.abs().max()).item()
        assert err <= 1e-4, (ours, err)
