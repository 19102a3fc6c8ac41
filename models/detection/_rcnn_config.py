"""`RCNNConfig`: the architecture and test-time settings of a Swin Mask R-CNN / Cascade Mask R-CNN.

Defaults are the official Swin-T Mask R-CNN (Swin-Transformer-Object-Detection, mmdet's
`mask-rcnn_swin-t-p4-w7_fpn_1x_coco`); an imported checkpoint overrides the sizes it implies.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Mapping

from mixaq.simulator import SwinArch, get_arch
from mixaq.core._errors import MixaqError

__all__ = ["RCNNConfig", "TestSettings", "CASCADE_STDS", "RCNN_STDS"]

RCNN_STDS: tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)
CASCADE_STDS: tuple[tuple[float, ...], ...] = (RCNN_STDS, (0.05, 0.05, 0.1, 0.1), (0.033, 0.033, 0.067, 0.067))


@dataclass(frozen=True)
class TestSettings:
    """mmdet's test pipeline and test_cfg for these detectors (the reference configs' values)."""

    scale: tuple[int, int] = (1333, 800)  # keep-ratio resize: long edge <= 1333, short edge <= 800
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)  # RGB
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    pad_divisor: int = 32
    rpn_nms_pre: int = 1000  # per level
    rpn_nms_iou: float = 0.7
    rpn_max_per_img: int = 1000
    rpn_min_bbox_size: float = 0.0
    score_thr: float = 0.05
    nms_iou: float = 0.5
    max_per_img: int = 100
    mask_thr: float = 0.5

    def __post_init__(self) -> None:
        for name in ("scale", "mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if len(self.scale) != 2 or min(self.scale) < 32:
            raise MixaqError(f"test.scale must be two edges >= 32 px, got {self.scale}")


@dataclass(frozen=True)
class RCNNConfig:
    """A two-stage Swin detector. `head` is the family (`mask_rcnn` | `cascade_mask_rcnn`);
    the backbone computes the official Swin (`_official.py`)."""

    head: str = "mask_rcnn"
    arch: str | tuple = "swin_t"
    out_indices: tuple[int, ...] = (0, 1, 2, 3)
    num_classes: int = 80
    fpn_channels: int = 256
    fpn_extra_levels: int = 1  # max-pooled levels above the last stage (P6)
    anchor_scales: tuple[float, ...] = (8.0,)
    anchor_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    bbox_convs: int = 0  # ConvFCBBoxHead: shared 3x3 convs (4 in the official cascade "4conv1f")
    bbox_conv_norm: bool = False  # BatchNorm after each shared conv (the "4conv1f" heads)
    bbox_fcs: int = 2  # shared fully connected layers (Shared2FC: 2; 4conv1f: 1)
    fc_channels: int = 1024
    reg_class_agnostic: bool = False
    stage_stds: tuple[tuple[float, ...], ...] = (RCNN_STDS,)  # one per R-CNN stage (cascade: 3)
    mask_convs: int = 4
    mask_channels: int = 256
    test: TestSettings = field(default_factory=TestSettings)

    def __post_init__(self) -> None:
        if isinstance(self.arch, (Mapping, tuple)):  # every SwinArch field, so equal archs compare equal
            full = asdict(replace(get_arch(dict(self.arch)), window_semantics="official"))
            object.__setattr__(self, "arch", tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                                                         for k, v in full.items())))
        if isinstance(self.test, Mapping):
            object.__setattr__(self, "test", TestSettings(**self.test))
        for name in ("out_indices", "anchor_scales", "anchor_ratios"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "stage_stds", tuple(tuple(float(v) for v in s) for s in self.stage_stds))
        if self.head not in ("mask_rcnn", "cascade_mask_rcnn"):
            raise MixaqError(f"model.head: {self.head!r} is not an R-CNN family (mask_rcnn, cascade_mask_rcnn)")
        if (self.head == "cascade_mask_rcnn") != (len(self.stage_stds) > 1):
            raise MixaqError(f"model: {self.head} with {len(self.stage_stds)} R-CNN stage(s)")
        if any(len(s) != 4 for s in self.stage_stds):
            raise MixaqError("model.stage_stds: four target stds (x, y, w, h) per stage")
        swin = self.swin_arch
        if not self.out_indices or list(self.out_indices) != sorted(set(self.out_indices)) or \
                any(not 0 <= i < swin.num_stages for i in self.out_indices):
            raise MixaqError(f"model.out_indices {self.out_indices} must name stages 0..{swin.num_stages - 1}")
        if self.num_classes < 1 or self.fpn_channels < 1 or self.fc_channels < 1 or self.bbox_fcs < 1:
            raise MixaqError("model: num_classes, fpn_channels, fc_channels and bbox_fcs must be >= 1")

    @property
    def num_stages(self) -> int:
        return len(self.stage_stds)

    @property
    def has_masks(self) -> bool:
        return True

    @property
    def swin_arch(self) -> SwinArch:
        """The backbone; its windows follow the official geometry (the simulator costs the same)."""
        arch = get_arch(dict(self.arch) if isinstance(self.arch, tuple) else self.arch)
        return replace(arch, window_semantics="official")

    @property
    def image_hw(self) -> tuple[int, int]:
        """The network input (h, w) costs are computed at: a landscape image at the test scale
        (800x1333), padded to the pad divisor as the network sees it (800x1344)."""
        d = self.test.pad_divisor
        return tuple(-(-v // d) * d for v in (min(self.test.scale), max(self.test.scale)))

    def strides(self) -> tuple[int, ...]:
        """Stride of every FPN level (backbone stages, then the max-pooled extra levels)."""
        swin = self.swin_arch
        base = [swin.patch_size * 2**i for i in self.out_indices]
        return tuple(base + [base[-1] * 2 ** (k + 1) for k in range(self.fpn_extra_levels)])

    def roi_strides(self) -> tuple[int, ...]:
        """Levels RoIs are pooled from: the backbone levels (mmdet's featmap_strides)."""
        return self.strides()[: len(self.out_indices)]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["arch"] = dict(self.arch) if isinstance(self.arch, tuple) else self.arch
        if isinstance(out["arch"], dict):
            out["arch"] = {k: list(v) if isinstance(v, tuple) else v for k, v in out["arch"].items()}
        for key in ("out_indices", "anchor_scales", "anchor_ratios"):
            out[key] = list(out[key])
        out["stage_stds"] = [list(s) for s in self.stage_stds]
        out["test"] = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.test).items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "model") -> "RCNNConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise MixaqError(f"{where}: unknown field(s) {sorted(unknown)} (known: {sorted(known)})")
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise MixaqError(f"{where}: {exc}") from None
