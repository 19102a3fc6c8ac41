"""Swin Mask R-CNN as mmdetection computes it at test time, with mmdet's state-dict key layout.

`backbone.*` (the official Swin, `_official.py`), `neck.*` (FPN), `rpn_head.*`, `roi_head.*`: a
checkpoint of the official release or the mmdet zoo loads after its backbone keys are mapped.
Batch 1 by design: padding a batch to its largest image changes the features inside each image.
The cascade's R-CNN stages live in `_cascade.py` and reuse the heads defined here.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mixaq.models.detection._official import OfficialSwin
from mixaq.models.detection._preprocess import PreparedImage, normalize_pad
from mixaq.models.detection._rcnn_config import RCNNConfig
from mixaq.models.detection._rcnn_ops import (
    base_anchors,
    batched_nms,
    bbox2roi,
    delta2bbox,
    grid_anchors,
    multiclass_nms,
    multilevel_roi_align,
    paste_masks,
)

__all__ = ["ConvModule", "FPN", "RPNHead", "ConvFCBBoxHead", "FCNMaskHead", "MaskRCNN", "StandardRoIHead"]


class ConvModule(nn.Module):
    """mmcv's ConvModule as these heads use it: conv (no bias under a norm) -> [BN] -> [ReLU]."""

    def __init__(self, cin: int, cout: int, kernel: int, norm: bool = False, act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=not norm)
        if norm:
            self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if hasattr(self, "bn"):
            x = self.bn(x)
        return F.relu(x) if self.act else x


class FPN(nn.Module):
    """mmdet FPN: 1x1 laterals, nearest top-down sums, 3x3 outputs, then max-pool (k=1, s=2) levels."""

    def __init__(self, in_channels: Sequence[int], out_channels: int, extra_levels: int) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(ConvModule(c, out_channels, 1, act=False) for c in in_channels)
        self.fpn_convs = nn.ModuleList(ConvModule(out_channels, out_channels, 3, act=False) for _ in in_channels)
        self.extra_levels = extra_levels

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
        outs = [conv(x) for conv, x in zip(self.fpn_convs, laterals)]
        for _ in range(self.extra_levels):
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return outs  # (1, C, H_l, W_l) per level


class RPNHead(nn.Module):
    """3x3 conv + ReLU, sigmoid objectness and deltas per anchor; proposals as mmdet's RPNHead."""

    def __init__(self, channels: int, num_anchors: int) -> None:
        super().__init__()
        self.rpn_conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(channels, num_anchors, 1)
        self.rpn_reg = nn.Conv2d(channels, num_anchors * 4, 1)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        outs = []
        for x in feats:
            x = F.relu(self.rpn_conv(x))
            outs.append((self.rpn_cls(x), self.rpn_reg(x)))
        return outs

    @staticmethod
    def proposals(outs: Sequence[tuple[torch.Tensor, torch.Tensor]], anchors: Sequence[torch.Tensor],
                  img_hw: tuple[int, int], config: RCNNConfig, settings: object | None = None) -> torch.Tensor:
        """(P, 4) proposals of one image: top `nms_pre` per level, decode, per-level NMS, top `max`.

        `settings`: anything with the `rpn_*` fields of `TestSettings` (training's `rpn_proposal`);
        the test settings by default."""
        t = config.test if settings is None else settings
        preds, priors, scores, level_ids = [], [], [], []
        for level, ((cls, reg), anchor) in enumerate(zip(outs, anchors)):
            reg = reg[0].permute(1, 2, 0).reshape(-1, 4)
            score = torch.squeeze(cls[0].permute(1, 2, 0).reshape(-1, 1).sigmoid())
            if 0 < t.rpn_nms_pre < score.shape[0]:
                ranked, rank_inds = score.sort(descending=True)
                topk = rank_inds[: t.rpn_nms_pre]
                score, reg, anchor = ranked[: t.rpn_nms_pre], reg[topk, :], anchor[topk]
            preds.append(reg)
            priors.append(anchor)
            scores.append(score)
            level_ids.append(score.new_full((score.size(0),), level, dtype=torch.long))
        boxes = delta2bbox(torch.cat(priors), torch.cat(preds), (1.0, 1.0, 1.0, 1.0), img_hw)
        scores_t, levels = torch.cat(scores), torch.cat(level_ids)
        if t.rpn_min_bbox_size >= 0:
            w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            valid = (w > t.rpn_min_bbox_size) & (h > t.rpn_min_bbox_size)
            if not valid.all():
                boxes, scores_t, levels = boxes[valid], scores_t[valid], levels[valid]
        if boxes.numel() == 0:
            return boxes.new_zeros(0, 4)
        _, keep = batched_nms(boxes, scores_t, levels, t.rpn_nms_iou)
        return boxes[keep][: t.rpn_max_per_img]


class ConvFCBBoxHead(nn.Module):
    """mmdet's ConvFCBBoxHead (Shared2FC: 0 convs + 2 fcs; "4conv1f": 4 convs + BN + 1 fc).

    fc_cls has the background class *last* (C + 1 outputs); fc_reg is class-specific (4C) or
    class-agnostic (4).
    """

    def __init__(self, config: RCNNConfig, roi_size: int = 7) -> None:
        super().__init__()
        c = config.fpn_channels
        self.shared_convs = nn.ModuleList(ConvModule(c, c, 3, norm=config.bbox_conv_norm) for _ in range(config.bbox_convs))
        dims = [c * roi_size * roi_size] + [config.fc_channels] * config.bbox_fcs
        self.shared_fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.fc_cls = nn.Linear(config.fc_channels, config.num_classes + 1)
        self.fc_reg = nn.Linear(config.fc_channels, 4 if config.reg_class_agnostic else 4 * config.num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for conv in self.shared_convs:
            x = conv(x)
        x = x.flatten(1)
        for fc in self.shared_fcs:
            x = F.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)  # (N, C + 1), (N, 4 or 4C)


class FCNMaskHead(nn.Module):
    """4 x (3x3 conv + ReLU) -> 2x deconv + ReLU -> 1x1 logits per class: (N, C, 28, 28)."""

    def __init__(self, config: RCNNConfig) -> None:
        super().__init__()
        chans = [config.fpn_channels] + [config.mask_channels] * config.mask_convs
        self.convs = nn.ModuleList(ConvModule(a, b, 3) for a, b in zip(chans[:-1], chans[1:]))
        self.upsample = nn.ConvTranspose2d(chans[-1], config.mask_channels, 2, stride=2)
        self.conv_logits = nn.Conv2d(config.mask_channels, config.num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)
        return self.conv_logits(F.relu(self.upsample(x)))


def _empty(device: torch.device, ori_hw: tuple[int, int]) -> dict[str, torch.Tensor]:
    return {"boxes": torch.zeros(0, 4, device=device), "scores": torch.zeros(0, device=device),
            "labels": torch.zeros(0, dtype=torch.long, device=device),
            "masks": torch.zeros(0, *ori_hw, dtype=torch.bool, device=device)}


def finish_masks(dets: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, sample: PreparedImage,
                 threshold: float) -> dict[str, torch.Tensor]:
    """Boxes back to the original image (divided by the scale factor), masks pasted there."""
    scale = dets.new_tensor(sample.scale_factor).repeat((1, 2))  # (1, 4)
    boxes = dets[:, :4] / scale
    probs = probs[torch.arange(len(labels), device=labels.device), labels] if probs.shape[1] > 1 else probs[:, 0]
    masks = paste_masks(probs, boxes, sample.ori_hw, threshold)
    return {"boxes": boxes, "scores": dets[:, 4], "labels": labels, "masks": masks}


class StandardRoIHead(nn.Module):
    """One R-CNN stage (bbox head on 7x7 RoIs) and the mask head (14x14 RoIs)."""

    def __init__(self, config: RCNNConfig) -> None:
        super().__init__()
        self.config = config
        self.bbox_head = ConvFCBBoxHead(config)
        self.mask_head = FCNMaskHead(config)

    def forward(self, feats: Sequence[torch.Tensor], proposals: torch.Tensor,
                sample: PreparedImage) -> dict[str, torch.Tensor]:
        c, t = self.config, self.config.test
        strides = c.roi_strides()
        if proposals.shape[0] == 0:
            return _empty(proposals.device, sample.ori_hw)
        rois = bbox2roi(proposals)
        cls, reg = self.bbox_head(multilevel_roi_align(feats, rois, 7, strides))
        scores = F.softmax(cls, dim=-1)
        per_class = 1 if c.reg_class_agnostic else c.num_classes
        boxes = delta2bbox(rois.repeat_interleave(per_class, dim=0)[:, 1:], reg.view(-1, 4), c.stage_stds[0],
                           sample.img_hw).view(rois.size(0), -1)
        dets, labels = multiclass_nms(boxes, scores, t.score_thr, t.nms_iou, t.max_per_img)
        if dets.shape[0] == 0:
            return _empty(proposals.device, sample.ori_hw)
        mask_logits = self.mask_head(multilevel_roi_align(feats, bbox2roi(dets[:, :4]), 14, strides))
        return finish_masks(dets, labels, mask_logits.sigmoid(), sample, t.mask_thr)


class MaskRCNN(nn.Module):
    """`model(samples)` -> per image {boxes (K, 4) xyxy original pixels, scores, labels, masks (K, H, W)}.

    Labels are 0-based class indices (mmdet's); `samples` are `PreparedImage`s (uint8, resized).
    """

    label_offset = 0
    inputs = "mmdet"

    def __init__(self, config: RCNNConfig, roi_head: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        arch = config.swin_arch
        self.backbone = OfficialSwin(arch, config.out_indices)
        self.neck = FPN(self.backbone.out_channels, config.fpn_channels, config.fpn_extra_levels)
        self.rpn_head = RPNHead(config.fpn_channels, len(config.anchor_scales) * len(config.anchor_ratios))
        self.roi_head = roi_head if roi_head is not None else StandardRoIHead(config)
        t = config.test
        self.register_buffer("pixel_mean", torch.tensor(t.mean, dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(t.std, dtype=torch.float32).view(-1, 1, 1), persistent=False)
        self._base_anchors = [base_anchors(s, config.anchor_scales, config.anchor_ratios) for s in config.strides()]

    def anchors(self, feats: Sequence[torch.Tensor], dtype: torch.dtype | None = None) -> list[torch.Tensor]:
        """Per-level anchors in `dtype` (default: the features')."""
        return [grid_anchors(base, tuple(f.shape[-2:]), s, f.device, dtype or f.dtype)
                for base, f, s in zip(self._base_anchors, feats, self.config.strides())]

    def forward_one(self, sample: PreparedImage) -> dict[str, torch.Tensor]:
        device = self.pixel_mean.device
        x = normalize_pad(sample.image.to(device, non_blocking=True), self.pixel_mean, self.pixel_std,
                          self.config.test.pad_divisor)  # (1, 3, Hp, Wp)
        feats = self.neck(self.backbone(x))
        proposals = RPNHead.proposals(self.rpn_head(feats), self.anchors(feats), sample.img_hw, self.config)
        return self.roi_head(feats[: len(self.config.out_indices)], proposals, sample)

    def forward(self, samples: Sequence[PreparedImage]) -> list[dict[str, torch.Tensor]]:
        return [self.forward_one(s) for s in samples]
