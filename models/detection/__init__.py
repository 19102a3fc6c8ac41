"""Detection on COCO-format data: synthetic shapes, Swin+FPN detectors, CPU training, fake-quant mAP,
and official / mmdet Swin (Cascade) Mask R-CNN checkpoints computed as mmdetection computes them.

Public names load on first use (`simulator._util.lazy_exports`): pycocotools, torchvision and the
detector only when needed.
"""
from __future__ import annotations

from mixaq.simulator._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "CocoDetection": "._coco",
    "SyntheticStream": "._coco",
    "DetectorConfig": "._detector",
    "build_detector": "._detector",
    "DEFAULT_VAL": "._evaluate",
    "EvalResult": "._evaluate",
    "Evaluator": "._evaluate",
    "ensure_default_val": "._evaluate",
    "load_backbone_weights": "._checkpoint",
    "load_detector": "._checkpoint",
    "save_checkpoint": "._checkpoint",
    "GENERATORS": "._synth",
    "SYNTH_CLASSES": "._synth",
    "render_sample": "._synth",
    "write_synthetic": "._synth",
    "train": "._train",
    "load_run_config": "._train",
    "FAMILIES": "._registry",
    "get_family": "._registry",
    "RCNNConfig": "._rcnn_config",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
