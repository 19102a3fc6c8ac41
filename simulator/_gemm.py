"""Cost of GEMMs and vector-unit ops on an `AcceleratorSpec`.

One set of equations serves a single GEMM (`mixaq gemm`), a whole network and thousands of
assignments: they are written once against a tiny array namespace (`_ops`) that is either numpy
(arrays broadcast; the batch path) or plain Python floats (one GEMM in microseconds, free of
numpy's per-call overhead). `tests/test_sim_gemm.py` checks the two give identical numbers.

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

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from mixaq.simulator._mapper import mapped, mapped_one
from mixaq.simulator._precision import PRECISION_MODELS
from mixaq.simulator._spec import AcceleratorSpec
from mixaq.simulator._vector import vector_cost

__all__ = ["DATAFLOW_ROLES", "GEMM_FIELDS", "VECTOR_FIELDS", "gemm_cost", "vector_cost"]

_SCALAR_MEMO_LIMIT = 1 << 18  # one-GEMM results kept per spec (≈ 2 kB each, so ≈ 0.5 GB)


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
    "energy_pj", "stream_chunks", "stream_chunk", "fold_order", "pack", "utilization", "peak_macs_per_cycle",
    "tile_m", "tile_n", "tile_k", "loop_order", "tiles",
)  # stream_chunk: chunk length; fold_order: 0 row folds outermost, 1 column folds (SCALE-Sim's);
# tile_*: the tile mapper's tile sizes, loop_order its index into `_mapper.LOOP_ORDERS`, tiles their count
# (fold_order is -1 under the tile mapper, loop_order -1 under `mapper.search: folds`).
VECTOR_FIELDS = ("vector_ops", "vector_cycles", "stall_cycles", "cycles", "sram_bytes", "dram_read_bytes",
                 "dram_write_bytes", "op_energy_pj", "sram_energy_pj", "dram_energy_pj", "static_energy_pj",
                 "energy_pj")  # `_vector.vector_cost`
# Per-GEMM descriptors of the chosen schedule: not scaled by `count` (utilization is recomputed).
_SCHEDULE_FIELDS = frozenset(("peak_macs_per_cycle", "stream_chunks", "stream_chunk", "fold_order", "pack",
                              "utilization", "tile_m", "tile_n", "tile_k", "loop_order", "tiles"))
_INF = math.inf
_NONE = -1.0  # fold_order under the tile mapper, loop_order under the fold-level schedules
# Fold orders (index = `fold_order` output): 0 walks the row folds (d1) outermost, 1 the column
# folds (d2), as SCALE-Sim does.
_FOLD_ORDERS = {"any": (0, 1), "rows_outer": (0,), "cols_outer": (1,)}
_HALF = 512.0  # bytes per KiB of a double-buffered SRAM that hold the working set

# The equations below only use + − × ÷, comparisons, & | on booleans and these five functions.
_ARRAY_OPS = SimpleNamespace(scalar=False, where=np.where, minimum=np.minimum, maximum=np.maximum,
                             ceil=np.ceil, floor=np.floor)
# math.ceil / math.floor return ints: exact, and results are cast to float where they are outputs.
_SCALAR_OPS = SimpleNamespace(scalar=True, where=lambda c, a, b: a if c else b,
                              minimum=lambda a, b: a if a <= b else b, maximum=lambda a, b: a if a >= b else b,
                              ceil=math.ceil, floor=math.floor)


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


class _Plan(NamedTuple):
    """What the equations need from a spec, derived once per spec object (`_plan`)."""

    row_dim: int  # index into (m, n, k) of the dimension on the array rows
    col_dim: int
    stream_dim: int
    dataflow: str
    chunkable: bool  # the stream is not the reduction and `split_stream` is on
    write_every_fold: bool
    per_port: bool
    orders: tuple[int, ...]
    rows: int
    cols: int
    skew: int
    cap1: float  # half-SRAM bytes for X1, X2, the stationary operand
    cap2: float
    cap_s: float
    out_bytes: float  # per output element
    psum_bytes: float
    bandwidth: float
    latency_first: bool
    mac_pj: float
    sram_pj: float
    dram_pj: float
    static_pj_per_cycle: float
    precision: dict  # (act, weight bits) -> (packings, passes, MAC energy scale of an empty GEMM), filled lazily
    tiles: bool  # `mapper.search: tiles`: the tile mapper (`_mapper.py`) rather than the fold schedules below
    per_cycle_mac: bool  # `energy_pj.array: per_cycle`: every unit spends mac_8x8 each compute cycle
    memo: dict  # tiles: (m, n, k, ba, bw) -> result dict of one GEMM (the scalar path's memo)


def _plan(spec: AcceleratorSpec) -> _Plan:
    plan = spec.__dict__.get("_gemm_plan")
    if plan is None:
        roles = DATAFLOW_ROLES[spec.dataflow]
        caps = {"ifmap": spec.sram_ifmap_kib * _HALF, "filter": spec.sram_filter_kib * _HALF,
                "psum": spec.sram_ofmap_kib * _HALF, "ofmap": _INF}
        dim = "mnk".index
        plan = _Plan(dim(roles.rows), dim(roles.cols), dim(roles.stream), spec.dataflow,
                     roles.stream != "k" and spec.split_stream,
                     roles.x2 == "psum" and spec.psum_policy == "write_every_fold", spec.dram_ports == "per_operand",
                     _FOLD_ORDERS[spec.fold_order], spec.rows, spec.cols, roles.skew_rows * spec.rows + spec.cols - 2,
                     caps[roles.x1], caps[roles.x2], caps[roles.stationary], spec.output_bits / 8.0,
                     spec.psum_bits / 8.0, spec.dram_bytes_per_cycle, spec.mapper_objective != "dram",
                     spec.mac_8x8_energy_pj, spec.sram_byte_energy_pj, spec.dram_byte_energy_pj,
                     spec.static_power_mw * spec.cycle_ns, {}, spec.mapper_search == "tiles",
                     spec.array_energy == "per_cycle", {})
        spec.__dict__["_gemm_plan"] = plan  # a cache on the frozen spec: not a field, never compared
    return plan


def _schedules(ops, p: _Plan, m, n, k, ba, bw, pack, passes) -> list:
    """(slot, compute, total, read, write, sram, chunks, chunk, order) of every candidate schedule;
    `slot` is its place in the mapper's tie-break order (fold order outer, then whole / α / β
    chunking, then packing). Scalars: one tuple per candidate of one packing, leaving out those
    that cannot be chosen. Arrays: one tuple per fold order, its fields shaped (chunk choices,
    packings, ...GEMMs).

    The array walks folds over two spatial dims d1 (rows, n1 folds) × d2 (cols, n2 folds) and
    streams the third (length t_stream, replayed `passes` times). Operand X1 is indexed by
    (d1, stream), X2 by (d2, stream), the stationary one by (d1, d2):
      os: X1 = ifmap, X2 = filter, stationary = ofmap (accumulated inside the PEs)
      ws: X1 = ifmap, X2 = ofmap partial sums across the K folds, stationary = filter
      is: X1 = filter, X2 = ofmap partial sums across the K folds, stationary = ifmap
    Each SRAM is double-buffered: half of it holds the working set. Fold order 0 (d1 outer): X1 is
    fetched once if one d1 tile fits, else once per d2 fold; X2 once if all of it fits, else once
    per d1 fold. Fold order 1 (d2 outer, SCALE-Sim's): the roles swap. Partial sums
    (`psum_policy`): on_chip_when_fits keeps them in the ofmap SRAM when they fit, else writes them
    at psum_bits after each K fold but the last and reads them back for the next; write_every_fold
    writes every K fold's partial sums and never reads them back (as SCALE-Sim).
    For ws/is the stream (M resp. N) may also be cut into chunks (`split_stream`): the largest
    chunk whose working set fits for either fold order. Each chunk reloads the stationary operand
    (from DRAM unless all of it fits) and pays the pipeline fill/drain again.
    DRAM: one port of dram_bytes_per_cycle (`dram_ports: shared`) or one per operand SRAM
    (per_operand: ifmap, filter, and ofmap for outputs and partial sums). Double buffering hides
    every transfer behind compute except the prologue, what the array needs before its first cycle:
    cycles = max(compute + prologue, DRAM time).
    """
    where, minimum, maximum, ceil, floor, scalar = ops.where, ops.minimum, ops.maximum, ops.ceil, ops.floor, ops.scalar
    (row_dim, col_dim, stream_dim, dataflow, chunkable, write_every_fold, per_port, orders, rows, cols, skew,
     cap1, cap2, cap_s, out_bytes, psum_bytes, bandwidth) = p[:17]
    dims = (m, n, ceil(k / pack))
    s_row, s_col, t_stream = dims[row_dim], dims[col_dim], dims[stream_dim]
    n1, n2 = ceil(s_row / rows), ceil(s_col / cols)
    ifmap, filt = m * k * ba / 8.0, k * n * bw / 8.0
    out = m * n * out_bytes
    # Exposed prologue on the plain R×C geometry (never grows as bits shrink), in two parts that
    # come through different ports: os the first ifmap and filter fold tiles; ws/is the first
    # stationary tile and one streamed X1 vector.
    rows_used, cols_used = minimum(s_row, rows), minimum(s_col, cols)
    x2_is_psum = dataflow != "os"
    # tile1 / tile2: bytes of one full row-fold tile of X1 / column-fold tile of X2 per stream
    # element (the last fold may be smaller; a tile must fit whole).
    if dataflow == "os":  # X1 ifmap, X2 filter, outputs stationary in the PEs
        x1, x2, stat, psum = ifmap, filt, 0.0, 0.0
        fill_a, fill_b = rows_used * ba * k / 8.0, cols_used * bw * k / 8.0
        tile1, tile2 = minimum(rows, m) * ba / 8.0, minimum(cols, n) * bw / 8.0
    elif dataflow == "ws":  # X1 ifmap, X2 partial sums, filter stationary
        x1, x2, stat = ifmap, m * n * psum_bytes, filt
        psum = x2
        fill_a, fill_b = rows_used * cols_used * bw / 8.0, rows_used * ba / 8.0
        tile1, tile2 = minimum(rows * pack, k) * ba / 8.0, minimum(cols, n) * psum_bytes
    else:  # is: X1 filter, X2 partial sums, ifmap stationary
        x1, x2, stat = filt, m * n * psum_bytes, ifmap
        psum = x2
        fill_a, fill_b = rows_used * cols_used * ba / 8.0, rows_used * bw / 8.0
        tile1, tile2 = minimum(rows * pack, k) * bw / 8.0, minimum(cols, m) * psum_bytes
    prologue = (maximum(fill_a, fill_b) if per_port else fill_a + fill_b) / bandwidth
    length = (m, n, k)[stream_dim]
    # Partial sums that need no room in the ofmap SRAM: a single K fold, or every fold drains.
    psum_free = ((n1 <= 1.0) | write_every_fold) if x2_is_psum else False
    chunks = [(length, True)]
    # Chunking a reduction would create partial sums: only ws/is streams. (When everything fits,
    # both chunk sizes are the whole stream: the scalar path does not work them out.)
    if chunkable and not (scalar and x1 <= cap1 and (x2 <= cap2 or psum_free)):
        x1_unit, x2_unit = x1 / length, x2 / length
        alpha = minimum(floor(cap1 / tile1), where(psum_free, _INF, floor(cap2 / x2_unit)))
        beta = minimum(where(psum_free, _INF, floor(cap2 / tile2)), floor(cap1 / x1_unit))
        chunks.append((minimum(maximum(alpha, 1.0), length), alpha >= 1.0))
        chunks.append((minimum(maximum(beta, 1.0), length), beta >= 1.0))
    if not scalar:  # arrays: the chunk choices ride on a leading axis, one pass per fold order
        sizes, valid = zip(*chunks)
        chunks = [(np.stack(np.broadcast_arrays(*sizes)), np.stack(np.broadcast_arrays(*valid)))]
    stat_fits = stat <= cap_s
    stream_cycles = t_stream * passes
    spill = (n1 - 1.0) * psum  # partial sums of every K fold but the last
    candidates = []
    slot = -1  # position in the tie-break order, counting skipped candidates
    for order in orders:
        for index, (chunk, valid) in enumerate(chunks):
            slot += 1
            if scalar and index and (not valid or chunk == length):
                continue  # never chosen: invalid, or the same as the whole-stream schedule, which wins ties
            # Bytes of one chunk; this order of operations keeps exact fits exact (a chunk size
            # is chosen to fill a buffer to the byte).
            x1c, x2c = x1 * chunk / length, x2 * chunk / length
            if (scalar and order and len(orders) == 2 and (x1c <= cap1 or n2 <= 1)
                    and (x2c <= cap2 or psum_free or n1 <= 1)):
                continue  # both fold orders fetch everything once: the same as order 0, which wins ties
            n_chunks = ceil(length / chunk)
            if order == 0:
                p1 = where(tile1 * chunk <= cap1, 1.0, n2)
                p2 = where((x2c <= cap2) | psum_free, 1.0, n1)
            else:
                p1 = where(x1c <= cap1, 1.0, n2)
                p2 = where((tile2 * chunk <= cap2) | psum_free, 1.0, n1)
            port_x1 = x1 * p1
            port_other = stat * where(stat_fits, 1.0, n_chunks)  # the stationary operand's port
            if not x2_is_psum:
                port_other = port_other + x2 * p2
                write = port_out = out
                read = port_x1 + port_other
                array_side = x1 * n2 + x2 * n1 + out
            elif write_every_fold:  # every fold's partial sums leave once; nothing comes back
                write = port_out = out + spill
                read = port_x1 + port_other
                array_side = x1 * n2 + stat * n_chunks + out + spill
            else:  # partial sums stay unless they do not fit; then they go out and come back
                spill_back = where(p2 > 1.0, spill, 0.0)
                write = out + spill_back
                read = port_x1 + port_other + spill_back
                port_out = write + spill_back
                array_side = x1 * n2 + stat * n_chunks + out + 2.0 * spill  # read-modify-write
            compute = n1 * n2 * (stream_cycles + n_chunks * skew) - n_chunks
            if per_port:
                dram_time = maximum(maximum(port_x1, port_other), port_out) / bandwidth
            else:
                dram_time = (read + write) / bandwidth
            total = maximum(compute + prologue, dram_time)
            if valid is not True:  # arrays: chunk sizes, some of which do not fit
                total = where(valid, total, _INF)
            candidates.append((slot, compute, total, read, write, array_side + read + write, n_chunks, chunk, order))
    return candidates


def _fields(p: _Plan, m, n, k, ba, bw, compute, total, read, write, sram, chunks, chunk, order, pack, passes,
            mac_scale, tiling=None) -> dict:
    """The output dict, in `GEMM_FIELDS` order (utilization is filled in by the caller)."""
    macs = m * n * k
    if tiling is None:  # fold-level schedules: one tile, whole but for the stream dimension's chunks
        dims = [m, n, k]
        dims[p.stream_dim] = chunk
        tiling = (*dims, _NONE + 0.0 * chunk, chunks)
    mac_energy = compute * (p.rows * p.cols * p.mac_pj) if p.per_cycle_mac else macs * p.mac_pj * mac_scale
    sram_energy = sram * p.sram_pj
    dram_energy = (read + write) * p.dram_pj
    static_energy = total * p.static_pj_per_cycle
    return {
        "macs": macs,
        "bops": macs * ba * bw,
        "compute_cycles": compute,
        "stall_cycles": total - compute,
        "cycles": total,
        "sram_bytes": sram,
        "dram_read_bytes": read,
        "dram_write_bytes": write,
        "mac_energy_pj": mac_energy,
        "sram_energy_pj": sram_energy,
        "dram_energy_pj": dram_energy,
        "static_energy_pj": static_energy,
        "energy_pj": mac_energy + sram_energy + dram_energy + static_energy,
        "stream_chunks": chunks,
        "stream_chunk": chunk,
        "fold_order": order,
        "pack": pack,
        "utilization": 0.0,
        "peak_macs_per_cycle": p.rows * p.cols * pack / passes,
        "tile_m": tiling[0], "tile_n": tiling[1], "tile_k": tiling[2], "loop_order": tiling[3], "tiles": tiling[4],
    }


def _gemm_integral_array(spec: AcceleratorSpec, m, n, k, ba, bw) -> dict[str, np.ndarray]:
    p = _plan(spec)
    if p.tiles:
        return _gemm_tiles(spec, p, m, n, k, ba, bw)
    model = PRECISION_MODELS[spec.precision_model]
    m, n, k, ba, bw = np.broadcast_arrays(m, n, k, ba, bw)
    # Leading axis P: the packings the array may run (one except for Bit Fusion, which may also
    # fuse for wider operands when its packed tiles do not fit); the mapper picks per GEMM.
    packs, pack_allowed = model.pack_options(ba, bw, spec.min_bits, spec.max_bits)
    used = pack_allowed.reshape(len(pack_allowed), -1).any(axis=1)
    if not used.all():  # packings no GEMM here may run: never chosen, so not costed
        packs, pack_allowed = packs[used], pack_allowed[used]
    passes = model.serial_passes(ba, bw, spec.serial_operands)
    busy = m * n * k > 0
    with np.errstate(divide="ignore", invalid="ignore"):  # empty GEMMs are masked out below
        candidates = _schedules(_ARRAY_OPS, p, m, n, k, ba, bw, packs, passes)
    # Each fold order's fields are (chunk choices, packings, ...GEMMs); flattened, the candidates
    # come in the mapper's tie-break order: fold order, chunk choice, packing.
    gemm_shape = packs.shape[1:]
    n_gemms = int(np.prod(gemm_shape, dtype=np.int64))
    per_order = (len(candidates[0][7]) if np.ndim(candidates[0][7]) > packs.ndim else 1, len(packs), n_gemms)
    view = lambda value: np.broadcast_to(value, per_order[:2] + gemm_shape).reshape(per_order)  # noqa: E731
    allowed = view(pack_allowed)
    total = np.concatenate([np.where(allowed, view(c[2]), np.inf) for c in candidates])
    dram = np.where(np.isfinite(total), np.concatenate([view(c[3] + c[4]) for c in candidates]), np.inf)
    total, dram = total.reshape(-1, n_gemms), dram.reshape(-1, n_gemms)
    # The mapper's objective first, the other metric breaks ties, then the first candidate
    # (flat index: fold order, chunk choice, packing).
    first, second = (total, dram) if p.latency_first else (dram, total)
    pick = np.argmin(np.where(first <= first.min(axis=0), second, np.inf), axis=0)
    in_order, chunk_index, pack_index = np.unravel_index(pick, (len(candidates),) + per_order[:2])
    column = np.arange(n_gemms)

    if total.size <= 1 << 16:  # small: copying every field is cheaper than many small gathers
        fields = np.concatenate([np.stack(np.broadcast_arrays(*c[1:9], packs)).reshape(9, -1, n_gemms)
                                 for c in candidates], axis=1)[:, pick, column]
        *chosen, pack = np.where(busy, fields, np.array([0.0] * 8 + [1.0])[:, None]).reshape((9,) + gemm_shape)
    else:
        def gather(values):  # the picked candidate's value, read from broadcast views (no copies)
            if per_order[:2] == (1, 1):
                picked = [view(v)[0, 0] for v in values]
            else:
                picked = [view(v)[chunk_index, pack_index, column] for v in values]
            return picked[0] if len(picked) == 1 else np.choose(in_order, picked)

        chosen = [np.where(busy, gather([c[i] for c in candidates]).reshape(gemm_shape), 0.0) for i in range(1, 9)]
        pack = np.where(busy, gather([packs]).reshape(gemm_shape), 1.0)
    mac_scale = model.mac_energy_scale(ba, bw, spec.min_bits, spec.max_bits, spec.serial_operands, pack)
    return _fields(p, m, n, k, ba, bw, *chosen, pack, passes, mac_scale)


def _gemm_tiles(spec: AcceleratorSpec, p: _Plan, m, n, k, ba, bw) -> dict[str, np.ndarray]:
    """The tile mapper's choice (`_mapper.mapped`, memoized) as the output fields."""
    m, n, k, ba, bw = np.broadcast_arrays(m, n, k, ba, bw)
    shape = m.shape
    flat = [np.ascontiguousarray(x, dtype=np.float64).reshape(-1) for x in (m, n, k, ba, bw)]
    r = {key: v.reshape(shape) for key, v in mapped(spec, PRECISION_MODELS[spec.precision_model], DATAFLOW_ROLES[spec.dataflow], *flat).items()}
    stream = "mnk"[p.stream_dim]
    return _fields(p, m, n, k, ba, bw, r["compute"], r["total"], r["read"], r["write"], r["sram"], r["tiles"],
                   r["tile_" + stream], np.full(shape, _NONE), r["pack"], r["passes"], r["mac_scale"],
                   (r["tile_m"], r["tile_n"], r["tile_k"], r["loop_order"], r["tiles"]))


def _gemm_tiles_scalar(spec: AcceleratorSpec, p: _Plan, m: float, n: float, k: float, ba: float, bw: float) -> dict:
    key = (m, n, k, ba, bw)
    found = p.memo.get(key)
    if found is None:
        if len(p.memo) >= _SCALAR_MEMO_LIMIT:  # one result dict each: bounded like the mapper's memo
            p.memo.clear()
        compute, total, read, write, sram, tm, tn, tk, order, tiles, pack, passes, scale = mapped_one(
            spec, PRECISION_MODELS[spec.precision_model], DATAFLOW_ROLES[spec.dataflow], m, n, k, ba, bw)
        found = p.memo[key] = _fields(p, m, n, k, ba, bw, compute, total, read, write, sram, tiles,
                                      (tm, tn, tk)[p.stream_dim], _NONE, pack, passes, scale,
                                      (tm, tn, tk, order, tiles))
    return dict(found)


def _scalar_precision(spec: AcceleratorSpec, p: _Plan, ba: float, bw: float):
    """The precision model's array answers for one bit pair as Python floats, kept in the plan."""
    key = (ba, bw)
    cached = p.precision.get(key)
    if cached is None:
        model = PRECISION_MODELS[spec.precision_model]
        a, w = np.float64(ba), np.float64(bw)
        packs, allowed = model.pack_options(a, w, spec.min_bits, spec.max_bits)
        scale = lambda pack: float(model.mac_energy_scale(  # noqa: E731
            a, w, spec.min_bits, spec.max_bits, spec.serial_operands, np.float64(pack)))
        packings = tuple((float(pk), scale(pk)) for pk, ok in zip(packs, allowed) if ok)
        p.precision[key] = cached = (packings, tuple(i for i, ok in enumerate(allowed) if ok),
                                     float(model.serial_passes(a, w, spec.serial_operands)), scale(1.0))
    return cached


def _gemm_integral_scalar(spec: AcceleratorSpec, p: _Plan, m: float, n: float, k: float, ba: float, bw: float) -> dict:
    """The same equations on Python floats; the mapper chooses as the array path does."""
    packings, pack_index, passes, empty_scale = p.precision.get((ba, bw)) or _scalar_precision(spec, p, ba, bw)
    if not m * n * k > 0:
        return _fields(p, m, n, k, ba, bw, *(0.0,) * 8, 1.0, passes, empty_scale)
    if len(packings) == 1:
        pack, scale = packings[0]
        cands = _schedules(_SCALAR_OPS, p, m, n, k, ba, bw, pack, passes)
        if len(cands) == 1:  # the usual case: everything else could not win
            best = cands[0]
        else:  # first of the best in tie-break order (candidates come in it)
            best = min(cands, key=_LATENCY_KEY if p.latency_first else _TRAFFIC_KEY)
    else:
        best_key = None
        for p_index, (pk, sc) in zip(pack_index, packings):
            for cand in _schedules(_SCALAR_OPS, p, m, n, k, ba, bw, pk, passes):
                key = (cand[2], cand[3] + cand[4]) if p.latency_first else (cand[3] + cand[4], cand[2])
                key = key + (cand[0], p_index)
                if best_key is None or key < best_key:
                    best_key, best, pack, scale = key, cand, pk, sc
    _, compute, total, read, write, sram, chunks, chunk, order = best
    return _fields(p, m, n, k, ba, bw, compute, total, read, write, sram, float(chunks), float(chunk),
                   float(order), pack, passes, scale)


# Scalar candidates are ordered by tie-break slot, so `min` keeps the first of equals.
_LATENCY_KEY = lambda cand: (cand[2], cand[3] + cand[4])  # noqa: E731
_TRAFFIC_KEY = lambda cand: (cand[3] + cand[4], cand[2])  # noqa: E731


_PYTHON_NUMBERS = frozenset((int, float))


def gemm_cost(spec: AcceleratorSpec, m, n, k, act_bits, weight_bits, count=1.0) -> dict:
    """Cost of `count` independent (M×K)·(K×N) GEMMs; all arguments broadcast.

    Bits must already be checked against the spec (`AcceleratorSpec.check_bits`). A fractional M
    (an average over images) is costed as the linear interpolation between ⌊M⌋ and ⌊M⌋+1, so the
    result is exactly SCALE-Sim's whenever M is an integer. Python int/float arguments give Python
    floats (the same equations without numpy's per-call overhead), anything else numpy arrays.
    """
    numbers = _PYTHON_NUMBERS
    if (type(m) in numbers and type(n) in numbers and type(k) in numbers and type(act_bits) in numbers
            and type(weight_bits) in numbers and type(count) in numbers):
        p = spec.__dict__.get("_gemm_plan") or _plan(spec)
        n, k, ba, bw = float(n), float(k), float(act_bits), float(weight_bits)
        m_floor = float(math.floor(m))
        integral = _gemm_tiles_scalar if p.tiles else _gemm_integral_scalar
        out = integral(spec, p, m_floor, n, k, ba, bw)
        frac = m - m_floor
        if frac > 0:
            out = _interpolate(out, integral(spec, p, m_floor + 1.0, n, k, ba, bw), frac, float(count))
        elif count != 1:
            out = _interpolate(out, out, 0.0, float(count))
        cycles = out["cycles"]
        out["utilization"] = out["macs"] / (out["peak_macs_per_cycle"] * cycles) if cycles > 0 else 0.0
        return out
    m, n, k, ba, bw, count = map(_f64, (m, n, k, act_bits, weight_bits, count))
    m_floor = np.floor(m)
    out = _gemm_integral_array(spec, m_floor, n, k, ba, bw)
    frac = m - m_floor
    upper = _gemm_integral_array(spec, m_floor + 1.0, n, k, ba, bw) if np.any(frac > 0) else out
    out = _interpolate(out, upper, frac, count)
    cycles = out["cycles"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["utilization"] = np.where(cycles > 0, out["macs"] / (out["peak_macs_per_cycle"] * cycles), 0.0)
    return out


def _interpolate(lower: dict, upper: dict, frac, count) -> dict:
    """`lower + frac·(upper − lower)` per field, times `count` except for the schedule descriptors
    (which interpolate but are per GEMM; utilization is recomputed by the caller)."""
    return {key: value + frac * (upper[key] - value) if key in _SCHEDULE_FIELDS
            else (value + frac * (upper[key] - value)) * count for key, value in lower.items()}
