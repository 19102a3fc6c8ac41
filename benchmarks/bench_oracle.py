"""Agreement of mixaq's Swin Mask R-CNN / Cascade Mask R-CNN with mmdetection 3.3.0 (the oracle).

    python -m benchmarks.bench_oracle [--scale 1333,800] [--images 4] [--out docs/oracle.md]

Random small models of both families saved in both checkpoint formats (official release and
mmdet 3.x, the latter made by mmdet's own converter), synthetic images of different sizes, the
reference test scale: fraction of mmdet's detections mixaq reproduces (box IoU >= 0.98, score within
0.01, same label, mask IoU >= 0.95), the worst box / mask IoU and score difference, and COCOeval
bbox / segm AP of both on ground truth made from mmdet's detections. Needs `make mmdet-venv`.
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path


def timm_vs_official(hw: tuple[int, int] = (800, 1216), seed: int = 0) -> tuple[float, float]:
    """(max |stock timm - official|, max |official|) over the four stage outputs (before the output
    norms) of a random Swin-T with the same weights at `hw`."""
    import torch

    from mixaq.models import build_swin
    from mixaq.models.detection._official import OfficialSwin
    from mixaq.simulator import get_arch

    arch = get_arch("swin_t")
    torch.manual_seed(seed)
    official = OfficialSwin(arch).eval()
    with torch.no_grad():
        for name, p in official.named_parameters():
            if p.ndim == 1:
                p.normal_(0.0 if name.endswith("bias") else 1.0, 0.2)
    state = official.state_dict()
    timm_state = {k.replace("layers.", "layers_", 1): v for k, v in state.items()
                  if not k.startswith("norm") and ".downsample." not in k}
    for s in range(1, arch.num_stages):  # timm merges patches at the start of the next stage
        for name in ("norm.weight", "norm.bias", "reduction.weight"):
            timm_state[f"layers_{s}.downsample.{name}"] = state[f"layers.{s - 1}.downsample.{name}"]
    stock = build_swin(arch, hw, features_only=True).eval()
    stock.load_state_dict(timm_state)
    x = torch.randn(1, 3, *hw)
    with torch.no_grad():
        theirs = [f.permute(0, 3, 1, 2) for f in stock(x)]
        ours, feats = [], official.patch_embed(x)
        for stage in official.layers:
            feats = stage.blocks(feats)
            ours.append(feats.permute(0, 3, 1, 2))
            if stage.downsample is not None:
                feats = stage.downsample(feats)
    return (max((a - b).abs().max().item() for a, b in zip(theirs, ours)),
            max(o.abs().max().item() for o in ours))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_oracle", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1333,800", help="keep-ratio test scale LONG,SHORT")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    args = parser.parse_args([] if argv is None else argv)  # `python -m benchmarks` calls main()

    from benchmarks._mmdet import ensure_mmdet_venv
    from benchmarks._oracle_check import IMAGE_HW, MODEL, run_checks
    from mixaq.simulator import MixaqError

    try:
        ensure_mmdet_venv()
    except MixaqError as exc:
        print(f"bench_oracle: skipped, the mmdet oracle is unavailable: {exc}")
        return 0

    scale = tuple(int(v) for v in args.scale.split(","))
    start, timing = time.perf_counter(), {}
    with tempfile.TemporaryDirectory(prefix="mixaq-oracle-") as tmp:
        rows = run_checks(("mask_rcnn", "cascade_mask_rcnn"), Path(tmp), scale=scale, n_images=args.images,
                          threads=args.threads, timing=timing)
    lines = [
        "| family | checkpoint format | mmdet detections | mixaq detections | matching | worst box IoU | "
        "worst mask IoU | max score diff | box AP mixaq / mmdet | mask AP mixaq / mmdet |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in rows:
        lines.append(f"| {a.family} | {a.source_format} | {a.n_reference} | {a.n_mixaq} | {100 * a.fraction:.1f}% | "
                     f"{a.min_box_iou:.5f} | {a.min_mask_iou:.4f} | {a.max_score_diff:.1e} | "
                     f"{a.ap_bbox[0]:.4f} / {a.ap_bbox[1]:.4f} | {a.ap_segm[0]:.4f} / {a.ap_segm[1]:.4f} |")
    diff, scale_of = timm_vs_official()
    command = f"python -m benchmarks.bench_oracle {' '.join(argv or [])}".strip()
    text = "\n".join([
        "# mixaq vs mmdetection 3.3.0 on random Swin (Cascade) Mask R-CNN models",
        "",
        f"Produced by `{command}` on {dt.date.today().isoformat()} ({time.perf_counter() - start:.0f} s on CPU; "
        f"mmdet {timing.get('mmdet_s', 0):.0f} s).",
        "",
        f"- model: Swin embed {MODEL['embed_dim']}, depths {MODEL['depths']}, window {MODEL['window_size']}, "
        f"FPN {MODEL['fpn_channels']}, {MODEL['num_classes']} classes, random weights scaled to be confident",
        f"- images: {args.images} synthetic PNGs of sizes {', '.join(f'{h}x{w}' for h, w in IMAGE_HW[:args.images])}; "
        f"test scale {scale[0]}x{scale[1]} (keep ratio), batch 1",
        "",
        *lines,
        "",
        f"Stock timm vs the official backbone, same random Swin-T weights, 800x1216 input: max abs difference "
        f"{diff:.2f} over the four stage outputs (largest output magnitude {scale_of:.2f}).",
        "",
    ])
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
