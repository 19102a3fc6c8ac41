"""Cost of elementwise and reduction work on the vector unit (LayerNorm, softmax, GELU, norms, gathers).

Each vector op instance reads a tensor and writes one (`read_width` / `write_width` elements per row,
from the workload), stored at the width GEMM results leave the array at (`memory.output_bits`). Every
element read or written is an SRAM access. Whether it also crosses DRAM is `vector_unit.dram`:

- `fits` (default): the instance's input and output stay in the working half of the ofmap SRAM,
  where the producing GEMM leaves its results, when both fit there; otherwise the input is read from
  DRAM and the output written back (layer by layer, as the array's GEMMs read and write theirs);
- `always`: every instance reads its input from DRAM and writes its output there (no fusion at all);
- `never`: vector ops are fused with the GEMMs next to them (SRAM traffic only).

The unit streams: DRAM transfers overlap the lanes' work, so an instance takes the larger of its
lane cycles ⌈rows·width·ops / lanes⌉ and its DRAM time; the excess is `stall_cycles`.
"""
from __future__ import annotations

import numpy as np

from mixaq.simulator._spec import AcceleratorSpec

__all__ = ["vector_cost"]

_HALF = 512.0  # bytes per KiB of a double-buffered SRAM that hold the working set


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _cdiv(a, b):
    """ceil(a / b) for integer-valued floats; exact while a·b < 2**53 (float floor_divide is slow)."""
    return np.ceil(a / b)


def _instance(spec, rows, per_row, read_width, write_width):
    """Lane cycles, bytes read and written (SRAM), DRAM reads and writes of one instance of `rows` rows."""
    lane_cycles = _cdiv(rows * per_row, spec.vector_lanes)
    element = spec.output_bits / 8.0
    read, write = rows * read_width * element, rows * write_width * element
    policy = spec.vector_dram
    if policy == "never":
        off_chip = 0.0
    elif policy == "always":
        off_chip = 1.0
    else:
        off_chip = np.where(read + write <= spec.sram_ofmap_kib * _HALF, 0.0, 1.0)
    dram_read, dram_write = read * off_chip, write * off_chip
    if spec.dram_ports == "per_operand":  # reads and writes on their own ports
        dram_cycles = np.maximum(dram_read, dram_write) / spec.dram_bytes_per_cycle
    else:
        dram_cycles = (dram_read + dram_write) / spec.dram_bytes_per_cycle
    return lane_cycles, np.maximum(dram_cycles - lane_cycles, 0.0), read + write, dram_read, dram_write


def vector_cost(spec: AcceleratorSpec, rows, width, ops_per_element, count=1.0, read_width=None,
                write_width=None) -> dict[str, np.ndarray]:
    """`count` instances of elementwise/reduction work of `rows` × `width` elements on the vector unit.

    `read_width` / `write_width`: elements read / written per row (default: `width` each, a map such
    as LayerNorm). A fractional row count is interpolated between ⌊rows⌋ and ⌊rows⌋+1 as in
    `gemm_cost`. Spec fields may be arrays aligned with the rows (`_spec_batch`).
    """
    rows, width, ops_per_element, count = map(_f64, (rows, width, ops_per_element, count))
    read_width = width if read_width is None else _f64(read_width)
    write_width = width if write_width is None else _f64(write_width)
    rows_floor = np.floor(rows)
    frac = rows - rows_floor
    per_row = width * ops_per_element
    lower = _instance(spec, rows_floor, per_row, read_width, write_width)
    upper = _instance(spec, rows_floor + 1.0, per_row, read_width, write_width)
    lanes, stall, sram, dram_read, dram_write = (
        (lo + frac * (up - lo)) * count for lo, up in zip(lower, upper))
    cycles = lanes + stall
    ops = rows * per_row * count
    op_energy = ops * spec.vector_op_energy_pj
    sram_energy = sram * spec.sram_byte_energy_pj
    dram_energy = (dram_read + dram_write) * spec.dram_byte_energy_pj
    static = cycles * spec.static_power_mw * spec.cycle_ns
    return {"vector_ops": ops, "vector_cycles": lanes, "stall_cycles": stall, "cycles": cycles,
            "sram_bytes": sram, "dram_read_bytes": dram_read, "dram_write_bytes": dram_write,
            "op_energy_pj": op_energy, "sram_energy_pj": sram_energy, "dram_energy_pj": dram_energy,
            "static_energy_pj": static, "energy_pj": op_energy + sram_energy + dram_energy + static}
