"""Cascade Mask R-CNN's R-CNN part as mmdetection's CascadeRoIHead computes it at test time.

Three stages with their own box heads and target stds (0.1/0.05/0.033 for x, y and
0.2/0.1/0.067 for w, h); each stage but the last refines the RoIs with the deltas of its argmax
class; the final scores are the softmax of the mean of the stages' logits; the masks are the mean of
the three mask heads' sigmoids on the final boxes.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mixaq.models.detection._mask_rcnn import ConvFCBBoxHead, FCNMaskHead, MaskRCNN, _empty, finish_masks
from mixaq.models.detection._preprocess import PreparedImage
from mixaq.models.detection._rcnn_config import RCNNConfig
from mixaq.models.detection._rcnn_ops import bbox2roi, delta2bbox, multiclass_nms, multilevel_roi_align

__all__ = ["CascadeRoIHead", "build_cascade_mask_rcnn"]


class CascadeRoIHead(nn.Module):
    def __init__(self, config: RCNNConfig) -> None:
        super().__init__()
        self.config = config
        self.bbox_head = nn.ModuleList(ConvFCBBoxHead(config) for _ in range(config.num_stages))
        self.mask_head = nn.ModuleList(FCNMaskHead(config) for _ in range(config.num_stages))

    def _regress_by_class(self, rois: torch.Tensor, labels: torch.Tensor, reg: torch.Tensor, stds: Sequence[float],
                          img_hw: tuple[int, int]) -> torch.Tensor:
        if not self.config.reg_class_agnostic:
            labels = labels * 4
            reg = torch.gather(reg, 1, torch.stack([labels + i for i in range(4)], 1))
        return delta2bbox(rois, reg, stds, img_hw)

    def forward(self, feats: Sequence[torch.Tensor], proposals: torch.Tensor,
                sample: PreparedImage) -> dict[str, torch.Tensor]:
        c, t = self.config, self.config.test
        strides = c.roi_strides()
        if proposals.shape[0] == 0:
            return _empty(proposals.device, sample.ori_hw)
        rois = bbox2roi(proposals)
        logits = []
        for stage, head in enumerate(self.bbox_head):  # 3 stages
            cls, reg = head(multilevel_roi_align(feats, rois, 7, strides))
            logits.append(cls)
            if stage < c.num_stages - 1:
                labels = cls[:, :-1].argmax(dim=1)
                refined = self._regress_by_class(rois[:, 1:], labels, reg, c.stage_stds[stage], sample.img_hw)
                rois = torch.cat([rois[:, [0]], refined], dim=1)
        scores = F.softmax(sum(logits) / float(len(logits)), dim=-1)
        per_class = 1 if c.reg_class_agnostic else c.num_classes
        boxes = delta2bbox(rois.repeat_interleave(per_class, dim=0)[:, 1:], reg.view(-1, 4), c.stage_stds[-1],
                           sample.img_hw).view(rois.size(0), -1)
        dets, labels = multiclass_nms(boxes, scores, t.score_thr, t.nms_iou, t.max_per_img)
        if dets.shape[0] == 0:
            return _empty(proposals.device, sample.ori_hw)
        mask_feats = multilevel_roi_align(feats, bbox2roi(dets[:, :4]), 14, strides)
        probs = [head(mask_feats).sigmoid() for head in self.mask_head]
        merged = torch.cat([p[None, :] * 1 for p in probs], 0).mean(dim=0)  # mmdet's merge_aug_masks
        return finish_masks(dets, labels, merged, sample, t.mask_thr)


def build_cascade_mask_rcnn(config: RCNNConfig) -> MaskRCNN:
    return MaskRCNN(config, CascadeRoIHead(config))
