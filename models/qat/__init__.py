"""Quantization-aware training (`mixaq qat`) and sparsity-aware quantization adaptation (`mixaq adapt`).

Public names load lazily, so `import models.qat` (the evaluator's checkpoint hook) stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FineTuneConfig",
    "FineTuneRun",
    "MixSampler",
    "DistillTap",
    "fine_tune",
    "load_finetune_config",
    "load_quantized",
    "matched_ratios",
    "qat_table",
    "restore_quantized",
    "resume_path",
    "save_quantized_checkpoint",
    "uniform_sum_ratios",
]

_WHERE = {
    "FineTuneConfig": "_loop",
    "FineTuneRun": "_loop",
    "fine_tune": "_loop",
    "load_finetune_config": "_loop",
    "resume_path": "_loop",
    "MixSampler": "_sampling",
    "uniform_sum_ratios": "_sampling",
    "DistillTap": "_distill",
    "load_quantized": "_state",
    "restore_quantized": "_state",
    "save_quantized_checkpoint": "_state",
    "matched_ratios": "_table",
    "qat_table": "_table",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'mixaq.models.qat' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mixaq.models.qat.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
