"""Does a detector's window importance point at objects? Per Swin stage, the within-image Spearman
correlation between a window's importance (SparseViT's rule, regular grid) and the share of its
tokens inside ground-truth boxes, mean over the first N evaluation images of a val split.

    python -m benchmarks.importance_objects [--checkpoint C] [--data DIR] [--images 40]

Default: the embedded default detector and its val split (the generator it was trained on). Positive
means important windows are object windows (the MixA-Q premise); negative, background windows.
"""
from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.importance_objects",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the embedded default model")
    parser.add_argument("--data", default=None, help="dataset dir; default: the checkpoint's synthetic val split")
    parser.add_argument("--images", type=int, default=40, help="first N evaluation images (default 40)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--csv", default=None, help="also write the table as CSV")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from mixaq.models._importance_objects import importance_object_correlation
    from mixaq.models.evaluation._evaluate import Evaluator
    from mixaq.models.data._image_stats import _box_mask
    from mixaq.core._errors import MixaqError

    start = time.perf_counter()
    ev = Evaluator(args.checkpoint, args.data, max_images=args.images, threads=args.threads)
    images = [ev.dataset.load_image(i) for i in ev.eval_ids]  # (3, H, W) each
    if any(tuple(im.shape[1:]) != ev.image_hw for im in images):
        raise MixaqError(f"images must be {ev.image_hw[0]}x{ev.image_hw[1]} (the network input) for box coverage")
    masks = []
    for image_id in ev.eval_ids:
        anns = [a for a in ev.dataset.coco.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
        boxes = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        masks.append(torch.from_numpy(_box_mask(ev.image_hw, boxes)).float()[None])
    cover = torch.stack(masks)  # (B, 1, H, W)
    table = importance_object_correlation(ev.model, lambda net: net(images), cover)
    print(f"{ev.checkpoint} ({ev.config.arch}), {len(images)} val images of {ev.dataset.images_dir.parent.name}: "
          "within-image Spearman(window importance, box coverage) per stage, regular grid")
    print(table.to_string(index=False, float_format=lambda v: f"{v:+.3f}"))
    if args.csv:
        table.to_csv(args.csv, index=False)
    print(f"({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
