"""Silicon area of an accelerator spec (mm², 45 nm), from published synthesis figures.

area = rows·cols·PE area (by precision model and bit range) + SRAM KiB · density
       + vector lanes · lane area + a fixed overhead

Every constant names its source (docs/simulator.md, "Area"); a spec may override any of them under
`area_mm2:` (`pe`, `sram_per_kib`, `vector_lane`, `other`). All default figures are at 45 nm and
500 MHz: nothing is scaled between technology nodes or frequencies, so the absolute mm² are those of
a 45 nm design, and comparisons between specs are what the model is for.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AREA_SOURCES", "AreaReport", "BITFUSION_PE_UM2", "FIXED_PE_UM2", "SERIAL_PE_UM2", "SRAM_MM2_PER_KIB",
           "VECTOR_LANE_MM2", "pe_area_mm2", "spec_area"]

# Per-PE area (µm²) of a synthesized 4x4 systolic array divided by its 16 PEs, 45 nm, 500 MHz:
# Bit Fusion authors' synthesis table (Sharma et al., ISCA 2018; results/systolic_array_synth.csv of
# github.com/hsharma35/bitfusion). Fixed-precision PEs by max bits (min = max):
FIXED_PE_UM2: dict[int, float] = {2: 1297.069191 / 16, 4: 3066.008364 / 16, 8: 8171.729995 / 16,
                                  16: 26870.48336 / 16}
# Bit Fusion units with 2-bit BitBricks by max bits (min bits 2): the 8-bit one is the paper's
# Fusion Unit (sixteen BitBricks).
BITFUSION_PE_UM2: dict[int, float] = {2: 1297.069191 / 16, 4: 5670.201557 / 16, 8: 27752.83558 / 16,
                                      16: 141302.2232 / 16}
# No per-PE area of a bit-serial PE is published in a form we can use (Stripes reports +32 % chip
# area over DaDianNao): we take the smallest PE of the same synthesis, a 2x2-bit MAC with its
# accumulator, whose datapath is comparable to a 1-bit x 8-bit AND-add into an accumulator. An
# estimate, not a measurement; override with `area_mm2: {pe: ...}`.
SERIAL_PE_UM2: float = FIXED_PE_UM2[2]
# SRAM: CACTI (itrs-hp cells, 45 nm, one bank, 32-bit port) gives 0.108577 mm² for a 16 KiB array
# (bitfusion/sram/cacti_sweep.csv of github.com/hsharma35/bitfusion); 2-8 KiB arrays are 5-10 %
# denser per KiB only through fixed periphery, so one density serves every size.
SRAM_MM2_PER_KIB: float = 0.108577 / 16
# A vector lane is one FP32 adder and one FP32 multiplier: 4,184 + 7,700 µm² at 45 nm (Horowitz,
# "Computing's energy problem", ISSCC 2014, the operation area table). No register file, no
# special-function unit (exp, rsqrt): a lower bound.
VECTOR_LANE_MM2: float = (4184.0 + 7700.0) * 1e-6

AREA_SOURCES: dict[str, str] = {
    "pe (bitfusion, fixed)": "Bit Fusion synthesis table, 45 nm, 500 MHz, 4x4 array / 16 "
                             "(github.com/hsharma35/bitfusion results/systolic_array_synth.csv)",
    "pe (bitserial)": "estimate: the 2x2-bit fixed PE of the same table",
    "sram_per_kib": "CACTI 45 nm itrs-hp, 16 KiB, one bank (same repository, bitfusion/sram/cacti_sweep.csv)",
    "vector_lane": "FP32 add + FP32 multiply, Horowitz ISSCC 2014, 45 nm",
}


def _interp_log2(table: dict[int, float], bits: float) -> float:
    """Area at `bits` by linear interpolation of log2(area) in log2(bits) (end slopes extrapolate)."""
    keys = np.log2(np.array(sorted(table), dtype=float))
    vals = np.log2(np.array([table[k] for k in sorted(table)], dtype=float))
    x = math.log2(bits)
    if x <= keys[0]:
        slope = (vals[1] - vals[0]) / (keys[1] - keys[0])
        return float(2.0 ** (vals[0] + slope * (x - keys[0])))
    if x >= keys[-1]:
        slope = (vals[-1] - vals[-2]) / (keys[-1] - keys[-2])
        return float(2.0 ** (vals[-1] + slope * (x - keys[-1])))
    return float(2.0 ** np.interp(x, keys, vals))


def pe_area_mm2(precision_model: str, min_bits: int, max_bits: int) -> float:
    """Area of one PE (mm²) from the synthesis tables above.

    fixed: the fixed-precision PE at `max_bits`. bitfusion: the fixed PE at `max_bits` times the
    fusion overhead the table shows for the ratio max/min (1 at 1, 1.85 at 2, 3.40 at 4, 5.26 at 8:
    Bit Fusion PE / fixed PE of the same max bits with 2-bit bricks), interpolated in log2(ratio).
    bitserial: `SERIAL_PE_UM2` whatever the bits.
    """
    if precision_model == "bitserial":
        return SERIAL_PE_UM2 * 1e-6
    fixed = _interp_log2(FIXED_PE_UM2, max_bits)
    if precision_model == "fixed" or max_bits <= min_bits:
        return fixed * 1e-6
    ratios = np.log2([1.0] + [b / 2.0 for b in sorted(BITFUSION_PE_UM2) if b > 2])
    overheads = [1.0] + [BITFUSION_PE_UM2[b] / FIXED_PE_UM2[b] for b in sorted(BITFUSION_PE_UM2) if b > 2]
    ratio = math.log2(max_bits / min_bits)
    overhead = float(np.interp(ratio, ratios, overheads, right=overheads[-1]))
    return fixed * overhead * 1e-6


@dataclass(frozen=True)
class AreaReport:
    """Area (mm², 45 nm) of a spec by part."""

    array_mm2: float
    sram_mm2: float
    vector_mm2: float
    other_mm2: float
    pe_mm2: float  # one PE, as used

    @property
    def total_mm2(self) -> float:
        return self.array_mm2 + self.sram_mm2 + self.vector_mm2 + self.other_mm2

    def as_dict(self) -> dict[str, float]:
        return {"area_mm2": self.total_mm2, "array_mm2": self.array_mm2, "sram_mm2": self.sram_mm2,
                "vector_mm2": self.vector_mm2, "other_mm2": self.other_mm2, "pe_mm2": self.pe_mm2}


def spec_area(spec: Any) -> AreaReport:
    """Area of an `AcceleratorSpec` (mm²); the spec's `area_mm2:` overrides win over the defaults."""
    pe = spec.area_pe_mm2 if spec.area_pe_mm2 is not None else pe_area_mm2(spec.precision_model, spec.min_bits,
                                                                          spec.max_bits)
    sram_kib = spec.sram_ifmap_kib + spec.sram_filter_kib + spec.sram_ofmap_kib
    density = SRAM_MM2_PER_KIB if spec.area_sram_mm2_per_kib is None else spec.area_sram_mm2_per_kib
    lane = VECTOR_LANE_MM2 if spec.area_vector_lane_mm2 is None else spec.area_vector_lane_mm2
    return AreaReport(array_mm2=spec.rows * spec.cols * pe, sram_mm2=sram_kib * density,
                      vector_mm2=spec.vector_lanes * lane, other_mm2=spec.area_other_mm2, pe_mm2=pe)
