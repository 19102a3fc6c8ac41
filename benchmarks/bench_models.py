"""Two-branch Swin: speed vs timm, recorded window counts vs requested ratios, selection strategies.

`python -m benchmarks.bench_models` prints three tables, all measured in this run:
1. forward time of the converted, fake-quantized Swin-T vs timm's float forward of the same model;
2. windows per block recorded by the model vs `simulator.window_counts` of the requested ratios;
3. feature-map error vs float of importance / random / reversed window selection at equal low-bit
   (and pruning) ratios, on a Swin briefly trained to segment textured objects on textured ground.
"""
from __future__ import annotations

import copy
import math
import time

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from mixaq.models import (
    MixConfig,
    QuantConfig,
    assignment_from_record,
    build_swin,
    calibrating,
    convert_swin,
    get_record,
    set_mix,
    set_quant,
)
from mixaq.models._importance_objects import importance_object_correlation
from mixaq.simulator import WindowAssignment, get_arch, window_counts

# One thread: the CPU is shared, and a single-threaded ratio is the least disturbed by neighbours.
THREADS = 1
TIMING_REPEATS = 15
TRAIN_STEPS = 300
TRAIN_BATCH = 16
SCENE_PX = 96
VAL_IMAGES = 64
CALIB_IMAGES = 32
RANDOM_SEEDS = (0, 1, 2)


# -- 1. speed -----------------------------------------------------------------------------------
def _timings(arch: str = "swin_t", image_px: int = 224, batch: int = 1) -> pd.DataFrame:
    torch.manual_seed(0)
    reference = build_swin(arch, image_px).eval()
    model = convert_swin(copy.deepcopy(reference))
    x = torch.randn(batch, 3, image_px, image_px)
    quant = QuantConfig(high_act_bits=8, low_act_bits=4, weight_bits=4)
    set_quant(model, quant)
    with torch.no_grad(), calibrating(model):
        model(x)
    cases = {
        "timm float": (None, None),
        "converted, float branches": (QuantConfig.float(), None),
        "W4A8 uniform (no mix)": (quant, None),
        "W4 A8/A4, low 0.5": (quant, MixConfig(low_ratios=0.5)),
        "W4 A8/A4, low 0.4 + prune 0.2": (quant, MixConfig(low_ratios=0.4, prune_ratios=0.2)),
        "W4 A8/A4, threshold 1.0/0.5": (quant, MixConfig(mode="threshold", low_thresholds=1.0, prune_thresholds=0.5)),
    }
    float_model = convert_swin(copy.deepcopy(reference), QuantConfig.float())
    times: dict[str, list[float]] = {name: [] for name in cases}
    with torch.no_grad():
        for _ in range(2):  # warm-up
            reference(x)
            model(x)
        # Interleaved repeats, minimum kept: the least disturbed run of each case.
        for _ in tqdm(range(TIMING_REPEATS), desc="timing", leave=False):
            for name, (q, mix) in cases.items():
                net = reference if q is None else (float_model if q.high_act_bits is None else model)
                if q is not None:
                    set_mix(net, mix)
                start = time.perf_counter()
                net(x)
                times[name].append(time.perf_counter() - start)
    base = np.asarray(times["timm float"])
    return pd.DataFrame(
        {
            "case": list(times),
            "min_ms": [1e3 * min(t) for t in times.values()],
            "ratio_of_mins": [min(t) / base.min() for t in times.values()],
            # Each run against the timm run of the same round: robust to slow drifts in CPU load.
            "median_paired_ratio": [float(np.median(np.asarray(t) / base)) for t in times.values()],
        }
    )


# -- 2. recorded window counts ------------------------------------------------------------------
def _window_count_check(arch_name: str = "swin_t") -> tuple[pd.DataFrame, float]:
    arch = get_arch(arch_name)
    rng = np.random.default_rng(0)
    rows, worst = [], 0.0
    for hw in ((224, 224), (256, 320)):
        torch.manual_seed(0)
        model = convert_swin(build_swin(arch, hw, features_only=True).eval())
        # Paper's knob grid: 0 .. 0.8 in steps of 0.1, pruning kept so that low + prune <= 1.
        low = np.round(rng.integers(0, 9, arch.num_pairs) / 10, 1)
        prune = np.round(rng.integers(0, 3, arch.num_pairs) / 10, 1)
        set_mix(model, MixConfig(low_ratios=tuple(low), prune_ratios=tuple(prune)))
        with torch.no_grad():
            model(torch.randn(2, 3, *hw))
        record = get_record(model)
        n = arch.windows_per_block(hw)
        pair = arch.pair_of_block()
        want_high, want_low, want_pruned = window_counts(n, low[pair], prune[pair])
        for block in range(arch.num_blocks):
            rows.append(
                dict(
                    image_hw=f"{hw[0]}x{hw[1]}",
                    block=block,
                    windows=int(n[block]),
                    low_ratio=low[pair[block]],
                    prune_ratio=prune[pair[block]],
                    requested=f"{want_high[block]}/{want_low[block]}/{want_pruned[block]}",
                    recorded=f"{record.n_high[0, block]}/{record.n_low[0, block]}/{record.n_pruned[0, block]}",
                    match=bool(
                        (record.n_high[:, block] == want_high[block]).all()
                        and (record.n_low[:, block] == want_low[block]).all()
                        and (record.n_pruned[:, block] == want_pruned[block]).all()
                    ),
                )
            )
        got = assignment_from_record(record, QuantConfig())
        want = WindowAssignment.from_pair_ratios(arch, hw, tuple(low), tuple(prune))
        worst = max(
            worst,
            float(np.abs(np.subtract(got.low_fraction, want.low_fraction)).max()),
            float(np.abs(np.subtract(got.pruned_fraction, want.pruned_fraction)).max()),
        )
    return pd.DataFrame(rows), worst


# -- 3. selection strategies on a briefly trained model -----------------------------------------
def scenes(batch: int, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, 3, S, S) of 1-4 striped objects (ellipses / rectangles) on smooth coloured ground
    with fine noise, and their object masks (B, 1, S, S)."""
    g = generator
    coarse = F.interpolate(torch.rand(batch, 3, 6, 6, generator=g), size=size, mode="bilinear", align_corners=False)
    image = 0.6 * coarse + 0.08 * torch.randn(batch, 3, size, size, generator=g)
    k = 4
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    centers = torch.rand(batch, k, 2, generator=g) * size * 0.8 + size * 0.1
    radii = torch.rand(batch, k, 2, generator=g) * size * 0.12 + size * 0.05
    dy = (yy - centers[..., 0, None, None]) / radii[..., 0, None, None]  # (B, k, S, S)
    dx = (xx - centers[..., 1, None, None]) / radii[..., 1, None, None]
    ellipse = dy.pow(2) + dx.pow(2) <= 1
    rect = (dy.abs() <= 1) & (dx.abs() <= 1)
    is_rect = torch.rand(batch, k, 1, 1, generator=g) < 0.5
    present = torch.arange(k).view(1, k, 1, 1) < torch.randint(1, k + 1, (batch, 1, 1, 1), generator=g)
    shapes = torch.where(is_rect, rect, ellipse) & present  # (B, k, S, S)
    theta = torch.rand(batch, k, 1, 1, generator=g) * math.pi
    freq = torch.rand(batch, k, 1, 1, generator=g) * 0.25 + 0.15
    stripes = 0.5 + 0.5 * torch.sin(freq * (xx * torch.cos(theta) + yy * torch.sin(theta)) * 2 * math.pi)
    color = torch.rand(batch, k, 3, generator=g)
    for obj in range(k):  # a few objects painted in order (later ones on top)
        m = shapes[:, obj, None]
        paint = color[:, obj, :, None, None] * (0.3 + 1.2 * stripes[:, obj, None])
        image = torch.where(m, paint, image)
    mask = shapes.any(1, keepdim=True).float()
    return (image - 0.5) / 0.3, mask


class _Segmenter(nn.Module):
    """Swin features_only backbone + 1x1 heads: object mask logits at strides 8 and 16."""

    def __init__(self, arch: str, size: int) -> None:
        super().__init__()
        self.backbone = build_swin(arch, size, features_only=True)
        dims = [info["num_chs"] for info in self.backbone.feature_info.get_dicts()]
        self.heads = nn.ModuleList(nn.Linear(d, 1) for d in dims[1:])

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        feats = self.backbone(x)  # NHWC maps
        return feats, [head(f).squeeze(-1) for head, f in zip(self.heads, feats[1:])]


def _train_segmenter(arch: str) -> tuple[_Segmenter, float]:
    torch.manual_seed(0)
    model = _Segmenter(arch, SCENE_PX)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    gen = torch.Generator().manual_seed(1)
    model.train()
    loss = torch.tensor(0.0)
    for _ in tqdm(range(TRAIN_STEPS), desc="train segmenter", leave=False):
        x, mask = scenes(TRAIN_BATCH, SCENE_PX, gen)
        _, logits = model(x)
        loss = sum(
            F.binary_cross_entropy_with_logits(lg, F.adaptive_avg_pool2d(mask, lg.shape[-2:]).squeeze(1)) for lg in logits
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), float(loss.detach())


def _iou(logits: list[torch.Tensor], mask: torch.Tensor) -> float:
    lg = logits[-1]
    target = F.adaptive_avg_pool2d(mask, lg.shape[-2:]).squeeze(1) > 0.5
    pred = lg > 0
    return float((pred & target).sum() / (pred | target).sum().clamp_min(1))


def _strategy_errors(model: _Segmenter, x: torch.Tensor, mask: torch.Tensor, calib: torch.Tensor) -> pd.DataFrame:
    with torch.no_grad():
        float_feats, float_logits = model(x)
    float_iou = _iou(float_logits, mask)
    settings = [
        ("W4 A8/A4 PTQ", QuantConfig(high_act_bits=8, low_act_bits=4, weight_bits=4, observer="percentile"), "low"),
        ("W8 A8/A3 PTQ", QuantConfig(high_act_bits=8, low_act_bits=3, weight_bits=8, observer="percentile"), "low"),
        ("float, pruning", QuantConfig.float(), "prune"),
    ]
    rows = []
    for label, quant, knob in tqdm(settings, desc="strategies", leave=False):
        net = copy.deepcopy(model)
        convert_swin(net, quant)
        with torch.no_grad(), calibrating(net):
            net(calib)
        for ratio in (0.3, 0.5, 0.7):
            for strategy in ("importance", "random", "reversed"):
                seeds = RANDOM_SEEDS if strategy == "random" else (0,)
                stage_err, ious = [], []
                for seed in seeds:
                    kwargs = {"low_ratios" if knob == "low" else "prune_ratios": ratio}
                    set_mix(net, MixConfig(strategy=strategy, seed=seed, **kwargs))
                    with torch.no_grad():
                        feats, logits = net(x)
                    stage_err.append([float((f - g).norm() / g.norm()) for f, g in zip(feats, float_feats)])
                    ious.append(_iou(logits, mask))
                err = np.mean(stage_err, axis=0)
                rows.append(
                    dict(
                        setting=label,
                        knob=knob,
                        ratio=ratio,
                        strategy=strategy,
                        **{f"rel_err_stage{i}": e for i, e in enumerate(err)},
                        rel_err_mean=float(err.mean()),
                        mask_iou=float(np.mean(ious)),
                        float_iou=float_iou,
                    )
                )
    return pd.DataFrame(rows)


def _importance_vs_objects(model: _Segmenter, x: torch.Tensor, mask: torch.Tensor) -> pd.DataFrame:
    """Per stage: Spearman correlation, within each image, between a window's importance (the rule the
    model uses, regular grid) and the share of its real tokens covered by objects."""
    return importance_object_correlation(model, lambda net: net(x), mask)


def main() -> None:
    torch.set_num_threads(THREADS)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print(f"torch threads: {THREADS}")

    print("\n[1] forward time, Swin-T 224x224 batch 1, fake-quant two-branch vs timm float (min of "
          f"{TIMING_REPEATS} interleaved runs)")
    timing = _timings()
    print(timing.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    worst = timing["ratio_of_mins"].iloc[1:].max()
    print(f"worst ratio of mins vs timm: {worst:.2f}x (goal <= 1.3x)")

    print("\n[2] recorded windows (high/low/pruned) vs simulator.window_counts, Swin-T, random per-pair ratios")
    counts, worst_fraction = _window_count_check()
    print(counts.to_string(index=False))
    print(f"blocks matching: {int(counts['match'].sum())}/{len(counts)}; "
          f"max |record fraction - from_pair_ratios fraction| = {worst_fraction:.2e}")

    print(f"\n[3] selection strategies: swin_micro trained {TRAIN_STEPS} steps to segment striped objects "
          f"({SCENE_PX}px scenes), {VAL_IMAGES} val images; relative feature error vs float "
          f"(random = mean of {len(RANDOM_SEEDS)} seeds)")
    start = time.perf_counter()
    model, loss = _train_segmenter("swin_micro")
    print(f"trained in {time.perf_counter() - start:.0f} s, final train loss {loss:.3f}")
    gen = torch.Generator().manual_seed(123)
    x, mask = scenes(VAL_IMAGES, SCENE_PX, gen)
    calib, _ = scenes(CALIB_IMAGES, SCENE_PX, gen)
    print("importance vs objects (mean within-image Spearman of window importance and object share):")
    print(_importance_vs_objects(model, x, mask).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    table = _strategy_errors(model, x, mask, calib)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    pivot = table.pivot_table(index=["setting", "ratio"], columns="strategy", values="rel_err_mean")
    pivot["importance<random<reversed"] = (pivot["importance"] < pivot["random"]) & (pivot["random"] < pivot["reversed"])
    print("\nmean relative feature error by strategy:")
    print(pivot.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
