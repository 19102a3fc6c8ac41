"""Cost of a Swin backbone under window assignments: `estimate` (one, with a per-op table) and
`estimate_batch` (thousands, totals only). Both run the same vectorized evaluation."""
from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, Mapping

import numpy as np

from mixaq.simulator._arch import SwinArch, WindowAssignment, get_arch, window_counts
from mixaq.core._errors import MixaqError
from mixaq.simulator._mapper import unique_rows
from mixaq.simulator._gemm import gemm_cost, vector_cost
from mixaq.simulator._spec import AcceleratorSpec, load_spec
from mixaq.simulator._workload import Workload, build_workload, share_matrix

__all__ = ["COST_COLUMNS", "CostReport", "CostTotals", "SPEEDUP_KINDS", "TOTAL_FIELDS", "baseline_for", "estimate",
           "estimate_batch", "estimate_batch_arrays", "fractions_from_pair_ratios", "reference_cost", "speedups"]

_BATCH_CHUNK = 4096  # assignments per evaluation chunk
_PAIR_SLICE = 16384  # (row, key) pairs per gemm_cost call: bounds memory when few keys repeat


@dataclass(frozen=True)
class CostTotals:
    """Per-image totals; `a + b` adds field by field (e.g. backbone + head)."""

    macs: float
    bops: float
    compute_cycles: float  # systolic array busy (stall-free)
    vector_cycles: float
    stall_cycles: float  # waiting for DRAM
    cycles: float  # compute + vector + stall: ops run one after another
    latency_ms: float
    energy_pj: float
    mac_energy_pj: float
    sram_energy_pj: float
    dram_energy_pj: float
    vector_energy_pj: float
    static_energy_pj: float
    dram_read_bytes: float
    dram_write_bytes: float
    dram_bytes: float
    sram_bytes: float

    def __add__(self, other: "CostTotals") -> "CostTotals":
        if not isinstance(other, CostTotals):
            return NotImplemented
        return CostTotals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __radd__(self, other: Any) -> "CostTotals":
        if other == 0:  # lets sum() start from 0
            return self
        return self.__add__(other)

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


TOTAL_FIELDS = tuple(f.name for f in fields(CostTotals))
# Speedup kind -> the `CostTotals` field (and `estimate_batch` column) it divides.
COST_COLUMNS: dict[str, str] = {"bops": "bops", "cycles": "cycles", "latency": "latency_ms", "energy": "energy_pj"}
SPEEDUP_KINDS: tuple[str, ...] = tuple(COST_COLUMNS)


def speedups(costs: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, Any]:
    """`reference / costs` for every speedup kind (> 1: cheaper than the reference).

    `costs` holds the `COST_COLUMNS` as numbers (a zero cost gives inf) or as arrays / pandas
    columns of A assignments; `reference` holds them as numbers (e.g. `reference_cost(...).totals`).
    """
    out: dict[str, Any] = {}
    for kind, column in COST_COLUMNS.items():
        mine, theirs = costs[column], float(reference[column])
        if np.ndim(mine) == 0:
            out[kind] = theirs / float(mine) if mine else float("inf")
        else:
            out[kind] = theirs / mine.astype(float)
    return out


def _check_assignment_bits(spec: AcceleratorSpec, high, low, weight, any_low: np.ndarray):
    """(A,) float bit arrays; low bits only need to be costable where some window is low-bit."""
    spec.check_bits("high_act_bits", high)
    spec.check_bits("weight_bits", weight)
    low = np.asarray(low, dtype=object)
    low = np.broadcast_to(low, any_low.shape)
    if np.any(any_low):
        spec.check_bits("low_act_bits", low[any_low])
    high_f = np.asarray(high, dtype=np.float64)
    low_f = np.where(any_low, low, np.broadcast_to(high_f, any_low.shape)).astype(np.float64)
    return (np.broadcast_to(high_f, any_low.shape), low_f,
            np.broadcast_to(np.asarray(weight, dtype=np.float64), any_low.shape))


_GEMM_SUMS = ("macs", "bops", "compute_cycles", "stall_cycles", "dram_read_bytes", "dram_write_bytes", "sram_bytes",
              "mac_energy_pj", "sram_energy_pj", "dram_energy_pj", "static_energy_pj", "energy_pj")
# The vector unit's columns summed per assignment (`_vector.vector_cost`): lane cycles, DRAM stalls, traffic
# and the energy split.
_VECTOR_SUMS = ("vector_cycles", "stall_cycles", "sram_bytes", "dram_read_bytes", "dram_write_bytes", "op_energy_pj",
                "sram_energy_pj", "dram_energy_pj", "static_energy_pj", "energy_pj")


@dataclass(frozen=True)
class _Evaluation:
    gemm_rows: np.ndarray  # (P,) workload row of each evaluated (row, key) pair
    gemm: dict  # (P,) costs and operands of each pair
    vector_rows: np.ndarray
    vector: dict
    totals: dict  # (A,) per-assignment totals


def _pairs(wl: Workload, shares: np.ndarray, high, low, weight):
    """Distinct (shares, bits) keys per row group, and every (row, key) pair to evaluate."""
    n_assign = shares.shape[0]
    segment_of = np.empty((n_assign, len(wl.groups)), dtype=np.int64)
    parts = {"gemm": ([], [], [], []), "vector": ([], [], [], [])}  # rows, share, bits, segment
    offset = 0
    for gi, grp in enumerate(wl.groups):
        low_key = np.where(shares[:, grp.low_col] > 0, low, high) if grp.low_col >= 0 else high
        key = np.column_stack([shares[:, grp.share_cols], high, low_key, weight])
        if n_assign == 1:
            uniq, inverse = key, np.zeros(1, dtype=np.int64)
        else:
            uniq, inverse = unique_rows(key)
        n_keys = len(uniq)
        segment_of[:, gi] = offset + inverse.reshape(-1)
        for unit, rows, pos in (("gemm", grp.gemm_rows, grp.gemm_key_pos), ("vector", grp.vector_rows, grp.vector_key_pos)):
            which = np.repeat(np.arange(n_keys), len(rows))
            dest = parts[unit]
            dest[0].append(np.tile(rows, n_keys))
            dest[1].append(uniq[which, np.tile(pos, n_keys)])
            dest[2].append(uniq[which, -3:])
            dest[3].append(offset + which)
        offset += n_keys
    flat = {unit: tuple(np.concatenate(x) for x in lists) for unit, lists in parts.items()}
    return flat, segment_of, offset


def _sliced_gemm_cost(spec: AcceleratorSpec, *columns: np.ndarray) -> dict[str, np.ndarray]:
    """`gemm_cost` over (P,) pairs in slices: its candidate schedules multiply memory per pair."""
    n = len(columns[0])
    if n <= _PAIR_SLICE:
        return gemm_cost(spec, *columns)
    parts = [gemm_cost(spec, *(c[i:i + _PAIR_SLICE] for c in columns)) for i in range(0, n, _PAIR_SLICE)]
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _evaluate(spec: AcceleratorSpec, wl: Workload, low_fraction, pruned_fraction, high, low, weight) -> _Evaluation:
    """Cost every distinct (row group, shares, bits) once, then sum per assignment."""
    shares = share_matrix(wl, low_fraction, pruned_fraction)
    flat, segment_of, n_segments = _pairs(wl, shares, high, low, weight)
    rows, share, bits, seg = flat["gemm"]
    g = wl.gemm
    by_count = g.share_scales_count[rows]
    m = np.where(by_count, g.m[rows], g.m[rows] * share)
    count = np.where(by_count, g.count[rows] * share, g.count[rows])
    act = np.where(g.act_source[rows] == 0, bits[:, 0], bits[:, 1])
    wbits = np.where(g.weight_is_act[rows], act, bits[:, 2])
    gemm = _sliced_gemm_cost(spec, m, g.n[rows], g.k[rows], act, wbits, count)
    gemm.update(m=m, count=count, act_bits=act, weight_bits=wbits)
    seg_sum = {f"g_{f}": np.bincount(seg, weights=gemm[f], minlength=n_segments) for f in _GEMM_SUMS}
    vrows, vshare, _, vseg = flat["vector"]
    v = wl.vector
    by_count = v.share_scales_count[vrows]
    vm = np.where(by_count, v.m[vrows], v.m[vrows] * vshare)
    vcount = np.where(by_count, v.count[vrows] * vshare, v.count[vrows])
    vec = vector_cost(spec, vm, v.n[vrows], v.k[vrows], vcount, v.read_width[vrows], v.write_width[vrows])
    vec.update(m=vm, count=vcount)
    seg_sum.update({f"v_{f}": np.bincount(vseg, weights=vec[f], minlength=n_segments) for f in _VECTOR_SUMS})
    # (A, groups) gather then a fixed-order sum: a given assignment gets bit-identical totals
    # whatever else is in the batch.
    per = {key: val[segment_of].sum(axis=1) for key, val in seg_sum.items()}
    return _Evaluation(rows, gemm, vrows, vec, _totals(per, spec.cycle_ns))


def _totals(per: Mapping[str, np.ndarray], cycle_ns: Any) -> dict[str, np.ndarray]:
    """Per-assignment totals from the summed `g_<GEMM field>` and `v_<vector field>` columns."""
    # Stalls: the array's waits for DRAM and the vector unit's (a bandwidth-bound vector op).
    compute, stall, vcyc = per["g_compute_cycles"], per["g_stall_cycles"] + per["v_stall_cycles"], per["v_vector_cycles"]
    cycles = compute + stall + vcyc
    read = per["g_dram_read_bytes"] + per["v_dram_read_bytes"]
    write = per["g_dram_write_bytes"] + per["v_dram_write_bytes"]
    return {
        "macs": per["g_macs"], "bops": per["g_bops"], "compute_cycles": compute, "vector_cycles": vcyc,
        "stall_cycles": stall, "cycles": cycles, "latency_ms": cycles * cycle_ns * 1e-6,
        "energy_pj": per["g_energy_pj"] + per["v_energy_pj"], "mac_energy_pj": per["g_mac_energy_pj"],
        # The vector unit's SRAM and DRAM traffic is charged with the array's; vector_energy_pj is
        # its element operations only.
        "sram_energy_pj": per["g_sram_energy_pj"] + per["v_sram_energy_pj"],
        "dram_energy_pj": per["g_dram_energy_pj"] + per["v_dram_energy_pj"],
        "vector_energy_pj": per["v_op_energy_pj"],
        "static_energy_pj": per["g_static_energy_pj"] + per["v_static_energy_pj"],
        "dram_read_bytes": read, "dram_write_bytes": write, "dram_bytes": read + write,
        "sram_bytes": per["g_sram_bytes"] + per["v_sram_bytes"],
    }


_TABLE_COLUMNS = ("stage", "block", "op", "branch", "unit", "count", "M", "N", "K", "act_bits", "weight_bits",
                  "macs", "bops", "compute_cycles", "vector_cycles", "stall_cycles", "cycles", "latency_ms", "utilization",
                  "stream_chunks", "vector_ops", "sram_bytes", "dram_read_bytes", "dram_write_bytes", "energy_pj")


@dataclass(frozen=True)
class CostReport:
    """Cost of one assignment: `totals`, `per_op` (pandas, built on first use), `speedup_over`."""

    spec: AcceleratorSpec
    arch: SwinArch
    image_hw: tuple[int, int]
    assignment: WindowAssignment
    totals: CostTotals
    table: Mapping[str, np.ndarray]  # per-op columns (numpy), execution order, empty rows dropped

    @cached_property
    def per_op(self):
        """One row per op and branch: stage, block, op, branch, M, N, K, bits, MACs, BOPs, cycles, ..."""
        import pandas as pd  # heavy; the CLI fast path never touches it

        return pd.DataFrame({name: self.table[name] for name in _TABLE_COLUMNS})

    def stage_summary(self) -> list[dict[str, float]]:
        """Per-stage sums (stage-level ops and MixA-Q overheads included) without pandas. Every
        additive column sums over the stages to the field of `totals` with the same name."""
        t = self.table
        low = np.array([b == "low" for b in t["branch"]])
        rows = []
        for stage in np.unique(t["stage"]):
            sel = t["stage"] == stage
            row = {"stage": int(stage)}
            for key in ("macs", "bops", "compute_cycles", "vector_cycles", "stall_cycles", "cycles", "latency_ms",
                        "energy_pj", "mac_energy_pj", "sram_energy_pj", "dram_energy_pj", "static_energy_pj",
                        "vector_energy_pj"):
                row[key] = float(t[key][sel].sum())
            row["dram_bytes"] = float(t["dram_read_bytes"][sel].sum() + t["dram_write_bytes"][sel].sum())
            row.update(_explain(self.spec, t, sel, row))
            row["low_mac_share"] = float(t["macs"][sel & low].sum() / row["macs"]) if row["macs"] else 0.0
            rows.append(row)
        return rows

    def explain(self) -> dict:
        """The whole network's array utilization, compute- or memory-bound, and average power (mW)."""
        tot = self.totals
        row = {"macs": tot.macs, "compute_cycles": tot.compute_cycles, "dram_bytes": tot.dram_bytes,
               "latency_ms": tot.latency_ms, "energy_pj": tot.energy_pj}
        return _explain(self.spec, self.table, np.ones(len(self.table["op"]), dtype=bool), row)

    def speedup_over(self, baseline: "CostReport | None" = None) -> dict[str, float]:
        """baseline / this for BOPs, cycles, latency and energy (> 1: this is cheaper).

        Without a baseline: every window at this assignment's high activation width.
        """
        if baseline is None:
            baseline = reference_cost(self.spec, self.arch, self.image_hw, self.assignment.high_act_bits,
                                      self.assignment.weight_bits)
        return speedups(self.totals.as_dict(), baseline.totals.as_dict())


def _explain(spec: AcceleratorSpec, t: Mapping[str, np.ndarray], sel: np.ndarray, row: Mapping[str, float]) -> dict:
    """Utilization of the array (MACs over peak × array cycles), compute- or memory-bound (DRAM time
    vs array compute, roofline) and average power of a group of table rows."""
    array = sel & (t["unit"] == "array")
    busy = (t["peak_macs_per_cycle"][array] * (t["compute_cycles"][array] + t["stall_cycles"][array])).sum()
    ports = 3.0 if spec.dram_ports == "per_operand" else 1.0
    dram_time = row["dram_bytes"] / (spec.dram_bytes_per_cycle * ports)
    seconds = row["latency_ms"] * 1e-3
    return {"utilization": float(row["macs"] / busy) if busy > 0 else 0.0,
            "bound": "memory" if dram_time > row["compute_cycles"] else "compute",
            "power_mw": row["energy_pj"] * 1e-9 / seconds if seconds > 0 else 0.0}


def _as_image_hw(image_hw) -> tuple[int, int]:
    if isinstance(image_hw, (int, np.integer)):
        return (int(image_hw), int(image_hw))
    try:
        h, w = (int(x) for x in image_hw)
    except (TypeError, ValueError):
        raise MixaqError(f"image size must be an int or (H, W), got {image_hw!r}") from None
    return (h, w)


def _resolve(spec, arch, image_hw):
    return load_spec(spec), get_arch(arch), _as_image_hw(image_hw)


def estimate(spec: AcceleratorSpec | str, arch: SwinArch | str, image_hw, assignment: WindowAssignment) -> CostReport:
    """Per-image cost of `arch` at `image_hw` on `spec` when windows follow `assignment`."""
    spec, arch, image_hw = _resolve(spec, arch, image_hw)
    if len(assignment.low_fraction) != arch.num_blocks:
        raise MixaqError(f"assignment has {len(assignment.low_fraction)} blocks, arch has {arch.num_blocks}")
    low = np.asarray(assignment.low_fraction, dtype=np.float64)[None]
    pruned = np.asarray(assignment.pruned_fraction, dtype=np.float64)[None]
    high, low_bits, weight = _check_assignment_bits(
        spec, [assignment.high_act_bits], [assignment.low_act_bits], [assignment.weight_bits],
        np.array([bool(np.any(low > 0))]))
    wl = build_workload(arch, image_hw)
    ev = _evaluate(spec, wl, low, pruned, high, low_bits, weight)
    totals = CostTotals(**{k: float(v[0]) for k, v in ev.totals.items()})
    return CostReport(spec, arch, image_hw, assignment, totals, _table(spec, wl, ev))


def _table(spec: AcceleratorSpec, wl: Workload, ev: _Evaluation) -> dict[str, np.ndarray]:
    """Per-op columns of a one-assignment evaluation (each row evaluated exactly once)."""
    g, v = wl.gemm, wl.vector
    gr, vr = ev.gemm_rows, ev.vector_rows
    gemm, vec = ev.gemm, ev.vector
    ng, nv = len(gr), len(vr)
    nan_v, zero_v = np.full(nv, np.nan), np.zeros(nv)
    cols = {
        "order": np.concatenate([g.order[gr], v.order[vr]]),
        "stage": np.concatenate([g.stage[gr], v.stage[vr]]),
        "block": np.concatenate([g.block[gr], v.block[vr]]),
        "op": np.array([g.op[i] for i in gr] + [v.op[i] for i in vr], dtype=object),
        "branch": np.array([g.branch[i] for i in gr] + [v.branch[i] for i in vr], dtype=object),
        "unit": np.array(["array"] * ng + ["vector"] * nv, dtype=object),
        "count": np.concatenate([gemm["count"], vec["count"]]),
        "M": np.concatenate([gemm["m"], vec["m"]]),
        "N": np.concatenate([g.n[gr], v.n[vr]]),
        "K": np.concatenate([g.k[gr], nan_v]),
        "act_bits": np.concatenate([gemm["act_bits"], nan_v]),
        "weight_bits": np.concatenate([gemm["weight_bits"], nan_v]),
        "macs": np.concatenate([gemm["macs"], zero_v]),
        "bops": np.concatenate([gemm["bops"], zero_v]),
        # Array and vector-unit cycles in their own columns (as in `CostTotals`), so every row has
        # cycles = compute + vector + stall and a column's total is the sum of its rows.
        "compute_cycles": np.concatenate([gemm["compute_cycles"], zero_v]),
        "vector_cycles": np.concatenate([np.zeros(ng), vec["vector_cycles"]]),
        "stall_cycles": np.concatenate([gemm["stall_cycles"], vec["stall_cycles"]]),
        "cycles": np.concatenate([gemm["cycles"], vec["cycles"]]),
        "utilization": np.concatenate([gemm["utilization"], nan_v]),
        "stream_chunks": np.concatenate([gemm["stream_chunks"], nan_v]),
        "vector_ops": np.concatenate([np.zeros(ng), vec["vector_ops"]]),
        "sram_bytes": np.concatenate([gemm["sram_bytes"], vec["sram_bytes"]]),
        "dram_read_bytes": np.concatenate([gemm["dram_read_bytes"], vec["dram_read_bytes"]]),
        "dram_write_bytes": np.concatenate([gemm["dram_write_bytes"], vec["dram_write_bytes"]]),
        "energy_pj": np.concatenate([gemm["energy_pj"], vec["energy_pj"]]),
        # The energy split: array MACs, SRAM, DRAM, static (both units), vector-unit ops.
        "mac_energy_pj": np.concatenate([gemm["mac_energy_pj"], zero_v]),
        "sram_energy_pj": np.concatenate([gemm["sram_energy_pj"], vec["sram_energy_pj"]]),
        "dram_energy_pj": np.concatenate([gemm["dram_energy_pj"], vec["dram_energy_pj"]]),
        "static_energy_pj": np.concatenate([gemm["static_energy_pj"], vec["static_energy_pj"]]),
        "vector_energy_pj": np.concatenate([np.zeros(ng), vec["op_energy_pj"]]),
        "peak_macs_per_cycle": np.concatenate([gemm["peak_macs_per_cycle"], nan_v]),
    }
    cols["latency_ms"] = cols["cycles"] * spec.cycle_ns * 1e-6
    keep = (cols["cycles"] > 0) | (cols["macs"] > 0)
    order = np.argsort(cols["order"][keep], kind="stable")
    return {name: col[keep][order] for name, col in cols.items() if name != "order"}


def _bits_vector(name: str, bits, n_assign: int) -> np.ndarray:
    arr = np.asarray(bits, dtype=object)
    if arr.ndim == 0:
        value = arr.item()
        # An int stays an int array, so `check_bits` checks it in one vectorized step.
        plain_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        return np.full(n_assign, value, dtype=np.int64 if plain_int else object)
    if arr.shape != (n_assign,):
        raise MixaqError(f"{name} must be a scalar or have shape ({n_assign},), got {arr.shape}")
    return arr


def estimate_batch(spec, arch, image_hw, low_fractions, pruned_fractions, high_act_bits, low_act_bits, weight_bits):
    """Totals for A assignments at once -> pandas DataFrame (one row per assignment).

    `low_fractions` / `pruned_fractions`: (A, num_blocks) fractions of each block's windows (a
    1-D vector is one assignment); bits are scalars or (A,). Row i equals
    `estimate(...).totals` of assignment i exactly.
    """
    import pandas as pd

    return pd.DataFrame(estimate_batch_arrays(spec, arch, image_hw, low_fractions, pruned_fractions,
                                              high_act_bits, low_act_bits, weight_bits))


def estimate_batch_arrays(spec, arch, image_hw, low_fractions, pruned_fractions, high_act_bits, low_act_bits,
                          weight_bits) -> dict[str, np.ndarray]:
    """`estimate_batch` as a dict of (A,) numpy arrays (no pandas)."""
    spec, arch, image_hw = _resolve(spec, arch, image_hw)
    low = np.atleast_2d(np.asarray(low_fractions, dtype=np.float64))
    pruned = np.asarray(pruned_fractions, dtype=np.float64)
    if pruned.ndim == 0:  # one prune fraction for every block of every assignment
        pruned = np.full(low.shape, float(pruned))
    pruned = np.atleast_2d(pruned)
    if low.ndim != 2 or low.shape[1] != arch.num_blocks or pruned.shape != low.shape:
        raise MixaqError(f"low/pruned fractions must both have shape (A, {arch.num_blocks}), "
                         f"got {low.shape} and {pruned.shape}")
    if np.any(low < 0) or np.any(pruned < 0) or np.any(low + pruned > 1 + 1e-9) or not np.all(np.isfinite(low + pruned)):
        raise MixaqError("window fractions must be finite, >= 0, and low + pruned <= 1 per block")
    n_assign = low.shape[0]
    high_b, low_b, weight_b = _check_assignment_bits(
        spec, _bits_vector("high_act_bits", high_act_bits, n_assign), _bits_vector("low_act_bits", low_act_bits, n_assign),
        _bits_vector("weight_bits", weight_bits, n_assign), np.any(low > 0, axis=1))
    wl = build_workload(arch, image_hw)
    out = {key: np.empty(n_assign) for key in TOTAL_FIELDS}
    for start in range(0, n_assign, _BATCH_CHUNK):
        sl = slice(start, start + _BATCH_CHUNK)
        ev = _evaluate(spec, wl, low[sl], pruned[sl], high_b[sl], low_b[sl], weight_b[sl])
        for key, value in ev.totals.items():
            out[key][sl] = value
    return out


def fractions_from_pair_ratios(arch: SwinArch | str, image_hw, low_ratios, prune_ratios=0.0) -> tuple[np.ndarray, np.ndarray]:
    """(A, num_pairs) per-pair ratios -> (A, num_blocks) low and pruned window fractions.

    The vectorized form of `WindowAssignment.from_pair_ratios` (same `window_counts` rule).
    """
    arch, image_hw = get_arch(arch), _as_image_hw(image_hw)
    low = np.atleast_2d(np.asarray(low_ratios, dtype=np.float64))
    prune = np.broadcast_to(np.atleast_2d(np.asarray(prune_ratios, dtype=np.float64)), low.shape)
    if low.shape[1] != arch.num_pairs and low.shape[1] != 1:
        raise MixaqError(f"expected {arch.num_pairs} ratios per assignment (one per block pair), got {low.shape[1]}")
    low = np.broadcast_to(low, (low.shape[0], arch.num_pairs))
    prune = np.broadcast_to(prune, low.shape)
    pair = arch.pair_of_block()
    n = arch.windows_per_block(image_hw)
    _, n_low, n_pruned = window_counts(n[None], low[:, pair], prune[:, pair])
    return n_low / n, n_pruned / n


def baseline_for(assignment: WindowAssignment, arch: SwinArch | str) -> WindowAssignment:
    """The default baseline: every window at the assignment's high activation width."""
    return WindowAssignment.uniform(get_arch(arch), assignment.high_act_bits, assignment.weight_bits)


def reference_cost(spec: AcceleratorSpec | str, arch: SwinArch | str, image_hw, act_bits: int,
                   weight_bits: int) -> CostReport:
    """The reference every speedup divides by: all windows at `act_bits` ("uniform high"), weights at
    `weight_bits`. The CLIs, the sweep's `CostModel` and the QAT table all cost it here."""
    arch = get_arch(arch)
    return estimate(spec, arch, image_hw, WindowAssignment.uniform(arch, act_bits, weight_bits))
