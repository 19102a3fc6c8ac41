"""The tile mapper's candidate set, measured: candidate tilings per GEMM on every shipped preset, and
the GEMMs random hypothesis seeds found where the mapper missed a cheaper uniform tiling, each against
an exhaustive search that does not share the mapper's candidates (docs/simulator.md, "Known gaps of
the tile mapper"; `tests/test_sim_mapper.py` uses the same search).

    python -m benchmarks.mapper_gaps [--gemms 100]
"""
from __future__ import annotations

import argparse
import math

import numpy as np

__all__ = ["GAP_CASES", "MORE_HARDWARE_CASES", "best_uniform", "best_uniform_cycles", "candidates_per_gemm", "dense_tiles", "main"]

# (preset, M, N, K, activation bits, weight bits, how the property test split it): found by random seeds.
GAP_CASES = (
    ("bitserial", 1281, 100, 65, 1, 1, "m"),
    ("bitfusion", 112, 993, 1171, 2, 7, "n"),
    ("bitserial", 65, 313, 313, 1, 8, "n"),
    ("bitserial", 2017, 193, 65, 1, 1, "m"),
)
# (preset, M, N, K, activation bits, weight bits, spec field doubled): more hardware that cost more cycles.
MORE_HARDWARE_CASES = (
    ("bitserial", 2017, 193, 513, 1, 1, "sram_ifmap_kib"),
    ("bitserial", 2017, 449, 795, 1, 1, "sram_ifmap_kib"),
    ("bitserial", 2497, 2497, 807, 1, 1, "sram_ifmap_kib"),
    ("bitfusion", 177, 417, 1169, 5, 2, "sram_ofmap_kib"),
    ("loom", 1463, 6, 105, 8, 1, "sram_ifmap_kib"),
    ("bitserial", 2433, 1431, 874, 1, 1, "sram_ifmap_kib"),  # the stationary fills' width multiples (`_pairs`)
    ("bitfusion", 1, 171, 192, 2, 2, "sram_filter_kib"),  # N = 170 = D - 1 (`_array_sizes`), was a fill
    ("bitfusion", 1617, 1, 50, 2, 2, "sram_ifmap_kib"),  # M near the stream in 12-16 tiles (`_stream_sizes`)
)


def dense_tiles(d: int) -> np.ndarray:
    """A dense set of tiles of a dimension of size d: every tile count's balanced tile, every tile up
    to 64 and every multiple of 16 up to 1024 (a superset of what a uniform tiling needs, near)."""
    sizes = {math.ceil(d / q) for q in range(1, d + 1)} | set(range(1, min(d, 64) + 1)) | set(range(16, min(d, 1024) + 1, 16))
    return np.array(sorted(sizes), dtype=float)


def best_uniform(spec, m, n, k, ba, bw) -> dict:
    """The best tiling from `dense_tiles` in every dimension, every loop order (`cost_tilings`'s result
    fields): an exhaustive search that does not share the mapper's candidate set."""
    from mixaq.simulator._gemm import DATAFLOW_ROLES
    from mixaq.simulator._mapper import cost_tilings
    from mixaq.simulator._precision import PRECISION_MODELS

    model, roles = PRECISION_MODELS[spec.precision_model], DATAFLOW_ROLES[spec.dataflow]
    tm, tn, tk = dense_tiles(m), dense_tiles(n), dense_tiles(k)
    step = max(1, 200_000 // (len(tn) * len(tk)))  # tilings per evaluation (memory bound)
    best = {"total": math.inf}
    for lo in range(0, len(tm), step):
        grid = np.meshgrid(tm[lo:lo + step], tn, tk, indexing="ij")
        found = cost_tilings(spec, model, roles, m, n, k, ba, bw, *(g.ravel() for g in grid))
        if found["total"] < best["total"]:
            best = found
    return best


def best_uniform_cycles(spec, m, n, k, ba, bw) -> float:
    """The fewest cycles of `best_uniform`."""
    return best_uniform(spec, m, n, k, ba, bw)["total"]


def candidates_per_gemm(spec, gemms: int, seed: int = 1) -> tuple[float, int]:
    """Mean array-tile pairs that fit per GEMM and stream tiles per pair (candidate tilings = their
    product) over random GEMMs of 1 to 2,500 per dimension at the spec's widest bits, before pruning."""
    from mixaq.simulator import _mapper, gemm_cost

    pairs_found, streams_found = [], []
    pairs, streams = _mapper._pairs, _mapper._stream_tiles

    def counting_pairs(*args, **kwargs):
        found = pairs(*args, **kwargs)
        pairs_found.append(len(found[0]))
        return found

    def counting_streams(*args, **kwargs):
        found = streams(*args, **kwargs)
        streams_found.append(found.shape[0])
        return found

    rng = np.random.default_rng(seed)
    _mapper._pairs, _mapper._stream_tiles = counting_pairs, counting_streams
    try:
        _mapper._MEMO.clear()
        for m, n, k in rng.integers(1, 2501, (gemms, 3)):
            gemm_cost(spec, int(m), int(n), int(k), spec.max_bits, spec.max_bits)
    finally:
        _mapper._pairs, _mapper._stream_tiles = pairs, streams
        _mapper._MEMO.clear()
    return sum(pairs_found) / gemms, max(streams_found)


def main() -> None:
    import dataclasses

    from mixaq.simulator import gemm_cost, list_specs, load_spec
    from mixaq.simulator._mapper import LOOP_ORDERS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gemms", type=int, default=100, help="random GEMMs per preset for the candidate count")
    args = parser.parse_args()
    for name in list_specs():
        pairs, streams = candidates_per_gemm(load_spec(name), args.gemms)
        print(f"{name}: {pairs * streams:,.0f} candidate tilings per GEMM ({pairs:,.0f} array-tile pairs x "
              f"{streams} stream tiles) x {len(LOOP_ORDERS)} loop orders, before pruning")
    for name, m, n, k, ba, bw, axis in GAP_CASES:
        spec = load_spec(name)
        got = gemm_cost(spec, m, n, k, ba, bw)
        halves = 0.0
        for part in (math.ceil({"m": m, "n": n, "k": k}[axis] / 2), {"m": m, "n": n, "k": k}[axis] // 2):
            shape = {**dict(m=m, n=n, k=k), axis: part}
            halves += gemm_cost(spec, shape["m"], shape["n"], shape["k"], ba, bw)["cycles"]
        ref = best_uniform(spec, m, n, k, ba, bw)
        tiles = lambda r: "x".join(str(int(r[key])) for key in ("tile_m", "tile_n", "tile_k"))  # noqa: E731
        print(f"{name} {m}x{n}x{k} A{ba} W{bw}: mapper {got['cycles']:,.0f} cycles ({tiles(got)}), exhaustive "
              f"uniform {ref['total']:,.0f} ({tiles(ref)}, {got['cycles'] / ref['total'] - 1.0:+.1%} above it), "
              f"halves along {axis.upper()} {halves:,.0f}")
    for name, m, n, k, ba, bw, grow in MORE_HARDWARE_CASES:
        spec = load_spec(name)
        bigger = dataclasses.replace(spec, **{grow: getattr(spec, grow) * 2})
        small, large = (gemm_cost(s, m, n, k, ba, bw) for s in (spec, bigger))
        print(f"{name} {m}x{n}x{k} A{ba} W{bw}, {grow} x 2: {large['cycles']:,.0f} cycles ({tiles(large)}) vs "
              f"{small['cycles']:,.0f} ({tiles(small)}) on the shipped spec")


if __name__ == "__main__":
    main()
