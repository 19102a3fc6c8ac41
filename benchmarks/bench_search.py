"""Search machinery: simulator screening throughput, Pareto filtering, storage overhead per trial,
and how many mAP evaluations the cheap-before-expensive screen saves. Ratios are measured in one run.

    python -m benchmarks.bench_search
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


def _rate(fn, n: int, repeat: int = 3) -> float:
    best = min(_timed(fn) for _ in range(repeat))
    return n / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_screen() -> None:
    from mixaq.simulator import WindowAssignment, estimate, get_arch

    from mixaq.search.space._cost import CostModel
    from mixaq.search.space._space import SearchSpace

    arch = get_arch("swin_t")
    hw = (224, 224)
    cost = CostModel.load("bitfusion", arch, hw, 8, 4)
    space = SearchSpace(num_pairs=arch.num_pairs, search_prune=True)
    n = 4096
    arr = space.sample_ratios(np.random.default_rng(0), n)
    batch = _rate(lambda: cost.score_arrays(arr["high_act_bits"], arr["low_act_bits"], arr["weight_bits"],
                                            arr["low_ratios"], arr["prune_ratios"]), n)
    k = 64

    def loop() -> None:
        for i in range(k):
            a = WindowAssignment.from_pair_ratios(arch, hw, arr["low_ratios"][i], arr["prune_ratios"][i], 8, 4, 4)
            estimate(cost.spec, arch, hw, a).totals  # noqa: B018 (the work is the point)

    single = _rate(loop, k)
    print(f"simulator screen, Swin-T 224 on bitfusion: estimate_batch {batch:,.0f} configs/s, "
          f"estimate() loop {single:,.0f} configs/s -> batch {batch / single:.0f}x")


def bench_pareto() -> None:
    from mixaq.search.space._pareto import pareto_mask

    rng = np.random.default_rng(0)
    # Random points (most are dominated early) and points on a trade-off curve (all on the front:
    # the worst case for a pairwise check, which then cannot stop early).
    x = rng.random(1000)
    cases = {"random": rng.random((1000, 2)), "front-heavy": np.stack([x, 1.0 - x], axis=1)}
    for label, values in cases.items():
        pts = values.tolist()

        def brute() -> list[bool]:
            return [not any(b[0] >= a[0] and b[1] >= a[1] and (b[0] > a[0] or b[1] > a[1]) for b in pts)
                    for a in pts]

        fast = min(_timed(lambda: pareto_mask(values)) for _ in range(5))
        slow = _timed(brute)
        assert pareto_mask(values).tolist() == brute()
        print(f"pareto_mask, 1000 {label} points: {fast * 1e3:.2f} ms vs pure-Python pairwise "
              f"{slow * 1e3:.0f} ms -> {slow / fast:.0f}x")


def bench_storage_and_screen() -> None:
    from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep, trial_counts
    from mixaq.search.study._storage import get_storage

    settings = SweepSettings(space=SearchSpace(num_pairs=2, search_prune=True), spec="bitfusion",
                             population_size=8)
    n = 40
    with tempfile.TemporaryDirectory() as tmp:
        times = {}
        for label, url in (("sqlite", f"sqlite:///{Path(tmp) / 's.db'}"), ("journal", f"journal:{Path(tmp) / 's.log'}")):
            start = time.perf_counter()
            r = run_sweep(settings, SyntheticAccuracy(), url, "bench", n, progress=False)
            times[label] = (time.perf_counter() - start) / (r.n_complete + r.n_pruned)
        print(f"sweep wall time per proposal incl. setup and baselines (analytic objective, {n} completed): "
              f"sqlite {times['sqlite'] * 1e3:.0f} ms, journal {times['journal'] * 1e3:.0f} ms "
              f"-> journal {times['sqlite'] / times['journal']:.1f}x cheaper")
        import optuna

        study = optuna.load_study(study_name="bench", storage=get_storage(f"sqlite:///{Path(tmp) / 's.db'}"))
        counts = trial_counts(study)
        from mixaq.search.study._study import trial_info

        outcomes = [trial_info(t).get("outcome") for t in study.get_trials()]
        screened = sum(o in ("rejected_dominated", "rejected_map_bound") for o in outcomes)
        cached = outcomes.count("cached")
        proposals = counts["complete"] + counts["pruned"]
        print(f"screen over {proposals} proposals: {screened} rejected before mAP (dominated under the "
              f"monotone assumption), {cached} served from the mAP cache, "
              f"{proposals - screened - cached} evaluated -> {proposals / max(proposals - screened - cached, 1):.2f}x "
              f"fewer evaluations than proposals")


def bench_eval_vs_screen() -> None:
    """What one mAP evaluation costs relative to one simulator score (default model if present)."""
    try:
        from mixaq.search.space._accuracy import EvaluatorFactory
        from mixaq.search.space._space import DesignPoint

        acc = EvaluatorFactory(max_images=32, torch_threads=2)()
    except Exception as exc:  # the embedded default model may not be built in this checkout
        print(f"eval vs screen: skipped ({exc})")
        return
    from mixaq.search.space._cost import CostModel

    cost = CostModel.load("bitfusion", acc.arch, acc.image_hw, 8, 4)
    point = DesignPoint(8, 4, 4, (0.5,) * acc.arch.num_pairs, (0.0,) * acc.arch.num_pairs)
    acc(point)  # calibrate once
    eval_s = min(_timed(lambda: acc(point)) for _ in range(2))
    arr = {"high": np.full(1024, 8), "low": np.full(1024, 4), "w": np.full(1024, 4),
           "lr": np.full((1024, acc.arch.num_pairs), 0.5), "pr": np.zeros((1024, acc.arch.num_pairs))}
    score_s = 1.0 / _rate(lambda: cost.score_arrays(arr["high"], arr["low"], arr["w"], arr["lr"], arr["pr"]), 1024)
    print(f"default model, 32 images: one mAP evaluation {eval_s:.2f} s vs one simulator score "
          f"{score_s * 1e6:.1f} us -> {eval_s / score_s:,.0f}x")


def main() -> None:
    bench_screen()
    bench_pareto()
    bench_storage_and_screen()
    bench_eval_vs_screen()


if __name__ == "__main__":
    main()
