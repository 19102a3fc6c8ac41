"""The tile mapper's closed forms: what one tiling costs under each loop order.

A schedule cuts the (M×K)·(K×N) GEMM into tiles tm×tn×tk that fit half of their SRAMs (double
buffering: A = ifmap, B = filter, C = ofmap) and walks them in one of the six loop orders. Inside a
tile the array runs its folds over the two dimensions its dataflow maps onto rows and columns (ws:
K and N, streaming M; os: M and N, streaming K; is: K and M, streaming N); rows or columns a tile
does not fill stay idle. Every candidate is costed with closed forms, all candidates of all GEMMs in
one numpy evaluation:

- compute: Σ over tiles of the folds' stream cycles plus fill/drain, which `array.feed` charges per
  fold (systolic: skew·r + c − 2 with the fold's own r rows and c columns, idle ones bypassed), once
  per tile (buffered), or never (ideal). The sums separate per dimension, so no tile is visited.
- DRAM traffic: an operand keeps its data on chip across a loop that does not index it as long as
  its footprint, grown by the loops inside that do, fits half its SRAM (Bit Fusion's optimizer and
  Timeloop's buffer model); past that point every outer loop re-fetches it. Outputs spill partial
  sums at psum width when their footprint is not kept across the K loop, and are read back.
- cycles: the first input tiles and the last output tile are exposed; between them tile i computes
  while tile i + 1's inputs arrive and tile i − 1's outputs leave (`stall_model: pipelined`, per-tile
  averages; per-operand ports: A's and B's reads each on its own port, C's reads and writes on one),
  or Bit Fusion's simulator's formula (`bitfusion`).
"""
from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

__all__ = ["LOOP_ORDERS"]

# Loop orders over the tile loops, outermost first (index = the `loop_order` result field).
LOOP_ORDERS = tuple("".join(p) for p in itertools.permutations("mnk"))
_OPERAND_DIMS = {"a": (0, 2), "b": (2, 1), "c": (0, 1)}


def _per_dim(t: np.ndarray, d: np.ndarray, div: Any, array: Any, pad: Any, whole: bool = False):
    """Per-dimension sums over the tiles along it: count Q, mapped length L (Σ ⌈t/div⌉), folds F
    (Σ ⌈⌈t/div⌉/array⌉), used array lines U (Σ min(array, ⌈t/div⌉)), padded length P (Σ ⌈t/pad⌉·pad;
    d itself when pad is None). Folds and lines are None when array is None (a streamed dimension).
    A last partial tile adds its own terms (all zero when the tiles divide d). `whole`: t and d are
    whole numbers (then so is the remainder)."""
    ratio = d / t
    q = np.ceil(ratio)
    # Whole tiles of a whole d, undivided, add up to d exactly (integers below 2^53): operations less.
    undivided = whole and type(div) is float and div == 1.0
    if undivided and array is None and pad is None:
        return q, d, None, None, d
    full = np.floor(ratio)  # whole numbers: ratio is a whole number exactly when t divides d
    rem = d - full * t
    if undivided:
        ft, fr, length = t, rem, d
    else:
        ft, fr = (np.ceil(t), np.ceil(rem)) if type(div) is float and div == 1.0 else (np.ceil(t / div),
                                                                                      np.ceil(rem / div))
        length = full * ft + fr
    folds = used = None
    if array is not None:
        folds = full * np.ceil(ft / array) + np.ceil(fr / array)
        used = full * np.minimum(array, ft) + np.minimum(array, fr)
    padded = d if pad is None else full * np.ceil(t / pad) * pad + np.ceil(rem / pad) * pad
    return q, length, folds, used, padded


def _round_up(x, step, whole: bool = False):
    """x rounded up to a multiple of `step`; when `step` is the float 1.0 (the unpadded specs), x's
    ceiling, or x itself when `whole` (the same numbers, array operations less)."""
    if type(x) is float and type(step) is float:  # a unit tile stays the Python float (`_times` skips it)
        return float(math.ceil(x / step)) * step
    if type(step) is float and step == 1.0:
        return x if whole else np.ceil(x)
    return np.ceil(x / step) * step


def _pad_of(c: dict, d: int):
    """What a dimension's tiles are padded to in DRAM bytes (`pad_to_array`: N to the columns, K to
    rows × pack), None when not padded."""
    if not c["pad"] or d == 0:
        return None
    return c["cols"] if d == 1 else c["rows"] * c["pack"]


def _array_stats(c: dict, t0, t1) -> tuple:
    """`_per_dim` sums of the dimensions on the array's rows (tiles t0) and columns (t1)."""
    role = c["roles"]
    dims = (c["m"], c["n"], c["k"])
    div = (1.0, 1.0, c["pack"])
    whole = c["whole"]
    return (_per_dim(t0, dims[role[0]], div[role[0]], c["rows"], _pad_of(c, role[0]), whole),
            _per_dim(t1, dims[role[1]], div[role[1]], c["cols"], _pad_of(c, role[1]), whole))


def _exposure(c: dict, a_tile, b_tile, c_tile, last):
    """Cycles no loop order hides: the first input tiles and the last output tile (each operand's
    kept footprint is at least its tile)."""
    bandwidth = c["bandwidth"]
    readback = c["readback"]  # else no output is read first (x + 0.0 is x: an operation less)
    if c["stall_model"] == "bitfusion":
        first = a_tile + b_tile + c_tile if readback else a_tile + b_tile
        return np.ceil(first / bandwidth) + np.ceil(c_tile / bandwidth)
    if c["per_port"]:
        first = np.maximum(np.maximum(a_tile, b_tile), c_tile) if readback else np.maximum(a_tile, b_tile)
        return (first + last) / bandwidth
    first = a_tile + b_tile + c_tile if readback else a_tile + b_tile
    return (first + last) / bandwidth


def _dram_floor(c: dict, a_total, b_total, mn_out, refetch: tuple, spills: tuple):
    """A lower bound of the DRAM bytes under any loop order: every input read and every output
    written once (and read back when `readback`), plus the re-fetches no order avoids. An operand
    not indexed by the innermost loop is re-fetched `refetch` times (at least) when its tile grown
    by its inner loop does not fit (`spills`: even grown by the cheaper of its two); one operand per
    order escapes, so the dearest one is left out."""
    out_total = mn_out * c["out_bytes"]
    if c["readback"]:
        c_min, c_round = 2.0 * out_total, 2.0 * out_total
    else:
        c_min, c_round = out_total, mn_out * c["psum_bytes"] * (1.0 if c["write_every_fold"] else 2.0)
    extra_a = a_total * (refetch[0] - 1.0) * spills[0]
    extra_b = b_total * (refetch[1] - 1.0) * spills[1]
    extra_c = c_round * (refetch[2] - 1.0) * spills[2]
    return (a_total + b_total + c_min + extra_a + extra_b + extra_c
            - np.maximum(np.maximum(extra_a, extra_b), extra_c))


def _traffic_cycles(c: dict, dram, compute=None):
    """Cycles at least, given `dram` bytes at least and `compute` cycles (if given): transfers
    overlap compute at best (every stall model) and the shared port moves all bytes. The
    per-operand ports are left to the compute bound."""
    if c["per_port"]:
        return 0.0
    cycles = dram / c["bandwidth"]
    if compute is not None:
        cycles = np.maximum(cycles, compute)
    return cycles * (1.0 - 1e-12)


def _tile_terms(c: dict, m, n, k, ba, bw, pack, passes, tm, tn, tk, array_stats=None) -> dict:
    """What does not depend on the loop order and bounds a tiling: compute cycles, tile footprints,
    whether they fit, tile counts, and `lower`, a lower bound of the cycles under any loop order.
    `array_stats`: the two array-mapped dimensions' `_per_dim` sums when already known."""
    rows, cols = c["rows"], c["cols"]
    dims = (m, n, k)
    role = c["roles"]
    stats = [None, None, None]
    if array_stats is None:
        array_stats = _array_stats(c, (tm, tn, tk)[role[0]], (tm, tn, tk)[role[1]])
    stats[role[0]], stats[role[1]] = array_stats
    whole = c["whole"]
    stats[role[2]] = _per_dim((tm, tn, tk)[role[2]], dims[role[2]], pack if role[2] == 2 else 1.0, None,
                              _pad_of(c, role[2]), whole)
    pad_of = (1.0, cols if c["pad"] else 1.0, rows * pack if c["pad"] else 1.0)
    bytes_a, bytes_b = ba / 8.0, bw / 8.0
    q = [s_[0] for s_ in stats]
    r_q, r_len, r_folds, r_used, _ = stats[role[0]]
    c_q, c_len, c_folds, c_used, _ = stats[role[1]]
    t_q, t_len, _, _, _ = stats[role[2]]
    skew = c["skew_rows"]
    feed = c["feed"]
    stream = passes * t_len
    if feed == "systolic":  # every fold: skew·r + c − 2 with its own rows r and columns c
        compute = r_folds * c_folds * (stream - 2.0 * t_q) + skew * t_q * c_folds * r_len + t_q * r_folds * c_len
    elif feed == "buffered":  # once per tile, over the lines the tile uses
        rows_used = r_used if skew == 1 else skew * r_used  # (1·x is x)
        compute = r_folds * c_folds * stream + t_q * (rows_used * c_q + c_used * r_q - 2.0 * r_q * c_q)
    else:
        compute = r_folds * c_folds * stream
    # Bytes. Tiles at their full size (a tile must fit whole); totals from the per-dim sums.
    # The operands' tiles and the tile counts per dim stacked (3, T), as `_orders` reads them.
    k_pad_tile, n_pad_tile = _round_up(tk, pad_of[2], whole), _round_up(tn, pad_of[1], whole)
    shape = compute.shape
    tiles, counts = np.empty((3,) + shape), np.empty((3,) + shape)
    counts[0], counts[1], counts[2] = q
    a_tile, b_tile, c_tile = tiles
    np.multiply(tm * tk, bytes_a, out=a_tile)
    np.multiply(k_pad_tile * tn, bytes_b, out=b_tile)
    need_acc = q[2] > 1.0  # across K tiles, or across K folds in a tile (more than `rows` packed rows)
    if c["x2_is_psum"]:  # ⌈x⌉ > rows is x > rows: rows is whole
        need_acc = need_acc | (tk / pack > rows)
    c_width = np.where(need_acc, c["psum_bytes"], c["out_bytes"])
    out_tile = tm * n_pad_tile  # the output tile's elements: partial sums now, results last
    np.multiply(out_tile, c_width, out=c_tile)
    feasible = (a_tile <= c["cap_a"]) & (b_tile <= c["cap_b"])
    out_fits = c_tile <= c["cap_c"]  # needed where the output accumulates, or everywhere when read back
    feasible = feasible & (out_fits if c["readback"] else out_fits | ~need_acc)
    last = out_tile * c["out_bytes"]
    lower = compute + _exposure(c, a_tile, b_tile, c_tile, last)
    # No order keeps every operand on chip: what the cheapest one must re-fetch bounds the traffic.
    refetch = (q[1], q[0], q[2])  # each operand's non-indexing loop: A n, B m, C k
    spills = (a_tile * np.minimum(q[0], q[2]) > c["cap_a"], b_tile * np.minimum(q[2], q[1]) > c["cap_b"],
              c_tile * np.minimum(q[0], q[1]) > c["cap_c"])
    dram = _dram_floor(c, m * k * (ba / 8.0), stats[2][4] * n * (bw / 8.0), m * stats[1][4], refetch, spills)
    lower = np.maximum(lower, _traffic_cycles(c, dram, compute))
    return dict(compute=compute, feasible=feasible, tiles=tiles, last=last, counts=counts, r_folds=r_folds,
                c_folds=c_folds, t_q=t_q, k_pad_total=stats[2][4],
                n_pad_total=stats[1][4], lower=lower)


def _orders(c: dict, terms: dict, only_total: bool = False) -> dict[str, np.ndarray]:
    """Total, DRAM bytes, energy, reads and writes of each tiling (`_tile_terms`; per-candidate
    values in `c`) under each loop order, (6, T); with `only_total` just the totals."""
    compute, tiles, counts, last = terms["compute"], terms["tiles"], terms["counts"], terms["last"]
    q, (a_tile, b_tile, c_tile) = counts, tiles
    m, n, k = c["m"], c["n"], c["k"]
    a_total, b_total = m * k * (c["ba"] / 8.0), terms["k_pad_total"] * n * (c["bw"] / 8.0)
    mn_out = m * terms["n_pad_total"]
    out_total = mn_out * c["out_bytes"]
    need_top = c["stall_model"] == "bitfusion"
    shape = compute.shape
    # An operand's re-fetch factor depends only on where its non-indexing loop e sits: innermost,
    # never (the tile stays); in the middle, when its tile grown by the inner loop does not fit;
    # outermost, when all of it does not fit. Its largest kept footprint (Bit Fusion's exposed
    # transfer) depends only on the order of its own two loops. All six orders at once: each factor
    # (and kept footprint) is one of a few per-tiling values, picked per order by `_ORDER_OPTION` / `_ORDER_TOP`.
    room = c.get("_rooms")
    if room is None:
        room = np.stack(np.broadcast_arrays(c["cap_a"], c["cap_b"], c["cap_c"]))
        room = room[:, None] if room.ndim == 1 else room
    # Per operand its footprint under each option: (never re-fetched, grown by its first own dim,
    # by its second, whole); option 0 never exceeds the room.
    grown = np.empty((3, 4) + shape)
    grown[:, 0] = 0.0
    second = counts.take(_OWN_SECOND, axis=0)  # (`take` along an axis: cheaper than fancy indexing)
    np.multiply(tiles, counts.take(_OWN_FIRST, axis=0), out=grown[:, 1])
    np.multiply(tiles, second, out=grown[:, 2])
    np.multiply(grown[:, 1], second, out=grown[:, 3])
    picked = _per_order(grown)  # (3, 6, T): per operand and loop order
    # Re-fetched once per step of the loop across (its count q) where the footprint spills: q, else 1.
    factor = dict(zip("abc", np.where(picked > room[:, None], counts.take(_ACROSS, axis=0)[:, None], 1.0)))
    if need_top:  # the largest footprint kept on chip: the picked one where it fits, else the tile
        kept = np.empty((3, 2) + shape)
        kept[:, 0] = np.where(grown[:, 3] <= room, grown[:, 3], np.where(grown[:, 1] <= room, grown[:, 1], tiles))
        kept[:, 1] = np.where(grown[:, 3] <= room, grown[:, 3], np.where(grown[:, 2] <= room, grown[:, 2], tiles))
        maxfoot = dict(zip("abc", _per_order(kept, _TOP_ROWS)))
    read_a, read_b = a_total * factor["a"], b_total * factor["b"]
    rounds = factor["c"]
    if c["readback"]:  # every output tile is read before accumulating and written after
        c_write = c_read = rounds * out_total
    else:
        spill = (rounds - 1.0) * mn_out * c["psum_bytes"]
        c_write = out_total + spill
        c_read = 0.0 if c["write_every_fold"] else spill
    read = read_a + read_b
    if c["readback"] or not c["write_every_fold"]:  # else no output is read (x + 0.0 is x)
        read = read + c_read
    write = c_write
    dram = read + write
    bandwidth = c["bandwidth"]
    if need_top:
        initial = maxfoot["a"] + maxfoot["b"] + (maxfoot["c"] if c["readback"] else 0.0)
        final = maxfoot["c"]
        middle = np.ceil((dram - initial - final) / bandwidth)
        total = compute + np.maximum(0.0, middle - compute) + np.ceil(initial / bandwidth) + np.ceil(final / bandwidth)
    else:
        # Tile by tile: tile i computes while tile i + 1's inputs arrive and tile i − 1's outputs
        # leave, so the first tile computes with no write beside it and the last with no read;
        # per-tile averages of compute, reads and writes. One shared port carries them all; per
        # operand, A's and B's reads each have their own port and C's reads and writes share one.
        c_first = c_tile if c["readback"] else 0.0
        tiles = q[0] * q[1] * q[2]
        per_gap = np.maximum(tiles - 1.0, 1.0) * bandwidth  # bytes per cycle over the tiles between
        step = compute / tiles
        if c["per_port"]:
            first = np.maximum(np.maximum(a_tile, b_tile), c_first)
            reads_ab = np.maximum((read_a - a_tile) / per_gap, (read_b - b_tile) / per_gap)
            c_reads, writes = (c_read - c_first) / per_gap, (write - last) / per_gap
            reads, both = np.maximum(reads_ab, c_reads), np.maximum(reads_ab, c_reads + writes)
        else:
            first = a_tile + b_tile + c_first if c["readback"] else a_tile + b_tile
            reads, writes = (read - first) / per_gap, (write - last) / per_gap
            both = reads + writes
        total = ((first + last) / bandwidth + np.where(
            tiles > 1.0, np.maximum(step, reads) + np.maximum(step, writes) + (tiles - 2.0) * np.maximum(step, both),
            compute))
    if only_total:
        return {"total": total}
    sram_array = None  # order-independent: `_choose` reads it for the chosen tiling alone
    if c["objective"] in ("energy", "edp"):  # only these objectives need it per candidate
        sram_array = _sram_array(c, terms)
        if c["array_energy"] == "per_cycle":
            mac_energy = compute * c["rows"] * c["cols"] * c["mac_pj"]
        else:
            mac_energy = m * n * k * c["mac_pj"] * c["mac_scale"]
        energy = mac_energy + (sram_array + dram) * c["sram_pj"] + dram * c["dram_pj"] + total * c["static_pj"]
    else:
        energy = None
    return {"compute": compute, "feasible": terms["feasible"], "sram_array": sram_array,
            "total": total, "dram": dram, "energy": energy, "read": read, "write": write}


def _sram_array(c: dict, terms: dict):
    """Array-side SRAM bytes of tilings (`_tile_terms`, per-candidate values in `c`): X1 read once
    per column fold, X2 once per row fold (partial sums: read and written), the stationary operand
    once per stream tile, plus the outputs; order-independent."""
    m, n, k = c["m"], c["n"], c["k"]
    a_total, b_total = m * k * (c["ba"] / 8.0), terms["k_pad_total"] * n * (c["bw"] / 8.0)
    mn_out = m * terms["n_pad_total"]
    x2_f = 2.0 * mn_out * c["psum_bytes"] if c["x2_is_psum"] else (b_total if c["x1"] == "a" else a_total)
    x1_total = a_total if c["x1"] == "a" else b_total
    stat_total = 0.0 if not c["x2_is_psum"] else (b_total if c["x1"] == "a" else a_total)
    return x1_total * terms["c_folds"] + x2_f * terms["r_folds"] + stat_total * terms["t_q"] + mn_out * c["out_bytes"]


def _order_pick() -> tuple[np.ndarray, np.ndarray]:
    """Per operand (rows a, b, c) and loop order (columns), which of (1, mid for its first own dim
    inner, mid for its second, outer) the order picks as the re-fetch factor, and which own dim's
    kept footprint: an operand is re-fetched across its non-indexing loop e never when e is
    innermost, per the inner of its own two loops when e is in the middle, and when all of it does
    not fit when e is outermost."""
    options, tops = np.empty((3, len(LOOP_ORDERS)), dtype=np.int64), np.empty((3, len(LOOP_ORDERS)), dtype=np.int64)
    for i, own in enumerate(_OPERAND_DIMS.values()):
        e = 3 - own[0] - own[1]
        for j, order in enumerate(LOOP_ORDERS):
            pos = [order.index(letter) for letter in "mnk"]  # 0 = outermost
            first_inner = pos[own[0]] > pos[own[1]]
            options[i, j] = 0 if pos[e] == 2 else ((1 if first_inner else 2) if pos[e] == 1 else 3)
            tops[i, j] = 0 if first_inner else 1
    return options, tops


# The operands a, b, c stacked (`_orders`): their own dims, the dim that does not index them, and
# per operand and loop order which option and kept footprint applies.
_ORDER_OPTION, _ORDER_TOP = _order_pick()
_OWN_FIRST, _OWN_SECOND = (np.array([_OPERAND_DIMS[name][j] for name in "abc"]) for j in (0, 1))
_ACROSS = np.array([3 - sum(_OPERAND_DIMS[name]) for name in "abc"])
_OPERAND_ROWS = np.arange(3)[:, None]
# Rows of a (3·4, ...) stack of options, and of a (3·2, ...) stack of kept footprints, per operand and order.
_OPTION_ROWS, _TOP_ROWS = ((_OPERAND_ROWS * width + table).ravel() for width, table in ((4, _ORDER_OPTION),
                                                                                         (2, _ORDER_TOP)))


def _per_order(values: np.ndarray, rows: np.ndarray = _OPTION_ROWS) -> np.ndarray:
    """(3, W, ...) values per operand and option (or own dim) -> (3, 6, ...) per operand and loop order:
    `values[_OPERAND_ROWS, _ORDER_OPTION]` (or `_ORDER_TOP` with `_TOP_ROWS`) as one `take`."""
    rest = values.shape[2:]
    return values.reshape((3 * values.shape[1],) + rest).take(rows, axis=0).reshape((3, 6) + rest)


def _any_per_gemm(gid: np.ndarray, mask: np.ndarray, g: int) -> np.ndarray:
    """(G,): whether any candidate of each GEMM (`gid`) is set in `mask`."""
    if g == 1:
        return np.array([mask.any()])
    out = np.zeros(g, dtype=bool)
    np.logical_or.at(out, gid, mask)
    return out


def _choose(c: dict, cost: dict, terms: dict, gid, tiling, n_tilings: int, g: int, m, n, k, tm, tn,
            tk) -> dict:
    """The best candidate of each GEMM under the objective: the least first key, then the least
    second key, then the lowest (loop order, tiling) index. Candidates come grouped by GEMM (`gid`
    ascending, `tiling` ascending within a GEMM). (G,) arrays; one GEMM's (G = 1) as Python floats,
    with its "index" among the candidates."""
    fits = cost["feasible"]
    if g == 1:  # nothing fits: stream from DRAM anyway (costed as is)
        ok = None if fits.all() or not fits.any() else fits
    else:
        ok = fits | ~_any_per_gemm(gid, fits, g)[gid]
    total, dram, energy = cost["total"], cost["dram"], cost["energy"]
    objective = c["objective"]
    if objective == "latency":
        first_key, second_key = total, dram
    elif objective == "dram":
        first_key, second_key = dram, total
    elif objective == "energy":
        first_key, second_key = energy, total
    else:
        first_key, second_key = energy * total, total
    if ok is not None:
        first_key = np.where(ok, first_key, np.inf)
    if g == 1:  # flat (loop order, tiling) order: the first tied candidate has the lowest index
        first_key, second_key = first_key.ravel(), second_key.ravel()
        tied = first_key == first_key.min()
        tied &= second_key == np.where(tied, second_key, np.inf).min()
        order_i, at = divmod(int(tied.argmax()), len(fits))
        chosen = _chosen_one(c, cost, terms, order_i, at, (m, n, k), (tm, tn, tk))
        chosen["index"] = order_i * float(n_tilings) + float(tiling[at])  # its rank among ties
        return chosen
    starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])

    def least(values):  # (6, N) -> each GEMM's least value (G,)
        return np.minimum.reduceat(values.min(axis=0), starts)

    tied = first_key == least(first_key)[gid]
    tied &= second_key == least(np.where(tied, second_key, np.inf))[gid]
    index = np.arange(len(LOOP_ORDERS))[:, None] * n_tilings + tiling
    pick = least(np.where(tied, index, len(LOOP_ORDERS) * n_tilings))
    order_i, chosen_tiling = np.divmod(pick, n_tilings)
    at = np.searchsorted(gid * n_tilings + tiling, np.arange(g) * n_tilings + chosen_tiling)
    chosen = {
        "total": total[order_i, at], "read": cost["read"][order_i, at], "write": cost["write"][order_i, at],
        "compute": cost["compute"][at], "tile_m": tm[at], "tile_n": tn[at],
        "tile_k": tk[at], "loop_order": order_i.astype(np.float64),
    }
    sram = cost["sram_array"]
    if sram is None:  # one per GEMM: the per-GEMM values in `c` line up with the chosen tilings
        sram = _sram_array(c, _terms_at(terms, at))
    else:
        sram = sram[at]
    chosen["sram"] = sram + chosen["read"] + chosen["write"]
    chosen["tiles"] = (np.ceil(m / chosen["tile_m"]) * np.ceil(n / chosen["tile_n"]) * np.ceil(k / chosen["tile_k"]))
    return chosen


def _chosen_one(c: dict, cost: dict, terms: dict, order_i: int, at: int, dims: tuple, tiles: tuple) -> dict[str, float]:
    """`_choose`'s record of one GEMM's choice (loop order `order_i`, candidate `at`) as Python floats
    (a numpy gather per field, or arithmetic on numpy scalars, costs more than the arithmetic)."""
    read, write = float(cost["read"][order_i, at]), float(cost["write"][order_i, at])
    tm, tn, tk = (float(t[at]) for t in tiles)
    m, n, k = (float(d[0]) for d in dims)
    sram = cost["sram_array"]
    sram = _sram_array(c, _terms_at(terms, at)) if sram is None else float(sram[at])
    return {"total": float(cost["total"][order_i, at]), "read": read, "write": write,
            "compute": float(cost["compute"][at]), "tile_m": tm, "tile_n": tn, "tile_k": tk,
            "loop_order": float(order_i), "sram": sram + read + write,
            "tiles": float(math.ceil(m / tm)) * float(math.ceil(n / tn)) * float(math.ceil(k / tk))}


def _terms_at(terms: dict, at) -> dict:
    """The terms `_sram_array` reads, at the chosen tilings (a term may be one scalar for all); at one
    (`at` an int) as Python floats."""
    one = type(at) is int
    return {key: (float(terms[key][at]) if one else terms[key][at])
            if type(terms[key]) is np.ndarray and terms[key].ndim else terms[key]
            for key in ("k_pad_total", "n_pad_total", "c_folds", "r_folds", "t_q")}
