"""Quantization-aware training (`mixaq qat`) and sparsity-aware quantization adaptation (`mixaq adapt`).

Public names load on first use (`core._util.lazy_exports`), so `import mixaq.models.qat` (the
evaluator's checkpoint hook) stays cheap.
"""
from __future__ import annotations

from mixaq.core._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "FineTuneConfig": "._config",
    "FineTuneRun": "._config",
    "fine_tune": "._loop",
    "load_finetune_config": "._config",
    "resume_path": "._loop",
    "MixSampler": "._sampling",
    "uniform_sum_ratios": "._sampling",
    "DistillTap": "._distill",
    "load_quantized": "._state",
    "restore_quantized": "._state",
    "save_quantized_checkpoint": "._state",
    "matched_ratios": "._table",
    "qat_table": "._table",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
