"""Cost of elementwise and reduction work on the vector unit (LayerNorm, softmax, GELU, norms, gathers)."""
from __future__ import annotations

import numpy as np

from mixaq.simulator._spec import AcceleratorSpec

__all__ = ["vector_cost"]


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _cdiv(a, b):
    """ceil(a / b) for integer-valued floats; exact while a·b < 2**53 (float floor_divide is slow)."""
    return np.ceil(a / b)


def vector_cost(spec: AcceleratorSpec, rows, width, ops_per_element, count=1.0) -> dict[str, np.ndarray]:
    """Elementwise/reduction work on the vector unit: ⌈rows·width·ops / lanes⌉ cycles per instance.

    Vector ops read and write on-chip buffers next to the GEMM that produces or consumes their
    data, so they add no DRAM traffic; their energy per element-op includes those accesses.
    A fractional row count is interpolated as in `gemm_cost`.
    """
    rows, width, ops_per_element, count = map(_f64, (rows, width, ops_per_element, count))
    rows_floor = np.floor(rows)
    frac = rows - rows_floor
    per_row = width * ops_per_element
    lanes = spec.vector_lanes
    cycles = _cdiv(rows_floor * per_row, lanes)
    cycles = cycles + frac * (_cdiv((rows_floor + 1.0) * per_row, lanes) - cycles)
    cycles = cycles * count
    static = cycles * spec.static_power_mw * spec.cycle_ns
    ops = rows * per_row * count
    return {"vector_ops": ops, "cycles": cycles, "static_energy_pj": static,
            "energy_pj": ops * spec.vector_op_energy_pj + static}
