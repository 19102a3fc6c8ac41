"""Training losses of Swin Mask R-CNN / Cascade Mask R-CNN as mmdetection 3.3 computes them.

`rcnn_losses(model, batch)` -> mmdet's named losses (`loss_rpn_cls`, `loss_rpn_bbox`, `loss_cls`,
`loss_bbox`, `loss_mask`; the cascade's R-CNN terms as `s0.loss_cls` ... weighted by its stage
weights). The settings are the reference configs' (`RCNNTrainSettings.for_config`): mmdet's
`mask-rcnn_swin-t-p4-w7_fpn_1x_coco` for Mask R-CNN, the official release's
`cascade_mask_rcnn_swin_*_giou_4conv1f` for the cascade (GIoU x 10 on decoded boxes, no
low-quality matches in the R-CNN stages, RPN smooth L1 with beta 1/9, anchors inside the image).

A batch is padded to its largest image as mmdet's data preprocessor does (so features differ from
the batch-1 test path); anchors beyond an image's own padded size are invalid. Crowd boxes are not
ground truth here: the caller drops them (mmdet's `ignore_flag`, unused with `ignore_iof_thr` -1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from mixaq.models.detection._rcnn_config import RCNNConfig
from mixaq.models.detection._registry import MASK_RCNN
from mixaq.models.detection._rcnn_ops import bbox2roi, delta2bbox, multilevel_roi_align
from mixaq.models.detection._rcnn_targets import (
    AssignerSettings,
    Choose,
    Sample,
    SamplerSettings,
    encode_deltas,
    mask_targets,
    random_choice,
    sample,
)

__all__ = ["RCNNTrainSettings", "StageSettings", "TrainTarget", "TrainBatch", "rcnn_losses", "pad_batch"]

_EPS = torch.finfo(torch.float32).eps  # mmdet's weight_reduce_loss adds it to avg_factor


@dataclass(frozen=True)
class StageSettings:
    """One R-CNN stage's targets and box loss (`bbox_loss`: "l1" on deltas | "giou" on decoded boxes)."""

    assigner: AssignerSettings
    sampler: SamplerSettings = SamplerSettings(512, 0.25, True)
    weight: float = 1.0
    bbox_loss: str = "l1"
    bbox_loss_weight: float = 1.0


@dataclass(frozen=True)
class RCNNTrainSettings:
    """mmdet's `train_cfg` and the training losses of a config (field names mirror it)."""

    rpn_assigner: AssignerSettings = AssignerSettings(0.7, 0.3, 0.3, True)
    rpn_sampler: SamplerSettings = SamplerSettings(256, 0.5, False)
    rpn_bbox_loss: str = "l1"  # "l1" | "smooth_l1"
    rpn_smooth_l1_beta: float = 1.0 / 9.0
    allowed_border: int = -1  # -1: every valid anchor; 0: anchors inside the image only
    # rpn_proposal (the names RPNHead.proposals reads)
    rpn_nms_pre: int = 2000
    rpn_nms_iou: float = 0.7
    rpn_max_per_img: int = 1000
    rpn_min_bbox_size: float = 0.0
    stages: tuple[StageSettings, ...] = field(default_factory=lambda: (StageSettings(AssignerSettings(0.5, 0.5, 0.5)),))
    mask_size: int = 28

    @classmethod
    def for_config(cls, config: RCNNConfig) -> "RCNNTrainSettings":
        if config.head == MASK_RCNN:
            return cls()
        # The official release's cascade config (mmdet 2.x): rpn_proposal max_per_img 2000.
        ious, weights = (0.5, 0.6, 0.7), (1.0, 0.5, 0.25)
        return cls(rpn_bbox_loss="smooth_l1", allowed_border=0, rpn_max_per_img=2000,
                   stages=tuple(StageSettings(AssignerSettings(iou, iou, iou, False), weight=w, bbox_loss="giou",
                                              bbox_loss_weight=10.0) for iou, w in zip(ious, weights)))


@dataclass(frozen=True)
class TrainTarget:
    """One image's ground truth in the resized image's pixels (crowd boxes already dropped)."""

    boxes: torch.Tensor  # (G, 4) float xyxy
    labels: torch.Tensor  # (G,) long, 0-based
    masks: torch.Tensor  # (G, h, w) uint8 bitmaps at the resized image size


@dataclass(frozen=True)
class TrainBatch:
    """Normalized images padded to one (B, 3, Hp, Wp) tensor; each image's resized (h, w)."""

    images: torch.Tensor
    img_hw: tuple[tuple[int, int], ...]
    targets: tuple[TrainTarget, ...]


def pad_batch(images: Sequence[torch.Tensor], divisor: int = 32) -> torch.Tensor:
    """(3, h, w) normalized images -> (B, 3, Hp, Wp): zero-padded to the largest, rounded up to `divisor`
    (mmengine's stack_batch)."""
    hp = max(int(math.ceil(im.shape[1] / divisor)) * divisor for im in images)
    wp = max(int(math.ceil(im.shape[2] / divisor)) * divisor for im in images)
    return torch.stack([F.pad(im, (0, wp - im.shape[2], 0, hp - im.shape[1])) for im in images])


def _valid_flags(feats: Sequence[torch.Tensor], strides: Sequence[int], pad_hw: tuple[int, int],
                 num_anchors: int) -> torch.Tensor:
    """(sum H*W*A,) anchors of the locations inside this image's own padded size (mmdet's valid_flags)."""
    flags = []
    for f, s in zip(feats, strides):
        fh, fw = f.shape[-2:]
        vh, vw = min(int(math.ceil(pad_hw[0] / s)), fh), min(int(math.ceil(pad_hw[1] / s)), fw)
        valid = (torch.arange(fh, device=f.device) < vh)[:, None] & (torch.arange(fw, device=f.device) < vw)[None, :]
        flags.append(valid.reshape(-1, 1).expand(-1, num_anchors).reshape(-1))
    return torch.cat(flags)


def _weighted_mean(loss: torch.Tensor, avg_factor: float) -> torch.Tensor:
    return loss.sum() / (avg_factor + _EPS)


def _smooth_l1(diff: torch.Tensor, beta: float) -> torch.Tensor:
    diff = diff.abs()
    return torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


def _giou(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Aligned GIoU of (N, 4) boxes (mmdet's bbox_overlaps, mode 'giou', is_aligned)."""
    area1 = (pred[..., 2] - pred[..., 0]) * (pred[..., 3] - pred[..., 1])
    area2 = (target[..., 2] - target[..., 0]) * (target[..., 3] - target[..., 1])
    lt = torch.max(pred[..., :2], target[..., :2])
    rb = torch.min(pred[..., 2:], target[..., 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1 + area2 - overlap
    enclosed_lt = torch.min(pred[..., :2], target[..., :2])
    enclosed_rb = torch.max(pred[..., 2:], target[..., 2:])
    eps_t = union.new_tensor([eps])
    union = torch.max(union, eps_t)
    ious = overlap / union
    enclose_wh = (enclosed_rb - enclosed_lt).clamp(min=0)
    enclose_area = torch.max(enclose_wh[..., 0] * enclose_wh[..., 1], eps_t)
    return ious - (enclose_area - union) / enclose_area


def _rpn_losses(model, feats, batch: TrainBatch, s: RCNNTrainSettings, choose: Sequence[Choose],  # noqa: ANN001, ANN202
                factors: dict[str, float]):
    """Sigmoid CE on objectness + L1 (or smooth L1) on deltas (stds 1) over the sampled anchors."""
    outs = model.rpn_head(feats)
    # (sum H*W*A, 4), one set for the padded batch; float32 whatever the features' dtype, as mmdet's
    # targets are (its proposals use the features' dtype)
    anchors = torch.cat(model.anchors(feats, torch.float32))
    num_anchors = len(model.config.anchor_scales) * len(model.config.anchor_ratios)
    strides = model.config.strides()
    B = batch.images.shape[0]
    cls = torch.cat([c.permute(0, 2, 3, 1).reshape(B, -1) for c, _ in outs], dim=1)  # (B, sum)
    reg = torch.cat([r.permute(0, 2, 3, 1).reshape(B, -1, 4) for _, r in outs], dim=1)  # (B, sum, 4)
    cls_terms, reg_terms, avg_factor = [], [], 0
    for i, (hw, t) in enumerate(zip(batch.img_hw, batch.targets)):
        pad_hw = tuple(int(math.ceil(v / model.config.test.pad_divisor)) * model.config.test.pad_divisor for v in hw)
        inside = _valid_flags(feats, strides, pad_hw, num_anchors)
        if s.allowed_border >= 0:
            a = s.allowed_border
            inside = inside & (anchors[:, 0] >= -a) & (anchors[:, 1] >= -a) & (anchors[:, 2] < hw[1] + a) & \
                (anchors[:, 3] < hw[0] + a)
        idx = torch.nonzero(inside, as_tuple=False).view(-1)
        smp = sample(anchors[idx], t.boxes, torch.zeros_like(t.labels), s.rpn_assigner, s.rpn_sampler, choose[i])
        avg_factor += smp.avg_factor
        pos, neg = idx[smp.pos_index], idx[smp.neg_index]
        logits = torch.cat([cls[i, pos], cls[i, neg]])
        target = torch.cat([logits.new_ones(pos.numel()), logits.new_zeros(neg.numel())])
        cls_terms.append(F.binary_cross_entropy_with_logits(logits, target, reduction="none"))
        if pos.numel():
            diff = reg[i, pos] - encode_deltas(smp.pos_priors, t.boxes[smp.gt_index], (1.0, 1.0, 1.0, 1.0))
            reg_terms.append(diff.abs() if s.rpn_bbox_loss == "l1" else _smooth_l1(diff, s.rpn_smooth_l1_beta))
    loss_cls = _weighted_mean(torch.cat(cls_terms), avg_factor)
    # No positive anywhere: mmdet's weighted loss is a zero that still depends on the predictions.
    loss_bbox = _weighted_mean(torch.cat(reg_terms), avg_factor) if reg_terms else reg.sum() * 0
    factors.update(loss_rpn_cls=float(avg_factor), loss_rpn_bbox=float(avg_factor))
    with torch.no_grad():
        proposals = [model.rpn_head.proposals([(c[i:i + 1], r[i:i + 1]) for c, r in outs], model.anchors(feats), hw,
                                              model.config, settings=s) for i, hw in enumerate(batch.img_hw)]
    return {"loss_rpn_cls": loss_cls, "loss_rpn_bbox": loss_bbox}, proposals


def _bbox_stage(model, head, feats, samples: Sequence[Sample], batch: TrainBatch, stds: Sequence[float],  # noqa: ANN001
                st: StageSettings) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Softmax CE (background last) + the box loss on the positives' class-specific deltas."""
    config = model.config
    C = config.num_classes
    rois = torch.cat([bbox2roi(s.priors, i) for i, s in enumerate(samples)])
    cls, reg = head(multilevel_roi_align(feats, rois, 7, config.roi_strides()))
    labels = torch.cat([torch.cat([s.labels, s.labels.new_full((s.neg_priors.shape[0],), C)]) for s in samples])
    total = rois.shape[0]
    loss_cls = _weighted_mean(F.cross_entropy(cls, labels, reduction="none"), max(float(total), 1.0))
    pos = labels < C
    if pos.any():
        per_class = reg.view(total, -1, 4)
        pos_reg = per_class[pos, 0 if config.reg_class_agnostic else labels[pos]]
        gt = torch.cat([batch.targets[i].boxes[s.gt_index] for i, s in enumerate(samples)])
        if st.bbox_loss == "giou":  # decoded boxes (reg_decoded_bbox), no clipping
            decoded = delta2bbox(rois[pos, 1:], pos_reg, stds, None)
            loss_bbox = _weighted_mean(1 - _giou(decoded, gt), float(total)) * st.bbox_loss_weight
        else:
            deltas = encode_deltas(rois[pos, 1:], gt, stds)
            loss_bbox = _weighted_mean((pos_reg - deltas).abs(), float(total)) * st.bbox_loss_weight
    else:
        loss_bbox = reg[pos].sum()
    return {"loss_cls": loss_cls, "loss_bbox": loss_bbox}, rois, cls, reg


def _mask_loss(model, mask_head, feats, samples: Sequence[Sample], batch: TrainBatch,  # noqa: ANN001
               s: RCNNTrainSettings) -> torch.Tensor:
    """BCE on the ground-truth class channel of each positive's 28x28 logits (mean over pixels)."""
    pos_rois = torch.cat([bbox2roi(smp.pos_priors, i) for i, smp in enumerate(samples)])
    preds = mask_head(multilevel_roi_align(feats, pos_rois, 14, model.config.roi_strides()))
    if preds.shape[0] == 0:
        return preds.sum()
    targets = torch.cat([mask_targets(smp.pos_priors, smp.gt_index, batch.targets[i].masks, s.mask_size)
                         for i, smp in enumerate(samples)])
    labels = torch.cat([smp.labels for smp in samples])
    picked = preds[torch.arange(preds.shape[0], device=preds.device), labels]
    return F.binary_cross_entropy_with_logits(picked, targets, reduction="mean")


def _refine(samples: Sequence[Sample], rois: torch.Tensor, cls: torch.Tensor, reg: torch.Tensor, num_classes: int,
            class_agnostic: bool, stds: Sequence[float], img_hw: Sequence[tuple[int, int]]) -> list[torch.Tensor]:
    """Next stage's proposals (mmdet's refine_bboxes): each sampled RoI regressed by its target class
    (the argmax class for negatives), ground truths added as proposals dropped."""
    labels = torch.cat([torch.cat([s.labels, s.labels.new_full((s.neg_priors.shape[0],), num_classes)])
                        for s in samples])
    labels = torch.where(labels == num_classes, cls[:, :-1].argmax(1), labels)
    out = []
    for i, s in enumerate(samples):
        inds = torch.nonzero(rois[:, 0] == i, as_tuple=False).squeeze(1)
        r, lab, d = rois[inds, 1:], labels[inds], reg[inds]
        if not class_agnostic:
            d = torch.gather(d, 1, torch.stack([lab * 4 + k for k in range(4)], 1))
        boxes = delta2bbox(r, d, stds, img_hw[i])
        keep = torch.ones(inds.numel(), dtype=torch.bool, device=rois.device)
        keep[: s.is_gt.numel()] = s.is_gt == 0
        out.append(boxes[keep])
    return out


def rcnn_losses(model, batch: TrainBatch, settings: RCNNTrainSettings | None = None,  # noqa: ANN001
                choose: Choose | Sequence[Choose] = random_choice,
                factors: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
    """mmdet's `TwoStageDetector.loss` for a `MaskRCNN` (either family): named loss tensors.

    `choose`: the samplers' random choice, or one per image (a distributed run keys each image's
    draws on its place in the global batch, so they do not depend on how images split over ranks).
    `factors`, when given, is filled with each term's normaliser (mmdet's avg_factor: sampled anchors,
    sampled RoIs, mask pixels of the positives), which a distributed run sums over ranks to weight
    every rank's terms so that the averaged gradient is the global batch's.
    """
    config: RCNNConfig = model.config
    s = settings or RCNNTrainSettings.for_config(config)
    device = model.pixel_mean.device
    x = batch.images.to(device)
    if batch.targets and batch.targets[0].boxes.device != device:
        batch = TrainBatch(x, batch.img_hw, tuple(TrainTarget(t.boxes.to(device), t.labels.to(device), t.masks.to(device))
                                                  for t in batch.targets))
    feats = model.neck(model.backbone(x))
    choose = list(choose) if isinstance(choose, Sequence) else [choose] * len(batch.targets)
    factors = {} if factors is None else factors
    losses, proposals = _rpn_losses(model, feats, batch, s, choose, factors)
    roi_feats = feats[: len(config.out_indices)]
    head = model.roi_head
    cascade = isinstance(head.bbox_head, torch.nn.ModuleList)
    for stage, st in enumerate(s.stages):
        samples = [sample(p, t.boxes, t.labels, st.assigner, st.sampler, choose[i])
                   for i, (p, t) in enumerate(zip(proposals, batch.targets))]
        bbox_head = head.bbox_head[stage] if cascade else head.bbox_head
        mask_head = head.mask_head[stage] if cascade else head.mask_head
        stds = config.stage_stds[stage]
        terms, rois, cls, reg = _bbox_stage(model, bbox_head, roi_feats, samples, batch, stds, st)
        terms["loss_mask"] = _mask_loss(model, mask_head, roi_feats, samples, batch, s)
        prefix = f"s{stage}." if cascade else ""
        losses.update({prefix + k: v * st.weight for k, v in terms.items()})
        n_rois = float(max(rois.shape[0], 1))
        n_pos = float(sum(int(smp.pos_priors.shape[0]) for smp in samples))
        factors.update({prefix + "loss_cls": n_rois, prefix + "loss_bbox": n_rois,
                        prefix + "loss_mask": n_pos * s.mask_size * s.mask_size})
        if stage < len(s.stages) - 1:
            with torch.no_grad():
                proposals = _refine(samples, rois, cls, reg, config.num_classes, config.reg_class_agnostic, stds,
                                    batch.img_hw)
    return losses
