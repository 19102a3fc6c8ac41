"""Co-exploration throughput: hardware points scored per second, one spec at a time vs all at once
(`simulator.SpecGrid`), on the shipped `coexplore` space and the embedded default model's Swin
(swin_micro at 256x256). Ratios are measured in one run.

    python -m benchmarks.bench_hardware
"""
from __future__ import annotations

import time

import numpy as np

__all__ = ["main"]


def main() -> None:
    from mixaq.simulator import SpecGrid, estimate_batch, fractions_from_pair_ratios, get_arch

    from mixaq.search.hardware._hw_space import load_hw_space

    arch, hw = get_arch("swin_micro"), (256, 256)
    space = load_hw_space("coexplore")
    start = time.perf_counter()
    specs = [space.spec(int(i)) for i in space.indices(0)]
    build_s = time.perf_counter() - start
    low, pruned = fractions_from_pair_ratios(arch, hw, np.array([[0.3, 0.5, 0.2]]), 0.0)
    start = time.perf_counter()
    grid = SpecGrid(specs)
    prep_s = time.perf_counter() - start
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        out = grid.estimate(arch, hw, low, pruned, 8, 4, 4, unsupported="nan")
        best = min(best, time.perf_counter() - start)
    n_loop = 200
    start = time.perf_counter()
    loop = [estimate_batch(s, arch, hw, low, pruned, 8, 4, 4) for s in specs[:n_loop]]
    loop_s = (time.perf_counter() - start) / n_loop
    worst = max(abs(float(r["cycles"].iloc[0]) - out["cycles"][h, 0]) / float(r["cycles"].iloc[0])
                for h, r in enumerate(loop))
    print(f"coexplore space: {space.size:,} grid points, {len(specs):,} sampled; building their specs "
          f"{build_s:.2f} s, preparing the grid {prep_s:.2f} s")
    print(f"one assignment on every point: {best:.3f} s = {len(specs) / best:,.0f} hardware points/s; "
          f"one spec at a time (estimate_batch): {1 / loop_s:,.0f} points/s -> {loop_s * len(specs) / best:.1f}x "
          f"(largest relative cycle difference {worst:.1e})")


if __name__ == "__main__":
    main()
