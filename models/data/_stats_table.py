"""The docs/scenes.md statistics table: generators and COCO datasets measured the same way, with the bars."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from mixaq.models.data._image_stats import dataset_stats

__all__ = ["BARS", "measure_sources", "stats_markdown", "generator_samples", "dataset_samples"]

# The bars fixed in docs/scenes.md before the `scenes` generator was written (criteria 1-5).
BARS = {
    "slope_mean": (-1.4, -0.8),  # amplitude spectrum ≈ 1/f over the mid frequencies
    "band_ratio": (1.0, np.inf),  # objects at least as textured as their surroundings
    "contrast_ratio": (1.0, np.inf),
    "smooth_background": (0.5, 1.0),  # mostly smooth large regions
}
# Size shares: each within this many percentage points of the `shapes` generator's.
SIZE_SHARE_TOLERANCE = 0.05
_SIZES = ("small", "medium", "large")


def generator_samples(generator: str, seed: int, num_images: int,
                      image_hw: tuple[int, int]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(image, boxes_xywh, areas) of the first `num_images` images of a generator, rendered in memory."""
    from mixaq.models.data._synth import renderer

    render = renderer(generator)
    for i in range(num_images):
        s = render(seed, i, image_hw)
        yield s.image, s.boxes_xywh, s.areas


def dataset_samples(dataset, num_images: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:  # noqa: ANN001
    """(image, boxes_xywh, areas) of the first `num_images` images (by id) of a `CocoDetection`."""
    from PIL import Image

    for image_id in dataset.image_ids[:num_images]:
        info = dataset.coco.imgs[image_id]
        with Image.open(Path(dataset.images_dir) / info["file_name"]) as im:
            image = np.asarray(im.convert("RGB"))
        anns = [a for a in dataset.coco.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
        boxes = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        areas = np.asarray([a.get("area", a["bbox"][2] * a["bbox"][3]) for a in anns], dtype=np.float64)
        yield image, boxes, areas


def measure_sources(generators: Sequence[str], datasets: Sequence[tuple[str, object]], *, seed: int = 2,
                    num_images: int = 200, image_hw: tuple[int, int] = (256, 256),
                    progress: bool = True) -> pd.DataFrame:
    """One row per generator (`seed`, first `num_images`) and per dataset (`("data", DIR)` or
    `("coco", (IMAGES, ANN))`), with a pass/fail column per bar."""
    from tqdm import tqdm

    from mixaq.models.data._coco import resolve_data
    from mixaq.models.data._synth import renderer

    sources: list[tuple[str, int, Iterator]] = []
    for g in generators:
        renderer(g)  # unknown names fail before any work
        sources.append((f"{g} (seed {seed})", num_images, generator_samples(g, seed, num_images, image_hw)))
    for kind, where in datasets:
        ds = resolve_data(where) if kind == "data" else resolve_data(images=where[0], ann=where[1])
        label = str(where) if kind == "data" else str(where[1])
        sources.append((label, min(num_images, len(ds)), dataset_samples(ds, num_images)))
    rows = []
    for label, n, samples in sources:
        stats = dataset_stats(tqdm(samples, total=n, desc=f"stats {label}", unit="img", disable=not progress,
                                   leave=False))
        rows.append({"source": label, **stats})
    table = pd.DataFrame(rows)
    for col, (lo, hi) in BARS.items():
        table[f"{col}_ok"] = table[col].between(lo, hi)
    reference = [r for r in rows if r["source"].startswith("shapes ")]
    if reference:
        ref = reference[0]
        table["sizes_ok"] = np.all([(table[s] - ref[s]).abs() <= SIZE_SHARE_TOLERANCE for s in _SIZES], axis=0)
    return table


def stats_markdown(table: pd.DataFrame) -> str:
    """The table as markdown: the statistics, then which bars each source meets."""
    lines = [
        "| source | images | objects/img | spectrum slope (mean ± sd) | band ratio in/out | contrast ratio in/out "
        "| smooth background | window ρ (band energy vs boxes, 32 px) | small / medium / large |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.source} | {r.images} | {r.objects_per_image:.2f} | {r.slope_mean:.2f} ± {r.slope_std:.2f} "
            f"| {r.band_ratio:.2f} | {r.contrast_ratio:.2f} | {r.smooth_background:.2f} | {r.window_rho:+.2f} "
            f"| {r.small:.3f} / {r.medium:.3f} / {r.large:.3f} |")
    bar_cols = [c for c in table.columns if c.endswith("_ok")]
    lines += ["", "bars (docs/scenes.md): slope in [-1.4, -0.8]; band and contrast ratios >= 1; smooth background "
              f">= 0.5; size shares within ±{SIZE_SHARE_TOLERANCE * 100:.0f} points of shapes'", ""]
    lines += ["| source | " + " | ".join(c.removesuffix("_ok") for c in bar_cols) + " |",
              "|---|" + "---|" * len(bar_cols)]
    for _, r in table.iterrows():
        lines.append(f"| {r['source']} | " + " | ".join("pass" if r[c] else "FAIL" for c in bar_cols) + " |")
    return "\n".join(lines)
