"""COCO-format data: reading datasets, the synthetic generators, their statistics and pretraining crops, `mixaq data` (what a detector is fed, apart from the detectors themselves)."""
from __future__ import annotations

from mixaq.core._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "CocoDetection": "._coco",
    "SyntheticStream": "._coco",
    "GENERATORS": "._synth",
    "SYNTH_CLASSES": "._synth",
    "render_sample": "._synth",
    "write_synthetic": "._synth",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
