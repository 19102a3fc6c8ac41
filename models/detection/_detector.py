"""Detector: timm Swin backbone -> torchvision FPN -> a torchvision detection head (name -> builder)."""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn as nn

from mixaq.simulator import SwinArch, get_arch
from mixaq.core._errors import MixaqError
from mixaq.core._util import dataclass_from_mapping

__all__ = ["DetectorConfig", "SwinFPN", "build_detector", "build_torchvision", "HEADS"]


@dataclass(frozen=True)
class DetectorConfig:
    """Architecture of a detector; `arch` is a preset name or a mapping of `SwinArch` fields."""

    arch: str | tuple = "swin_micro"
    num_classes: int = 5
    image_size: int = 256  # square network input side, px (images are resized to fit it)
    head: str = "fcos"
    fpn_channels: int = 64
    head_convs: int = 2
    out_indices: tuple[int, ...] = (1, 2)  # Swin stages feeding the FPN (stride 8 and 16 for 3 stages)
    score_thresh: float = 0.05
    nms_thresh: float = 0.6
    detections_per_img: int = 100

    def __post_init__(self) -> None:
        if isinstance(self.arch, Mapping):  # keep the dataclass hashable
            object.__setattr__(self, "arch", tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                                         for k, v in self.arch.items())))
        object.__setattr__(self, "out_indices", tuple(int(i) for i in self.out_indices))
        if self.head not in HEADS:
            raise MixaqError(f"model.head: unknown head {self.head!r} (choose from {', '.join(HEADS)})")
        swin = self.swin_arch
        if not self.out_indices or any(not 0 <= i < swin.num_stages for i in self.out_indices):
            raise MixaqError(f"model.out_indices {self.out_indices} must name stages 0..{swin.num_stages - 1}")
        if self.num_classes < 1 or self.image_size < 32 or self.fpn_channels < 8:
            raise MixaqError("model: num_classes >= 1, image_size >= 32 and fpn_channels >= 8 required")
        if self.head in ("fcos", "retinanet") and self.fpn_channels % 32:
            raise MixaqError(f"model.fpn_channels must be a multiple of 32 for {self.head} (GroupNorm(32)), "
                             f"got {self.fpn_channels}")

    @property
    def swin_arch(self) -> SwinArch:
        return get_arch(dict(self.arch) if isinstance(self.arch, tuple) else self.arch)

    @property
    def image_hw(self) -> tuple[int, int]:
        return (self.image_size, self.image_size)

    def strides(self) -> tuple[int, ...]:
        """Feature stride of every FPN level, the two extra P6/P7-style levels included."""
        swin = self.swin_arch
        base = [swin.patch_size * 2**i for i in self.out_indices]
        return tuple(base + [base[-1] * 2, base[-1] * 4])

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["arch"] = dict(self.arch) if isinstance(self.arch, tuple) else self.arch
        if isinstance(out["arch"], dict):
            out["arch"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["arch"].items()}
        out["out_indices"] = list(self.out_indices)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "model") -> "DetectorConfig":
        return dataclass_from_mapping(cls, data, where)


class SwinFPN(nn.Module):
    """timm Swin (features_only, NHWC) -> NCHW -> FPN with two extra stride-doubling levels.

    Exposes `out_channels` as torchvision's detection models require. The Swin blocks live at
    `self.body`, where the two-branch conversion finds them.
    """

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelP6P7

        from mixaq.models import build_swin

        swin = config.swin_arch
        self.body = build_swin(swin, config.image_size, features_only=True, out_indices=config.out_indices)
        in_channels = [swin.stage_dim(i) for i in config.out_indices]
        c = config.fpn_channels
        self.fpn = FeaturePyramidNetwork(in_channels, c, extra_blocks=LastLevelP6P7(c, c))
        self.out_channels = c

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        feats = self.body(x)  # list of (B, H_i, W_i, C_i)
        maps = OrderedDict((str(i), f.permute(0, 3, 1, 2).contiguous()) for i, f in enumerate(feats))
        return self.fpn(maps)  # (B, fpn_channels, H_l, W_l) per level


def _anchor_generator(config: DetectorConfig, per_level: Callable[[int], tuple], aspect_ratios: tuple[float, ...]):
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    strides = config.strides()
    return AnchorGenerator(tuple(per_level(s) for s in strides), (aspect_ratios,) * len(strides))


def _fcos_sizes(stride: int) -> tuple:
    return (stride,)  # FCOS: one "anchor" per location whose size equals the level stride


def _retina_sizes(stride: int) -> tuple:
    return tuple(int(stride * 4 * 2 ** (k / 3)) for k in range(3))


def _common(config: DetectorConfig) -> dict[str, Any]:
    return dict(min_size=config.image_size, max_size=config.image_size)


def _build_fcos(config: DetectorConfig, backbone: SwinFPN) -> nn.Module:
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.fcos import FCOSHead

    head = FCOSHead(backbone.out_channels, 1, config.num_classes, num_convs=config.head_convs)
    return FCOS(backbone, config.num_classes, anchor_generator=_anchor_generator(config, _fcos_sizes, (1.0,)), head=head,
                score_thresh=config.score_thresh, nms_thresh=config.nms_thresh,
                detections_per_img=config.detections_per_img, **_common(config))


def _build_retinanet(config: DetectorConfig, backbone: SwinFPN) -> nn.Module:
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.retinanet import RetinaNetHead

    anchors = _anchor_generator(config, _retina_sizes, (0.5, 1.0, 2.0))
    head = RetinaNetHead(backbone.out_channels, anchors.num_anchors_per_location()[0], config.num_classes)
    return RetinaNet(backbone, config.num_classes, anchor_generator=anchors, head=head,
                     score_thresh=config.score_thresh, nms_thresh=config.nms_thresh,
                     detections_per_img=config.detections_per_img, **_common(config))


def _build_fasterrcnn(config: DetectorConfig, backbone: SwinFPN) -> nn.Module:
    from torchvision.models.detection import FasterRCNN
    from torchvision.ops import MultiScaleRoIAlign

    anchors = _anchor_generator(config, _retina_sizes, (0.5, 1.0, 2.0))
    names = [str(i) for i in range(len(config.out_indices))]
    pool = MultiScaleRoIAlign(featmap_names=names, output_size=7, sampling_ratio=2)
    # Faster R-CNN reserves label 0 for background; `label_offset` shifts our 0-based labels.
    return FasterRCNN(backbone, config.num_classes + 1, rpn_anchor_generator=anchors, box_roi_pool=pool,
                      box_score_thresh=config.score_thresh, box_nms_thresh=config.nms_thresh,
                      box_detections_per_img=config.detections_per_img, **_common(config))


# The torchvision heads of the timm-Swin families (the family registry, `_registry.py`, names them
# and holds their label offsets).
HEADS: dict[str, Callable[[DetectorConfig, SwinFPN], nn.Module]] = {
    "fcos": _build_fcos,
    "retinanet": _build_retinanet,
    "fasterrcnn": _build_fasterrcnn,
}


def build_torchvision(config: DetectorConfig) -> nn.Module:
    """timm Swin + FPN + the torchvision head `config.head`, randomly initialised."""
    return HEADS[config.head](config, SwinFPN(config))


def build_detector(config) -> nn.Module:  # noqa: ANN001 (DetectorConfig | RCNNConfig)
    """A randomly initialised detector of the family `config.head` (never pretrained weights)."""
    from mixaq.models.detection._registry import get_family

    return get_family(config.head).build(config)
