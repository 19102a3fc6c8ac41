"""The `scenes` generator: the five shape classes, textured, in mostly smooth photograph-like scenes.

Same contract as `_synth.render_sample` (classes, size law, occlusion rule, COCO boxes and areas;
image = pure function of `(seed, index)`), different statistics (docs/scenes.md): backgrounds are a
few large smooth regions (sky or wall over ground or floor, some large rectangles for buildings,
doors, furniture) with gentle gradients, low-amplitude low-frequency variation and a mottled ground
(a thresholded 1/f field: edges at every scale, stronger near the viewer); clutter is sparse
(textured rocks and bushes, poles and wires, rings and arcs as hard negatives); every object is
filled with a texture (stripes, checks, spots or 1/f noise) and shaded, so it carries more
mid-frequency energy than its surroundings, as objects do in photographs. A mild blur (the camera's
point spread) and luminance noise finish the image.

Rendering is vectorised: one batched inverse FFT gives every 1/f noise field of an image, region
masks are comparisons on broadcast coordinate grids, and objects and clutter are drawn and
textured inside their own bounding boxes only.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from mixaq.models.data._synth import (
    _MAX_SIDE_FRAC,
    _MIN_SIDE_FRAC,
    _MIN_VISIBLE,
    SYNTH_CLASSES,
    SynthSample,
    _polygon,
)

__all__ = ["render_scene"]

# Mixed into the seed so this generator's random stream is unrelated to `shapes`' for equal (seed, index).
_STREAM_SALT = 0x5CE7E5
# Spectral exponents of the per-image 1/f^alpha fields: [smooth variation, object texture, clutter texture].
_FIELD_ALPHAS = (2.2, 1.0, 1.0)
_SMOOTH, _TEXTURE, _CLUTTER = range(3)
# Grey-level amplitudes (ranges) of the background's smooth variation and of the ground's grain.
_SMOOTH_AMPLITUDE = (2.0, 7.0)
_GROUND_AMPLITUDE = (10.0, 25.0)
# Camera point spread: the separable kernel [a, 1 - 2a, a] (a = 0.25 is the binomial [1, 2, 1]/4).
_BLUR_SIDE_WEIGHT = 0.08


@lru_cache(maxsize=4)
def _radial_frequency(h: int, w: int) -> np.ndarray:
    """(H, W//2+1) radial frequency of the rfft2 grid in cycles per image side; DC set to 1 (zeroed later)."""
    fy = np.fft.fftfreq(h)[:, None] * h
    fx = np.fft.rfftfreq(w)[None, :] * w
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    return f.astype(np.float32)


@lru_cache(maxsize=4)
def _envelopes(h: int, w: int) -> np.ndarray:
    """(K, H, W//2+1) float32 amplitude envelopes f^-alpha of the per-image noise fields (DC zero)."""
    f = _radial_frequency(h, w)
    env = f[None] ** -np.asarray(_FIELD_ALPHAS, dtype=np.float32)[:, None, None]
    env[:, 0, 0] = 0
    return env


@lru_cache(maxsize=4)
def _unit_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(H, 1) and (1, W) pixel-centre coordinates scaled to [0, 1)."""
    return ((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None], ((np.arange(w, dtype=np.float32) + 0.5) / w)[None, :]


def _noise_fields(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(len(_FIELD_ALPHAS), H, W) float32 fields with 1/f^alpha amplitude spectra, zero mean, unit std."""
    env = _envelopes(h, w)
    k = env.shape[0]
    # Uniform real and imaginary parts (4x cheaper to draw than normals): each field is a sum of
    # thousands of independent terms, so it is Gaussian all the same, with the envelope's spectrum.
    spec = (rng.random((*env.shape, 2), dtype=np.float32) - 0.5).view(np.complex64)[..., 0] * env
    fields = np.fft.irfft2(spec, s=(h, w)).astype(np.float32)
    fields /= fields.reshape(k, -1).std(1)[:, None, None] + 1e-12
    return fields


def _muted(rng: np.random.Generator, lo: float, hi: float, saturation: tuple[float, float]) -> np.ndarray:
    """A random RGB colour pulled towards its grey by a random amount (photograph-like, not neon)."""
    c = rng.uniform(lo, hi, 3)
    return c.mean() + rng.uniform(*saturation) * (c - c.mean())


_SKIES = (np.array([110.0, 150.0, 215.0]), np.array([185.0, 190.0, 200.0]), np.array([215.0, 170.0, 130.0]))


def _background(rng: np.random.Generator, h: int, w: int, smooth: np.ndarray, ground: np.ndarray) -> np.ndarray:
    """(3, H, W) float32: sky or wall over ground or floor, large rectangles, gentle gradients.

    Every region r is a colour ramp `start[r] + t * (end[r] - start[r])` with its own scalar ramp
    `t` (H, W); a label map picks the region per pixel, so each colour plane is one gather.
    """
    yy, xx = _unit_grid(h, w)
    outdoor = rng.random() < 0.5
    horizon = rng.uniform(0.25, 0.7)
    if outdoor:  # rolling hills: a smooth horizon line
        k = np.arange(1, 4, dtype=np.float32)[:, None]
        phases = rng.uniform(0, 2 * np.pi, (3, 1)).astype(np.float32)
        line = horizon + (rng.uniform(0, 0.06) / k * np.sin(2 * np.pi * k * xx + phases)).sum(0, keepdims=True)
        top = _SKIES[int(rng.integers(len(_SKIES)))] + rng.normal(0, 12, 3)
        top_far = top + rng.uniform(10, 40)  # skies lighten towards the horizon
        bottom = _muted(rng, 50, 190, (0.3, 0.7))
    else:  # a room: wall over floor
        line = horizon + rng.uniform(-0.05, 0.05) * (xx - 0.5)
        top = _muted(rng, 120, 235, (0.1, 0.4))
        top_far = top + rng.normal(0, 10, 3)
        bottom = _muted(rng, 40, 200, (0.2, 0.6))
    line = line.astype(np.float32)  # (1, W)
    below = yy >= line  # (H, W)
    starts = [top, bottom]
    ends = [top_far, bottom * (1 + rng.uniform(-0.25, 0.25))]
    label = below.astype(np.uint8)
    depth = np.clip((yy - line) / np.maximum(1 - line, 1e-3), 0, 1)  # 0 at the horizon, 1 at the bottom
    ramp = np.where(below, depth, np.clip(yy / np.maximum(line, 1e-3), 0, 1))  # sky/wall: 0 top, 1 horizon
    if not outdoor and rng.random() < 0.5:  # a corner: the wall's right part in another shade
        dim = rng.uniform(0.75, 0.95)
        starts.append(top * dim)
        ends.append(top_far * dim)
        label[(xx > rng.uniform(0.2, 0.8)) & ~below] = len(starts) - 1
    # Large rectangles standing on the horizon (buildings, doors, furniture) or hanging on the wall.
    for _ in range(int(rng.integers(0, 4))):
        rw, rh = rng.uniform(0.1, 0.45), rng.uniform(0.1, 0.5)
        x0 = rng.uniform(-0.1, 1.0 - rw * 0.5)
        y0 = horizon + rng.uniform(-0.05, 0.15) - rh if rng.random() < 0.7 else rng.uniform(0.0, 0.6)
        r0, r1 = max(0, int(round(y0 * h))), min(h, int(round((y0 + rh) * h)))
        c0, c1 = max(0, int(round(x0 * w))), min(w, int(round((x0 + rw) * w)))
        if r1 <= r0 or c1 <= c0:
            continue
        colour = _muted(rng, 40, 230, (0.1, 0.6))
        starts.append(colour)
        ends.append(colour * (1 + rng.uniform(-0.15, 0.15)))  # light falls off down the surface
        label[r0:r1, c0:c1] = len(starts) - 1
        ramp[r0:r1, c0:c1] = np.linspace(0, 1, r1 - r0, dtype=np.float32)[:, None]
    start = np.asarray(starts, dtype=np.float32)  # (R, 3)
    delta = np.asarray(ends, dtype=np.float32) - start
    bg = np.stack([np.take(start[:, c], label) + ramp * np.take(delta[:, c], label) for c in range(3)])  # (3, H, W)
    # Low-amplitude variation: illumination, stains, haze everywhere; a mottled ground (grass,
    # gravel), stronger near the viewer.
    patches = np.where(ground > rng.uniform(-0.5, 0.8), 1.0, -1.0).astype(np.float32)  # mottled: edges at all scales
    grain = rng.uniform(*_SMOOTH_AMPLITUDE) * smooth + rng.uniform(*_GROUND_AMPLITUDE) * (below * (0.3 + 0.7 * depth)) * patches
    bg += grain[None] * rng.uniform(0.6, 1.0, (3, 1, 1)).astype(np.float32)
    return bg


def _crop_box(poly: list[tuple[float, float]], h: int, w: int) -> tuple[int, int, int, int] | None:
    xs, ys = [p[0] for p in poly], [p[1] for p in poly]
    x0, y0 = max(0, int(math.floor(min(xs)))), max(0, int(math.floor(min(ys))))
    x1, y1 = min(w, int(math.ceil(max(xs))) + 1), min(h, int(math.ceil(max(ys))) + 1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _polygon_mask(poly: list[tuple[float, float]], box: tuple[int, int, int, int]) -> np.ndarray:
    """(y1-y0, x1-x0) bool: the polygon filled inside its crop box (PIL's scanline fill)."""
    x0, y0, x1, y1 = box
    canvas = Image.new("L", (x1 - x0, y1 - y0), 0)
    ImageDraw.Draw(canvas).polygon([(x - x0, y - y0) for x, y in poly], fill=1)
    return np.asarray(canvas, dtype=bool)


def _contrasting(rng: np.random.Generator, colour: np.ndarray, min_luma_diff: float = 45.0) -> np.ndarray:
    """A second random colour whose luminance differs from `colour`'s by at least `min_luma_diff`."""
    other = rng.uniform(0, 255, 3)
    luma = np.array([0.299, 0.587, 0.114])
    diff = float((other - colour) @ luma)
    if abs(diff) < min_luma_diff:
        other = np.clip(other + (np.sign(diff) or 1.0) * (min_luma_diff - abs(diff) + 5), 0, 255)
        if abs(float((other - colour) @ luma)) < min_luma_diff:  # clipped at the end of the range: go the other way
            other = np.clip(colour - np.sign(diff or 1.0) * (min_luma_diff + 5), 0, 255)
    return other


def _object_texture(rng: np.random.Generator, box: tuple[int, int, int, int], cx: float, cy: float, radius: float,
                    angle: float, texture: np.ndarray) -> np.ndarray:
    """(3, h, w) float32 texture of one object over its crop box, moving with the object's rotation."""
    x0, y0, x1, y1 = box
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5 - cy
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5 - cx
    c, s = math.cos(angle), math.sin(angle)
    u, v = xs * c + ys * s, -xs * s + ys * c  # object-frame coordinates (px)
    c1 = rng.uniform(0, 255, 3)
    c2 = _contrasting(rng, c1)
    kind = int(rng.integers(4))
    period = math.exp(rng.uniform(math.log(3.0), math.log(max(4.0, 0.5 * radius))))  # px, fine to coarse
    if kind == 0:  # stripes, soft-edged
        mix = np.clip(0.5 + rng.uniform(1, 4) * np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi)), 0, 1)
    elif kind == 1:  # checks
        mix = np.clip(0.5 + 3 * np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period), 0, 1)
    elif kind == 2:  # spots: a thresholded crop of the image's texture field
        mix = (texture[y0:y1, x0:x1] > rng.uniform(0.0, 0.8)).astype(np.float32)
    else:  # 1/f noise between the two colours
        mix = np.clip(0.5 + rng.uniform(0.25, 0.45) * texture[y0:y1, x0:x1], 0, 1)
    light = rng.uniform(0, 2 * np.pi)  # one light direction across the object
    shade = 1 + rng.uniform(0.1, 0.3) * (u * math.cos(light) + v * math.sin(light)) / max(radius, 1.0)
    c1, dc = c1.astype(np.float32)[:, None, None], (c2 - c1).astype(np.float32)[:, None, None]
    return (c1 + mix[None] * dc) * shade[None]


def _clutter(rng: np.random.Generator, img: np.ndarray, texture: np.ndarray) -> None:
    """A few distractors, in place: textured rocks/bushes, poles and wires, rings and arcs."""
    h, w = img.shape[1:]
    for _ in range(int(rng.integers(3, 11))):
        kind = int(rng.integers(0, 4))
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        size = math.exp(rng.uniform(math.log(4.0), math.log(80.0)))  # many small, few large
        colour = _muted(rng, 20, 235, (0.2, 0.8)).astype(np.float32)[:, None]  # (3, 1)
        if kind == 0:  # textured irregular blob: a rock or a bush
            poly = _polygon("blob", x, y, size / 2, rng.uniform(0, 2 * np.pi), rng.uniform(0.7, 1.4))
            box = _crop_box(poly, h, w)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            mask = _polygon_mask(poly, box)
            region = img[:, y0:y1, x0:x1]
            region[:, mask] = colour + rng.uniform(10, 35) * texture[y0:y1, x0:x1][mask][None]
            continue
        canvas = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(canvas)
        if kind == 1:  # pole or wire: a long thin line
            ang = rng.uniform(0, np.pi)
            length = rng.uniform(40, 1.5 * max(h, w))
            dx, dy = 0.5 * length * math.cos(ang), 0.5 * length * math.sin(ang)
            draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=1, width=int(rng.integers(1, 4)))
        elif kind == 2:  # ring: a hard negative for "circle"
            draw.ellipse([x - size / 2, y - size / 2, x + size / 2, y + size / 2], outline=1,
                         width=int(rng.integers(1, 4)))
        else:  # arc
            start = rng.uniform(0, 360)
            draw.arc([x - size / 2, y - size / 2, x + size / 2, y + size / 2], start, start + rng.uniform(60, 250),
                     fill=1, width=int(rng.integers(1, 4)))
        bbox = canvas.getbbox()
        if bbox is None:
            continue
        x0, y0, x1, y1 = bbox
        mask = np.asarray(canvas.crop(bbox), dtype=bool)
        img[:, y0:y1, x0:x1][:, mask] = colour


def _camera(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Point spread (separable 3-tap blur) and luminance noise; (3, H, W) float32 in, out."""
    a, c = _BLUR_SIDE_WEIGHT, 1 - 2 * _BLUR_SIDE_WEIGHT
    p = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
    p = a * p[:, :-2] + c * p[:, 1:-1] + a * p[:, 2:]  # rows
    img = a * p[:, :, :-2] + c * p[:, :, 1:-1] + a * p[:, :, 2:]  # columns
    sigma = rng.uniform(0.8, 2.0)  # uniform noise of that standard deviation: sqrt(12) * sigma wide
    img += (sigma * math.sqrt(12.0)) * (rng.random(img.shape[1:], dtype=np.float32) - 0.5)[None]
    return img


def render_scene(seed: int, index: int, image_hw: tuple[int, int] = (256, 256)) -> SynthSample:
    """Image `index` of the `scenes` dataset with `seed`; deterministic."""
    rng = np.random.default_rng([int(seed), int(index), _STREAM_SALT])
    h, w = image_hw
    fields = _noise_fields(rng, h, w)
    img = _background(rng, h, w, fields[_SMOOTH], fields[_CLUTTER])
    _clutter(rng, img, fields[_CLUTTER])

    owner = np.full((h, w), -1, dtype=np.int32)  # which object each pixel shows
    full_area: list[int] = []
    visible: list[int] = []
    boxes_drawn: list[tuple[int, int, int, int]] = []
    labels: list[int] = []
    for _ in range(int(rng.integers(1, 11))):
        label = int(rng.integers(0, len(SYNTH_CLASSES)))
        # Same size law, placement and occlusion rule as `shapes`: an object that would hide too
        # much of an earlier one is re-placed, so every drawn object stays annotated.
        for _try in range(4):
            side = min(h, w) * math.exp(rng.uniform(math.log(_MIN_SIDE_FRAC), math.log(_MAX_SIDE_FRAC)))
            radius = side / 2
            cx, cy = rng.uniform(radius * 0.6, w - radius * 0.6), rng.uniform(radius * 0.6, h - radius * 0.6)
            angle = rng.uniform(0, 2 * np.pi)
            poly = _polygon(SYNTH_CLASSES[label], cx, cy, radius, angle, rng.uniform(0.8, 1.25))
            box = _crop_box(poly, h, w)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            mask = _polygon_mask(poly, box)
            area = int(mask.sum())
            if area < 12:
                continue
            covered = owner[y0:y1, x0:x1][mask]
            hidden = np.bincount(covered[covered >= 0], minlength=len(labels))
            if labels and np.any(np.asarray(visible) - hidden < _MIN_VISIBLE * np.asarray(full_area)):
                continue
            tex = _object_texture(rng, box, cx, cy, radius, angle, fields[_TEXTURE])
            img[:, y0:y1, x0:x1][:, mask] = tex[:, mask]
            owner[y0:y1, x0:x1][mask] = len(labels)
            visible = (np.asarray(visible, dtype=np.int64) - hidden).tolist() + [area]
            full_area.append(area)
            boxes_drawn.append(box)
            labels.append(label)
            break

    boxes, keep_labels, areas = [], [], []
    for k, (x0, y0, x1, y1) in enumerate(boxes_drawn):  # visible extent, searched inside the drawn box
        if visible[k] < _MIN_VISIBLE * full_area[k]:
            continue
        mine = owner[y0:y1, x0:x1] == k
        rows, cols = np.flatnonzero(mine.any(1)), np.flatnonzero(mine.any(0))
        boxes.append((x0 + cols[0], y0 + rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1))
        keep_labels.append(labels[k])
        areas.append(visible[k])
    img = _camera(rng, img)
    return SynthSample(
        image=np.ascontiguousarray(np.clip(img + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)),
        boxes_xywh=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.asarray(keep_labels, dtype=np.int64),
        areas=np.asarray(areas, dtype=np.float32),
    )
