"""The PTQ results table (a benchmark's, not the library's: `benchmarks.table_ptq`, `table_paper`): float, uniform W4A8 / W4A6 / W4A4, and MixA-Q W4A8/A4 at several low-bit
ratios with importance vs random vs reversed window selection -- measured mAP and simulated BOPs
speedup; `side_by_side` puts the tables of several PTQ observers next to each other."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from mixaq.models._config import IMPORTANCE, PERCENTILE, RANDOM, REVERSED

__all__ = ["ptq_table", "ratio_for_speedup", "side_by_side", "table_markdown"]


def _cost(spec, evaluator, assignment) -> dict[str, float]:  # noqa: ANN001
    from mixaq import simulator
    if None in (assignment.high_act_bits, assignment.low_act_bits, assignment.weight_bits):
        return {"bops": np.nan, "latency_ms": np.nan}
    t = simulator.estimate(spec, evaluator.arch, evaluator.image_hw, assignment).totals
    return {"bops": float(t.bops), "latency_ms": float(t.latency_ms)}


def ratio_for_speedup(spec: str, arch, image_hw: tuple[int, int], target: float, *, high_bits: int = 8,  # noqa: ANN001
                      low_bits: int = 4, weight_bits: int = 4, cost: str = "bops") -> float:
    """The low-bit window ratio (same for every block pair) whose simulated `cost` speedup over
    uniform W{w}A{high} is `target` (bisection on the simulator; ratios floor to window counts, so
    the speedup reached is the closest from below)."""
    from mixaq import simulator
    from mixaq.simulator import MixaqError, WindowAssignment

    spec_obj = simulator.load_spec(spec)
    attr = {"bops": "bops", "latency": "latency_ms", "cycles": "cycles", "energy": "energy_pj"}[cost]

    def speedup(r: float) -> float:
        base = simulator.estimate(spec_obj, arch, image_hw, WindowAssignment.uniform(arch, high_bits, weight_bits))
        a = WindowAssignment.from_pair_ratios(arch, image_hw, r, 0.0, high_bits, low_bits, weight_bits)
        return getattr(base.totals, attr) / getattr(simulator.estimate(spec_obj, arch, image_hw, a).totals, attr)

    if speedup(1.0) < target:
        raise MixaqError(f"a {target:g}x {cost} speedup is out of reach: every window low-bit gives {speedup(1.0):.3f}x")
    lo, hi = 0.0, 1.0
    for _ in range(30):  # 1e-9 resolution in the ratio
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if speedup(mid) < target else (lo, mid)
    return hi


def ptq_table(
    evaluator,  # noqa: ANN001 (models.detection.Evaluator)
    *,
    spec: str = "bitfusion",
    low_ratios: Sequence[float] = (0.3, 0.5, 0.7),
    strategies: Sequence[str] = (IMPORTANCE, RANDOM, REVERSED),
    random_seeds: Sequence[int] = (0, 1, 2),
    observer: str = PERCENTILE,
    progress: bool = True,
) -> pd.DataFrame:
    """One row per configuration (random selection: one row per seed). Speedups are over uniform
    W4A8 on the same spec; BOPs and latency are the Swin backbone's (the quantized part)."""
    from mixaq import simulator
    from tqdm import tqdm

    from mixaq.models import MixConfig, QuantConfig

    spec_obj = simulator.load_spec(spec)
    mix_q = QuantConfig(high_act_bits=8, low_act_bits=4, weight_bits=4, observer=observer)
    runs: list[tuple[str, str, float, int | None, object, object]] = [
        ("float", "-", 0.0, None, None, None),
        ("uniform W4A8", "-", 0.0, None, QuantConfig(8, 8, 4, observer=observer), None),
        ("uniform W4A6", "-", 0.0, None, QuantConfig(6, 6, 4, observer=observer), None),
        ("uniform W4A4", "-", 1.0, None, QuantConfig(4, 4, 4, observer=observer), None),
    ]
    for ratio in low_ratios:
        for strategy in strategies:
            seeds = random_seeds if strategy == RANDOM else (0,)
            for seed in seeds:
                runs.append(("MixA-Q W4A8/A4", strategy, float(ratio), seed if strategy == RANDOM else None,
                             mix_q, MixConfig(low_ratios=float(ratio), strategy=strategy, seed=int(seed))))
    rows = []
    for method, strategy, ratio, seed, quant, mix in tqdm(runs, desc="ptq table", disable=not progress):
        res = evaluator.evaluate(quant, mix)
        rows.append({"method": method, "selection": strategy, "low_ratio": ratio, "seed": seed,
                     **res.stats(), **(res.segm_stats() if res.has_segm else {}),
                     **_cost(spec_obj, evaluator, res.assignment),
                     "low_fraction_mean": float(np.mean(res.assignment.low_fraction)),
                     "n_images": res.n_images, "seconds": round(res.seconds, 2)})
    df = pd.DataFrame(rows)
    base = df.loc[df.method == "uniform W4A8"].iloc[0]
    df["bops_speedup"] = base.bops / df.bops
    df["latency_speedup"] = base.latency_ms / df.latency_ms
    df["ap_minus_w4a8"] = df.ap - base.ap
    if "ap_segm" in df:
        df["ap_segm_minus_w4a8"] = df.ap_segm - base.ap_segm
    return df


def table_markdown(df: pd.DataFrame, spec: str = "bitfusion") -> str:
    """Markdown table; random selection shown as the mean (and spread) over its seeds."""
    keys = ["method", "selection", "low_ratio"]
    masks = "ap_segm" in df
    segm = dict(mask_ap=("ap_segm", "mean"), d_mask=("ap_segm_minus_w4a8", "mean")) if masks else {}
    agg = df.groupby(keys, sort=False).agg(
        ap=("ap", "mean"), ap_std=("ap", "std"), ap50=("ap50", "mean"), ap75=("ap75", "mean"),
        d_ap=("ap_minus_w4a8", "mean"), bops=("bops_speedup", "mean"), lat=("latency_speedup", "mean"),
        n=("ap", "size"), **segm).reset_index()

    def pct(v: float) -> str:
        return "–" if not np.isfinite(v) else f"{100 * v:.1f}"

    def x(v: float) -> str:
        return "–" if not np.isfinite(v) else f"{v:.2f}×"

    mask_head = " mask AP | Δmask AP |" if masks else ""
    lines = ["| method | selection | low-bit windows | AP | AP50 | AP75 | ΔAP vs W4A8 |" + mask_head + " BOPs speedup | "
             f"latency speedup ({spec}) |", "|---|---|---|---|---|---|---|" + ("---|---|" if masks else "") + "---|---|"]
    for r in agg.itertuples():
        ap = pct(r.ap) + (f" ± {100 * r.ap_std:.1f}" if r.n > 1 else "")
        low = "–" if r.method == "float" else f"{100 * r.low_ratio:.0f}%"
        d_ap = f"{100 * r.d_ap:+.1f}"
        mask = f" {pct(r.mask_ap)} | {100 * r.d_mask:+.1f} |" if masks else ""
        lines.append(f"| {r.method} | {r.selection} | {low} | {ap} | {pct(r.ap50)} | {pct(r.ap75)} | {d_ap} |{mask} "
                     f"{x(r.bops)} | {x(r.lat)} |")
    return "\n".join(lines)


def side_by_side(frames: dict[str, pd.DataFrame]) -> str:
    """Markdown: one row per configuration, AP (and ΔAP vs float) per observer in adjacent columns."""
    keys = ["method", "selection", "low_ratio"]
    names = list(frames)
    merged = None
    for name, df in frames.items():
        agg = df.groupby(keys, sort=False).agg(ap=("ap", "mean"), ap_std=("ap", "std"), n=("ap", "size"),
                                               bops=("bops_speedup", "mean")).reset_index()
        float_ap = float(agg.loc[agg.method == "float", "ap"].iloc[0])
        agg = agg.rename(columns={"ap": f"ap_{name}", "ap_std": f"std_{name}"})
        agg[f"drop_{name}"] = agg[f"ap_{name}"] - float_ap
        cols = keys + [f"ap_{name}", f"std_{name}", f"drop_{name}"] + (["bops", "n"] if merged is None else [])
        merged = agg[cols] if merged is None else merged.merge(agg[cols], on=keys, how="left", sort=False)

    def ap(row, name: str) -> str:
        v, s = getattr(row, f"ap_{name}"), getattr(row, f"std_{name}")
        return "–" if not np.isfinite(v) else f"{100 * v:.1f}" + (f" ± {100 * s:.1f}" if row.n > 1 else "")

    head = " | ".join(f"AP {n} | Δ float {n}" for n in names)
    lines = [f"| method | selection | low-bit windows | {head} | BOPs speedup |",
             "|---|---|---|" + "---|---|" * len(names) + "---|"]
    for r in merged.itertuples():
        low = "–" if r.method == "float" else f"{100 * r.low_ratio:.0f}%"
        cells = " | ".join(f"{ap(r, n)} | {100 * getattr(r, f'drop_{n}'):+.1f}" for n in names)
        bops = "–" if not np.isfinite(r.bops) else f"{r.bops:.2f}×"
        lines.append(f"| {r.method} | {r.selection} | {low} | {cells} | {bops} |")
    return "\n".join(lines)
