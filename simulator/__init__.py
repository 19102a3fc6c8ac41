"""Torch-free cost model of window-level mixed-precision Swin on precision-scalable accelerators."""
from mixaq.simulator._area import AreaReport, spec_area
from mixaq.simulator._arch import SWIN_ARCHS, SwinArch, WindowAssignment, get_arch, window_counts
from mixaq.simulator._cost import (
    COST_COLUMNS,
    SPEEDUP_KINDS,
    CostReport,
    CostTotals,
    baseline_for,
    estimate,
    estimate_batch,
    estimate_batch_arrays,
    fractions_from_pair_ratios,
    reference_cost,
    speedups,
)
from mixaq.simulator._errors import MixaqError
from mixaq.simulator._gemm import gemm_cost, vector_cost
from mixaq.simulator._spec import AcceleratorSpec, list_specs, load_spec, spec_from_mapping
from mixaq.simulator._spec_batch import SpecGrid, estimate_specs
from mixaq.simulator._windows import WINDOW_SEMANTICS, WindowGeometry, block_window, window_geometry
from mixaq.simulator._workload import build_workload

__all__ = [
    "COST_COLUMNS",
    "AcceleratorSpec",
    "AreaReport",
    "CostReport",
    "CostTotals",
    "MixaqError",
    "SPEEDUP_KINDS",
    "SWIN_ARCHS",
    "SpecGrid",
    "SwinArch",
    "WINDOW_SEMANTICS",
    "WindowAssignment",
    "WindowGeometry",
    "baseline_for",
    "block_window",
    "build_workload",
    "estimate",
    "estimate_batch",
    "estimate_batch_arrays",
    "estimate_specs",
    "fractions_from_pair_ratios",
    "gemm_cost",
    "get_arch",
    "list_specs",
    "load_spec",
    "reference_cost",
    "spec_area",
    "spec_from_mapping",
    "speedups",
    "vector_cost",
    "window_counts",
    "window_geometry",
]
