"""The QAT/SAQA results table: uniform QAT baselines and MixA-Q W4 A4/A2 at matched BOPs speedups,
with and without SAQA, with and without pruning -- measured mAP, simulated cost."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from mixaq.simulator import MixaqError

__all__ = ["matched_ratios", "qat_table", "qat_markdown", "TableCheckpoints"]

# Ratio grid searched for a target speedup (every pair gets the same ratios); 0.8 is the paper's cap.
_RATIO_GRID = np.linspace(0.0, 0.8, 801)


def matched_ratios(arch, image_hw, target_speedup: float, *, spec: str = "bitfusion", high_bits: int = 4,  # noqa: ANN001
                   low_bits: int | None = 2, weight_bits: int = 4, prune_per_low: float | None = 0.0) -> tuple[float, float, float]:
    """(low_ratio, prune_ratio, predicted BOPs speedup): the smallest ratio r on a 0.001 grid in
    [0, 0.8] whose simulated BOPs speedup over uniform W{weight}A{high} reaches `target_speedup`,
    every pair at low = r and prune = `prune_per_low` * r; `prune_per_low=None` prunes only
    (prune = r, low = 0: SparseViT-style). Raises if the target is out of reach."""
    from mixaq import simulator
    spec_obj = simulator.load_spec(spec)
    r = _RATIO_GRID
    low, prune = (np.zeros_like(r), r) if prune_per_low is None else (r, np.minimum(r * prune_per_low, 0.8))
    keep = low + prune <= 1.0
    low, prune = low[keep], prune[keep]
    low_f, prune_f = simulator.fractions_from_pair_ratios(arch, image_hw, low[:, None].repeat(arch.num_pairs, 1),
                                                          prune[:, None].repeat(arch.num_pairs, 1))
    costs = simulator.estimate_batch_arrays(spec_obj, arch, image_hw, low_f, prune_f, high_bits,
                                            low_bits if low_bits is not None else high_bits, weight_bits)
    reference = simulator.reference_cost(spec_obj, arch, image_hw, high_bits, weight_bits).totals.as_dict()
    speedup = simulator.speedups(costs, reference)["bops"]
    hit = np.flatnonzero(speedup >= target_speedup - 1e-9)
    if hit.size == 0:
        raise MixaqError(f"speedup {target_speedup} is out of reach (max {speedup.max():.3f}x with ratios <= 0.8)")
    i = hit[0]
    return float(low[i]), float(prune[i]), float(speedup[i])


@dataclass(frozen=True)
class TableCheckpoints:
    """The checkpoints the table compares (None = row group skipped)."""

    float_model: Path | None
    qat_w4a4: Path
    qat_w4a3: Path | None
    qat_w4a2: Path | None
    saqa: Path | None


def _training(extra: dict) -> str:
    q = extra.get("qat")
    if not q:
        return f"float, {extra.get('steps_done', '?')} steps"
    return f"{q.get('kind', '?').upper()} {q.get('steps_done', '?')} steps, {q.get('seconds', 0) / 60:.0f} min"


def qat_table(ckpts: TableCheckpoints, data=None, *, spec: str = "bitfusion", targets: Sequence[float] = (1.25, 1.35, 1.5),  # noqa: ANN001
              prune_per_low: float = 0.5, max_images: int | None = None, calib_images: int = 32,
              low_observer: str = "mse", sparsevit: bool = True, cache: pd.DataFrame | None = None,
              progress: bool = True) -> pd.DataFrame:
    """One row per evaluated configuration. Speedups (BOPs, latency on `spec`) are over uniform
    W4A4 and come from the windows the model recorded; `target` is what the ratios were chosen for.

    `cache`: rows of an earlier run (its CSV); a row whose method, ratios, evaluation setting and
    checkpoint file (path, size, mtime) all match is reused instead of evaluated again."""
    from mixaq import simulator
    from tqdm import tqdm

    from mixaq.models import MixConfig, QuantConfig
    from mixaq.models.evaluation._evaluate import Evaluator

    spec_obj = simulator.load_spec(spec)
    evaluators: dict[Path, Evaluator] = {}

    def evaluator(path: Path) -> Evaluator:
        if path not in evaluators:
            shared = next(iter(evaluators.values())).dataset if evaluators else data
            evaluators[path] = Evaluator(path, shared, max_images=max_images, calib_images=calib_images)
        return evaluators[path]

    w4a4 = QuantConfig(4, 4, 4, observer=low_observer)
    mixed = QuantConfig(4, 2, 4, observer=low_observer)
    runs: list[tuple] = []  # (method, training label source, checkpoint, quant, target, low, prune)
    if ckpts.float_model is not None:
        runs += [("float", ckpts.float_model, None, None, 0.0, 0.0),
                 ("PTQ W4A4 (no training)", ckpts.float_model, QuantConfig(4, 4, 4, observer="percentile"), None, 0.0, 0.0)]
    runs.append(("QAT W4A4", ckpts.qat_w4a4, w4a4, 1.0, 0.0, 0.0))
    for bits, path in ((3, ckpts.qat_w4a3), (2, ckpts.qat_w4a2)):
        if path is not None:
            runs.append((f"QAT W4A{bits}", path, QuantConfig(bits, bits, 4, observer=low_observer), None, 0.0, 0.0))
    arch = evaluator(ckpts.qat_w4a4).arch
    image_hw = evaluator(ckpts.qat_w4a4).image_hw
    reference = simulator.reference_cost(spec_obj, arch, image_hw, act_bits=4, weight_bits=4).totals.as_dict()
    plans = {}
    for t in targets:
        plans[("low", t)] = matched_ratios(arch, image_hw, t, spec=spec, prune_per_low=0.0)
        plans[("prune+low", t)] = matched_ratios(arch, image_hw, t, spec=spec, prune_per_low=prune_per_low)
        plans[("prune", t)] = matched_ratios(arch, image_hw, t, spec=spec, prune_per_low=None)
    sources = [("MixA-Q W4A4/A2, no SAQA", ckpts.qat_w4a4)]
    if ckpts.saqa is not None:
        sources.append(("MixA-Q W4A4/A2 + SAQA", ckpts.saqa))
        runs.append(("MixA-Q W4A4/A2 + SAQA", ckpts.saqa, mixed, 1.0, 0.0, 0.0))
    for kind, label in (("low", ""), ("prune+low", " + pruning")):
        for t in targets:
            low, prune, _ = plans[(kind, t)]
            for name, path in sources:
                runs.append((name + label, path, mixed, t, low, prune))
    if sparsevit:
        for t in targets:
            low, prune, _ = plans[("prune", t)]
            runs.append(("window pruning only (SparseViT-style), QAT W4A4", ckpts.qat_w4a4, w4a4, t, low, prune))

    rows = []
    setting = f"images={max_images} calib={calib_images} spec={spec} observer={low_observer}"
    cached = {} if cache is None else {
        (r["method"], r["checkpoint"], r["checkpoint_stamp"], r["eval_setting"], round(r["low_ratio"], 6),
         round(r["prune_ratio"], 6)): r for r in cache.to_dict("records")}
    for method, path, quant, target, low, prune in tqdm(runs, desc="qat table", disable=not progress):
        stat = Path(path).stat()
        stamp = f"{stat.st_size}-{int(stat.st_mtime)}"
        key = (method, str(path), stamp, setting, round(low, 6), round(prune, 6))
        if key in cached:
            rows.append({**cached[key], "target_speedup": target, "reused": True})
            continue
        ev = evaluator(path)
        mix = None if quant is None or (low == 0 and prune == 0) else MixConfig(low_ratios=low, prune_ratios=prune)
        res = ev.evaluate(quant, mix)
        a = res.assignment
        if None in (a.high_act_bits, a.low_act_bits, a.weight_bits):
            bops, speedup = np.nan, {"bops": np.nan, "latency": np.nan}
        else:
            totals = simulator.estimate(spec_obj, ev.arch, ev.image_hw, a).totals.as_dict()
            bops, speedup = totals["bops"], simulator.speedups(totals, reference)
        rows.append({"method": method, "checkpoint": str(path), "checkpoint_stamp": stamp, "eval_setting": setting,
                     "training": _training(ev.extra),
                     "target_speedup": target, "low_ratio": low, "prune_ratio": prune, **res.stats(),
                     "bops": bops, "bops_speedup": speedup["bops"], "latency_speedup": speedup["latency"],
                     "low_fraction_mean": float(np.mean(a.low_fraction)),
                     "pruned_fraction_mean": float(np.mean(a.pruned_fraction)),
                     "n_images": res.n_images, "seconds": round(res.seconds, 1), "reused": False})
    df = pd.DataFrame(rows)
    ref_ap = df.loc[df.method == "QAT W4A4", "ap"].iloc[0]
    df["ap_minus_qat_w4a4"] = df.ap - ref_ap
    return df


def qat_markdown(df: pd.DataFrame, spec: str = "bitfusion") -> str:
    def pct(v: float) -> str:
        return "–" if not np.isfinite(v) else f"{100 * v:.1f}"

    def x(v: float) -> str:
        return "–" if v is None or not np.isfinite(v) else f"{v:.2f}×"

    lines = ["| method | target | low / pruned ratio per pair | AP | AP50 | AP75 | ΔAP vs QAT W4A4 | BOPs speedup | "
             f"latency speedup ({spec}) | trained |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples():
        target = "–" if pd.isna(r.target_speedup) or not r.target_speedup else f"{r.target_speedup:.2f}×"
        ratios = "–" if r.low_ratio == 0 and r.prune_ratio == 0 else f"{r.low_ratio:.3f} / {r.prune_ratio:.3f}"
        lines.append(f"| {r.method} | {target} | {ratios} | {pct(r.ap)} | {pct(r.ap50)} | {pct(r.ap75)} | "
                     f"{100 * r.ap_minus_qat_w4a4:+.1f} | {x(r.bops_speedup)} | {x(r.latency_speedup)} | {r.training} |")
    return "\n".join(lines)
