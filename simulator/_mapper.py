"""The tile mapper: for each GEMM, the tile sizes of M, N and K and the loop order over the tiles.

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
  averages; per-operand ports: the slowest port against all of compute), or Bit Fusion's
  simulator's formula (`bitfusion`).

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
above, so more SRAM does not lose the array tile it had there). For each pair of those that fits:
the streamed dimension whole and in 2 to 8, its largest power of two, 1, 4, 16, 64, and the sizes
that fill the buffers given the other two tiles (the same way, without the multiples). Fill sizes
are taken at fixed widths (every bit count from the spec's narrowest to its widest, at most
`_MAX_WIDTHS`, and those multiples), never at the GEMM's own bits, so narrower operands keep every
schedule wider ones had. A tile smaller than a fold leaves array lines idle.

The search is exact over these candidates and prunes what cannot win (branch and bound): tilings
that do not fit (when any does); then, under `latency`, the pairs of array tiles with the least
lower bound are expanded first, their tilings with the least lower bound (compute plus the first
and last transfers, and the DRAM bytes no loop order avoids) are costed under every loop order, the
best of them bounds the optimum, and the other tilings whose lower bound exceeds it are dropped
(usually all of them). The first round's optimum then decides which other pairs still need a round
of their own, by a bound that follows each pair's stream tile through the trade between re-fetches
and fill/drain (`_pair_traffic`; `_map_slice`).
"""
from __future__ import annotations

import functools
import itertools
from typing import Any

import numpy as np

__all__ = ["LOOP_ORDERS", "MAPPED_FIELDS", "TILE_RESULT_FIELDS", "cost_tilings", "map_tiles", "mapped", "mapped_one",
           "spec_values", "unique_rows"]

# Loop orders over the tile loops, outermost first (index = the `loop_order` result field).
LOOP_ORDERS = tuple("".join(p) for p in itertools.permutations("mnk"))
_OPERAND_DIMS = {"a": (0, 2), "b": (2, 1), "c": (0, 1)}
TILE_RESULT_FIELDS = ("compute", "total", "read", "write", "sram", "tile_m", "tile_n", "tile_k", "loop_order",
                      "tiles")
_POWERS = (1.0,) + tuple(2.0 ** j for j in range(2, 13))  # 1, 4, 8, ..., 4096 (absolute: nested across arrays)
_BALANCED = tuple(float(q) for q in range(1, 33))  # an array-mapped dimension in 1 to 32 equal tiles
_FOLD_MULTIPLES = tuple(float(j) for j in range(1, 9))  # 1 to 8 whole folds of the array
_FOLD_TILES = tuple(float(q) for q in range(2, 9))  # a dimension in 2 to 8 tiles of whole folds
_BALANCED_COL, _POWERS_COL, _FOLD_MULTIPLES_COL, _FOLD_TILES_COL = (
    np.array(x)[:, None] for x in (_BALANCED, _POWERS, _FOLD_MULTIPLES, _FOLD_TILES))
_MAX_WIDTHS = 8  # operand widths the array fill sizes are taken at, at most (the spec's bit counts)
_WIDTH_SCALES = (2.0, 4.0)  # the stationary fills also at these multiples of every width (`_pairs`)
_STREAM_POWERS = (1.0, 4.0, 16.0, 64.0)  # small stream tiles: less exposed at the first and last tile
_STREAM_BALANCED = tuple(float(q) for q in range(1, 9))  # the streamed dimension whole and in 2 to 8 equal tiles
_STREAM_POWERS_COL, _STREAM_BALANCED_COL = (np.array(x)[:, None] for x in (_STREAM_POWERS, _STREAM_BALANCED))
# Candidate sizes of the streamed dimension per pair, at most (`_stream_sizes`; fewer when the spec has
# fewer bit counts than `_MAX_WIDTHS`).
_N_STREAM = 9 + len(_STREAM_BALANCED) + len(_STREAM_POWERS) + _MAX_WIDTHS
# Candidate sizes of each array-mapped dimension, at most (`_array_sizes`; with the balanced fills of
# `_pairs`: the other widths, the output's given each of the stream's balanced tiles, and the widths'
# multiples: 2w and 4w of the widest w, and at most _MAX_WIDTHS - 1 other bit counts' each).
_N_ARRAY = (7 + len(_BALANCED) + len(_POWERS) + len(_FOLD_MULTIPLES) + 2 * len(_FOLD_TILES) + _MAX_WIDTHS
            + 2 * (len(_STREAM_BALANCED) + len(_STREAM_POWERS)) + len(_WIDTH_SCALES) * _MAX_WIDTHS)
_FIRST_PAIRS = 96  # array-tile pairs per GEMM expanded in the first round: usually every one that can win
_PROBES = 64  # ... of whose tilings those with the least lower bound are costed first (branch and bound)
_SURVIVOR_PROBES = 8  # in a second round, the tilings per GEMM with the least lower bound costed first
_PROBE_ABOVE = 256  # ... when more than this many tilings per GEMM are left
_PRUNE = True  # branch and bound on; the tests turn it off to check it changes no choice
_SLACK = 1.0 + 1e-9  # an incumbent's total, raised past the rounding of bounds summed in another order
_CHUNK_CANDIDATES = 1 << 20  # array-tile pair grid cells × GEMMs per evaluation slice (≈ 8 MB per grid)


def _array_sizes(d: np.ndarray, fill: np.ndarray, lines, more: np.ndarray | None = None) -> np.ndarray:
    """(T, G) candidate tiles of a dimension the array folds over (`lines` of the array): whole and in
    2 to 32 balanced tiles, in 2 to 8 tiles of whole folds and the smallest tile with as many tiles
    and folds, 1 to 8 whole folds, the largest power of two below it, the sizes that fill the buffer of the operand both
    array dimensions index with the other one whole (`fill` (3, G), for operands at the spec's
    widest, half and quarter width: the candidates do not depend on the bits) and their balanced
    splits, the balanced splits of the other fill sizes in `more` (E, G), and 1, 4, 8, ..., 4096
    (powers of two are whole folds of power-of-two arrays at any Bit Fusion packing, and the same for
    every array size; a tile smaller than a fold leaves lines idle when the buffers are small)."""
    e = np.ceil(np.log2(np.maximum(d, 1.0)))  # 2**(e-1) < d <= 2**e
    fill = _clip(fill, d)
    balanced = np.ceil(d / np.ceil(d / fill))
    shape = (1, len(d))
    # In q tiles of whole folds (the last takes the rest), and the smallest tile that needs as many
    # tiles and folds (the last one's folds then fuller): tiles that use the array fully while
    # leaving the most room in the buffers.
    q = _FOLD_TILES_COL
    whole = np.ceil(np.ceil(d / q) / lines) * lines
    last_folds = np.ceil(np.maximum(d - (q - 1.0) * whole, 1.0) / lines)
    smallest = np.maximum(np.ceil(d / q), np.ceil((d - last_folds * lines) / np.maximum(q - 1.0, 1.0)))
    zero = 0.0 * d
    whole_and_smallest = np.empty((2 * len(q), len(d)))
    whole_and_smallest[0::2], whole_and_smallest[1::2] = whole, smallest
    rows = [np.ceil(d / _BALANCED_COL), np.exp2(np.maximum(e - 1.0, 0.0)).reshape(shape), fill, balanced,
            _POWERS_COL + zero, lines * _FOLD_MULTIPLES_COL + zero, whole_and_smallest]
    if more is not None and len(more):
        rows.append(np.ceil(d / np.ceil(d / _clip(more, d))))
    return np.minimum(np.concatenate(rows), d)


def _stream_sizes(d: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """(S, P) candidate tiles of the streamed dimension: whole, in 2 to 8 balanced tiles, the
    largest power of two below it, 1, 4, 16, 64 (small tiles expose less at the start and end), and
    from `fill` (F, P) (the stream tile that fills the buffers given the other two tiles, for operands
    at the spec's widest, half and quarter width, then at its other widths) the first three and every
    fill's balanced split; for the widest also its power of two and half."""
    fill = _clip(fill, d)
    widest, count, at = fill[0], len(fill), len(_STREAM_BALANCED)
    out = np.empty((at + 6 + count + len(_STREAM_POWERS), fill.shape[-1]))
    out[:at] = np.ceil(d / _STREAM_BALANCED_COL)
    out[at] = np.exp2(np.maximum(np.ceil(np.log2(np.maximum(d, 1.0))) - 1.0, 0.0))
    out[at + 1] = np.exp2(np.floor(np.log2(widest)))
    out[at + 2] = np.ceil(widest / 2.0)
    out[at + 3:at + 6] = fill[:3]
    out[at + 6:at + 6 + count] = np.ceil(d / np.ceil(d / fill))
    out[at + 6 + count:] = _STREAM_POWERS_COL
    return np.minimum(out, d, out=out)


def _clip(x, upper):
    """x clipped to [1, upper]: `np.clip` costs three times two ufuncs on small arrays."""
    return np.minimum(np.maximum(x, 1.0), upper)


def _distinct(sizes: np.ndarray) -> np.ndarray:
    """(T, G) (or (T, P)) mask: the first of equal candidate sizes of each GEMM (pair)."""
    count = len(sizes)
    if sizes.shape[1] == 1:  # one column: a stable sort finds each value's first
        order = np.argsort(sizes[:, 0], kind="stable")
        ordered = sizes[order, 0]
        first = np.empty(count, dtype=bool)
        first[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
        out = np.empty((count, 1), dtype=bool)
        out[order, 0] = first
        return out
    earlier = _EARLIER[:count, :count, None] if count <= len(_EARLIER) else np.tri(count, k=-1, dtype=bool)[:, :, None]
    return ~((sizes[:, None, :] == sizes[None, :, :]) & earlier).any(axis=1)


_EARLIER = np.tri(256, k=-1, dtype=bool)  # [i, j]: candidate j comes before candidate i


def _per_dim(t: np.ndarray, d: np.ndarray, div: Any, array: Any, pad: Any):
    """Per-dimension sums over the tiles along it: count Q, mapped length L (Σ ⌈t/div⌉), folds F
    (Σ ⌈⌈t/div⌉/array⌉), used array lines U (Σ min(array, ⌈t/div⌉)), padded length P (Σ ⌈t/pad⌉·pad;
    d itself when pad is None). Folds and lines are None when array is None (a streamed dimension).
    A last partial tile adds its own terms (all zero when the tiles divide d)."""
    full = np.floor(d / t)
    rem = d - full * t
    q = full + (rem > 0)
    ft, fr = np.ceil(t / div), np.ceil(rem / div)
    length = full * ft + fr
    folds = used = None
    if array is not None:
        folds = full * np.ceil(ft / array) + np.ceil(fr / array)
        used = full * np.minimum(array, ft) + np.minimum(array, fr)
    padded = d if pad is None else full * np.ceil(t / pad) * pad + np.ceil(rem / pad) * pad
    return q, length, folds, used, padded


def map_tiles(c: dict, m, n, k, ba, bw, pack, passes, mac_scale) -> dict[str, np.ndarray]:
    """The best schedule of G GEMMs (arrays (G,)) under the spec values in `c` (scalars or (G,)
    arrays: rows, cols, cap_a/b/c bytes, bandwidth, out_bytes, psum_bytes, energy constants; and the
    categorical switches). Returns `TILE_RESULT_FIELDS` as (G,) arrays."""
    g = len(m)
    out = {key: np.empty(g) for key in TILE_RESULT_FIELDS}
    per = max(1, _CHUNK_CANDIDATES // (_N_ARRAY * _N_ARRAY))  # GEMMs per slice: the pair grids bound memory
    for start in range(0, g, per):
        sl = slice(start, start + per)
        cols = {key: (val[sl] if isinstance(val, np.ndarray) and val.ndim else val) for key, val in c.items()}
        part = _map_slice(cols, m[sl], n[sl], k[sl], ba[sl], bw[sl], pack[sl], passes[sl], mac_scale[sl])
        for key in TILE_RESULT_FIELDS:
            out[key][sl] = part[key]
    return out


def _map_slice(c: dict, m, n, k, ba, bw, pack, passes, mac_scale) -> dict[str, np.ndarray]:
    g = len(m)
    # Every GEMM's pairs of array tiles (flat, grouped by GEMM, in candidate order), then for each
    # pair its stream tiles: candidate index = pair rank × S + stream row (ties go to the lowest).
    pair_gid, pair_rank, t0, t1, n_pairs = _pairs(c, (m, n, k), ba, bw, pack)
    n_tilings = n_pairs * _N_STREAM
    gc = _columns(c, m, n, k, ba, bw, pack, passes, mac_scale)
    pc = _subset(gc, pair_gid) if g > 1 else gc  # per pair
    pairs = (pair_gid, pair_rank, t0, t1)
    array_stats = _array_stats(pc, t0, t1)
    if c["objective"] != "latency" or not _PRUNE:
        every = _expand(gc, pc, pairs, array_stats, slice(None))
        return _pick(gc, _survivors(gc, [every], None, g), g, n_tilings, m, n, k)
    # Branch and bound, exact. A pair's cycles under any stream tiling are at least its `_pair_bound`.
    # The pairs with the least bounds are expanded first, and their tilings with the least lower
    # bounds are costed under every order: the best of them bounds the GEMM's optimum, and other
    # tilings whose lower bound exceeds it can neither win nor tie (usually none is left: 70 % of
    # GEMMs). Pairs left out of the first round that could still beat its optimum get a second round.
    bound = _pair_bound(pc, t0, t1, array_stats)
    first = _lowest(bound, pair_gid, g, _FIRST_PAIRS)
    found = _expand(gc, pc, pairs, array_stats, first)
    gid, fits, lower = found["gid"], found["terms"]["feasible"], found["terms"]["lower"]
    if g == 1:
        any_fit = np.array([fits.any()])
    else:
        any_fit = np.zeros(g, dtype=bool)
        np.logical_or.at(any_fit, gid, fits)
    if any_fit.all():
        probe = _lowest(np.where(fits, lower, np.inf), gid, g, _PROBES) & fits
        tried = _costed(gc, _cut_round(found, probe))
        chosen = _pick(gc, tried, g, n_tilings, m, n, k)
        beyond = fits & ~probe & (lower <= (chosen["total"] * _SLACK)[gid])
        if beyond.any():
            tried = _concat(tried, _costed(gc, _cut_round(found, beyond)))
            chosen = _pick(gc, tried, g, n_tilings, m, n, k)
    else:  # a GEMM none of whose tilings fits keeps them all (costed as they are)
        chosen = _pick(gc, _survivors(gc, [found], np.full(g, np.inf), g), g, n_tilings, m, n, k)
    # The first round's optimum (where something fits) bounds the rest: usually nothing is left.
    best = np.where(any_fit, chosen["total"] * _SLACK, np.inf)
    rest = ~first & (bound <= best[pair_gid])
    if rest.any():  # the traffic no order avoids bounds these pairs too (worth it for the few left)
        at = np.flatnonzero(rest)
        stats = tuple(tuple(x[at] if type(x) is np.ndarray and x.ndim else x for x in one) for one in array_stats)
        rest[at] = _pair_bound(_subset(pc, at), t0[at], t1[at], stats, traffic=True) <= best[pair_gid[at]]
    if rest.any():
        second = _expand(gc, pc, pairs, array_stats, rest)
        chosen = _pick(gc, _survivors(gc, [found, second], best, g), g, n_tilings, m, n, k)
    return chosen



def _expand(gc: dict, pc: dict, pairs: tuple, array_stats: tuple, sel) -> dict:
    """The selected pairs (mask or slice of `pairs`) with their distinct stream tiles: per tiling its
    GEMM, candidate index, tiles, pair (index among the selected), spec and GEMM columns (`gc` per
    GEMM, `pc` per pair) and `_tile_terms`."""
    at = np.arange(len(pairs[0]))[sel]
    pair_gid, pair_rank, t0, t1 = (x[at] for x in pairs)
    streams = _stream_tiles(_subset(pc, at), t0, t1)  # (S, P)
    # Equal stream tiles of a pair (candidates coincide once clipped to the dimension: all of them
    # when it is 1) cost the same; the first, which wins their tie, is kept.
    s_count = streams.shape[0]
    keep = _distinct(streams)
    pick = np.flatnonzero(keep.T.ravel())  # (pair, stream row), pair-major
    expand, row = np.divmod(pick, s_count)
    role = pc["roles"]
    tiles = [None, None, None]
    tiles[role[0]], tiles[role[1]], tiles[role[2]] = t0[expand], t1[expand], streams.T.ravel()[pick]
    tm, tn, tk = tiles
    gid, each = pair_gid[expand], at[expand]
    cols = _subset(gc, gid)
    stats = tuple(tuple(x[each] if type(x) is np.ndarray and x.ndim else x for x in one) for one in array_stats)
    terms = _tile_terms(cols, cols["m"], cols["n"], cols["k"], cols["ba"], cols["bw"], cols["pack"], cols["passes"],
                        tm, tn, tk, stats)
    return {"gid": gid, "tiling": pair_rank[expand] * _N_STREAM + row,
            "tm": tm, "tn": tn, "tk": tk, "pair": expand, "terms": terms}


def _survivors(gc: dict, rounds: list, best, g: int) -> dict:
    """The rounds' tilings (`_expand`) that can win, as one: those that fit (all of a GEMM's when
    none does) and, given `best` (a bound of each GEMM's optimum), whose lower bound does not exceed
    it; tightened by the tilings with the least lower bound when many are left (a probe costs about
    what a few hundred candidates cost). "any_fit": (G,) whether any tiling of the GEMM fits."""
    if g == 1:
        any_fit = np.array([any(r["terms"]["feasible"].any() for r in rounds)])
    else:
        any_fit = np.zeros(g, dtype=bool)
        for r in rounds:
            np.logical_or.at(any_fit, r["gid"], r["terms"]["feasible"])
    kept = []
    for r in rounds:
        keep = r["terms"]["feasible"] | ~any_fit[r["gid"]]
        if best is not None:
            keep &= r["terms"]["lower"] <= best[r["gid"]]
        kept.append(_cut_round(r, keep))
    found = kept[0] if len(kept) == 1 else _concat(*kept)
    gid, terms = found["gid"], found["terms"]
    if best is not None and len(gid) > _PROBE_ABOVE * g:
        fits = terms["feasible"]
        probe = _lowest(np.where(fits, terms["lower"], np.inf), gid, g, _SURVIVOR_PROBES) & fits
        probed = _orders(_subset(gc, gid[probe]), _subset(terms, probe), only_total=True)["total"].min(axis=0)
        best = best.copy()
        np.minimum.at(best, gid[probe], probed * _SLACK)
        found = _cut_round(found, terms["lower"] <= best[gid])
    found["any_fit"] = any_fit
    return found


def _pick(gc: dict, found: dict, g: int, n_tilings: int, m, n, k) -> dict[str, np.ndarray]:
    """`_choose` among the survivors (`_survivors`), each costed under every loop order (`_costed`)."""
    if "cost" not in found:
        found = _costed(gc, found)
    return _choose(gc, found["cost"], found["gid"], found["tiling"], n_tilings, g,
                   m, n, k, found["tm"], found["tn"], found["tk"])


def _costed(gc: dict, found: dict) -> dict:
    """A round's tilings (`_expand`) with their `_orders` under "cost"."""
    return dict(found, cost=_orders(_subset(gc, found["gid"]), found["terms"]))


def _cut_round(found: dict, keep: np.ndarray) -> dict:
    """A round's tilings (`_expand`) restricted to `keep`."""
    keep = np.flatnonzero(keep)  # gathers by index: a mask costs each of the ~20 arrays a scan
    out = {key: found[key][keep] for key in ("gid", "tiling", "tm", "tn", "tk")}
    out["terms"] = _subset(found["terms"], keep)
    return out


def _concat(one: dict, two: dict) -> dict:
    """Two rounds' tilings as one, grouped by GEMM and in candidate order again (`_choose` needs it)."""
    order = np.lexsort((np.concatenate([one["tiling"], two["tiling"]]), np.concatenate([one["gid"], two["gid"]])))
    size = len(one["gid"])

    def join(x, y):
        if type(x) is np.ndarray and x.ndim:
            return np.concatenate([x, y])[order]
        if type(x) is tuple:
            return tuple(join(u, v) for u, v in zip(x, y))
        if type(y) is np.ndarray and y.ndim:  # a scalar in one round, per tiling in the other
            return np.concatenate([np.broadcast_to(x, (size,)), y])[order]
        return x

    out = {key: join(one[key], two[key]) for key in ("gid", "tiling", "tm", "tn", "tk")}
    out["terms"] = {key: join(value, two["terms"][key]) for key, value in one["terms"].items()}
    if "cost" in one and "cost" in two:  # (6, T) per loop order, or (T,): joined along the tilings
        out["cost"] = {key: None if value is None else np.concatenate((value, two["cost"][key]), axis=-1)[..., order]
                       for key, value in one["cost"].items()}
    return out


def _lowest(values: np.ndarray, gid: np.ndarray, g: int, count: int) -> np.ndarray:
    """Mask of each group's `count` least values (groups: equal `gid`, ascending; G > 1: ties may add
    more)."""
    if g == 1:
        low = np.zeros(len(values), dtype=bool)
        low[np.argpartition(values, count)[:count] if len(values) > count else slice(None)] = True
        return low
    # Each group's values in a row of a padded (G, most) table: one partition finds every row's
    # count-th least (ties may add a few more; the selection only steers the search).
    counts = np.bincount(gid, minlength=g)
    if counts.max() <= count:
        return np.ones(len(values), dtype=bool)
    table = np.full((g, counts.max()), np.inf)
    table[gid, np.arange(len(gid)) - np.repeat(np.cumsum(counts) - counts, counts)] = values
    return values <= np.partition(table, count - 1, axis=1)[gid, count - 1]


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
    return (_per_dim(t0, dims[role[0]], div[role[0]], c["rows"], _pad_of(c, role[0])),
            _per_dim(t1, dims[role[1]], div[role[1]], c["cols"], _pad_of(c, role[1])))


def _pair_bound(c: dict, t0, t1, array_stats, traffic: bool = False) -> np.ndarray:
    """A lower bound of the cycles of an array-tile pair under any stream tile that fits and any loop
    order: compute's fill/drain terms grow with the stream tile count, at least ⌈D/t⌉ for the largest
    stream tile t that fits (ws, is; 1 for os, whose output width depends on the stream tile); the
    stream sums to the whole dimension (⌈K/pack⌉ at least when K streams); the first and last
    transfers are at least those of a stream tile of 1. +inf when no stream tile fits. With
    `traffic`, also the DRAM bytes no loop order avoids, per stream tile (`_pair_traffic`), against
    the fills the same stream tile costs."""
    role = c["roles"]
    dims = (c["m"], c["n"], c["k"])
    div = (1.0, 1.0, c["pack"])
    (r_q, r_len, r_folds, r_used, _), (c_q, c_len, c_folds, c_used, _) = array_stats
    sd = role[2]
    stream = c["passes"] * np.ceil(dims[sd] / div[sd])
    exposure = 0.0
    room = lambda cap, unit: np.floor(cap / unit * (1.0 + 1e-9) + 1e-6)  # noqa: E731  (never below the exact one)
    k_pad = c["rows"] * c["pack"] if c["pad"] else 1.0
    n_pad = c["cols"] if c["pad"] else 1.0
    if sd != 2:
        tile = [None, None, None]
        tile[role[0]], tile[role[1]] = t0, t1
        tm, tn, tk = (1.0 if d == sd else tile[d] for d in range(3))
        k_pad_tile, n_pad_tile = np.ceil(tk / k_pad) * k_pad, np.ceil(tn / n_pad) * n_pad
        need_acc = (np.ceil(c["k"] / tk) > 1.0) | ((np.ceil(np.ceil(tk / c["pack"]) / c["rows"]) > 1.0) & c["x2_is_psum"])
        c_width = np.where(need_acc, c["psum_bytes"], c["out_bytes"])
        binds = need_acc | c["readback"]
        a_unit, b_unit, c_unit = tm * tk * (c["ba"] / 8.0), k_pad_tile * tn * (c["bw"] / 8.0), tm * n_pad_tile * c_width
        if sd == 0:  # ws: A and C grow with the M tile
            fill = np.minimum(room(c["cap_a"], a_unit), np.where(binds, room(c["cap_c"], c_unit), np.inf))
        else:  # is: B grows with the N tile; C with its padded size
            c_fill = np.floor(room(c["cap_c"], c_unit / n_pad) / n_pad) * n_pad
            fill = np.minimum(room(c["cap_b"], b_unit), np.where(binds, c_fill, np.inf))
        fits = fill >= 1.0
        t_max = _clip(fill, dims[sd])
        t_q = np.ceil(dims[sd] / t_max)
        exposure = _exposure(c, a_unit, b_unit, c_unit, tm * n_pad_tile * c["out_bytes"])
    else:  # os: K streams. Below K the outputs accumulate at psum width; a whole K may stream them out.
        tm, tn, k = t0 if role[0] == 0 else t1, t1 if role[1] == 1 else t0, c["k"]
        n_pad_tile = np.ceil(tn / n_pad) * n_pad
        fill = np.minimum(room(c["cap_a"], tm * (c["ba"] / 8.0)),
                          np.floor(room(c["cap_b"], tn * (c["bw"] / 8.0)) / k_pad) * k_pad)
        psum_fits = (tm * n_pad_tile * c["psum_bytes"] <= c["cap_c"] * (1.0 + 1e-9)) | (k <= 1.0)
        whole_fits = (fill >= k) & ((tm * n_pad_tile * c["out_bytes"] <= c["cap_c"] * (1.0 + 1e-9)) | ~c["readback"])
        fits = whole_fits | (psum_fits & (fill >= 1.0))
        t_max = np.where(whole_fits, k, _clip(fill, k))
        t_q = np.ceil(k / t_max)

    def compute(count):  # never falls as the stream's tile count grows
        if c["feed"] == "systolic":
            return r_folds * c_folds * (stream - 2.0 * count) + count * (c["skew_rows"] * c_folds * r_len
                                                                        + r_folds * c_len)
        if c["feed"] == "buffered":
            return r_folds * c_folds * stream + count * (c["skew_rows"] * r_used * c_q + c_used * r_q
                                                         - 2.0 * r_q * c_q)
        return r_folds * c_folds * stream

    if traffic and not c["per_port"]:
        # A smaller stream tile spills less but costs more fills: both at each interval's right end.
        bound = np.inf
        for r, dram in _pair_traffic(c, t0, t1, array_stats, t_q, t_max):
            bound = np.minimum(bound, np.maximum(compute(np.ceil(dims[sd] / r)) + exposure,
                                                 _traffic_cycles(c, dram, 0.0, 0.0, 0.0)))
    else:
        bound = compute(t_q) + exposure
    return np.where(fits, bound, np.inf)


def _pair_traffic(c: dict, t0, t1, array_stats, t_q, t_max) -> list:
    """A lower bound of an array-tile pair's DRAM bytes under any whole stream tile t ≤ `t_max` and
    any loop order, as (r, bytes) pairs: every t has an r ≥ t whose bytes are no more than t's.

    Per loop order, as `_orders` counts it: the operand the stream does not index is re-fetched
    ⌈D/t⌉ times across the stream loop (less as t grows) when its tile, grown as the order grows
    it, does not fit; whether it fits does not depend on t. An operand the stream indexes has a
    tile linear in t: grown by the stream loop to at least D, by its other loop to at least t·q (q
    that dimension's tile count), so it spills only above a threshold of t. Between thresholds
    every order's bytes are least at the interval's right end: r runs over the thresholds and
    `t_max`. Footprints unpadded along the stream; `t_q`: the stream's least tile count."""
    role = c["roles"]
    sd = role[2]
    dims = (c["m"], c["n"], c["k"])
    q, tile = [None, None, None], [None, None, None]
    q[role[0]], q[role[1]] = array_stats[0][0], array_stats[1][0]
    tile[role[0]], tile[role[1]] = t0, t1
    padded = [dims[0], dims[1], dims[2]]  # B's K and C's N padded where the tiles are known
    padded[role[0]], padded[role[1]] = array_stats[0][4], array_stats[1][4]
    k_pad = c["rows"] * c["pack"] if c["pad"] else 1.0
    n_pad = c["cols"] if c["pad"] else 1.0
    width_c = np.where(t_q > 1.0, c["psum_bytes"], np.minimum(c["psum_bytes"], c["out_bytes"])) if sd == 2 else \
        np.where((q[2] > 1.0) | ((np.ceil(np.ceil(tile[2] / c["pack"]) / c["rows"]) > 1.0) & c["x2_is_psum"]),
                 c["psum_bytes"], c["out_bytes"])
    width = {"a": c["ba"] / 8.0, "b": c["bw"] / 8.0, "c": width_c}
    pads = {("b", 2): k_pad, ("c", 1): n_pad}
    extent = lambda name, d: np.ceil(tile[d] / pads.get((name, d), 1.0)) * pads.get((name, d), 1.0)  # noqa: E731
    # Per operand, when it spills with its non-indexing loop innermost (never), in the middle under
    # its first own dim, under its second, and outermost (`_orders`' options 0-3): for a stream tile
    # r above `levels` (-inf: always, +inf: never; for an operand the stream indexes under its other
    # dim, a threshold of r).
    levels = np.empty((3, 4) + np.shape(t0))
    levels[:, 0] = np.inf
    above = []
    for i, (name, own) in enumerate(_OPERAND_DIMS.items()):
        room = {"a": c["cap_a"], "b": c["cap_b"], "c": c["cap_c"]}[name] * (1.0 + 1e-9)  # rounding: never above
        if sd in own:
            other = own[0] if own[1] == sd else own[1]
            per_t = extent(name, other) * width[name]
            threshold = np.floor(room / (per_t * q[other]))
            along_stream = np.where(dims[sd] * per_t > room, -np.inf, np.inf)
            levels[i, 1], levels[i, 2] = (along_stream, threshold) if own[0] == sd else (threshold, along_stream)
            levels[i, 3] = np.where(dims[sd] * per_t * q[other] > room, -np.inf, np.inf)
            above.append(threshold)
        else:
            unit = extent(name, own[0]) * extent(name, own[1]) * width[name]
            for j, grown in enumerate((unit * q[own[0]], unit * q[own[1]], unit * q[own[0]] * q[own[1]])):
                levels[i, j + 1] = np.where(grown > room, -np.inf, np.inf)
    totals = [dims[0] * dims[2] * (c["ba"] / 8.0), padded[2] * dims[1] * (c["bw"] / 8.0)]
    mn_out = dims[0] * padded[1]
    out_total = mn_out * c["out_bytes"]
    if c["readback"]:
        c_once = 2.0 * out_total
        totals.append(c_once)
    else:
        c_once = out_total
        totals.append(mn_out * c["psum_bytes"] * (1.0 if c["write_every_fold"] else 2.0))
    once = totals[0] + totals[1] + c_once
    out = []
    for r in [_clip(x, t_max) for x in above] + [t_max]:
        q[sd] = np.ceil(dims[sd] / r)
        spills = (r > levels)[_OPERAND_ROWS, _ORDER_OPTION]  # (3, 6, P): per operand and loop order
        dram = once + (totals[0] * (q[1] - 1.0)) * spills[0]
        dram = dram + (totals[1] * (q[0] - 1.0)) * spills[1]
        dram = dram + (totals[2] * (q[2] - 1.0)) * spills[2]
        out.append((r, dram.min(axis=0)))
    return out


def _exposure(c: dict, a_tile, b_tile, c_tile, last):
    """Cycles no loop order hides: the first input tiles and the last output tile (each operand's
    kept footprint is at least its tile)."""
    bandwidth = c["bandwidth"]
    c_first = c_tile if c["readback"] else 0.0
    if c["stall_model"] == "bitfusion":
        return np.ceil((a_tile + b_tile + c_first) / bandwidth) + np.ceil(c_tile / bandwidth)
    if c["per_port"]:
        return (np.maximum(np.maximum(a_tile, b_tile), c_first) + last) / bandwidth
    return (a_tile + b_tile + c_first + last) / bandwidth


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


def _traffic_cycles(c: dict, dram, compute, first, last):
    """Cycles at least, given `dram` bytes at least and the first and last transfers at least: the
    transfers between the first and the last overlap compute at best (every stall model); the
    shared port moves all bytes. The per-operand ports are left to the compute bound."""
    if c["per_port"]:
        return 0.0
    bandwidth = c["bandwidth"]
    return np.maximum(dram / bandwidth, compute + (first + last) / bandwidth) * (1.0 - 1e-12)


def _subset(values: dict, sel: np.ndarray) -> dict:
    """Per-candidate arrays (also inside nested tuples of them) restricted to `sel`; scalars as they are.
    A dict from `_columns` lists its arrays under "_arrays" (the spec's scalars need no look)."""
    out = dict(values)
    for key in values.get("_arrays", values):
        v = values[key]
        if type(v) is np.ndarray:
            if v.ndim:
                out[key] = v[sel]
        elif type(v) is tuple:
            out[key] = _cut_tuple(v, sel)
    return out


def _cut_tuple(values: tuple, sel: np.ndarray) -> tuple:
    return tuple(x[sel] if type(x) is np.ndarray and x.ndim else _cut_tuple(x, sel) if type(x) is tuple else x
                 for x in values)


def _columns(c: dict, m, n, k, ba, bw, pack, passes, mac_scale) -> dict:
    """The spec values and GEMM numbers per GEMM: one GEMM's as scalars (they broadcast for free),
    several GEMMs' as (G,) arrays. "_arrays" names the per-GEMM arrays (`_subset` gathers them)."""
    col = dict(c, m=m, n=n, k=k, ba=ba, bw=bw, pack=pack, passes=passes, mac_scale=mac_scale)
    if len(m) == 1:
        col = {key: (v[0] if type(v) is np.ndarray and v.ndim else v) for key, v in col.items()}
        col["_arrays"] = ()
        col["_rooms"] = np.array([[col["cap_a"]], [col["cap_b"]], [col["cap_c"]]], dtype=float)  # `_orders`'
        return col
    # The energy constants are read per candidate only under the energy objectives: not gathered else.
    unused = () if c["objective"] in ("energy", "edp") else _ENERGY_KEYS
    col["_arrays"] = tuple(key for key, v in col.items() if type(v) is np.ndarray and v.ndim and key not in unused)
    if not any(np.ndim(c[key]) for key in ("cap_a", "cap_b", "cap_c")):  # `_orders`' buffer sizes, stacked
        col["_rooms"] = np.array([[c["cap_a"]], [c["cap_b"]], [c["cap_c"]]], dtype=float)
    return col


_ENERGY_KEYS = ("mac_pj", "sram_pj", "dram_pj", "static_pj", "mac_scale")


def _pairs(c: dict, dims: tuple, ba, bw, pack):
    """Every GEMM's candidate pairs of array tiles that fit the stationary operand's buffer, flat and
    grouped by GEMM: (gid, rank among the GEMM's pairs, row tile, column tile, pairs per GEMM at most)."""
    g = len(dims[0])
    rows, cols = c["rows"], c["cols"]
    ones = np.ones_like(dims[0])
    role = c["roles"]
    pad_of = (ones, cols * ones if c["pad"] else ones, rows * pack if c["pad"] else ones)
    bytes_a, bytes_b = ba / 8.0, bw / 8.0
    # The operand indexed by both array dims (ws: B, os: C, is: A) fills its buffer at this size of
    # one of them when the other is whole.
    # Fill sizes are taken at the spec's widest operands (and, for the stream, half and a quarter of
    # that): the candidates then do not depend on the bits, so narrower operands keep every schedule.
    wide = c["max_bits"] / 8.0
    stationary = {"ws": ("b", wide), "os": ("c", c["psum_bytes"]), "is": ("a", wide)}[c["dataflow"]]
    room = {"a": c["cap_a"], "b": c["cap_b"], "c": c["cap_c"]}[stationary[0]]
    whole_padded = [dims[0], np.ceil(dims[1] / pad_of[1]) * pad_of[1], np.ceil(dims[2] / pad_of[2]) * pad_of[2]]
    widths = (stationary[1],) if stationary[0] == "c" else (wide, wide / 2.0, wide / 4.0)
    def fills(whole, w):  # (W, G): the fill size at each width w
        return np.floor(room / (whole * np.array(w, dtype=float).reshape(len(w), -1 if len(w) else 1)))
    fill0, fill1 = fills(whole_padded[role[1]], widths), fills(whole_padded[role[0]], widths)
    if len(widths) == 1:
        fill0, fill1 = np.repeat(fill0, 3, axis=0), np.repeat(fill1, 3, axis=0)
    # More fills, their balanced splits only: the stationary operand's at every other width the spec
    # has (a GEMM's own bits then find the tile count that just fits; still independent of them), and
    # the output's along the array dim it shares with the stream (ws: N, is: M; on the columns) given
    # the stream whole, in 2 to 8 (`_STREAM_BALANCED`) and at the small stream tiles 1, 4, 16, 64
    # (`_STREAM_POWERS`; where the output is the binding buffer the best tiles trade the two off along
    # its fill curve), at partial-sum width (and at output width when outputs are read back: then they
    # bind the buffer without accumulating).
    more0 = more1 = np.empty((0, g))
    if stationary[0] != "c":
        other = _other_widths(c, widths)
        more0, more1 = fills(whole_padded[role[1]], other), fills(whole_padded[role[0]], other)
        stream = dims[role[2]]
        per_line = np.concatenate([np.ceil(stream / _STREAM_BALANCED_COL), np.minimum(_STREAM_POWERS_COL, stream)])
        if role[2] == 1:  # the stream is N (is): its tiles are stored padded
            per_line = np.ceil(per_line / pad_of[1]) * pad_of[1]
        out_widths = np.array([c["psum_bytes"], c["out_bytes"]] if c["readback"] else [c["psum_bytes"]])
        size = np.floor(c["cap_c"] / (per_line[:, None, :] * out_widths.reshape(len(out_widths), -1)[None]))
        if role[1] == 1:  # N on the columns (ws): padded too
            size = np.floor(size / pad_of[1]) * pad_of[1]
        # Last (ties keep going to the earlier candidates), the stationary fills at twice and four times
        # every width above: fill(2C, 2w) = fill(C, w), so a spec with 2× or 4× that buffer keeps every
        # fill the smaller one takes at those widths (issue 20: more SRAM should not cost more cycles;
        # found: bitserial 2433×1431×874 with twice the ifmap SRAM lost the 5-bit fill's M = 58).
        scaled = _scaled_widths(widths + other)
        more0 = np.concatenate([more0, fills(whole_padded[role[1]], scaled)])
        more1 = np.concatenate([more1, size.reshape(-1, g), fills(whole_padded[role[0]], scaled)])
    sizes0 = _array_sizes(dims[role[0]], fill0, rows, more0)
    sizes1 = _array_sizes(dims[role[1]], fill1, cols, more1)
    # Keep the pairs of array tiles worth costing: distinct sizes (candidates coincide once clipped to
    # the dimension) whose stationary-operand tile fits its buffer.
    keep = _distinct(sizes0)[:, None, :] & _distinct(sizes1)[None, :, :]
    if c["dataflow"] != "os":
        k_pad = lambda t: np.ceil(t / pad_of[2]) * pad_of[2]  # noqa: E731
        if c["dataflow"] == "ws":  # rows K, cols N: B
            stat_tile = k_pad(sizes0)[:, None, :] * sizes1[None, :, :] * bytes_b
            keep = keep & (stat_tile <= c["cap_b"])
        else:  # is: rows K, cols M: A
            stat_tile = sizes0[:, None, :] * sizes1[None, :, :] * bytes_a
            keep = keep & (stat_tile <= c["cap_a"])
    if g == 1:  # the same, without the GEMM axis
        i0, i1 = np.nonzero(keep[:, :, 0])
        return np.zeros(len(i0), dtype=np.int64), np.arange(len(i0)), sizes0[i0, 0], sizes1[i1, 0], \
            sizes0.shape[0] * sizes1.shape[0]
    keep = keep.reshape(-1, g)
    pair_idx, pair_gid = np.nonzero(keep.T)[::-1]
    counts = np.bincount(pair_gid, minlength=g)
    pair_rank = np.arange(len(pair_gid)) - np.repeat(np.cumsum(counts) - counts, counts)
    t0 = sizes0[pair_idx // sizes1.shape[0], pair_gid]
    t1 = sizes1[pair_idx % sizes1.shape[0], pair_gid]
    return pair_gid, pair_rank, t0, t1, sizes0.shape[0] * sizes1.shape[0]


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
    padded_n = np.ceil(others[1] / pad_of[1]) * pad_of[1]
    padded_k = np.ceil(others[2] / pad_of[2]) * pad_of[2]
    # The output tile binds only as the feasibility test below binds it: at psum width while it
    # accumulates across K tiles or K folds, at output width when read back, not at all when it
    # streams out. A streamed K (os) accumulates across its own tiles: psum width.
    if sd == 2:
        acc_width, out_binds = c["psum_bytes"], True
    else:
        k_tiles = np.ceil(k / others[2])
        k_folds = np.ceil(np.ceil(others[2] / pack) / rows)
        accumulates = (k_tiles > 1.0) | ((k_folds > 1.0) & c["x2_is_psum"])
        acc_width = np.where(accumulates, c["psum_bytes"], c["out_bytes"])
        out_binds = accumulates | c["readback"]
    cap = {"a": c["cap_a"], "b": c["cap_b"], "c": c["cap_c"]}
    # The widest, half and quarter width, then the spec's other bit counts (balanced splits only).
    widths = [wide, wide / 2.0, wide / 4.0]
    widths += list(_other_widths(c, widths))
    width = np.array(widths).reshape(-1, 1) if np.ndim(wide) == 0 else np.stack(np.broadcast_arrays(*widths))
    per_unit = {"a": others[0] * others[2] * width, "b": padded_k * others[1] * width,
                "c": others[0] * padded_n * acc_width}
    fill = np.inf
    for name, own in _OPERAND_DIMS.items():
        if sd in own:
            own_fill = np.floor(cap[name] / per_unit[name])
            fill = np.minimum(fill, np.where(out_binds, own_fill, np.inf) if name == "c" else own_fill)
    return _stream_sizes(dims[sd], fill + np.zeros((len(widths),) + np.shape(t0)))


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
    stats[role[2]] = _per_dim((tm, tn, tk)[role[2]], dims[role[2]], pack if role[2] == 2 else 1.0, None,
                              _pad_of(c, role[2]))
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
        compute = (r_folds * c_folds * stream + t_q * (skew * r_used * c_q + c_used * r_q - 2.0 * r_q * c_q))
    else:
        compute = r_folds * c_folds * stream
    # Bytes. Tiles at their full size (a tile must fit whole); totals from the per-dim sums.
    k_pad_tile = np.ceil(tk / pad_of[2]) * pad_of[2]
    n_pad_tile = np.ceil(tn / pad_of[1]) * pad_of[1]
    a_tile = tm * tk * bytes_a
    b_tile = k_pad_tile * tn * bytes_b
    k_folds_in_tile = np.ceil(np.ceil(tk / pack) / rows)
    need_acc = (q[2] > 1.0) | ((k_folds_in_tile > 1.0) & c["x2_is_psum"])
    c_width = np.where(need_acc, c["psum_bytes"], c["out_bytes"])
    c_tile = tm * n_pad_tile * c_width
    feasible = (a_tile <= c["cap_a"]) & (b_tile <= c["cap_b"])
    feasible = feasible & ((c_tile <= c["cap_c"]) | ~(need_acc | c["readback"]))
    last = tm * n_pad_tile * c["out_bytes"]
    lower = compute + _exposure(c, a_tile, b_tile, c_tile, last)
    if _PRUNE:
        # No order keeps every operand on chip: what the cheapest one must re-fetch bounds the traffic.
        refetch = (q[1], q[0], q[2])  # each operand's non-indexing loop: A n, B m, C k
        spills = (a_tile * np.minimum(q[0], q[2]) > c["cap_a"], b_tile * np.minimum(q[2], q[1]) > c["cap_b"],
                  c_tile * np.minimum(q[0], q[1]) > c["cap_c"])
        dram = _dram_floor(c, m * k * (ba / 8.0), stats[2][4] * n * (bw / 8.0), m * stats[1][4], refetch, spills)
        lower = np.maximum(lower, _traffic_cycles(c, dram, compute, 0.0, 0.0))
    return dict(compute=compute, feasible=feasible, a_tile=a_tile, b_tile=b_tile, c_tile=c_tile, last=last,
                q=tuple(q), r_folds=r_folds, c_folds=c_folds, t_q=t_q, k_pad_total=stats[2][4],
                n_pad_total=stats[1][4], lower=lower)


def _orders(c: dict, terms: dict, only_total: bool = False) -> dict[str, np.ndarray]:
    """Total, DRAM bytes, energy, reads and writes of each tiling (`_tile_terms`; per-candidate
    values in `c`) under each loop order, (6, T); with `only_total` just the totals."""
    compute, q = terms["compute"], terms["q"]
    a_tile, b_tile, c_tile, last = terms["a_tile"], terms["b_tile"], terms["c_tile"], terms["last"]
    m, n, k = c["m"], c["n"], c["k"]
    a_total, b_total = m * k * (c["ba"] / 8.0), terms["k_pad_total"] * n * (c["bw"] / 8.0)
    mn_out = m * terms["n_pad_total"]
    out_total = mn_out * c["out_bytes"]
    need_top = c["stall_model"] == "bitfusion"
    shape = np.shape(compute)
    # An operand's re-fetch factor depends only on where its non-indexing loop e sits: innermost,
    # never (the tile stays); in the middle, when its tile grown by the inner loop does not fit;
    # outermost, when all of it does not fit. Its largest kept footprint (Bit Fusion's exposed
    # transfer) depends only on the order of its own two loops. All six orders at once: each factor
    # (and kept footprint) is one of a few per-tiling values, picked per order by `_ORDER_PICK`.
    tiles, counts = np.empty((3,) + shape), np.empty((3,) + shape)  # per operand a, b, c; per dim m, n, k
    tiles[0], tiles[1], tiles[2] = a_tile, b_tile, c_tile
    counts[0], counts[1], counts[2] = q
    room = c.get("_rooms")
    if room is None:
        room = np.stack(np.broadcast_arrays(c["cap_a"], c["cap_b"], c["cap_c"]))
        room = room[:, None] if room.ndim == 1 else room
    grown0, grown1 = tiles * counts[_OWN_FIRST], tiles * counts[_OWN_SECOND]
    whole = grown0 * counts[_OWN_SECOND]
    refetch = counts[_ACROSS] - 1.0
    options = np.empty((3, 4) + shape)
    options[:, 0] = 1.0
    options[:, 1] = 1.0 + refetch * (grown0 > room)
    options[:, 2] = 1.0 + refetch * (grown1 > room)
    options[:, 3] = 1.0 + refetch * (whole > room)
    factor = dict(zip("abc", options[_OPERAND_ROWS, _ORDER_OPTION]))  # each (6, T)
    if need_top:
        kept = np.empty((3, 2) + shape)
        kept[:, 0] = np.where(whole <= room, whole, np.where(grown0 <= room, grown0, tiles))
        kept[:, 1] = np.where(whole <= room, whole, np.where(grown1 <= room, grown1, tiles))
        maxfoot = dict(zip("abc", kept[_OPERAND_ROWS, _ORDER_TOP]))
    read_a, read_b = a_total * factor["a"], b_total * factor["b"]
    rounds = factor["c"]
    if c["readback"]:  # every output tile is read before accumulating and written after
        c_write = c_read = rounds * out_total
    else:
        spill = (rounds - 1.0) * mn_out * c["psum_bytes"]
        c_write = out_total + spill
        c_read = 0.0 * spill if c["write_every_fold"] else spill
    read = read_a + read_b + c_read
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
            first = a_tile + b_tile + c_first
            reads, writes = (read - first) / per_gap, (write - last) / per_gap
            both = reads + writes
        total = ((first + last) / bandwidth + np.where(
            tiles > 1.0, np.maximum(step, reads) + np.maximum(step, writes) + (tiles - 2.0) * np.maximum(step, both),
            compute))
    if only_total:
        return {"total": total}
    # Array-side SRAM reads (X1 once per column fold, X2 once per row fold (partial sums: read and
    # write), the stationary operand once per stream tile) plus outputs, order-independent.
    x2_f = 2.0 * mn_out * c["psum_bytes"] if c["x2_is_psum"] else (b_total if c["x1"] == "a" else a_total)
    x1_total = a_total if c["x1"] == "a" else b_total
    stat_total = 0.0 if not c["x2_is_psum"] else (b_total if c["x1"] == "a" else a_total)
    sram_array = x1_total * terms["c_folds"] + x2_f * terms["r_folds"] + stat_total * terms["t_q"] + out_total
    if c["objective"] in ("energy", "edp"):  # only these objectives need it per candidate
        if c["array_energy"] == "per_cycle":
            mac_energy = compute * c["rows"] * c["cols"] * c["mac_pj"]
        else:
            mac_energy = m * n * k * c["mac_pj"] * c["mac_scale"]
        energy = mac_energy + (sram_array + dram) * c["sram_pj"] + dram * c["dram_pj"] + total * c["static_pj"]
    else:
        energy = None
    return {"compute": compute, "feasible": terms["feasible"], "sram_array": sram_array,
            "total": total, "dram": dram, "energy": energy, "read": read, "write": write}


def _order_pick() -> dict:
    """Per operand, which of (1, mid for its first own dim inner, mid for its second, outer) each loop
    order picks as its re-fetch factor, and which own dim's kept footprint: an operand is re-fetched
    across its non-indexing loop e never when e is innermost, per the inner of its own two loops
    when e is in the middle, and when all of it does not fit when e is outermost."""
    pick = {}
    for name, own in _OPERAND_DIMS.items():
        e = 3 - own[0] - own[1]
        rows, tops = [], []
        for order in LOOP_ORDERS:
            pos = [order.index(letter) for letter in "mnk"]  # 0 = outermost
            first_inner = pos[own[0]] > pos[own[1]]
            rows.append(0 if pos[e] == 2 else ((1 if first_inner else 2) if pos[e] == 1 else 3))
            tops.append(0 if first_inner else 1)
        pick[name] = (np.array(rows), np.array(tops))
    return pick


_ORDER_PICK = _order_pick()
# The same for the operands a, b, c stacked (`_orders`): their own dims, the dim that does not index
# them, and per operand and loop order which option and kept footprint applies.
_OWN_FIRST, _OWN_SECOND = (np.array([_OPERAND_DIMS[name][j] for name in "abc"]) for j in (0, 1))
_ACROSS = np.array([3 - sum(_OPERAND_DIMS[name]) for name in "abc"])
_OPERAND_ROWS = np.arange(3)[:, None]
_ORDER_OPTION, _ORDER_TOP = (np.stack([_ORDER_PICK[name][j] for name in "abc"]) for j in (0, 1))


def _choose(c: dict, cost: dict, gid, tiling, n_tilings: int, g: int, m, n, k, tm, tn, tk) -> dict[str, np.ndarray]:
    """The best candidate of each GEMM under the objective: the least first key, then the least
    second key, then the lowest (loop order, tiling) index. Candidates come grouped by GEMM (`gid`
    ascending, `tiling` ascending within a GEMM)."""
    fits = cost["feasible"]
    if g == 1:
        ok = fits | (not fits.any())
    else:
        any_fit = np.zeros(g, dtype=bool)
        np.logical_or.at(any_fit, gid, fits)
        ok = fits | ~any_fit[gid]  # nothing fits: stream from DRAM anyway (costed as is)
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
    first_key = np.where(ok, first_key, np.inf)
    if g == 1:  # flat (loop order, tiling) order: the first tied candidate has the lowest index
        first_key, second_key = first_key.ravel(), second_key.ravel()
        tied = first_key == first_key.min()
        tied &= second_key == np.where(tied, second_key, np.inf).min()
        order_i, at = np.divmod(np.array([tied.argmax()]), len(cost["feasible"]))
    else:
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
    chosen["sram"] = cost["sram_array"][at] + chosen["read"] + chosen["write"]
    chosen["tiles"] = (np.ceil(m / chosen["tile_m"]) * np.ceil(n / chosen["tile_n"]) * np.ceil(k / chosen["tile_k"]))
    return chosen


# Spec values the mapper reads: numeric ones may be (G,) arrays (the many-spec path, `_spec_batch`).
_NUMERIC_KEYS = ("rows", "cols", "cap_a", "cap_b", "cap_c", "bandwidth", "out_bytes", "psum_bytes", "mac_pj",
                 "sram_pj", "dram_pj", "static_pj")
_MEMO: dict = {}  # (categorical + scalar spec values) -> {(m, n, k, ba, bw, array spec values...): result row}
# Rows held, at most, in one memo and in all (≈ 0.7-1.2 kB each, so ≈ 2 GB): a sweep with continuous
# fractions maps new GEMMs at every step, and a memo that is never cut only grows. Large enough for a
# full co-exploration's repeats: 7,222 hardware points × ≈ 25 GEMMs × the ≈ 9 M each block's grid gives.
_MEMO_LIMIT = 1 << 21


def spec_values(spec: Any, roles: Any) -> dict:
    """What `map_tiles` needs from a spec (an `AcceleratorSpec`, or `_spec_batch`'s column look-alike)
    whose dataflow assigns the GEMM dimensions and operands as `roles` (`_gemm.DATAFLOW_ROLES`)."""
    dim = "mnk".index
    return {
        "rows": spec.rows, "cols": spec.cols, "cap_a": spec.sram_ifmap_kib * 512.0,
        "cap_b": spec.sram_filter_kib * 512.0, "cap_c": spec.sram_ofmap_kib * 512.0,
        "bandwidth": spec.dram_bytes_per_cycle, "out_bytes": spec.output_bits / 8.0, "psum_bytes": spec.psum_bits / 8.0,
        "mac_pj": spec.mac_8x8_energy_pj, "sram_pj": spec.sram_byte_energy_pj, "dram_pj": spec.dram_byte_energy_pj,
        "static_pj": spec.static_power_mw * spec.cycle_ns,
        "roles": (dim(roles.rows), dim(roles.cols), dim(roles.stream)), "skew_rows": roles.skew_rows,
        "dataflow": spec.dataflow, "min_bits": spec.min_bits, "max_bits": spec.max_bits,
        "feed": spec.array_feed, "pad": spec.pad_to_array, "x2_is_psum": roles.x2 == "psum",
        "x1": "a" if roles.x1 == "ifmap" else "b", "readback": spec.output_readback,
        "write_every_fold": spec.psum_policy == "write_every_fold", "stall_model": spec.stall_model,
        "per_port": spec.dram_ports == "per_operand", "array_energy": spec.array_energy,
        "objective": spec.mapper_objective,
    }


MAPPED_FIELDS = TILE_RESULT_FIELDS + ("pack", "passes", "mac_scale")


def _memo_of(spec: Any, roles: Any) -> tuple[dict, list, dict]:
    """The spec's mapper values, which of them are per-GEMM arrays, and the memo of its mappings."""
    cached = spec.__dict__.get("_mapper_values")  # a cache on the frozen spec: not a field, never compared
    if cached is None or cached[0] is not roles:
        values = spec_values(spec, roles)
        array_keys = [key for key in _NUMERIC_KEYS if np.ndim(values[key])]
        fixed = tuple((key, float(values[key])) for key in _NUMERIC_KEYS if key not in array_keys)
        fixed += tuple((key, values[key]) for key in values if key not in _NUMERIC_KEYS)
        fixed += ((spec.precision_model, spec.min_bits, spec.max_bits, spec.serial_operands),)
        cached = (roles, values, array_keys, fixed)
        if not array_keys:  # a column look-alike (`_spec_batch`) changes with its rows: not cached
            spec.__dict__["_mapper_values"] = cached
    _, values, array_keys, fixed = cached
    memo = _MEMO.get(fixed)
    if memo is None:
        if sum(len(v) for v in _MEMO.values()) > _MEMO_LIMIT:
            _MEMO.clear()
        memo = _MEMO[fixed] = {}
    return values, array_keys, memo


def _map_missing(spec: Any, model: Any, values: dict, array_keys: list, memo: dict, todo: list) -> None:
    """Map the distinct GEMMs `todo` ((m, n, k, ba, bw, array spec values...) tuples) in one
    evaluation and memoize their `MAPPED_FIELDS` rows."""
    if len(memo) + len(todo) > _MEMO_LIMIT:
        memo.clear()
    miss = np.array(todo, dtype=np.float64).reshape(len(todo), -1)
    mm, nn, kk, aa, ww = (miss[:, j] for j in range(5))
    cols = {key: (miss[:, 5 + array_keys.index(key)] if key in array_keys else values[key]) for key in values}
    if len(todo) == 1:  # one GEMM (`mapped_one`): its bits' constants from the cache, its row without numpy
        pack, passes, scale = (np.array([x]) for x in _bit_constants(spec, model, todo[0][3], todo[0][4]))
    else:
        pack, passes, scale = _bit_columns(spec, model, aa, ww)
    busy = mm * nn * kk > 0
    result = map_tiles(cols, np.maximum(mm, 1.0), np.maximum(nn, 1.0), np.maximum(kk, 1.0), aa, ww, pack, passes, scale)
    if len(todo) == 1:
        row = [float(result[key][0]) for key in TILE_RESULT_FIELDS] + [float(x[0]) for x in (pack, passes, scale)]
        if not busy[0]:
            row = [0.0] * len(TILE_RESULT_FIELDS) + [1.0] + row[-2:]
        memo[todo[0]] = tuple(row)
        return
    found = np.column_stack([np.where(busy, result[key], 0.0) for key in TILE_RESULT_FIELDS]
                            + [np.where(busy, pack, 1.0), passes, scale])
    memo.update(zip(todo, map(tuple, found.tolist())))


def _bit_columns(spec: Any, model: Any, aa: np.ndarray, ww: np.ndarray) -> tuple:
    """Per GEMM: the precision model's reduction pack, serial passes and MAC energy scale."""
    pack = np.broadcast_to(model.reduction_pack(aa, ww, spec.min_bits, spec.max_bits), aa.shape).astype(float)
    passes = np.broadcast_to(model.serial_passes(aa, ww, spec.serial_operands), aa.shape).astype(float)
    scale = np.broadcast_to(model.mac_energy_scale(aa, ww, spec.min_bits, spec.max_bits, spec.serial_operands,
                                                   pack), aa.shape).astype(float)
    return pack, passes, scale


_BIT_CONSTANTS: dict = {}  # (model, spec's bit range and serial operands, ba, bw) -> `_bit_columns` of one GEMM


def _bit_constants(spec: Any, model: Any, ba: float, bw: float) -> tuple:
    key = (model, spec.min_bits, spec.max_bits, spec.serial_operands, ba, bw)
    found = _BIT_CONSTANTS.get(key)
    if found is None:
        found = _BIT_CONSTANTS[key] = tuple(float(x[0]) for x in _bit_columns(spec, model, np.array([ba]),
                                                                                np.array([bw])))
    return found


def mapped(spec: Any, model: Any, roles: Any, m: np.ndarray, n, k, ba, bw) -> dict[str, np.ndarray]:
    """`MAPPED_FIELDS` of G GEMMs (float arrays (G,), m integral), memoized per (spec values, shape,
    bits): each distinct GEMM is mapped once per process."""
    values, array_keys, memo = _memo_of(spec, roles)
    g = len(m)
    table = np.column_stack([m, n, k, ba, bw] + [np.broadcast_to(values[key], (g,)) for key in array_keys])
    if g > 64:  # batches repeat GEMMs: look each distinct one up once (one lexsort, no Python per row)
        table, inverse = unique_rows(table)
    else:
        inverse = None
    keys = list(map(tuple, table.tolist()))
    rows = [memo.get(key) for key in keys]
    if None in rows:  # map each distinct missing GEMM once, all of them in one evaluation
        _map_missing(spec, model, values, array_keys, memo,
                     list(dict.fromkeys(key for key, row in zip(keys, rows) if row is None)))
        rows = [memo[key] if row is None else row for key, row in zip(keys, rows)]
    stacked = np.array(rows, dtype=np.float64).reshape(len(keys), -1)
    if inverse is not None:
        stacked = stacked[inverse]
    return {name: stacked[:, j] for j, name in enumerate(MAPPED_FIELDS)}


def mapped_one(spec: Any, model: Any, roles: Any, m: float, n: float, k: float, ba: float, bw: float) -> tuple:
    """`mapped` of one GEMM given as Python floats: its `MAPPED_FIELDS` as a tuple of floats."""
    values, array_keys, memo = _memo_of(spec, roles)
    key = (m, n, k, ba, bw)
    row = memo.get(key)
    if row is None:
        _map_missing(spec, model, values, array_keys, memo, [key])
        row = memo[key]
    return row


def cost_tilings(spec: Any, model: Any, roles: Any, m: float, n: float, k: float, ba: float, bw: float,
                 tm: np.ndarray, tn: np.ndarray, tk: np.ndarray) -> dict[str, float]:
    """The best of the given tilings (1-D arrays) of one GEMM that fit its buffers, under every loop
    order, chosen as the mapper chooses (objective, ties); total = inf when none fits. An outside
    search over any tiling set to hold the mapper's candidates against (`tests/test_sim_mapper.py`)."""
    c = spec_values(spec, roles)
    one = lambda x: np.array([float(x)])  # noqa: E731
    pack = np.broadcast_to(model.reduction_pack(one(ba), one(bw), spec.min_bits, spec.max_bits), (1,)).astype(float)
    passes = np.broadcast_to(model.serial_passes(one(ba), one(bw), spec.serial_operands), (1,)).astype(float)
    scale = np.broadcast_to(model.mac_energy_scale(one(ba), one(bw), spec.min_bits, spec.max_bits,
                                                   spec.serial_operands, pack), (1,)).astype(float)
    tm, tn, tk = (np.minimum(np.asarray(t, dtype=float), d) for t, d in ((tm, m), (tn, n), (tk, k)))
    gid = np.zeros(len(tm), dtype=np.int64)
    col = _columns(c, one(m), one(n), one(k), one(ba), one(bw), pack, passes, scale)
    terms = _tile_terms(col, col["m"], col["n"], col["k"], col["ba"], col["bw"], col["pack"], col["passes"], tm, tn, tk)
    fits = terms["feasible"]
    if not fits.any():
        return {key: (np.inf if key == "total" else np.nan) for key in TILE_RESULT_FIELDS}
    col, terms = _subset(col, fits), _subset(terms, fits)
    tm, tn, tk, gid = tm[fits], tn[fits], tk[fits], gid[fits]
    chosen = _choose(col, _orders(col, terms), gid, np.arange(len(tm)), len(tm), 1, one(m), one(n), one(k),
                     tm, tn, tk)
    return {key: float(v[0]) for key, v in chosen.items()}


def unique_rows(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a (A, c) float table and each row's index among them.

    One lexsort over the columns; several times faster than `np.unique(axis=0)`, which sorts
    rows as structured records. The distinct rows come out in lexicographic order as there."""
    order = np.lexsort(key.T[::-1])
    ordered = key[order]
    starts = np.empty(len(key), dtype=bool)
    starts[0] = True
    np.any(ordered[1:] != ordered[:-1], axis=1, out=starts[1:])
    inverse = np.empty(len(key), dtype=np.int64)
    inverse[order] = np.cumsum(starts) - 1
    return ordered[starts], inverse
