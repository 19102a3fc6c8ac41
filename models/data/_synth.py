"""Deterministic synthetic COCO-format detection data: shapes on cluttered, textured backgrounds.

Every image is a pure function of `(seed, index)`, so a training stream can render images on the fly
and `mixaq data synth` writes the very same pixels to disk. Difficulty comes from what makes window
importance a real signal rather than a blank-vs-object split: low-frequency colour fields, oriented
stripes, pixel noise, clutter that looks like parts of objects (lines, rings, dots, arcs, small
irregular blobs), objects of random colour (class is shape, never colour), rotation, aspect jitter,
sizes spanning COCO's small/medium/large, partial occlusion and 1-10 objects per image.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["SYNTH_CLASSES", "GENERATORS", "SynthSample", "render_sample", "renderer", "write_synthetic",
           "synth_categories"]

SYNTH_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
_ANN_NAME = "annotations.json"
_IMG_DIR = "images"
# An object stays annotated only while at least this share of it remains visible.
_MIN_VISIBLE = 0.55
# Object sides as fractions of the shorter image side (16..130 px at 256 px).
_MIN_SIDE_FRAC, _MAX_SIDE_FRAC = 16 / 256, 130 / 256


# Generator name -> (module, render function). `shapes`: this module (the data the tests and the
# first default model use); `scenes`: photograph-like statistics (docs/scenes.md).
_RENDERERS: dict[str, tuple[str, str]] = {
    "shapes": ("mixaq.models.data._synth", "render_sample"),
    "scenes": ("mixaq.models.data._scenes", "render_scene"),
}
GENERATORS: tuple[str, ...] = tuple(_RENDERERS)


@dataclass(frozen=True)
class SynthSample:
    image: np.ndarray  # (H, W, 3) uint8
    boxes_xywh: np.ndarray  # (K, 4) float32, COCO convention, visible extent
    labels: np.ndarray  # (K,) int64, index into SYNTH_CLASSES
    areas: np.ndarray  # (K,) float32, visible pixels


def synth_categories() -> list[dict]:
    return [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SYNTH_CLASSES)]


def _polygon(kind: str, cx: float, cy: float, radius: float, angle: float, aspect: float) -> list[tuple[float, float]]:
    """Vertices of a shape in image coordinates (unit shape scaled, stretched, rotated, placed)."""
    if kind == "circle":
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif kind == "square":
        t = np.pi / 4 + np.arange(4) * np.pi / 2
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif kind == "triangle":
        t = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif kind == "star":
        t = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    elif kind == "cross":
        a = 0.32  # half arm width
        pts = np.array([(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a),
                        (a, 1), (-a, 1), (-a, a), (-1, a), (-1, -a), (-a, -a)], dtype=np.float64)
    elif kind == "blob":  # distractor: irregular polygon, not one of the classes
        n = 7
        t = np.sort(np.random.default_rng(int(cx * 1000 + cy)).uniform(0, 2 * np.pi, n))
        r = np.random.default_rng(int(cy * 1000 + cx)).uniform(0.4, 1.0, n)
        pts = np.stack([r * np.cos(t), r * np.sin(t)], 1)
    else:
        raise ValueError(kind)
    pts = pts * np.array([radius * aspect, radius / aspect])
    c, s = math.cos(angle), math.sin(angle)
    pts = pts @ np.array([[c, s], [-s, c]])
    pts = pts + np.array([cx, cy])
    return [tuple(p) for p in pts.tolist()]


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(H, W, 3) float background: smooth colour field + oriented stripes + noise."""
    g = int(rng.integers(3, 9))
    field = Image.fromarray(rng.uniform(40, 215, (g, g, 3)).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    bg = np.asarray(field, dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(int(rng.integers(0, 3))):
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(6, 40)
        phase = (xx * math.cos(theta) + yy * math.sin(theta)) * (2 * np.pi / period)
        amp = rng.uniform(10, 45)
        bg += (amp * np.sin(phase))[..., None] * rng.uniform(-1, 1, 3)
    bg += rng.normal(0, rng.uniform(3, 14), (h, w, 3))
    return bg


def _clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw, h: int, w: int) -> None:
    """Distractors drawn on the background: they share edges, colours and scale with objects."""
    for _ in range(int(rng.integers(3, 14))):
        colour = tuple(int(v) for v in _random_colour(rng))
        kind = rng.integers(0, 5)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        size = rng.uniform(6, 70)
        if kind == 0:  # line segment
            ang = rng.uniform(0, 2 * np.pi)
            draw.line([(x, y), (x + size * math.cos(ang), y + size * math.sin(ang))], fill=colour,
                      width=int(rng.integers(1, 5)))
        elif kind == 1:  # ring (hollow circle: a hard negative for "circle")
            draw.ellipse([x - size / 2, y - size / 2, x + size / 2, y + size / 2], outline=colour,
                         width=int(rng.integers(1, 4)))
        elif kind == 2:  # dots
            for _ in range(int(rng.integers(3, 12))):
                dx, dy = rng.normal(0, size / 2, 2)
                r = rng.uniform(1, 3.5)
                draw.ellipse([x + dx - r, y + dy - r, x + dx + r, y + dy + r], fill=colour)
        elif kind == 3:  # arc
            start = rng.uniform(0, 360)
            draw.arc([x - size / 2, y - size / 2, x + size / 2, y + size / 2], start, start + rng.uniform(60, 250),
                     fill=colour, width=int(rng.integers(1, 4)))
        else:  # irregular blob
            draw.polygon(_polygon("blob", x, y, size / 3, rng.uniform(0, 6.3), 1.0), fill=colour)


def render_sample(seed: int, index: int, image_hw: tuple[int, int] = (256, 256)) -> SynthSample:
    """Image `index` of the synthetic dataset with `seed`; deterministic."""
    rng = np.random.default_rng([int(seed), int(index)])
    h, w = image_hw
    canvas = Image.fromarray(np.clip(_background(rng, h, w), 0, 255).astype(np.uint8))
    _clutter(rng, ImageDraw.Draw(canvas), h, w)
    img = np.asarray(canvas, dtype=np.float32).copy()

    n_objects = int(rng.integers(1, 11))
    owner = np.full((h, w), -1, dtype=np.int32)  # which object each pixel shows
    full_area: list[int] = []
    labels: list[int] = []
    for _ in range(n_objects):
        label = int(rng.integers(0, len(SYNTH_CLASSES)))
        colour = _random_colour(rng)
        noise_std = rng.uniform(2, 18)
        # Re-place an object that would hide too much of an earlier one: every drawn object stays
        # annotated, so partial occlusion never turns a visible shape into an unlabelled one.
        for _try in range(4):
            side = min(h, w) * math.exp(rng.uniform(math.log(_MIN_SIDE_FRAC), math.log(_MAX_SIDE_FRAC)))
            radius = side / 2
            cx, cy = rng.uniform(radius * 0.6, w - radius * 0.6), rng.uniform(radius * 0.6, h - radius * 0.6)
            poly = _polygon(SYNTH_CLASSES[label], cx, cy, radius, rng.uniform(0, 2 * np.pi), rng.uniform(0.8, 1.25))
            mask_img = Image.new("L", (w, h), 0)
            ImageDraw.Draw(mask_img).polygon(poly, fill=1)
            mask = np.asarray(mask_img, dtype=bool)
            if mask.sum() < 12:
                continue
            covered = owner[mask]
            hidden = np.bincount(covered[covered >= 0], minlength=len(labels))
            visible_after = np.bincount(owner[owner >= 0], minlength=len(labels)) - hidden
            if len(labels) and np.any(visible_after < _MIN_VISIBLE * np.asarray(full_area)):
                continue
            # Per-object shading keeps the interior from being a flat, trivially separable colour.
            shade = rng.normal(0, noise_std, (int(mask.sum()), 1)) + colour
            img[mask] = shade
            owner[mask] = len(labels)
            full_area.append(int(mask.sum()))
            labels.append(label)
            break

    boxes, keep_labels, areas = [], [], []
    if labels:
        visible = np.bincount(owner[owner >= 0].ravel(), minlength=len(labels))
        ys, xs = np.nonzero(owner >= 0)
        ids = owner[ys, xs]
        for k in range(len(labels)):
            if visible[k] < _MIN_VISIBLE * full_area[k]:
                continue
            sel = ids == k
            x0, x1 = xs[sel].min(), xs[sel].max() + 1
            y0, y1 = ys[sel].min(), ys[sel].max() + 1
            boxes.append((x0, y0, x1 - x0, y1 - y0))
            keep_labels.append(labels[k])
            areas.append(visible[k])
    # Mild global noise after compositing, so object edges are not perfectly crisp.
    img += rng.normal(0, 2.0, img.shape)
    return SynthSample(
        image=np.clip(img, 0, 255).astype(np.uint8),
        boxes_xywh=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.asarray(keep_labels, dtype=np.int64),
        areas=np.asarray(areas, dtype=np.float32),
    )


def renderer(generator: str) -> Callable[[int, int, tuple[int, int]], SynthSample]:
    """The render function `(seed, index, image_hw) -> SynthSample` of a generator by name."""
    import importlib

    from mixaq.core._errors import MixaqError

    if generator not in _RENDERERS:
        raise MixaqError(f"unknown synthetic generator {generator!r} (choose from {', '.join(GENERATORS)})")
    module, name = _RENDERERS[generator]
    return getattr(importlib.import_module(module), name)


def write_synthetic(
    out_dir: str | Path,
    num_images: int,
    seed: int,
    image_hw: tuple[int, int] = (256, 256),
    *,
    generator: str = "shapes",
    progress: bool = True,
) -> Path:
    """Write `num_images` images of `generator` (lossless PNG: the very pixels the training stream
    renders) and `annotations.json` (COCO instances) under `out_dir`."""
    from tqdm import tqdm

    render = renderer(generator)
    out = Path(out_dir)
    (out / _IMG_DIR).mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    ann_id = 1
    for i in tqdm(range(num_images), desc=f"synth {generator}", disable=not progress, unit="img"):
        sample = render(seed, i, image_hw)
        name = f"{i:06d}.png"
        Image.fromarray(sample.image).save(out / _IMG_DIR / name, compress_level=1)
        images.append({"id": i + 1, "file_name": name, "height": image_hw[0], "width": image_hw[1]})
        for box, label, area in zip(sample.boxes_xywh.tolist(), sample.labels.tolist(), sample.areas.tolist()):
            annotations.append({"id": ann_id, "image_id": i + 1, "category_id": label + 1, "bbox": box,
                                "area": float(area), "iscrowd": 0})
            ann_id += 1
    coco = {
        "info": {"description": f"mixaq synthetic {generator}", "generator": generator, "seed": int(seed),
                 "num_images": int(num_images)},
        "images": images,
        "annotations": annotations,
        "categories": synth_categories(),
    }
    tmp = out / (_ANN_NAME + ".tmp")
    tmp.write_text(json.dumps(coco))
    tmp.replace(out / _ANN_NAME)  # the json appears last: its presence means the split is complete
    return out
