"""Vectorized cost of GEMMs and vector-unit ops on an `AcceleratorSpec`.

One code path serves a single GEMM (`mixaq gemm`), a whole network and thousands of assignments:
every input broadcasts, every output is an array.

Compute cycles are SCALE-Sim v3's stall-free counts for an R×C array, with M rows of the ifmap,
N filters and a reduction of K (SCALE-Sim's GEMM topology `M, N, K`):
  os: ⌈M/R⌉·⌈N/C⌉·(K + R + C − 2) − 1
  ws: ⌈K/R⌉·⌈N/C⌉·(2R + C + M − 2) − 1
  is: ⌈K/R⌉·⌈M/C⌉·(2R + C + N − 2) − 1
Precision enters as K → ⌈K/pack⌉ (Bit Fusion) and as the streamed dimension × serial passes
(bit-serial). Memory traffic follows the fold loops; when the streamed dimension of a ws/is GEMM
is too long for the buffers, the GEMM may be split along it into chunks (each costed by the same
closed form), whichever schedule finishes first. docs/simulator.md has the derivations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mixaq.simulator._precision import PRECISION_MODELS
from mixaq.simulator._spec import AcceleratorSpec

__all__ = ["DATAFLOW_ROLES", "GEMM_FIELDS", "VECTOR_FIELDS", "gemm_cost", "vector_cost"]


@dataclass(frozen=True)
class DataflowRoles:
    """Which GEMM dimension goes where and which operand plays which part (SCALE-Sim's S_r/S_c/T)."""

    rows: str  # GEMM dimension on the array rows ("m", "n" or "k")
    cols: str  # ... on the array columns
    stream: str  # ... streamed through the array in time
    x1: str  # operand indexed by (rows, stream): "ifmap" | "filter"
    x2: str  # operand indexed by (cols, stream): "filter" | "psum" (partial sums across K folds)
    stationary: str  # operand held in the PEs: "ofmap" (os) | "filter" | "ifmap"
    skew_rows: int  # pipeline fill/drain is skew_rows·R + C − 2 cycles per fold


DATAFLOW_ROLES: dict[str, DataflowRoles] = {
    "os": DataflowRoles("m", "n", "k", "ifmap", "filter", "ofmap", 1),
    "ws": DataflowRoles("k", "n", "m", "ifmap", "psum", "filter", 2),
    "is": DataflowRoles("k", "m", "n", "filter", "psum", "ifmap", 2),
}

GEMM_FIELDS = (
    "macs", "bops", "compute_cycles", "stall_cycles", "cycles", "sram_bytes", "dram_read_bytes",
    "dram_write_bytes", "mac_energy_pj", "sram_energy_pj", "dram_energy_pj", "static_energy_pj",
    "energy_pj", "stream_chunks", "pack", "utilization", "peak_macs_per_cycle",
)
VECTOR_FIELDS = ("vector_ops", "cycles", "energy_pj", "static_energy_pj")


def _cdiv(a, b):
    """ceil(a / b) for integer-valued floats; exact while a·b < 2**53 (float floor_divide is slow)."""
    return np.ceil(a / b)


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _schedules(spec: AcceleratorSpec, m, n, k, ba, bw, n1, n2, t_stream, passes, skew, fill_bytes):
    """Cycles and traffic of every candidate schedule, stacked on a leading axis.

    The array walks folds over two spatial dims d1 (rows, n1 folds) × d2 (cols, n2 folds) and
    streams the third (length t_stream, replayed `passes` times). Operand X1 is indexed by
    (d1, stream), X2 by (d2, stream), the stationary one by (d1, d2):
      os: X1 = ifmap, X2 = filter, stationary = ofmap (accumulated inside the PEs)
      ws: X1 = ifmap, X2 = ofmap partial sums across the K folds, stationary = filter
      is: X1 = filter, X2 = ofmap partial sums across the K folds, stationary = ifmap
    Each SRAM is double-buffered: half of it holds the working set. Fold order (d1 outer): X1 is
    fetched once if one d1 tile fits, else once per d2 fold; X2 once if all of it fits, else once
    per d1 fold. Fold order (d2 outer): the roles swap. Partial sums that cannot stay on chip go to
    DRAM at psum_bits after each K fold but the last and come back for the next one.
    For ws/is the stream (M resp. N) may also be cut into chunks: the largest chunk whose working
    set fits for either fold order. Each chunk reloads the stationary operand (from DRAM unless all
    of it fits) and pays the pipeline fill/drain again.
    Double buffering hides every transfer behind compute except `fill_bytes`, what the array
    needs before its first cycle: cycles = max(compute + fill / BW, DRAM bytes / BW).
    """
    roles = DATAFLOW_ROLES[spec.dataflow]
    half = 512.0  # bytes per KiB of a double-buffered SRAM that hold the working set
    out = m * n * spec.output_bits / 8.0
    psum = m * n * spec.psum_bits / 8.0
    inf = np.inf
    # operand -> (bytes, buffer bytes available to it)
    operands = {"ifmap": (m * k * ba / 8.0, spec.sram_ifmap_kib * half),
                "filter": (k * n * bw / 8.0, spec.sram_filter_kib * half),
                "psum": (psum, spec.sram_ofmap_kib * half),
                "ofmap": (0.0, inf)}  # os: the stationary outputs never leave the PEs early
    (x1, cap1), (x2, cap2), (stat, cap_s) = (operands[name] for name in (roles.x1, roles.x2, roles.stationary))
    x2_is_psum = roles.x2 == "psum"
    can_chunk = roles.stream != "k"  # chunking a reduction would create partial sums: not modelled
    length = {"m": m, "n": n, "k": k}[roles.stream]
    one_k_fold = n1 <= 1.0  # no partial sums to keep between folds
    if can_chunk:
        x1_unit, x2_unit = x1 / length, x2 / length
        x2_limit = lambda c: np.where(one_k_fold, inf, np.floor(c / x2_unit))  # noqa: E731
        alpha = np.minimum(np.floor(cap1 * n1 / x1_unit), x2_limit(cap2))
        beta = np.minimum(x2_limit(cap2 * n2), np.floor(cap1 / x1_unit))
        whole = np.broadcast_to(length, alpha.shape)
        chunk = np.stack([whole, np.clip(alpha, 1.0, whole), np.clip(beta, 1.0, whole)])
        valid = np.stack([np.ones(alpha.shape, dtype=bool), alpha >= 1.0, beta >= 1.0])
    else:
        length = np.ones_like(x1 * n1)  # keeps the packing axis of n1
        chunk, valid = length[None], np.ones((1,) + length.shape, dtype=bool)
    n_chunks = _cdiv(length, chunk)  # (S, ...)
    x1c, x2c = x1 * chunk / length, x2 * chunk / length  # bytes of one chunk
    x1_tile_fits, x1_all_fits = x1c / n1 <= cap1, x1c <= cap1
    x2_tile_fits = (x2c / n2 <= cap2) | (one_k_fold & x2_is_psum)
    x2_all_fits = (x2c <= cap2) | (one_k_fold & x2_is_psum)
    # Axis 0: schedules x fold orders (d1 outer, d2 outer).
    p1 = np.concatenate([np.where(x1_tile_fits, 1.0, n2), np.where(x1_all_fits, 1.0, n2)])
    p2 = np.concatenate([np.where(x2_all_fits, 1.0, n1), np.where(x2_tile_fits, 1.0, n1)])
    n_chunks, chunk, valid = (np.concatenate([a, a]) for a in (n_chunks, chunk, valid))
    stat_passes = np.where(stat <= cap_s, 1.0, n_chunks)
    read = x1 * p1 + stat * stat_passes
    write = out + np.zeros_like(p1)
    if x2_is_psum:
        spill = np.where(p2 > 1.0, (n1 - 1.0) * psum, 0.0)
        read, write = read + spill, write + spill
        array_side = x1 * n2 + stat * n_chunks + out + 2.0 * (n1 - 1.0) * psum
    else:
        read = read + x2 * p2
        array_side = x1 * n2 + x2 * n1 + out
    compute = n1 * n2 * (t_stream * passes + n_chunks * skew) - n_chunks
    bw_bytes = spec.dram_bytes_per_cycle
    total = np.maximum(compute + fill_bytes / bw_bytes, (read + write) / bw_bytes)
    total = np.where(valid, total, inf)
    return {"compute": compute, "total": total, "read": read, "write": write,
            "sram": array_side + read + write, "chunks": n_chunks}


def _gemm_integral(spec: AcceleratorSpec, m, n, k, ba, bw) -> dict[str, np.ndarray]:
    rows, cols = spec.rows, spec.cols
    model = PRECISION_MODELS[spec.precision_model]
    m, n, k, ba, bw = np.broadcast_arrays(m, n, k, ba, bw)
    # Leading axis P: the packings the array may run (one except for Bit Fusion, which may also
    # fuse for wider operands when its packed tiles do not fit); the mapper picks per GEMM.
    packs, pack_allowed = model.pack_options(ba, bw, spec.min_bits, spec.max_bits)
    passes = model.serial_passes(ba, bw, spec.serial_operands)
    k_eff = _cdiv(k, packs)
    roles = DATAFLOW_ROLES[spec.dataflow]
    dims = {"m": m, "n": n, "k": k_eff}
    s_row, s_col, t_stream = dims[roles.rows], dims[roles.cols], dims[roles.stream]
    skew = roles.skew_rows * rows + cols - 2
    n1, n2 = _cdiv(s_row, rows), _cdiv(s_col, cols)
    # Exposed prologue on the plain R×C geometry (never grows as bits shrink): os loads the first
    # ifmap and filter fold tiles; ws/is the first stationary tile and one streamed vector.
    rows_used, cols_used = np.minimum(rows, s_row), np.minimum(cols, s_col)
    bits = {"ifmap": ba, "filter": bw}
    if roles.stationary == "ofmap":
        fill = (rows_used * bits[roles.x1] + cols_used * bits[roles.x2]) * k / 8.0
    else:
        fill = (rows_used * cols_used * bits[roles.stationary] + rows_used * bits[roles.x1]) / 8.0
    macs = m * n * k
    busy = macs > 0
    # Everything per packing carries the (P, ...) shape so candidate axes stack cleanly.
    n1, n2, t_stream, fill = (np.broadcast_to(x, packs.shape) for x in (n1, n2, t_stream, fill))
    with np.errstate(divide="ignore", invalid="ignore"):  # empty GEMMs are masked out below
        sched = _schedules(spec, m, n, k, ba, bw, n1, n2, t_stream, passes, skew, fill)
    sched["total"] = np.where(pack_allowed[None], sched["total"], np.inf)
    sched["pack"] = packs[None]
    shape = sched["total"].shape  # (schedules, packings, ...)
    n_candidates, n_gemms = shape[0] * shape[1], int(np.prod(shape[2:], dtype=np.int64))
    flat = {key: np.broadcast_to(val, shape).reshape(n_candidates, n_gemms) for key, val in sched.items()}
    # The mapper's objective first, the other metric breaks ties.
    dram = np.where(np.isfinite(flat["total"]), flat["read"] + flat["write"], np.inf)
    first, second = (flat["total"], dram) if spec.mapper_objective == "latency" else (dram, flat["total"])
    pick = np.argmin(np.where(first <= first.min(axis=0), second, np.inf), axis=0)
    column = np.arange(n_gemms)
    chosen = {key: np.where(busy, val[pick, column].reshape(shape[2:]), 0.0) for key, val in flat.items()}
    compute, total = chosen["compute"], chosen["total"]
    dram_read, dram_write, sram = chosen["read"], chosen["write"], chosen["sram"]
    pack = np.where(busy, chosen["pack"], 1.0)
    mac_energy = macs * spec.mac_8x8_energy_pj * model.mac_energy_scale(
        ba, bw, spec.min_bits, spec.max_bits, spec.serial_operands, pack)
    sram_energy = sram * spec.sram_byte_energy_pj
    dram_energy = (dram_read + dram_write) * spec.dram_byte_energy_pj
    static_energy = total * spec.static_power_mw * spec.cycle_ns
    return {
        "macs": macs,
        "bops": macs * ba * bw,
        "compute_cycles": compute,
        "stall_cycles": total - compute,
        "cycles": total,
        "sram_bytes": sram,
        "dram_read_bytes": dram_read,
        "dram_write_bytes": dram_write,
        "mac_energy_pj": mac_energy,
        "sram_energy_pj": sram_energy,
        "dram_energy_pj": dram_energy,
        "static_energy_pj": static_energy,
        "energy_pj": mac_energy + sram_energy + dram_energy + static_energy,
        "stream_chunks": chosen["chunks"],
        "pack": pack,
        "peak_macs_per_cycle": rows * cols * pack / passes,
    }


def gemm_cost(spec: AcceleratorSpec, m, n, k, act_bits, weight_bits, count=1.0) -> dict[str, np.ndarray]:
    """Cost of `count` independent (M×K)·(K×N) GEMMs; all arguments broadcast.

    Bits must already be checked against the spec (`AcceleratorSpec.check_bits`). A fractional M
    (an average over images) is costed as the linear interpolation between ⌊M⌋ and ⌊M⌋+1, so the
    result is exactly SCALE-Sim's whenever M is an integer.
    """
    m, n, k, ba, bw, count = map(_f64, (m, n, k, act_bits, weight_bits, count))
    m_floor = np.floor(m)
    frac = m - m_floor
    out = _gemm_integral(spec, m_floor, n, k, ba, bw)
    if np.any(frac > 0):
        upper = _gemm_integral(spec, m_floor + 1.0, n, k, ba, bw)
        out = {key: value + frac * (upper[key] - value) for key, value in out.items()}
    per_gemm = {key: out.pop(key) for key in ("peak_macs_per_cycle", "stream_chunks", "pack")}
    out = {key: value * count for key, value in out.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["utilization"] = np.where(out["cycles"] > 0, out["macs"] / (per_gemm["peak_macs_per_cycle"] * out["cycles"]), 0.0)
    out.update(per_gemm)
    return out


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
