"""The tile mapper's candidate tilings (`_mapper` searches them).

Candidates (Bit Fusion's optimizer tries every power of two per loop, ≈2 s a layer): each
array-mapped dimension whole and in 2 to 32 balanced tiles, in 2 to 8 tiles of whole folds (and the
smallest tile with as many tiles and folds), 1 to 8 whole folds, its largest power of two, the powers
of two 1, 4, ..., 4096, the sizes that fill the buffer of the operand both array dimensions index
with the other one whole (at every operand width the spec has), and, on the columns of a ws or is
array (the dimension the output shares with the stream), the sizes that fill the output buffer
given the stream whole, in 2 to 8 and at 1, 4, 16, 64; each fill split in balanced tiles (the
widest, half and quarter width's also unsplit), and on ws and is arrays the stationary operand's
fills also at twice and four times each of those widths, balanced (fill(2C, 2w) = fill(C, w): a
spec with twice or four times that buffer keeps every fill the smaller one takes at the widths
above, so more SRAM does not lose the array tile it had there), and last the dimension less one
(a one-line last tile: the least exposed fill and drain; not under Bit Fusion's counting). For each pair of those that fits: the
streamed dimension whole and in 2 to 8, its largest power of two, 1, 4, 16, 64, the sizes that
fill the buffers given the other two tiles (the same way, without the multiples), and last the
streamed dimension in 12 and 16. The last ones do not depend on the buffers: where a fill wins only
because it lands near the pipeline's best tile (issue 20: bitfusion 1×171×192 took N = 170, the
widest's unsplit fill, 1617×1×50 took M = 164, half the widest's stream fill), a bigger buffer has
that tile too. Fill sizes are taken at fixed widths (every bit count from the spec's narrowest to
its widest, at most `_MAX_WIDTHS`, and those multiples), never at the GEMM's own bits, so narrower
operands keep every schedule wider ones had. A tile smaller than a fold leaves array lines idle.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from mixaq.simulator._mapper_costs import _OPERAND_DIMS, _round_up

__all__: list[str] = []

_POWERS = (1.0,) + tuple(2.0 ** j for j in range(2, 13))  # 1, 4, 8, ..., 4096 (absolute: nested across arrays)
_BALANCED = tuple(float(q) for q in range(1, 33))  # an array-mapped dimension in 1 to 32 equal tiles
_FOLD_MULTIPLES = tuple(float(j) for j in range(1, 9))  # 1 to 8 whole folds of the array
_FOLD_TILES = tuple(float(q) for q in range(2, 9))  # a dimension in 2 to 8 tiles of whole folds
_FOLD_TILES_LESS_ONE_COL = np.array(_FOLD_TILES)[:, None] - 1.0
_BALANCED_COL, _POWERS_COL, _FOLD_MULTIPLES_COL = (np.array(x)[:, None] for x in (_BALANCED, _POWERS, _FOLD_MULTIPLES))
_MAX_WIDTHS = 8  # operand widths the array fill sizes are taken at, at most (the spec's bit counts)
_WIDTH_SCALES = (2.0, 4.0)  # the stationary fills also at these multiples of every width (`_pairs`)
_STREAM_POWERS = (1.0, 4.0, 16.0, 64.0)  # small stream tiles: less exposed at the first and last tile
_STREAM_BALANCED = tuple(float(q) for q in range(1, 9))  # the streamed dimension whole and in 2 to 8 equal tiles
# ... and in 12 and 16 (`_stream_sizes` only, not in the output fills of `_pairs`): every count 9 to 16
# cost about 12 % more time per mapped GEMM on bitfusion, these two 1-3 %.
_STREAM_MORE_BALANCED = (12.0, 16.0)
_STREAM_POWERS_COL, _STREAM_BALANCED_COL, _STREAM_COUNTS_COL = (
    np.array(x)[:, None] for x in (_STREAM_POWERS, _STREAM_BALANCED, _STREAM_BALANCED + _STREAM_MORE_BALANCED))
# Candidate sizes of the streamed dimension per pair, at most (`_stream_sizes`; fewer when the spec has
# fewer bit counts than `_MAX_WIDTHS`).
_N_STREAM = 9 + len(_STREAM_BALANCED) + len(_STREAM_POWERS) + _MAX_WIDTHS + len(_STREAM_MORE_BALANCED)
# Candidate sizes of each array-mapped dimension, at most (`_array_sizes`; with the balanced fills of
# `_pairs`: the other widths, the output's given each of the stream's balanced tiles, and the widths'
# multiples: 2w and 4w of the widest w, and at most _MAX_WIDTHS - 1 other bit counts' each; and D - 1).
_N_ARRAY = (8 + len(_BALANCED) + len(_POWERS) + len(_FOLD_MULTIPLES) + 2 * len(_FOLD_TILES) + _MAX_WIDTHS
            + 2 * (len(_STREAM_BALANCED) + len(_STREAM_POWERS)) + len(_WIDTH_SCALES) * _MAX_WIDTHS)


def _array_sizes(d: np.ndarray, fill: np.ndarray, lines, more: np.ndarray | None = None,
                 less_one: bool = True) -> np.ndarray:
    """(T, G) candidate tiles of a dimension the array folds over (`lines` of the array): whole and in
    2 to 32 balanced tiles, in 2 to 8 tiles of whole folds and the smallest tile with as many tiles
    and folds, 1 to 8 whole folds, the largest power of two below it, the sizes that fill the buffer of the operand both
    array dimensions index with the other one whole (`fill` (3, G), for operands at the spec's
    widest, half and quarter width: the candidates do not depend on the bits) and their balanced
    splits, the balanced splits of the other fill sizes in `more` (E, G), 1, 4, 8, ..., 4096
    (powers of two are whole folds of power-of-two arrays at any Bit Fusion packing, and the same for
    every array size; a tile smaller than a fold leaves lines idle when the buffers are small), and
    last the dimension less one: a one-line last tile exposes the least fill and drain (M = 1 GEMMs:
    bitfusion 1×171×192 A2 W2 with K in 16-row tiles costs 11.7 cycles less per column of N's tile
    up to 170, then 18 more at 171 whole). The last does not move with the buffers, as a fill that
    happens to land on it does (issue 20: a spec with twice the filter SRAM lost N = 170). Not
    under Bit Fusion's counting (`less_one` False, `_pairs`)."""
    n_more = 0 if more is None else len(more)
    n_balanced, n_powers, n_multiples = len(_BALANCED), len(_POWERS), len(_FOLD_MULTIPLES)
    out = np.empty((n_balanced + 7 + n_powers + n_multiples + 2 * len(_FOLD_TILES) + n_more + int(less_one), len(d)))
    out[:n_balanced] = np.ceil(d / _BALANCED_COL)
    at = n_balanced
    out[at] = _pow2_below(d)
    # The fills and their balanced splits (the other fills' only), all in one evaluation.
    fills = _clip(np.concatenate([fill, more]) if n_more else fill, d)
    split = np.ceil(d / np.ceil(d / fills))
    out[at + 1:at + 4], out[at + 4:at + 7] = fills[:3], split[:3]
    at += 7
    out[at:at + n_powers] = _POWERS_COL
    at += n_powers
    out[at:at + n_multiples] = lines * _FOLD_MULTIPLES_COL
    at += n_multiples
    # In q tiles of whole folds (the last takes the rest), and the smallest tile that needs as many
    # tiles and folds (the last one's folds then fuller): tiles that use the array fully while
    # leaving the most room in the buffers. ⌈d/q⌉ for q = 2..8 is among the balanced tiles above.
    per_tile = out[1:1 + len(_FOLD_TILES)]
    whole = np.ceil(per_tile / lines) * lines
    last_folds = np.ceil(np.maximum(d - _FOLD_TILES_LESS_ONE_COL * whole, 1.0) / lines)
    out[at:at + 2 * len(_FOLD_TILES):2] = whole
    out[at + 1:at + 2 * len(_FOLD_TILES):2] = np.maximum(per_tile, np.ceil((d - last_folds * lines)
                                                                          / _FOLD_TILES_LESS_ONE_COL))
    at += 2 * len(_FOLD_TILES)
    out[at:at + n_more] = split[3:]
    if less_one:
        out[-1] = np.maximum(d - 1.0, 1.0)
    return np.minimum(out, d, out=out)


def _stream_sizes(d: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """(S, P) candidate tiles of the streamed dimension: whole, in 2 to 8 balanced tiles, the
    largest power of two below it, 1, 4, 16, 64 (small tiles expose less at the start and end), and
    from `fill` (F, P) (the stream tile that fills the buffers given the other two tiles, for operands
    at the spec's widest, half and quarter width, then at its other widths) the first three and every
    fill's balanced split; for the widest also its power of two and half; and last the dimension in
    12 and 16 balanced tiles (the pipeline's best tile count can be above 8 where no buffer binds:
    bitfusion 1617×1×50 A2 W2 is least at 14 tiles, and the stream fill that happened to land
    nearest, M = 164, is gone with twice the ifmap SRAM; these two do not move with the buffers)."""
    fill = _clip(fill, d)
    widest, count, at = fill[0], len(fill), len(_STREAM_BALANCED)
    end = at + 6 + count + len(_STREAM_POWERS)
    out = np.empty((end + len(_STREAM_MORE_BALANCED), fill.shape[-1]))
    balanced = np.ceil(d / _STREAM_COUNTS_COL)  # 1 to 8, 12 and 16 balanced tiles
    out[:at] = balanced[:at]
    out[at] = _pow2_below(d)
    out[at + 1] = np.exp2(np.floor(np.log2(widest)))
    out[at + 2] = np.ceil(widest / 2.0)
    out[at + 3:at + 6] = fill[:3]
    out[at + 6:at + 6 + count] = np.ceil(d / np.ceil(d / fill))
    out[at + 6 + count:end] = _STREAM_POWERS_COL
    out[end:] = balanced[at:]
    return np.minimum(out, d, out=out)


def _pow2_below(d):
    """The largest power of two below d, 2^(⌈log2 d⌉ − 1), at least 1; one GEMM's d (a Python
    float) without numpy's per-call cost."""
    if type(d) is float:
        return 2.0 ** max(math.ceil(math.log2(max(d, 1.0))) - 1.0, 0.0)
    return np.exp2(np.maximum(np.ceil(np.log2(np.maximum(d, 1.0))) - 1.0, 0.0))


def _times(*factors):
    """The product left to right, leaving out factors that are the Python float 1.0 (the streamed
    dimension's unit tile): the same numbers, without an array operation per unit factor."""
    kept = [f for f in factors if type(f) is not float or f != 1.0]
    out = kept[0] if kept else 1.0
    for f in kept[1:]:
        out = out * f
    return out


def _clip(x, upper):
    """x clipped to [1, upper]: `np.clip` costs three times two ufuncs on small arrays."""
    return np.minimum(np.maximum(x, 1.0), upper)


def _distinct(sizes: np.ndarray, whole: bool = False) -> np.ndarray:
    """(T, G) (or (T, P)) mask: the first of equal candidate sizes of each GEMM (pair). `whole`: the
    sizes are known to be whole numbers (else checked)."""
    count, width = sizes.shape
    columns = _COLUMNS[:width] if width <= len(_COLUMNS) else np.arange(width, dtype=float)
    # Sorted down each column by (size, row): a size's first row comes first among its equals.
    if count <= len(_ROWS) and (whole or (np.floor(sizes) == sizes).all()):  # size·count + row: one exact key
        key = sizes * count + _ROWS[:count]
        key.sort(axis=0)
        ordered = np.floor(key / count)
        at = (key - ordered * count) * width + columns  # each sorted entry's flat position
    else:
        rows = np.argsort(sizes, axis=0, kind="stable")
        ordered = np.take_along_axis(sizes, rows, axis=0)
        at = rows * width + columns
    first = np.empty((count, width), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    out = np.empty(count * width, dtype=bool)
    out[at.astype(np.intp).ravel()] = first.ravel()  # a flat scatter: a (row, column) one costs 6 times more
    return out.reshape(count, width)


_ROWS = np.arange(512.0)[:, None]  # candidate row numbers (`_distinct`)
_COLUMNS = np.arange(4096.0)


def _pairs(c: dict, dims: tuple, ba, bw, pack):
    """Every GEMM's candidate pairs of array tiles that fit the stationary operand's buffer, flat and
    grouped by GEMM: (gid, rank among the GEMM's pairs, row tile, column tile, pairs per GEMM at most)."""
    g = len(dims[0])
    rows, cols = c["rows"], c["cols"]
    role = c["roles"]
    pad_of = (1.0, cols if c["pad"] else 1.0, rows * pack if c["pad"] else 1.0)
    bytes_a, bytes_b = ba / 8.0, bw / 8.0
    # The operand indexed by both array dims (ws: B, os: C, is: A) fills its buffer at this size of
    # one of them when the other is whole.
    # Fill sizes are taken at the spec's widest operands (and, for the stream, half and a quarter of
    # that): the candidates then do not depend on the bits, so narrower operands keep every schedule.
    wide = c["max_bits"] / 8.0
    stationary = {"ws": ("b", wide), "os": ("c", c["psum_bytes"]), "is": ("a", wide)}[c["dataflow"]]
    room = {"a": c["cap_a"], "b": c["cap_b"], "c": c["cap_c"]}[stationary[0]]
    whole_padded = [dims[0], _round_up(dims[1], pad_of[1], c["whole"]), _round_up(dims[2], pad_of[2], c["whole"])]
    widths = (stationary[1],) if stationary[0] == "c" else (wide, wide / 2.0, wide / 4.0)
    # Both array dims are evaluated side by side, (T, 2G) (the per-call overhead, not the elements,
    # costs): the first G columns the row dim's, given the column dim whole, the others the reverse.
    d0, d1 = dims[role[0]], dims[role[1]]
    other_whole = np.concatenate([whole_padded[role[1]], whole_padded[role[0]]])
    if type(room) is np.ndarray and room.ndim:  # one per spec (`_spec_batch`)
        room = np.concatenate([room, room])

    def fills(w):  # (W, 2G): the fill size at each width w (a width may be one per spec)
        w = np.array(w, dtype=float).reshape(len(w), -1 if len(w) else 1)
        return np.floor(room / (other_whole * (w if w.shape[1] == 1 else np.concatenate([w, w], axis=1))))
    # More fills, their balanced splits only: the stationary operand's at every other width the spec
    # has (a GEMM's own bits then find the tile count that just fits; still independent of them), and
    # the output's along the array dim it shares with the stream (ws: N, is: M; on the columns) given
    # the stream whole, in 2 to 8 (`_STREAM_BALANCED`) and at the small stream tiles 1, 4, 16, 64
    # (`_STREAM_POWERS`; where the output is the binding buffer the best tiles trade the two off along
    # its fill curve), at partial-sum width (and at output width when outputs are read back: then they
    # bind the buffer without accumulating). Last (ties keep going to the earlier candidates), the
    # stationary fills at twice and four times every width above: fill(2C, 2w) = fill(C, w), so a
    # spec with 2× or 4× that buffer keeps every fill the smaller one takes at those widths (issue 20:
    # more SRAM should not cost more cycles; found: bitserial 2433×1431×874 with twice the ifmap SRAM
    # lost the 5-bit fill's M = 58).
    if stationary[0] == "c":
        fill, more = np.repeat(fills(widths), 3, axis=0), np.empty((0, 2 * g))
    else:
        other = _other_widths(c, widths)
        every = fills(widths + other + _scaled_widths(widths + other))
        stream = dims[role[2]]
        per_line = np.concatenate([np.ceil(stream / _STREAM_BALANCED_COL), np.minimum(_STREAM_POWERS_COL, stream)])
        if role[2] == 1:  # the stream is N (is): its tiles are stored padded
            per_line = np.ceil(per_line / pad_of[1]) * pad_of[1]
        out_widths = np.array([c["psum_bytes"], c["out_bytes"]] if c["readback"] else [c["psum_bytes"]])
        size = np.floor(c["cap_c"] / (per_line[:, None, :] * out_widths.reshape(len(out_widths), -1)[None]))
        if role[1] == 1:  # N on the columns (ws): padded too
            size = np.floor(size / pad_of[1]) * pad_of[1]
        size = size.reshape(-1, g)
        # The row dim has no output fills: its whole dim in their place, a copy of its first
        # candidate, so never a pair of its own (the pairs' ranks stay as without it).
        fill, split = every[:len(widths)], len(widths) + len(other)
        more = np.empty((len(every) - len(widths) + len(size), 2 * g))
        more[:len(other)] = every[len(widths):split]
        more[len(other):len(other) + len(size), :g] = d0
        more[len(other):len(other) + len(size), g:] = size
        more[len(other) + len(size):] = every[split:]
    # D - 1 only under our own counting: under Bit Fusion's (`pad_to_array`) it moved 3 of its fc
    # cases (16×10×512 A8 W2: 3×10×511) off the choices of its own simulator's optimizer, 9-17 % fewer
    # cycles than it counts, and the more-hardware property it serves is not checked there.
    lines = np.empty(2 * g)
    lines[:g], lines[g:] = rows, cols
    sizes = _array_sizes(np.concatenate([d0, d1]), fill, lines, more, less_one=not c["pad"])
    sizes0, sizes1 = sizes[:, :g], sizes[:, g:]
    # Keep the pairs of array tiles worth costing: distinct sizes (candidates coincide once clipped to
    # the dimension) whose stationary-operand tile fits its buffer.
    n_grid = sizes0.shape[0] * sizes1.shape[0]  # pair candidates at most (their ranks index the tilings)
    if g == 1:  # one GEMM's distinct sizes (a dict keeps the first of equal ones, in order): a smaller grid
        return _pairs_of_one(c, sizes, pad_of, float(ba[0]) / 8.0, float(bw[0]) / 8.0, n_grid)
    keep = _distinct(sizes0, c["whole"])[:, None, :] & _distinct(sizes1, c["whole"])[None, :, :]
    keep = (keep & _stationary_fits(c, sizes0, sizes1, pad_of, bytes_a, bytes_b)).reshape(-1, g)
    pair_idx, pair_gid = np.nonzero(keep.T)[::-1]
    counts = np.bincount(pair_gid, minlength=g)
    pair_rank = np.arange(len(pair_gid)) - np.repeat(np.cumsum(counts) - counts, counts)
    t0 = sizes0[pair_idx // sizes1.shape[0], pair_gid]
    t1 = sizes1[pair_idx % sizes1.shape[0], pair_gid]
    return pair_gid, pair_rank, t0, t1, n_grid


def _pairs_of_one(c: dict, sizes: np.ndarray, pad_of: tuple, bytes_a: float, bytes_b: float, n_grid: int):
    """`_pairs` of one GEMM from its (T, 2) candidate sizes of the row and column dims."""
    sizes0, sizes1 = (np.array(list(dict.fromkeys(x.tolist())))[:, None] for x in sizes.T)
    keep = _stationary_fits(c, sizes0, sizes1, pad_of, bytes_a, bytes_b)
    i0, i1 = np.nonzero(np.broadcast_to(keep, (len(sizes0), len(sizes1), 1))[:, :, 0])
    return np.zeros(len(i0), dtype=np.int64), np.arange(len(i0)), sizes0[:, 0].take(i0), sizes1[:, 0].take(i1), n_grid


def _stationary_fits(c: dict, sizes0, sizes1, pad_of: tuple, bytes_a, bytes_b):
    """(T0, T1, G) mask of the array-tile pairs (row tiles (T0, G), column tiles (T1, G)) whose
    stationary-operand tile fits its buffer; True on os arrays (the output's fit depends on the
    stream tile)."""
    if c["dataflow"] == "ws":  # rows K, cols N: B
        return _round_up(sizes0, pad_of[2], c["whole"])[:, None, :] * sizes1[None, :, :] * bytes_b <= c["cap_b"]
    if c["dataflow"] == "is":  # rows K, cols M: A
        return sizes0[:, None, :] * sizes1[None, :, :] * bytes_a <= c["cap_a"]
    return True


def _other_widths(c: dict, widths) -> tuple:
    """Operand widths in bytes of every bit count from the spec's narrowest to its widest (at most
    `_MAX_WIDTHS`, evenly spaced), less those in `widths` (scalars)."""
    return _other_widths_of(int(c["min_bits"]), int(c["max_bits"]), tuple(float(w) for w in widths))


def _scaled_widths(widths: tuple) -> tuple:
    """`widths` (bytes, scalars) at each of `_WIDTH_SCALES`, less those already in `widths`."""
    return _scaled_widths_of(tuple(float(w) for w in widths))


@functools.lru_cache(maxsize=64)
def _scaled_widths_of(widths: tuple) -> tuple:
    scaled = sorted({w * s for s in _WIDTH_SCALES for w in widths})
    return tuple(w for w in scaled if all(abs(w - x) > 1e-9 for x in widths))


@functools.lru_cache(maxsize=64)
def _other_widths_of(lo: int, hi: int, widths: tuple) -> tuple:
    count = min(hi - lo + 1, _MAX_WIDTHS)
    bits = sorted({round(lo + (hi - lo) * j / max(count - 1, 1)) for j in range(count)})
    return tuple(b / 8.0 for b in bits if all(abs(b / 8.0 - float(w)) > 1e-9 for w in widths))


@functools.lru_cache(maxsize=64)
def _width_column(min_bits: float, max_bits: float) -> np.ndarray:
    """(W, 1) operand widths in bytes the stream fills are taken at: the spec's widest, half and
    quarter width, then its other bit counts (`_other_widths`)."""
    wide = max_bits / 8.0
    widths = (wide, wide / 2.0, wide / 4.0)
    column = np.array(widths + _other_widths_of(int(min_bits), int(max_bits), widths)).reshape(-1, 1)
    column.flags.writeable = False  # shared by every call
    return column


def _stream_tiles(c: dict, t0, t1) -> np.ndarray:
    """(S, P) stream tiles of each array-tile pair (per-pair values in `c`, `_columns`)."""
    rows, pack, k = c["rows"], c["pack"], c["k"]
    role = c["roles"]
    dims = (c["m"], c["n"], c["k"])
    pad_of = (1.0, c["cols"] if c["pad"] else 1.0, rows * pack if c["pad"] else 1.0)
    wide = c["max_bits"] / 8.0
    tile = [None, None, None]
    tile[role[0]], tile[role[1]] = t0, t1
    # The stream tile that fills the buffers: every operand's tile is linear in it.
    sd = role[2]
    others = [tile[i] if i != sd else 1.0 for i in range(3)]
    # The output tile binds only as the feasibility test below binds it: at psum width while it
    # accumulates across K tiles or K folds, at output width when read back, not at all when it
    # streams out. A streamed K (os) accumulates across its own tiles: psum width.
    if sd == 2:
        acc_width, out_binds = c["psum_bytes"], True
    else:
        accumulates = others[2] < k  # more than one K tile, or (below) K folds whose partial sums leave the array
        if c["x2_is_psum"]:  # ⌈x⌉ > rows is x > rows: rows is whole
            accumulates = accumulates | (others[2] / pack > rows)
        acc_width = np.where(accumulates, c["psum_bytes"], c["out_bytes"])
        out_binds = True if c["readback"] else accumulates
    cap = {"a": c["cap_a"], "b": c["cap_b"], "c": c["cap_c"]}
    # The widest, half and quarter width, then the spec's other bit counts (balanced splits only).
    if type(wide) is not np.ndarray or not wide.ndim:
        width = _width_column(float(c["min_bits"]), float(c["max_bits"]))
    else:
        widths = [wide, wide / 2.0, wide / 4.0]
        width = np.stack(np.broadcast_arrays(*widths, *_other_widths(c, widths)))
    # Bytes per unit of the stream tile of the two operands the stream indexes (B's K and C's N padded).
    per_unit = {"a": lambda: _times(others[0], others[2], width),
                "b": lambda: _times(_round_up(others[2], pad_of[2], c["whole"]), others[1], width),
                "c": lambda: _times(others[0], _round_up(others[1], pad_of[1], c["whole"]), acc_width)}
    fill = None
    for name, own in _OPERAND_DIMS.items():
        if sd in own:
            own_fill = np.floor(cap[name] / per_unit[name]())
            if name == "c" and out_binds is not True:
                own_fill = np.where(out_binds, own_fill, np.inf)
            fill = own_fill if fill is None else np.minimum(fill, own_fill)
    shape = (len(width),) + t0.shape
    return _stream_sizes(dims[sd], fill if type(fill) is np.ndarray and fill.shape == shape else np.broadcast_to(fill, shape))
