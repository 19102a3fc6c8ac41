"""Torch-free cost model of window-level mixed-precision Swin on precision-scalable accelerators.

Public names load on first use (`core._util.lazy_exports`): `import mixaq.simulator` costs nothing
until a name is used (numpy and the cost model load then).
"""
from __future__ import annotations

from mixaq.core._util import lazy_exports

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "COST_COLUMNS": "._cost",
    "AcceleratorSpec": "._spec",
    "AreaReport": "._area",
    "CostReport": "._cost",
    "CostTotals": "._cost",
    "MixaqError": "mixaq.core._errors",
    "SPEEDUP_KINDS": "._cost",
    "SWIN_ARCHS": "._arch",
    "SpecGrid": "._spec_batch",
    "SwinArch": "._arch",
    "WINDOW_SEMANTICS": "._windows",
    "WindowAssignment": "._arch",
    "WindowGeometry": "._windows",
    "baseline_for": "._cost",
    "block_window": "._windows",
    "build_workload": "._workload",
    "estimate": "._cost",
    "estimate_batch": "._cost",
    "estimate_batch_arrays": "._cost",
    "estimate_specs": "._spec_batch",
    "fractions_from_pair_ratios": "._cost",
    "gemm_cost": "._gemm",
    "get_arch": "._arch",
    "list_specs": "._spec",
    "load_spec": "._spec",
    "reference_cost": "._cost",
    "spec_area": "._area",
    "spec_from_mapping": "._spec",
    "speedups": "._cost",
    "vector_cost": "._gemm",
    "window_counts": "._arch",
    "window_geometry": "._windows",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
