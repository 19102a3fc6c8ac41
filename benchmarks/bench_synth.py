"""Synthetic data rendering speed: images/s of each generator (the training stream renders on the fly).

Rounds interleave the generators (the same images each round), so a load change on the shared machine
hits both; the ratio is of the best rounds and the median of per-round ratios, all from this run.
"""
from __future__ import annotations

import time

import numpy as np


def main(n_images: int = 64, rounds: int = 5, size: int = 256) -> None:
    from mixaq.models.data._synth import GENERATORS, renderer

    renders = {g: renderer(g) for g in GENERATORS}
    seconds: dict[str, list[float]] = {g: [] for g in GENERATORS}
    for _ in range(rounds):
        for g, render in renders.items():
            start = time.perf_counter()
            for i in range(n_images):
                render(1, i, (size, size))
            seconds[g].append(time.perf_counter() - start)
    base = GENERATORS[0]
    print(f"{n_images} images of {size}x{size} per round, {rounds} interleaved rounds, one process")
    print(f"{'generator':<10} {'best img/s':>11} {'median img/s':>13} {'vs ' + base + ' (best / median ratio)':>32}")
    for g in GENERATORS:
        best, med = n_images / min(seconds[g]), n_images / float(np.median(seconds[g]))
        ratio_best = min(seconds[base]) / min(seconds[g])
        ratio_med = float(np.median(np.array(seconds[base]) / np.array(seconds[g])))
        print(f"{g:<10} {best:>11.1f} {med:>13.1f} {ratio_best:>20.2f}x / {ratio_med:.2f}x")


if __name__ == "__main__":
    main()
