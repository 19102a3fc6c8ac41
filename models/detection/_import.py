"""Detector checkpoints of the official Swin release and the mmdet zoo -> an `RCNNConfig` and our weights.

Two formats: the official release (Swin-Transformer-Object-Detection, an mmdet 2.11 fork:
`backbone.layers.S.blocks.B.attn.qkv`, downsample at the end of a stage, `backbone.norm0..3`,
`{meta, state_dict, optimizer}` files) and the mmdet >= 2.16 / 3.x zoo (`backbone.stages.S...
attn.w_msa.qkv`, `ffn.layers.0.0`, patch merging in nn.Unfold order). The architecture comes from
tensor shapes (embed dim, depths, heads, window, classes, FPN and head widths) and from `meta`
when present (class names, the cascade's target stds); a file that fits nothing is a one-line error
saying what did not fit.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from mixaq.core._errors import MixaqError
from mixaq.models.detection._official import backbone_from_mmdet3, check_relative_position_index, infer_backbone_arch
from mixaq.models.detection._rcnn_config import CASCADE_STDS, RCNN_STDS, RCNNConfig
from mixaq.models.detection._registry import RCNN_FAMILIES

__all__ = ["ForeignCheckpoint", "is_foreign", "read_foreign", "sniff_family"]

# Keys a foreign file may carry that our modules do not hold (recomputed, or test-time only).
_DROP = (re.compile(r"relative_position_index$"), re.compile(r"^data_preprocessor\."))

# Other detectors people will hand us, by a key only they have: a one-line "not supported".
_OTHER_DETECTORS: tuple[tuple[str, str], ...] = (
    ("bbox_head.retina_cls.weight", "RetinaNet"),
    ("bbox_head.conv_cls.weight", "a one-stage detector (FCOS/ATSS-style head)"),
    ("bbox_head.cls_convs.0", "a one-stage detector"),
    ("roi_head.bbox_head.fc_cls.weight", "Faster R-CNN (boxes only, no mask head)"),
    ("query_embedding.weight", "a DETR-style detector"),
)


@dataclass(frozen=True)
class ForeignCheckpoint:
    config: RCNNConfig
    state_dict: dict[str, torch.Tensor]  # our module keys
    class_names: tuple[str, ...] | None  # from meta, when the file has them
    source_format: str  # "official" | "mmdet3"


def _tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(k, str) for k in obj) and \
        any(isinstance(v, torch.Tensor) for v in obj.values())


def _state_and_meta(payload: Any, where: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if isinstance(payload, Mapping) and _tensor_dict(payload.get("state_dict")):
        meta = payload.get("meta")
        return dict(payload["state_dict"]), dict(meta) if isinstance(meta, Mapping) else {}
    if _tensor_dict(payload):
        return dict(payload), {}
    raise MixaqError(f"{where}: not a detector checkpoint (no state dict of tensors)")


def is_foreign(payload: Any) -> bool:
    """Whether `payload` looks like an mmdet-family detector file (official or zoo)."""
    try:
        state, _ = _state_and_meta(payload, "")
    except MixaqError:
        return False
    return any(k.startswith(("backbone.", "roi_head.", "rpn_head.", "bbox_head.")) for k in state)


def _classification_hint(state: Mapping[str, Any]) -> str | None:
    keys = set(state)
    if any(k.startswith(("layers.", "patch_embed.")) for k in keys) and not any(k.startswith("backbone.") for k in keys):
        return "a Swin classification checkpoint (no detector: no backbone./neck./roi_head. keys)"
    return None


def sniff_family(state: Mapping[str, torch.Tensor], where: str) -> str:
    """The family a state dict holds, or a one-line error naming what it is instead."""
    hint = _classification_hint(state)
    if hint:
        raise MixaqError(f"{where}: {hint}")
    if "roi_head.bbox_head.0.fc_cls.weight" in state and "roi_head.mask_head.0.conv_logits.weight" in state:
        return "cascade_mask_rcnn"
    if "roi_head.bbox_head.fc_cls.weight" in state and "roi_head.mask_head.conv_logits.weight" in state:
        return "mask_rcnn"
    if "roi_head.bbox_head.0.fc_cls.weight" in state:
        raise MixaqError(f"{where}: a Cascade R-CNN without mask heads: not supported (supported: "
                         f"{', '.join(RCNN_FAMILIES)})")
    for key, what in _OTHER_DETECTORS:
        if any(k.startswith(key) for k in state):
            raise MixaqError(f"{where}: {what} checkpoint: not supported (supported: {', '.join(RCNN_FAMILIES)})")
    raise MixaqError(f"{where}: no Mask R-CNN or Cascade Mask R-CNN heads (roi_head.bbox_head / mask_head) found")


def _count(state: Mapping[str, Any], pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in state for m in [rx.match(k)] if m}
    if found and found != set(range(len(found))):
        raise MixaqError(f"gaps in the numbering of {pattern}")
    return len(found)


def _shape(state: Mapping[str, torch.Tensor], key: str, where: str) -> tuple[int, ...]:
    if key not in state:
        raise MixaqError(f"{where}: missing {key}")
    return tuple(state[key].shape)


def _stds_from_meta(meta: Mapping[str, Any], stages: int) -> tuple[tuple[float, ...], ...] | None:
    """The R-CNN stages' target stds written in the config text of `meta` (mmdet saves it), if any."""
    text = next((meta[k] for k in ("config", "cfg") if isinstance(meta.get(k), str)), None)
    if text is None:
        return None
    found = [tuple(float(v) for v in m.split(",")) for m in re.findall(r"target_stds\s*=\s*\[([^\]]*)\]", text)]
    found = [s for s in found if len(s) == 4 and s != (1.0, 1.0, 1.0, 1.0)]  # the RPN's unit stds
    return tuple(found) if len(found) == stages else None


def _class_names(meta: Mapping[str, Any]) -> tuple[str, ...] | None:
    names = meta.get("CLASSES")
    if names is None and isinstance(meta.get("dataset_meta"), Mapping):
        names = meta["dataset_meta"].get("classes")
    return tuple(str(n) for n in names) if isinstance(names, (list, tuple)) and names else None


def _head_config(state: Mapping[str, torch.Tensor], prefix: str, where: str) -> dict[str, Any]:
    """ConvFCBBoxHead sizes under `prefix` (e.g. `roi_head.bbox_head.` or `...bbox_head.0.`)."""
    for part in ("cls_convs", "reg_convs", "cls_fcs", "reg_fcs"):
        if any(k.startswith(f"{prefix}{part}.") for k in state):
            raise MixaqError(f"{where}: box head with separate {part}: not supported")
    convs = _count(state, rf"^{re.escape(prefix)}shared_convs\.(\d+)\.conv\.weight$")
    if convs and any(k.startswith(f"{prefix}shared_convs.0.gn") for k in state):
        raise MixaqError(f"{where}: GroupNorm box-head convs: not supported")
    fcs = _count(state, rf"^{re.escape(prefix)}shared_fcs\.(\d+)\.weight$")
    if not fcs:
        raise MixaqError(f"{where}: box head without shared fully connected layers: not supported")
    cls = _shape(state, f"{prefix}fc_cls.weight", where)
    reg = _shape(state, f"{prefix}fc_reg.weight", where)
    num_classes = cls[0] - 1
    if reg[0] not in (4, 4 * num_classes):
        raise MixaqError(f"{where}: {prefix}fc_reg has {reg[0]} outputs; expected 4 or 4 x {num_classes} classes")
    return dict(bbox_convs=convs, bbox_conv_norm=convs > 0 and f"{prefix}shared_convs.0.bn.weight" in state,
                bbox_fcs=fcs, fc_channels=_shape(state, f"{prefix}shared_fcs.0.weight", where)[0],
                num_classes=num_classes, reg_class_agnostic=reg[0] == 4)


def _infer_config(state: Mapping[str, torch.Tensor], family: str, meta: Mapping[str, Any], where: str) -> RCNNConfig:
    arch, out_indices = infer_backbone_arch(state, where)
    fpn_in = _count(state, r"^neck\.lateral_convs\.(\d+)\.conv\.weight$")
    if fpn_in != len(out_indices):
        raise MixaqError(f"{where}: the FPN takes {fpn_in} inputs, the backbone has {len(out_indices)} output norms")
    fpn = _shape(state, "neck.lateral_convs.0.conv.weight", where)[0]
    for i, stage in enumerate(out_indices):
        got = _shape(state, f"neck.lateral_convs.{i}.conv.weight", where)[1]
        if got != arch.stage_dim(stage):
            raise MixaqError(f"{where}: FPN input {i} has {got} channels, Swin stage {stage} gives {arch.stage_dim(stage)}")
    if any(k.startswith("neck.fpn_convs.") and int(k.split(".")[2]) >= fpn_in for k in state):
        raise MixaqError(f"{where}: FPN with extra convolution levels (add_extra_convs): not supported")
    anchors = _shape(state, "rpn_head.rpn_cls.weight", where)[0]
    if anchors != 3:
        raise MixaqError(f"{where}: RPN with {anchors} anchors per location; supported: 3 (scale 8, ratios 0.5/1/2)")
    stages = _count(state, r"^roi_head\.bbox_head\.(\d+)\.fc_cls\.weight$") if family == "cascade_mask_rcnn" else 1
    prefixes = [f"roi_head.bbox_head.{s}." for s in range(stages)] if family == "cascade_mask_rcnn" else ["roi_head.bbox_head."]
    heads = [_head_config(state, p, where) for p in prefixes]
    if any(h != heads[0] for h in heads):
        raise MixaqError(f"{where}: the cascade stages' box heads differ in shape: not supported")
    mask = "roi_head.mask_head.0." if family == "cascade_mask_rcnn" else "roi_head.mask_head."
    logits = _shape(state, f"{mask}conv_logits.weight", where)
    if logits[0] != heads[0]["num_classes"]:
        raise MixaqError(f"{where}: mask head predicts {logits[0]} classes, box head {heads[0]['num_classes']}")
    default_stds = CASCADE_STDS if family == "cascade_mask_rcnn" else (RCNN_STDS,)
    if stages != len(default_stds):
        raise MixaqError(f"{where}: a cascade of {stages} stages; supported: 3")
    return RCNNConfig(
        head=family, arch={f: getattr(arch, f) for f in ("embed_dim", "depths", "num_heads", "window_size",
                                                            "mlp_ratio", "patch_size", "in_chans", "window_semantics")},
        out_indices=out_indices, fpn_channels=fpn, mask_convs=_count(state, rf"^{re.escape(mask)}convs\.(\d+)\.conv\.weight$"),
        mask_channels=_shape(state, f"{mask}upsample.weight", where)[1],
        stage_stds=_stds_from_meta(meta, stages) or default_stds, **heads[0])


def read_foreign(payload: Any, where: str, family: str | None = None) -> ForeignCheckpoint:
    """Config, our-key weights, class names and format of an official / mmdet-zoo detector file.

    `family` forces a family (`--detector`); the file must still fit it.
    """
    state, meta = _state_and_meta(payload, where)
    if any(k.startswith("backbone.stages.") for k in state):
        source, state = "mmdet3", backbone_from_mmdet3(state)
    elif any(k.startswith("backbone.layers.") for k in state):
        source = "official"
    else:
        hint = _classification_hint(state)
        if hint:
            raise MixaqError(f"{where}: {hint}")
        if any(k.startswith("backbone.") for k in state):
            raise MixaqError(f"{where}: the backbone is not a Swin transformer (no backbone.layers / backbone.stages)")
        sniff_family(state, where)  # names the detector it is, or says nothing fits
        raise MixaqError(f"{where}: not a Swin detector checkpoint")
    found = sniff_family(state, where)
    if family is not None and family != found:
        raise MixaqError(f"{where}: --detector {family} does not fit this file (its heads are {found}'s)")
    check_relative_position_index(state, where)
    state = {k: v for k, v in state.items() if not any(rx.search(k) for rx in _DROP)}
    return ForeignCheckpoint(_infer_config(state, found, meta, where), state, _class_names(meta), source)
