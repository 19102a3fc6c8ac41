"""The tile mapper: for each GEMM, the tile sizes of M, N and K and the loop order over the tiles.

A schedule cuts the (M×K)·(K×N) GEMM into tiles tm×tn×tk that fit half of their SRAMs (double
buffering) and walks them in one of the six loop orders. `_mapper_candidates` proposes the
tilings, `_mapper_costs` costs one with closed forms, `_mapper_bounds` bounds a pair of array
tiles; this module searches them and memoizes the choice per (spec, shape, bits).

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
from typing import Any

import numpy as np

from mixaq.simulator._mapper_bounds import _pair_bound
from mixaq.simulator._mapper_candidates import _N_ARRAY, _N_STREAM, _distinct, _pairs, _stream_tiles
from mixaq.simulator._mapper_costs import LOOP_ORDERS, _array_stats, _choose, _orders, _tile_terms, _any_per_gemm

__all__ = ["LOOP_ORDERS", "MAPPED_FIELDS", "TILE_RESULT_FIELDS", "cost_tilings", "map_tiles", "mapped", "mapped_one",
           "spec_values", "unique_rows"]

TILE_RESULT_FIELDS = ("compute", "total", "read", "write", "sram", "tile_m", "tile_n", "tile_k", "loop_order",
                      "tiles")
_FIRST_PAIRS = 48  # array-tile pairs per GEMM expanded in the first round: usually every one that can win
_PROBES = 64  # ... of whose tilings those with the least lower bound are costed first (branch and bound)
_SURVIVOR_PROBES = 8  # in a second round, the tilings per GEMM with the least lower bound costed first
_PROBE_ABOVE = 256  # ... when more than this many tilings per GEMM are left
_PRUNE = True  # branch and bound on; the tests turn it off to check it changes no choice
_SLACK = 1.0 + 1e-9  # an incumbent's total, raised past the rounding of bounds summed in another order
_CHUNK_CANDIDATES = 1 << 20  # array-tile pair grid cells × GEMMs per evaluation slice (≈ 8 MB per grid)


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
    gc = _columns(c, m, n, k, ba, bw, pack, passes, mac_scale)
    pair_gid, pair_rank, t0, t1, n_pairs = _pairs(gc, (m, n, k), ba, bw, pack)
    n_tilings = n_pairs * _N_STREAM
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
    any_fit = _any_per_gemm(gid, fits, g)
    if any_fit.all():
        probe = _lowest(np.where(fits, lower, np.inf), gid, g, _PROBES) & fits
        tried = _costed(gc, _cut_round(found, probe))
        chosen = _pick(gc, tried, g, n_tilings, m, n, k)
        incumbent = chosen["total"] * _SLACK  # one GEMM's a float
        beyond = fits & ~probe & (lower <= (incumbent if g == 1 else incumbent[gid]))
        if beyond.any():
            more = _costed(gc, _cut_round(found, beyond))
            if g == 1:  # the better of the two choices, as `_choose` orders one set: no merge needed
                chosen = _better(chosen, _pick(gc, more, g, n_tilings, m, n, k))
            else:
                chosen = _pick(gc, _concat(tried, more), g, n_tilings, m, n, k)
    else:  # a GEMM none of whose tilings fits keeps them all (costed as they are)
        chosen = _pick(gc, _survivors(gc, [found], np.full(g, np.inf), g), g, n_tilings, m, n, k)
    # The first round's optimum (where something fits) bounds the rest: usually nothing is left.
    best = np.where(any_fit, chosen["total"] * _SLACK, np.inf)
    rest = ~first & (bound <= best[pair_gid])
    if rest.any():  # the traffic no order avoids bounds these pairs too (worth it for the few left)
        at = np.flatnonzero(rest)
        rest[at] = (_pair_bound(_subset(pc, at), t0[at], t1[at], _stats_at(array_stats, at), traffic=True)
                    <= best[pair_gid[at]])
    if rest.any():
        second = _expand(gc, pc, pairs, array_stats, rest)
        if g == 1 and any_fit[0]:
            # The first round's choice is the best of its tilings that can win (every one whose lower
            # bound is below it was costed): only the second round's tilings that fit are left to
            # cost, and the better of the two choices is kept, as `_choose` orders them.
            fits = second["terms"]["feasible"]
            left = _survivors(gc, [_cut_round(second, fits)], best, g) if fits.any() else None
            if left is not None and len(left["gid"]):
                chosen = _better(chosen, _pick(gc, left, g, n_tilings, m, n, k))
        else:
            chosen = _pick(gc, _survivors(gc, [found, second], best, g), g, n_tilings, m, n, k)
    return chosen



def _expand(gc: dict, pc: dict, pairs: tuple, array_stats: tuple, sel) -> dict:
    """The selected pairs (mask or slice of `pairs`) with their distinct stream tiles: per tiling its
    GEMM, candidate index, tiles, pair (index among the selected), spec and GEMM columns (`gc` per
    GEMM, `pc` per pair) and `_tile_terms`."""
    at = np.flatnonzero(sel) if type(sel) is np.ndarray else np.arange(len(pairs[0]))[sel]
    pair_gid, pair_rank, t0, t1 = (x[at] for x in pairs)
    streams = _stream_tiles(_subset(pc, at), t0, t1)  # (S, P)
    # Equal stream tiles of a pair (candidates coincide once clipped to the dimension: all of them
    # when it is 1) cost the same; the first, which wins their tie, is kept.
    s_count = streams.shape[0]
    keep = _distinct(streams, pc["whole"])
    pick = np.flatnonzero(keep.T.ravel())  # (pair, stream row), pair-major
    expand, row = np.divmod(pick, s_count)
    role = pc["roles"]
    tiles = [None, None, None]
    tiles[role[0]], tiles[role[1]], tiles[role[2]] = t0[expand], t1[expand], streams.T.ravel()[pick]
    tm, tn, tk = tiles
    gid, each = pair_gid[expand], at[expand]
    cols = _subset(gc, gid)
    terms = _tile_terms(cols, cols["m"], cols["n"], cols["k"], cols["ba"], cols["bw"], cols["pack"], cols["passes"],
                        tm, tn, tk, _stats_at(array_stats, each))
    return {"gid": gid, "tiling": pair_rank[expand] * _N_STREAM + row,
            "tm": tm, "tn": tn, "tk": tk, "pair": expand, "terms": terms}


def _survivors(gc: dict, rounds: list, best, g: int) -> dict:
    """The rounds' tilings (`_expand`) that can win, as one: those that fit (all of a GEMM's when
    none does) and, given `best` (a bound of each GEMM's optimum), whose lower bound does not exceed
    it; tightened by the tilings with the least lower bound when many are left (a probe costs about
    what a few hundred candidates cost)."""
    any_fit = np.logical_or.reduce([_any_per_gemm(r["gid"], r["terms"]["feasible"], g) for r in rounds])
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
    return found


def _pick(gc: dict, found: dict, g: int, n_tilings: int, m, n, k) -> dict[str, np.ndarray]:
    """`_choose` among the survivors (`_survivors`), each costed under every loop order (`_costed`)."""
    if "cost" not in found:
        found = _costed(gc, found)
    return _choose(gc, found["cost"], found["terms"], found["gid"], found["tiling"], n_tilings, g,
                   m, n, k, found["tm"], found["tn"], found["tk"])


def _better(one: dict, two: dict) -> dict:
    """The better of two choices of one GEMM (`_choose`), ranked as `_choose` ranks candidates under
    `latency`: the least cycles, then DRAM bytes, then (loop order, tiling) index."""
    key = lambda c: (c["total"], c["read"] + c["write"], c["index"])  # noqa: E731
    return two if key(two) < key(one) else one


def _stats_at(array_stats: tuple, at: np.ndarray) -> tuple:
    """The array dimensions' `_per_dim` sums (`_array_stats`) at the pairs `at` (a sum may be one
    scalar for all)."""
    return tuple(tuple(x[at] if type(x) is np.ndarray and x.ndim else x for x in one) for one in array_stats)


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
        if type(x) is np.ndarray and x.ndim:  # per candidate along the last axis
            return np.concatenate([x, y], axis=-1).take(order, axis=-1)
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
    """Mask of each group's `count` least values (groups: equal `gid`, ascending; ties may add more:
    the selection only steers the search)."""
    if g == 1:  # a partition finds the count-th least without tracking indices
        if len(values) <= count:
            return np.ones(len(values), dtype=bool)
        least = np.partition(values, count - 1)[count - 1]
        if least == np.inf:  # fewer finite values: those (or, with none, any `count`), never every +inf
            low = values < np.inf
            if not low.any():
                low[:count] = True
            return low
        return values <= least
    # Each group's values in a row of a padded (G, most) table: one partition finds every row's
    # count-th least.
    counts = np.bincount(gid, minlength=g)
    if counts.max() <= count:
        return np.ones(len(values), dtype=bool)
    table = np.full((g, counts.max()), np.inf)
    table[gid, np.arange(len(gid)) - np.repeat(np.cumsum(counts) - counts, counts)] = values
    return values <= np.partition(table, count - 1, axis=1)[gid, count - 1]


def _subset(values: dict, sel: np.ndarray) -> dict:
    """Per-candidate arrays restricted to `sel`; scalars as they are.
    A dict from `_columns` lists its arrays under "_arrays" (the spec's scalars need no look)."""
    out = dict(values)
    for key in values.get("_arrays", values):
        v = values[key]
        if type(v) is np.ndarray:
            if v.ndim:  # per candidate along the last axis (stacked (3, T) terms too)
                out[key] = v[sel] if v.ndim == 1 else v.take(_indices(sel), axis=-1)
    return out


def _indices(sel: np.ndarray) -> np.ndarray:
    """`sel` (a mask or indices) as indices: `take` along an axis reads 4 times faster than `[:, sel]`."""
    return np.flatnonzero(sel) if sel.dtype == bool else sel


def _columns(c: dict, m, n, k, ba, bw, pack, passes, mac_scale) -> dict:
    """The spec values and GEMM numbers per GEMM: one GEMM's as scalars (they broadcast for free),
    several GEMMs' as (G,) arrays. "_arrays" names the per-GEMM arrays (`_subset` gathers them)."""
    if len(m) == 1:
        col = dict(c, m=float(m[0]), n=float(n[0]), k=float(k[0]), ba=float(ba[0]), bw=float(bw[0]),
                   pack=float(pack[0]), passes=float(passes[0]), mac_scale=float(mac_scale[0]), _arrays=(),
                   whole=float(m[0]).is_integer() and float(n[0]).is_integer() and float(k[0]).is_integer())
        for key in _NUMERIC_KEYS:  # only numeric spec values may be arrays (`_spec_batch`)
            if type(c[key]) is np.ndarray:
                col[key] = float(c[key][0])
        col["_rooms"] = _rooms(col["cap_a"], col["cap_b"], col["cap_c"])
        return col
    col = dict(c, m=m, n=n, k=k, ba=ba, bw=bw, pack=pack, passes=passes, mac_scale=mac_scale,
               whole=bool(all((np.floor(d) == d).all() for d in (m, n, k))))
    # The energy constants are read per candidate only under the energy objectives: not gathered else.
    unused = () if c["objective"] in ("energy", "edp") else _ENERGY_KEYS
    col["_arrays"] = tuple(key for key, v in col.items() if type(v) is np.ndarray and v.ndim and key not in unused)
    if not any(np.ndim(c[key]) for key in ("cap_a", "cap_b", "cap_c")):
        col["_rooms"] = _rooms(float(c["cap_a"]), float(c["cap_b"]), float(c["cap_c"]))
    return col


@functools.lru_cache(maxsize=256)
def _rooms(cap_a: float, cap_b: float, cap_c: float) -> np.ndarray:
    """`_orders`' buffer sizes of A, B and C stacked (3, 1) (shared: read-only)."""
    rooms = np.array([[cap_a], [cap_b], [cap_c]])
    rooms.flags.writeable = False
    return rooms


_ENERGY_KEYS = ("mac_pj", "sram_pj", "dram_pj", "static_pj", "mac_scale")


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
    if len(todo) == 1 and not array_keys:  # one GEMM (`mapped_one`): one slice, its row without numpy
        key = todo[0]
        consts = _bit_constants(spec, model, key[3], key[4])
        if key[0] * key[1] * key[2] > 0:
            row = np.array([max(key[0], 1.0), max(key[1], 1.0), max(key[2], 1.0), key[3], key[4], *consts], dtype=float)
            result = _map_slice(values, *(row[j:j + 1] for j in range(8)))  # (1,) views of one array
            memo[key] = (*(result[name] for name in TILE_RESULT_FIELDS), *consts)
        else:  # nothing to compute
            memo[key] = (0.0,) * len(TILE_RESULT_FIELDS) + (1.0, *consts[1:])
        return
    miss = np.array(todo, dtype=np.float64).reshape(len(todo), -1)
    mm, nn, kk, aa, ww = (miss[:, j] for j in range(5))
    cols = {key: (miss[:, 5 + array_keys.index(key)] if key in array_keys else values[key]) for key in values}
    pack, passes, scale = _bit_columns(spec, model, aa, ww)
    busy = mm * nn * kk > 0
    result = map_tiles(cols, np.maximum(mm, 1.0), np.maximum(nn, 1.0), np.maximum(kk, 1.0), aa, ww, pack, passes, scale)
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
    col["whole"] = col["whole"] and all((np.floor(t) == t).all() for t in (tm, tn, tk))
    terms = _tile_terms(col, col["m"], col["n"], col["k"], col["ba"], col["bw"], col["pack"], col["passes"], tm, tn, tk)
    fits = terms["feasible"]
    if not fits.any():
        return {key: (np.inf if key == "total" else np.nan) for key in TILE_RESULT_FIELDS}
    col, terms = _subset(col, fits), _subset(terms, fits)
    tm, tn, tk, gid = tm[fits], tn[fits], tk[fits], gid[fits]
    chosen = _choose(col, _orders(col, terms), terms, gid, np.arange(len(tm)), len(tm), 1, one(m), one(n), one(k),
                     tm, tn, tk)
    return {key: chosen[key] for key in TILE_RESULT_FIELDS}


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
