"""Training targets of mmdetection 3.3's two-stage detectors, op for op: IoU, MaxIoU assignment,
random sampling, delta encoding and 28x28 mask targets.

Equal losses need the same choices, not only the same formulas: the assigner's low-quality matches
assign every anchor tied at a ground truth's best IoU (`gt_max_assign_all`), the sampler returns
its indices sorted (`unique()`), positives before negatives, ground truths prepended as proposals,
and the averaging factor counts at least one positive and one negative per image. Sampling draws
through `choose(gallery, num, priors)`, mmdet's `torch.randperm` by default; the oracle test swaps in the
same deterministic rule on both sides.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torchvision.ops import roi_align

__all__ = ["AssignerSettings", "SamplerSettings", "Sample", "box_iou", "assign_max_iou", "keyed_choices", "random_choice", "sample",
           "encode_deltas", "mask_targets"]

Choose = Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor]  # (gallery, num, priors) -> picked


@dataclass(frozen=True)
class AssignerSettings:
    """mmdet's MaxIoUAssigner (ignore_iof_thr -1: crowd boxes are dropped before, never matched)."""

    pos_iou: float
    neg_iou: float
    min_pos_iou: float
    match_low_quality: bool = True


@dataclass(frozen=True)
class SamplerSettings:
    """mmdet's RandomSampler (neg_pos_ub -1)."""

    num: int
    pos_fraction: float
    add_gt_as_proposals: bool


@dataclass(frozen=True)
class Sample:
    """One image's sampled priors: positives first. `gt_index` (P,) is the matched ground truth of each
    positive, `labels` (P,) its class, `is_gt` (P,) whether the positive is a ground truth added as a
    proposal; `avg_factor` = max(P, 1) + max(N, 1) (mmdet's SamplingResult)."""

    pos_priors: torch.Tensor  # (P, 4)
    neg_priors: torch.Tensor  # (N, 4)
    pos_index: torch.Tensor  # (P,) indices into the (GT-prepended) priors
    neg_index: torch.Tensor  # (N,)
    gt_index: torch.Tensor
    labels: torch.Tensor
    is_gt: torch.Tensor

    @property
    def priors(self) -> torch.Tensor:
        return torch.cat([self.pos_priors, self.neg_priors])

    @property
    def avg_factor(self) -> int:
        return max(self.pos_priors.shape[0], 1) + max(self.neg_priors.shape[0], 1)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(M, 4) x (N, 4) -> (M, N) IoU, mmdet's `bbox_overlaps` (union floored at eps)."""
    area1 = (boxes1[..., 2] - boxes1[..., 0]) * (boxes1[..., 3] - boxes1[..., 1])
    area2 = (boxes2[..., 2] - boxes2[..., 0]) * (boxes2[..., 3] - boxes2[..., 1])
    lt = torch.max(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    rb = torch.min(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1[..., None] + area2[..., None, :] - overlap
    union = torch.max(union, union.new_tensor([eps]))
    return overlap / union


def assign_max_iou(priors: torch.Tensor, gt_boxes: torch.Tensor, gt_labels: torch.Tensor,
                   cfg: AssignerSettings) -> tuple[torch.Tensor, torch.Tensor]:
    """(gt_inds (N,): 0 negative, -1 ignored, k + 1 matched to ground truth k; labels (N,), -1 if none)."""
    num_gts, num = gt_boxes.shape[0], priors.shape[0]
    gt_inds = priors.new_full((num,), -1, dtype=torch.long)
    if num_gts == 0 or num == 0:
        if num_gts == 0:
            gt_inds[:] = 0
        return gt_inds, priors.new_full((num,), -1, dtype=torch.long)
    overlaps = box_iou(gt_boxes, priors)  # (G, N)
    max_overlaps, argmax_overlaps = overlaps.max(dim=0)
    gt_max_overlaps, _ = overlaps.max(dim=1)
    gt_inds[(max_overlaps >= 0) & (max_overlaps < cfg.neg_iou)] = 0
    pos = max_overlaps >= cfg.pos_iou
    gt_inds[pos] = argmax_overlaps[pos] + 1
    if cfg.match_low_quality:
        # In ground-truth order, later ones overwrite earlier ones, as mmdet's loop does.
        for i in range(num_gts):  # one per ground truth (tens), not per prior
            if gt_max_overlaps[i] >= cfg.min_pos_iou:
                gt_inds[overlaps[i, :] == gt_max_overlaps[i]] = i + 1
    labels = gt_inds.new_full((num,), -1)
    matched = gt_inds > 0
    labels[matched] = gt_labels[gt_inds[matched] - 1]
    return gt_inds, labels


def random_choice(gallery: torch.Tensor, num: int, priors: torch.Tensor | None = None) -> torch.Tensor:
    """mmdet's RandomSampler.random_choice (global torch RNG); `priors` unused (a test's rule may key on them)."""
    perm = torch.randperm(gallery.numel())[:num].to(device=gallery.device)
    return gallery[perm]


def keyed_choices(seed: int, step: int, first_slot: int, n: int) -> list[Choose]:
    """One random choice per image, each from its own generator keyed on (seed, step, the image's
    slot in the global batch): the draws do not depend on how a batch is split over processes, so a
    distributed step samples exactly the anchors and RoIs the single-process step would."""
    import numpy as np

    out = []
    for slot in range(first_slot, first_slot + n):
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, slot, 21]).generate_state(1)[0]))

        def choose(gallery: torch.Tensor, num: int, priors: torch.Tensor | None = None,
                   gen: torch.Generator = gen) -> torch.Tensor:
            return gallery[torch.randperm(gallery.numel(), generator=gen)[:num].to(device=gallery.device)]

        out.append(choose)
    return out


def sample(priors: torch.Tensor, gt_boxes: torch.Tensor, gt_labels: torch.Tensor, assigner: AssignerSettings,
           sampler: SamplerSettings, choose: Choose = random_choice) -> Sample:
    """Assign, then sample as mmdet's RandomSampler.sample (ground truths prepended when configured)."""
    is_gt = priors.new_zeros((priors.shape[0],), dtype=torch.uint8)
    gt_inds, labels = assign_max_iou(priors, gt_boxes, gt_labels, assigner)
    if sampler.add_gt_as_proposals and gt_boxes.shape[0] > 0:
        n = gt_boxes.shape[0]
        priors = torch.cat([gt_boxes, priors], dim=0)
        gt_inds = torch.cat([torch.arange(1, n + 1, dtype=torch.long, device=gt_inds.device), gt_inds])
        labels = torch.cat([gt_labels, labels])
        is_gt = torch.cat([priors.new_ones(n, dtype=torch.uint8), is_gt])
    num_pos = int(sampler.num * sampler.pos_fraction)
    pos = torch.nonzero(gt_inds > 0, as_tuple=False).view(-1)
    if pos.numel() > num_pos:
        pos = choose(pos, num_pos, priors)
    pos = pos.unique()
    neg = torch.nonzero(gt_inds == 0, as_tuple=False).view(-1)
    num_neg = sampler.num - pos.numel()
    if neg.numel() > num_neg:
        neg = choose(neg, num_neg, priors)
    neg = neg.unique()
    return Sample(priors[pos], priors[neg], pos, neg, gt_inds[pos] - 1, labels[pos], is_gt[pos])


def encode_deltas(proposals: torch.Tensor, gt: torch.Tensor, stds: Sequence[float]) -> torch.Tensor:
    """mmdet's bbox2delta (means 0): (N, 4) proposals and their targets -> (N, 4) normalized deltas."""
    proposals, gt = proposals.float(), gt.float()
    px = (proposals[..., 0] + proposals[..., 2]) * 0.5
    py = (proposals[..., 1] + proposals[..., 3]) * 0.5
    pw = proposals[..., 2] - proposals[..., 0]
    ph = proposals[..., 3] - proposals[..., 1]
    gx = (gt[..., 0] + gt[..., 2]) * 0.5
    gy = (gt[..., 1] + gt[..., 3]) * 0.5
    gw = gt[..., 2] - gt[..., 0]
    gh = gt[..., 3] - gt[..., 1]
    deltas = torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=-1)
    means = deltas.new_tensor([0.0, 0.0, 0.0, 0.0]).unsqueeze(0)
    return deltas.sub_(means).div_(deltas.new_tensor(list(stds)).unsqueeze(0))


def mask_targets(pos_proposals: torch.Tensor, gt_index: torch.Tensor, gt_masks: torch.Tensor,
                 size: int = 28) -> torch.Tensor:
    """(P, size, size) float {0, 1}: each positive's ground-truth bitmap (G, H, W) cropped to its
    proposal (clipped to the bitmap) by RoIAlign (aligned, sampling ratio 0), thresholded at 0.5
    (mmdet's `mask_target_single` on BitmapMasks)."""
    if pos_proposals.shape[0] == 0:
        return pos_proposals.new_zeros((0, size, size))
    h, w = gt_masks.shape[-2:]
    boxes = pos_proposals.detach().clone()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clamp(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clamp(0, h)
    rois = torch.cat([torch.arange(boxes.shape[0], device=boxes.device).to(boxes.dtype)[:, None], boxes], dim=1)
    masks = gt_masks.index_select(0, gt_index).to(dtype=rois.dtype)[:, None]
    targets = roi_align(masks, rois, (size, size), 1.0, 0, True).squeeze(1)
    return (targets >= 0.5).float()
