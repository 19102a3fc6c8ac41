"""Cost of A window assignments on H accelerator specs at once: the hardware side of co-exploration.

`estimate_batch` varies the assignment on one spec; here the spec varies too. Specs that share their
categorical fields (dataflow, precision model and bit range, mapper, ...) form a group; within a
group every numeric field (array size, SRAM sizes, bandwidth, lanes, bit widths of outputs) becomes
a column aligned with the (op row, assignment key) pairs, and one vectorized `gemm_cost` /
`vector_cost` call costs the whole group. Frequency and the energy constants only scale results
linearly, so specs that differ only in them are costed once (with unit constants) and recombined.
Row h of the result equals `estimate_batch` on spec h (tested to 1e-12).
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Sequence

import numpy as np

from mixaq.simulator._arch import SwinArch, get_arch
from mixaq.simulator._cost import (_GEMM_SUMS, _PAIR_SLICE, _VECTOR_SUMS, TOTAL_FIELDS, _as_image_hw, _bits_vector,
                                   _check_assignment_bits, _pairs, _totals)
from mixaq.core._errors import MixaqError
from mixaq.simulator._gemm import gemm_cost, vector_cost
from mixaq.simulator._spec import AcceleratorSpec, load_spec
from mixaq.simulator._workload import build_workload, share_matrix

__all__ = ["SpecGrid", "estimate_specs"]

# Fields that only scale results linearly (recombined per spec) or do not enter the cost at all.
_LINEAR = ("frequency_mhz", "mac_8x8_energy_pj", "sram_byte_energy_pj", "dram_byte_energy_pj",
           "vector_op_energy_pj", "static_power_mw")
_IGNORED = ("name", "description", "source")
# Integer fields that steer Python-level choices (the Bit Fusion packing modes): categorical.
_CATEGORICAL_NUMBERS = ("min_bits", "max_bits")
_UNIT_ENERGY = {"mac_8x8_energy_pj": 1.0, "sram_byte_energy_pj": 1.0, "dram_byte_energy_pj": 1.0,
                "vector_op_energy_pj": 1.0, "static_power_mw": 0.0, "frequency_mhz": 1000.0}


class _SpecColumns:
    """An `AcceleratorSpec` look-alike whose numeric fields are arrays aligned with cost pairs."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    @property
    def cycle_ns(self) -> Any:
        return 1e3 / self.frequency_mhz

    def check_bits(self, what: str, bits: Any) -> None:
        AcceleratorSpec.check_bits(self, what, bits)  # uses only name, source, min_bits, max_bits


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _split_fields(spec: AcceleratorSpec) -> tuple[tuple, tuple]:
    """(categorical key, cost-shaping numeric key) of a spec; linear and ignored fields excluded."""
    cat, num = [], []
    for f in fields(spec):
        if f.name in _IGNORED or f.name in _LINEAR or f.name.startswith("area_"):
            continue
        value = getattr(spec, f.name)
        if _is_number(value) and f.name not in _CATEGORICAL_NUMBERS:
            num.append((f.name, float(value)))
        else:
            cat.append((f.name, value))
    return tuple(cat), tuple(num)


class SpecGrid:
    """H specs prepared once for repeated costing (`estimate`): groups by categorical fields, and
    within a group the distinct cost-shaping numeric rows and each spec's linear constants."""

    def __init__(self, specs: Sequence[AcceleratorSpec | str]) -> None:
        self.specs = [load_spec(s) for s in specs]
        keyed: dict[tuple, list[int]] = {}
        split = [_split_fields(s) for s in self.specs]
        for h, (cat, _) in enumerate(split):
            keyed.setdefault(cat, []).append(h)
        self._groups = []
        for members in keyed.values():
            names = [name for name, _ in split[members[0]][1]]
            table = np.array([[v for _, v in split[h][1]] for h in members], dtype=float).reshape(len(members), -1)
            uniq, inverse = np.unique(table, axis=0, return_inverse=True)
            linear = {name: np.array([float(getattr(self.specs[h], name)) for h in members]) for name in _LINEAR}
            self._groups.append((np.asarray(members), names, uniq, inverse.reshape(-1), linear))

    def __len__(self) -> int:
        return len(self.specs)

    def estimate(self, arch: SwinArch | str, image_hw, low_fractions, pruned_fractions, high_act_bits, low_act_bits,
                 weight_bits, *, unsupported: str = "raise") -> dict[str, np.ndarray]:
        """Totals of A assignments on each spec: a dict of (H, A) arrays (see `estimate_specs`)."""
        if unsupported not in ("raise", "nan"):
            raise ValueError(f"unsupported must be 'raise' or 'nan', got {unsupported!r}")
        arch, image_hw = get_arch(arch), _as_image_hw(image_hw)
        low = np.atleast_2d(np.asarray(low_fractions, dtype=np.float64))
        pruned = np.broadcast_to(np.asarray(pruned_fractions, dtype=np.float64), low.shape)
        if low.shape[1] != arch.num_blocks:
            raise MixaqError(f"low/pruned fractions must have shape (A, {arch.num_blocks}), got {low.shape}")
        n_assign = low.shape[0]
        bits = [_bits_vector(n, b, n_assign) for n, b in (("high_act_bits", high_act_bits),
                                                         ("low_act_bits", low_act_bits), ("weight_bits", weight_bits))]
        wl = build_workload(arch, image_hw)
        shares = share_matrix(wl, low, pruned)
        out = {key: np.full((len(self.specs), n_assign), np.nan) for key in TOTAL_FIELDS}
        for members, names, uniq, inverse, linear in self._groups:
            head = self.specs[members[0]]
            try:
                high_b, low_b, weight_b = _check_assignment_bits(head, *bits, np.any(low > 0, axis=1))
            except MixaqError:
                if unsupported == "raise":
                    raise
                continue
            if head.mapper_objective in ("energy", "edp"):
                # The mapping then depends on the energy constants, which this path costs at unit
                # values and recombines linearly: cost these specs one at a time instead.
                from mixaq.simulator._cost import estimate_batch_arrays

                for h in members:
                    one = estimate_batch_arrays(self.specs[h], arch, image_hw, low, pruned, *bits)
                    for key, value in one.items():
                        out[key][h] = value
                continue
            flat, segment_of, n_segments = _pairs(wl, shares, high_b, low_b, weight_b)
            unit = _unit_sums(head, names, uniq, wl, flat, segment_of, n_segments)  # (U, A) each
            totals = _recombine({key: val[inverse] for key, val in unit.items()}, linear)  # (G, A) each
            for key, value in totals.items():
                out[key][members] = value
        return out


def estimate_specs(specs: Sequence[AcceleratorSpec | str], arch: SwinArch | str, image_hw, low_fractions,
                   pruned_fractions, high_act_bits, low_act_bits, weight_bits, *,
                   unsupported: str = "raise") -> dict[str, np.ndarray]:
    """Totals of A assignments on each of H specs: a dict of (H, A) arrays (the `estimate_batch` columns).

    Arguments as `estimate_batch`. `unsupported="nan"` gives NaN rows for specs whose bit range does
    not run these bits instead of raising. Costing the same specs repeatedly: build a `SpecGrid` once.
    """
    return SpecGrid(specs).estimate(arch, image_hw, low_fractions, pruned_fractions, high_act_bits, low_act_bits,
                                    weight_bits, unsupported=unsupported)


def _unit_sums(head: AcceleratorSpec, names: list[str], uniq: np.ndarray, wl: Any, flat: dict,
               segment_of: np.ndarray, n_segments: int) -> dict[str, np.ndarray]:
    """Summed g_/v_ columns, (U, A) each, of the U distinct cost-shaping rows at unit energy
    constants and 1 GHz."""
    base = {f.name: getattr(head, f.name) for f in fields(head)}
    base.update(_UNIT_ENERGY)
    rows, share, bits, seg = flat["gemm"]
    vrows, vshare, _, vseg = flat["vector"]
    g, v = wl.gemm, wl.vector
    n_uniq, n_pairs, n_vpairs = len(uniq), len(rows), len(vrows)
    # Pair columns, tiled once per distinct hardware point (spec index = outer).
    by_count = g.share_scales_count[rows]
    m = np.tile(np.where(by_count, g.m[rows], g.m[rows] * share), n_uniq)
    count = np.tile(np.where(by_count, g.count[rows] * share, g.count[rows]), n_uniq)
    act = np.where(g.act_source[rows] == 0, bits[:, 0], bits[:, 1])
    wbits = np.tile(np.where(g.weight_is_act[rows], act, bits[:, 2]), n_uniq)
    act = np.tile(act, n_uniq)
    n_, k_ = np.tile(g.n[rows], n_uniq), np.tile(g.k[rows], n_uniq)
    which = np.repeat(np.arange(n_uniq), n_pairs)
    gemm = _sliced_spec_gemm(base, names, uniq, which, m, n_, k_, act, wbits, count)
    gseg = which * n_segments + np.tile(seg, n_uniq)
    sums = {f"g_{f}": np.bincount(gseg, weights=gemm[f], minlength=n_uniq * n_segments).reshape(n_uniq, n_segments)
            for f in _GEMM_SUMS}
    vby = v.share_scales_count[vrows]
    vm = np.tile(np.where(vby, v.m[vrows], v.m[vrows] * vshare), n_uniq)
    vcount = np.tile(np.where(vby, v.count[vrows] * vshare, v.count[vrows]), n_uniq)
    vwhich = np.repeat(np.arange(n_uniq), n_vpairs)
    vspec = _SpecColumns({**base, **{name: uniq[vwhich, j] for j, name in enumerate(names)}})
    vec = vector_cost(vspec, vm, np.tile(v.n[vrows], n_uniq), np.tile(v.k[vrows], n_uniq), vcount,
                      np.tile(v.read_width[vrows], n_uniq), np.tile(v.write_width[vrows], n_uniq))
    vseg_all = vwhich * n_segments + np.tile(vseg, n_uniq)
    for f in (*_VECTOR_SUMS, "vector_ops"):
        sums[f"v_{f}"] = np.bincount(vseg_all, weights=vec[f], minlength=n_uniq * n_segments).reshape(n_uniq, n_segments)
    # (U, A, groups) gather, then the same fixed-order sum as `estimate_batch`.
    return {key: val[:, segment_of].sum(axis=2) for key, val in sums.items()}


def _sliced_spec_gemm(base: dict, names: list[str], uniq: np.ndarray, which: np.ndarray, *columns: np.ndarray
                      ) -> dict[str, np.ndarray]:
    """`gemm_cost` over pairs whose spec columns are `uniq[which]`, in slices that bound memory."""
    parts = []
    for start in range(0, len(which), _PAIR_SLICE):
        sl = slice(start, start + _PAIR_SLICE)
        spec = _SpecColumns({**base, **{name: uniq[which[sl], j] for j, name in enumerate(names)}})
        parts.append(gemm_cost(spec, *(c[sl] for c in columns)))
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _recombine(unit: dict[str, np.ndarray], linear: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """(G, A) totals: unit energies times each spec's constants, cycles at its frequency."""
    col = {name: values[:, None] for name, values in linear.items()}  # (G, 1)
    cycle_ns = 1e3 / col["frequency_mhz"]
    per = dict(unit)
    mac = unit["g_mac_energy_pj"] * col["mac_8x8_energy_pj"]
    sram = unit["g_sram_energy_pj"] * col["sram_byte_energy_pj"]
    dram = unit["g_dram_energy_pj"] * col["dram_byte_energy_pj"]
    # Static energy accrues over the cycles each unit is busy (array: compute + stall; vector: lanes + stall).
    g_static = (unit["g_compute_cycles"] + unit["g_stall_cycles"]) * col["static_power_mw"] * cycle_ns
    v_static = (unit["v_vector_cycles"] + unit["v_stall_cycles"]) * col["static_power_mw"] * cycle_ns
    vector = unit["v_vector_ops"] * col["vector_op_energy_pj"]
    v_sram = unit["v_sram_bytes"] * col["sram_byte_energy_pj"]
    v_dram = (unit["v_dram_read_bytes"] + unit["v_dram_write_bytes"]) * col["dram_byte_energy_pj"]
    per.update(g_mac_energy_pj=mac, g_sram_energy_pj=sram, g_dram_energy_pj=dram, g_static_energy_pj=g_static,
               g_energy_pj=mac + sram + dram + g_static, v_static_energy_pj=v_static, v_op_energy_pj=vector,
               v_sram_energy_pj=v_sram, v_dram_energy_pj=v_dram, v_energy_pj=vector + v_sram + v_dram + v_static)
    return _totals(per, cycle_ns)
