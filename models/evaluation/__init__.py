"""Measuring and fitting a detector: fake-quant COCO mAP, bootstrap intervals, CPU training, `mixaq eval|train` (they consume data and detectors, so they sit above both)."""
from __future__ import annotations

from mixaq.core._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "DEFAULT_VAL": "._evaluate",
    "EvalResult": "._evaluate",
    "Evaluator": "._evaluate",
    "ensure_default_val": "._evaluate",
    "train": "._train",
    "load_run_config": "._train",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
