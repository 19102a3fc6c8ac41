"""An analytic stand-in for the detector, to exercise storage/resume/Pareto machinery without torch.

It is NOT a measurement: tests and the search benchmark use it where the subject is the search
machinery (trial bookkeeping, kill -9 resume, workers), never to report accuracy.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from mixaq.simulator import SwinArch, WindowAssignment, get_arch

from mixaq.search.space._accuracy import AccuracyResult
from mixaq.search.space._space import DesignPoint

__all__ = ["SyntheticAccuracy"]


@dataclass(frozen=True)
class SyntheticAccuracy:
    """`ap = base - sum_b sens_b * (low_b * 2^-(low_bits-2) + pruned_b) - weight/act bit penalties`.

    Monotone non-increasing in every window fraction (what the dominance screen assumes), with
    per-block sensitivities drawn once from `seed`. `delay_s` imitates evaluation time.
    """

    arch_name: str = "swin_nano"
    image_hw: tuple[int, int] = (64, 64)
    base_ap: float = 0.5
    seed: int = 0
    delay_s: float = 0.0
    # Subset evaluations (--fidelity): the first n of `val_images` images estimate ap with noise of
    # sd `image_sd * sqrt(1/n - 1/val_images)` (finite-population sampling), fixed per (point, n): a
    # share `shared` of its variance is the subset's own difficulty, common to every point (as the
    # same images are easy or hard for every configuration), the rest is the point's own. Bootstrap
    # samples repeat that structure, with the common part drawn alike for every point.
    val_images: int = 500
    image_sd: float = 0.3
    shared: float = 0.8
    n_boot: int = 100

    @property
    def arch(self) -> SwinArch:
        return get_arch(self.arch_name)

    def fingerprint(self) -> dict[str, Any]:
        return {"synthetic": self.arch_name, "image_hw": list(self.image_hw), "seed": self.seed}

    def __call__(self) -> "_SyntheticFn":
        # The frozen dataclass is the picklable factory handed to worker processes.
        return _SyntheticFn(self)

    def evaluate(self, point: DesignPoint, n_images: int | None = None, bootstrap: int = 0) -> AccuracyResult:
        start = time.perf_counter()
        if point.mode != "ratio":
            raise ValueError("the synthetic objective models ratio mode only")
        arch = self.arch
        a = WindowAssignment.from_pair_ratios(arch, self.image_hw, point.low_ratios, point.prune_ratios,
                                              point.high_act_bits, point.low_act_bits, point.weight_bits)
        sens = np.random.default_rng(self.seed).uniform(0.01, 0.05, arch.num_blocks)
        if point.strategy == "reversed":
            sens = sens * 3.0
        elif point.strategy == "random":
            sens = sens * 1.8

        def bit_loss(bits: int | None) -> float:
            return 0.0 if bits is None else 2.0 ** -(bits - 2)

        low = np.asarray(a.low_fraction) * max(bit_loss(point.low_act_bits) - bit_loss(point.high_act_bits), 0.0) * 10
        loss = float(np.sum(sens * (low + np.asarray(a.pruned_fraction))))
        loss += 0.02 * bit_loss(point.high_act_bits) + 0.03 * bit_loss(point.weight_bits)
        if self.delay_s:
            time.sleep(self.delay_s)
        ap = max(self.base_ap - loss, 0.0)
        n = self.val_images if n_images is None else min(int(n_images), self.val_images)
        lo = hi = float("nan")
        boot: tuple[float, ...] = ()
        if n < self.val_images:
            sd = self.image_sd * np.sqrt(1.0 / n - 1.0 / self.val_images)
            sd_common, sd_own = sd * np.sqrt(self.shared), sd * np.sqrt(1.0 - self.shared)
            common = np.random.default_rng([self.seed, n]).standard_normal(1 + self.n_boot)
            own = np.random.default_rng([self.seed, n, zlib.crc32(point.describe().encode())]).standard_normal(
                1 + self.n_boot)
            ap = ap + sd_common * common[0] + sd_own * own[0]
            if bootstrap:
                samples = ap + sd_common * common[1:] + sd_own * own[1:]
                lo, hi = (float(v) for v in np.percentile(samples, [2.5, 97.5]))
                boot = tuple(float(v) for v in samples)
        return AccuracyResult(ap=ap, ap50=max(self.base_ap + 0.2 - loss, 0.0),
                              assignment=a, n_images=n if n_images is not None else 0,
                              seconds=time.perf_counter() - start, ap_ci_low=lo, ap_ci_high=hi, ap_boot=boot)


class _SyntheticFn:
    """`SyntheticAccuracy` behind the `AccuracyFn` protocol."""

    def __init__(self, model: SyntheticAccuracy) -> None:
        self._model = model
        self.arch = model.arch
        self.image_hw = tuple(model.image_hw)

    def fingerprint(self) -> dict[str, Any]:
        return self._model.fingerprint()

    def __call__(self, point: DesignPoint, n_images: int | None = None, bootstrap: int = 0) -> AccuracyResult:
        if n_images is None and not bootstrap:  # the full set: subclasses may override evaluate(point)
            return self._model.evaluate(point)
        return self._model.evaluate(point, n_images, bootstrap)
