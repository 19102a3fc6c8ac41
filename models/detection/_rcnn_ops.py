"""The box arithmetic of mmdetection's two-stage detectors, op for op (same torch calls, same order).

Equal results need more than equal formulas: anchors are mmdet's unrounded ones with centre offset
0, deltas are clamped and decoded as `delta2bbox` does, NMS is mmcv's `batched_nms` (coordinate
offsets per class, and per-class NMS above 10000 boxes), RoIs go to FPN levels by mmdet's rule and
RoIAlign runs with `aligned=True, sampling_ratio=0`, and masks are pasted with mmdet's grid sample.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.ops import nms, roi_align

__all__ = ["base_anchors", "grid_anchors", "delta2bbox", "batched_nms", "multiclass_nms", "map_roi_levels",
           "multilevel_roi_align", "bbox2roi", "paste_masks"]

# mmcv's batched_nms switches to one NMS per class at this many boxes.
_SPLIT_THR = 10000
# delta2bbox's default log-space clamp of width/height deltas.
_WH_RATIO_CLIP = 16 / 1000


def base_anchors(stride: int, scales: Sequence[float], ratios: Sequence[float]) -> torch.Tensor:
    """(A, 4) anchors around (0, 0) for one level: mmdet's AnchorGenerator, scale-major, not rounded."""
    w = h = stride
    ratios_t = torch.Tensor(list(ratios))
    scales_t = torch.Tensor(list(scales))
    h_ratios = torch.sqrt(ratios_t)
    w_ratios = 1 / h_ratios
    ws = (w * w_ratios[:, None] * scales_t[None, :]).view(-1)
    hs = (h * h_ratios[:, None] * scales_t[None, :]).view(-1)
    x_center = y_center = 0.0
    return torch.stack([x_center - 0.5 * ws, y_center - 0.5 * hs, x_center + 0.5 * ws, y_center + 0.5 * hs], dim=-1)


def grid_anchors(base: torch.Tensor, feat_hw: tuple[int, int], stride: int, device: torch.device,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(H*W*A, 4) anchors of one level, location-major (row-major), A per location, in `dtype`
    (the features'; mmdet casts its float32 base anchors to it before adding the shifts)."""
    base = base.to(device).to(dtype)
    feat_h, feat_w = feat_hw
    shift_x = torch.arange(0, feat_w, device=device).to(base.dtype) * stride
    shift_y = torch.arange(0, feat_h, device=device).to(base.dtype) * stride
    shift_xx = shift_x.repeat(shift_y.shape[0])
    shift_yy = shift_y.view(-1, 1).repeat(1, shift_x.shape[0]).view(-1)
    shifts = torch.stack([shift_xx, shift_yy, shift_xx, shift_yy], dim=-1)
    return (base[None, :, :] + shifts[:, None, :]).view(-1, 4)


def delta2bbox(rois: torch.Tensor, deltas: torch.Tensor, stds: Sequence[float],
               max_shape: tuple[int, int] | None) -> torch.Tensor:
    """(N, 4) boxes + (N, 4k) deltas -> (N, 4k) boxes, clipped to `max_shape` (h, w); means are 0."""
    num_bboxes, num_classes = deltas.size(0), deltas.size(1) // 4
    if num_bboxes == 0:
        return deltas
    deltas = deltas.reshape(-1, 4)
    means_t = deltas.new_tensor([0.0, 0.0, 0.0, 0.0]).view(1, -1)
    stds_t = deltas.new_tensor(list(stds)).view(1, -1)
    denorm = deltas * stds_t + means_t
    dxy, dwh = denorm[:, :2], denorm[:, 2:]
    rois_ = rois.repeat(1, num_classes).reshape(-1, 4)
    pxy = (rois_[:, :2] + rois_[:, 2:]) * 0.5
    pwh = rois_[:, 2:] - rois_[:, :2]
    dxy_wh = pwh * dxy
    max_ratio = np.abs(np.log(_WH_RATIO_CLIP))
    dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    bboxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if max_shape is not None:
        bboxes[..., 0::2].clamp_(min=0, max=max_shape[1])
        bboxes[..., 1::2].clamp_(min=0, max=max_shape[0])
    return bboxes.reshape(num_bboxes, -1)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor,
                iou_threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """mmcv's batched_nms: (dets (K, 5) sorted by score, kept indices (K,)); no NMS across idxs."""
    max_coordinate = boxes.max()
    offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    boxes_for_nms = boxes + offsets[:, None]
    if boxes_for_nms.shape[0] < _SPLIT_THR:
        keep = nms(boxes_for_nms, scores, float(iou_threshold))
        boxes, scores = boxes[keep], scores[keep]
    else:
        total_mask = scores.new_zeros(scores.size(), dtype=torch.bool)
        for idx in torch.unique(idxs):  # loops over classes (<= 80), only for > 10000 boxes
            mask = (idxs == idx).nonzero(as_tuple=False).view(-1)
            kept = nms(boxes_for_nms[mask], scores[mask], float(iou_threshold))
            total_mask[mask[kept]] = True
        keep = total_mask.nonzero(as_tuple=False).view(-1)
        scores, order = scores[keep].sort(descending=True)
        keep = keep[order]
        boxes = boxes[keep]
    return torch.cat([boxes, scores[:, None]], -1), keep


def multiclass_nms(multi_bboxes: torch.Tensor, multi_scores: torch.Tensor, score_thr: float, iou_threshold: float,
                   max_num: int) -> tuple[torch.Tensor, torch.Tensor]:
    """mmdet's multiclass_nms: (N, 4 or 4C) boxes, (N, C+1) scores with background last ->
    (dets (K, 5), labels (K,))."""
    num_classes = multi_scores.size(1) - 1
    if multi_bboxes.shape[1] > 4:
        bboxes = multi_bboxes.view(multi_scores.size(0), -1, 4)
    else:
        bboxes = multi_bboxes[:, None].expand(multi_scores.size(0), num_classes, 4)
    scores = multi_scores[:, :-1]
    labels = torch.arange(num_classes, dtype=torch.long, device=scores.device).view(1, -1).expand_as(scores)
    bboxes, scores, labels = bboxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)
    inds = (scores > score_thr).nonzero(as_tuple=False).squeeze(1)
    bboxes, scores, labels = bboxes[inds], scores[inds], labels[inds]
    if bboxes.numel() == 0:
        return torch.cat([bboxes, scores[:, None]], -1), labels
    dets, keep = batched_nms(bboxes, scores, labels, iou_threshold)
    if max_num > 0:
        dets, keep = dets[:max_num], keep[:max_num]
    return dets, labels[keep]


def bbox2roi(boxes: torch.Tensor, image_index: int = 0) -> torch.Tensor:
    """(N, 4) boxes of one image -> (N, 5) RoIs (image index, x1, y1, x2, y2)."""
    return torch.cat([boxes.new_full((boxes.size(0), 1), image_index), boxes], dim=-1)


def map_roi_levels(rois: torch.Tensor, num_levels: int, finest_scale: int = 56) -> torch.Tensor:
    """(N,) FPN level of each RoI: floor(log2(sqrt(area) / 56)), clamped (mmdet's SingleRoIExtractor)."""
    scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
    target = torch.floor(torch.log2(scale / finest_scale + 1e-6))
    return target.clamp(min=0, max=num_levels - 1).long()


def multilevel_roi_align(feats: Sequence[torch.Tensor], rois: torch.Tensor, output_size: int,
                         strides: Sequence[int]) -> torch.Tensor:
    """(N, C, S, S) RoI features, each RoI pooled from its level (aligned=True, sampling_ratio=0)."""
    out = feats[0].new_zeros(rois.size(0), feats[0].size(1), output_size, output_size)
    if rois.size(0) == 0:
        return out
    levels = map_roi_levels(rois, len(strides))
    for i, stride in enumerate(strides):  # one RoIAlign call per level (<= 4)
        inds = (levels == i).nonzero(as_tuple=False).squeeze(1)
        if inds.numel() > 0:
            out[inds] = roi_align(feats[i], rois[inds], (output_size, output_size), 1.0 / stride, 0, True)
    return out


def paste_masks(masks: torch.Tensor, boxes: torch.Tensor, img_hw: tuple[int, int], threshold: float,
                chunk_pixels: int = 2**22) -> torch.Tensor:
    """(N, M, M) probabilities + (N, 4) boxes -> (N, H, W) bool masks (mmdet's `_do_paste_mask`).

    Each pixel's value is the grid sample at its centre, as mmdet computes it; pasting the whole
    image instead of the box's neighbourhood only adds pixels outside box+1px, whose bilinear
    value is below half the border cell's (< 0.5), so thresholded masks are identical.
    """
    img_h, img_w = img_hw
    N = masks.shape[0]
    out = torch.zeros(N, img_h, img_w, dtype=torch.bool, device=masks.device)
    step = max(1, chunk_pixels // max(1, img_h * img_w))
    for start in range(0, N, step):  # chunks bound the (n, H, W, 2) sampling grid's memory
        m, b = masks[start:start + step], boxes[start:start + step]
        x0, y0, x1, y1 = torch.split(b, 1, dim=1)  # (n, 1) each
        img_y = torch.arange(0, img_h, device=masks.device).to(torch.float32) + 0.5
        img_x = torch.arange(0, img_w, device=masks.device).to(torch.float32) + 0.5
        img_y = (img_y - y0) / (y1 - y0) * 2 - 1  # (n, H)
        img_x = (img_x - x0) / (x1 - x0) * 2 - 1  # (n, W)
        img_x = torch.where(torch.isinf(img_x), torch.zeros_like(img_x), img_x)
        img_y = torch.where(torch.isinf(img_y), torch.zeros_like(img_y), img_y)
        n = m.shape[0]
        gx = img_x[:, None, :].expand(n, img_y.size(1), img_x.size(1))
        gy = img_y[:, :, None].expand(n, img_y.size(1), img_x.size(1))
        grid = torch.stack([gx, gy], dim=3)  # (n, H, W, 2)
        pasted = F.grid_sample(m[:, None].to(dtype=torch.float32), grid, align_corners=False)  # (n, 1, H, W)
        out[start:start + step] = pasted[:, 0] >= threshold
    return out
