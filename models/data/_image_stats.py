"""Image statistics that decide whether window importance can track objects (docs/scenes.md).

Per image: the slope of the radially averaged amplitude spectrum over the mid frequencies (≈ −1 for
photographs), the inside/outside-box ratio of band energy and of local contrast (are objects more
textured than their surroundings?), and the share of smooth background. Per dataset: those, plus
COCO's small/medium/large shares of the annotations. Works on any COCO-format data (numpy + scipy).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import numpy as np
from scipy import ndimage

__all__ = ["ImageStats", "image_stats", "dataset_stats", "luminance", "spectrum_slope", "SLOPE_BAND_CYCLES_PER_PX"]

# The mid frequencies the slope is fitted over, cycles per pixel (4-64 cycles across 256 px).
SLOPE_BAND_CYCLES_PER_PX = (1 / 64, 1 / 4)
# Difference-of-Gaussians band (px): periods of about 6-25 px, the scale of stage-0/1 windows.
_DOG_SIGMAS_PX = (1.0, 4.0)
_CONTRAST_WINDOW_PX = 7
# The pixel-level analogue of the importance-object correlation: windows of 32 px, the input extent
# of a stage-1 attention window of the default detector (window 4 tokens at stride 8).
WINDOW_PX = 32
# Background pixels with local contrast below this (grey levels, 0-255) count as smooth.
SMOOTH_CONTRAST_GREY = 5.0
# COCO's area ranges (px^2).
_COCO_SMALL, _COCO_LARGE = 32**2, 96**2


@dataclass(frozen=True)
class ImageStats:
    slope: float  # fitted log-log slope of the amplitude spectrum over the mid frequencies
    band_inside: float  # mean DoG band energy inside annotated boxes (nan without boxes)
    band_outside: float  # ... outside every box (nan when boxes cover the image)
    contrast_inside: float  # mean local contrast (std of Y, 7x7) inside boxes
    contrast_outside: float
    smooth_background: float  # share of outside-box pixels with local contrast < SMOOTH_CONTRAST_GREY
    window_rho: float  # Spearman, over 32-px windows, of mean band energy vs box coverage (nan if coverage is constant)


def luminance(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float64 luminance Y in 0-255 (ITU-R 601 weights)."""
    return np.asarray(image, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])


@lru_cache(maxsize=8)
def _spectrum_bins(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hann window, integer radial bin per rfft2 coefficient, bin frequencies (cycles/px), band mask."""
    window = np.outer(np.hanning(h), np.hanning(w))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    n = max(h, w)
    bins = np.rint(np.hypot(fy, fx) * n).astype(np.int64)  # (H, W//2+1), 1 bin = 1 cycle per image side
    freq = np.arange(bins.max() + 1) / n
    lo, hi = SLOPE_BAND_CYCLES_PER_PX
    band = (freq >= lo) & (freq <= hi)
    return window, bins.ravel(), freq, band


def spectrum_slope(y: np.ndarray) -> float:
    """Least-squares slope of log radial-mean amplitude vs log frequency over the mid frequencies."""
    window, bins, freq, band = _spectrum_bins(*y.shape)
    amp = np.abs(np.fft.rfft2((y - y.mean()) * window)).ravel()
    sums = np.bincount(bins, weights=amp, minlength=len(freq))
    counts = np.bincount(bins, minlength=len(freq))
    radial = sums[band] / np.maximum(counts[band], 1)
    if np.any(radial <= 0):
        return float("nan")  # a flat image has no spectrum to fit
    return float(np.polyfit(np.log(freq[band]), np.log(radial), 1)[0])


def _box_mask(hw: tuple[int, int], boxes_xywh: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose centre lies inside any box."""
    h, w = hw
    mask = np.zeros((h, w), dtype=bool)
    for x, y, bw, bh in np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4):
        x0, y0 = max(0, int(np.ceil(x - 0.5))), max(0, int(np.ceil(y - 0.5)))
        x1, y1 = min(w, int(np.ceil(x + bw - 0.5))), min(h, int(np.ceil(y + bh - 0.5)))
        mask[y0:y1, x0:x1] = True
    return mask


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def _window_rho(band: np.ndarray, inside: np.ndarray) -> float:
    """Within-image Spearman correlation of window mean band energy with window box coverage."""
    from scipy.stats import spearmanr

    h, w = (band.shape[0] // WINDOW_PX) * WINDOW_PX, (band.shape[1] // WINDOW_PX) * WINDOW_PX
    if h == 0 or w == 0:
        return float("nan")

    def pooled(a: np.ndarray) -> np.ndarray:
        return a[:h, :w].reshape(h // WINDOW_PX, WINDOW_PX, w // WINDOW_PX, WINDOW_PX).mean((1, 3)).ravel()

    energy, cover = pooled(band), pooled(inside.astype(np.float64))
    if cover.std() == 0 or energy.std() == 0:
        return float("nan")
    return float(spearmanr(energy, cover).statistic)


def image_stats(image: np.ndarray, boxes_xywh: np.ndarray) -> ImageStats:
    """The statistics of one (H, W, 3) uint8 image with its COCO boxes (x, y, w, h, pixels)."""
    y = luminance(image)
    s1, s2 = _DOG_SIGMAS_PX
    band = (ndimage.gaussian_filter(y, s1, mode="reflect") - ndimage.gaussian_filter(y, s2, mode="reflect")) ** 2
    mean = ndimage.uniform_filter(y, _CONTRAST_WINDOW_PX, mode="reflect")
    mean_sq = ndimage.uniform_filter(y * y, _CONTRAST_WINDOW_PX, mode="reflect")
    contrast = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
    inside = _box_mask(y.shape, boxes_xywh)
    outside = ~inside
    return ImageStats(
        slope=spectrum_slope(y),
        band_inside=_mean_or_nan(band[inside]),
        band_outside=_mean_or_nan(band[outside]),
        contrast_inside=_mean_or_nan(contrast[inside]),
        contrast_outside=_mean_or_nan(contrast[outside]),
        smooth_background=_mean_or_nan(contrast[outside] < SMOOTH_CONTRAST_GREY),
        window_rho=_window_rho(band, inside),
    )


def _nanmean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _geometric_mean_ratio(inside: np.ndarray, outside: np.ndarray) -> float:
    ok = np.isfinite(inside) & np.isfinite(outside) & (inside > 0) & (outside > 0)
    return float(np.exp(np.mean(np.log(inside[ok] / outside[ok])))) if ok.any() else float("nan")


def dataset_stats(samples: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Summary over `(image uint8 HWC, boxes_xywh (K, 4), areas (K,))` samples: the docs/scenes.md table row."""
    per_image: list[ImageStats] = []
    areas: list[np.ndarray] = []
    n_objects: list[int] = []
    for image, boxes, area in samples:
        per_image.append(image_stats(image, boxes))
        areas.append(np.asarray(area, dtype=np.float64).ravel())
        n_objects.append(len(area))
    if not per_image:
        raise ValueError("dataset_stats: no images")
    col = {f: np.array([getattr(s, f) for s in per_image]) for f in ImageStats.__dataclass_fields__}
    all_areas = np.concatenate(areas) if areas else np.zeros(0)
    slopes = col["slope"][np.isfinite(col["slope"])]
    n = max(1, all_areas.size)
    return {
        "images": len(per_image),
        "objects_per_image": float(np.mean(n_objects)),
        "slope_mean": float(slopes.mean()) if slopes.size else float("nan"),
        "slope_std": float(np.std(slopes)) if slopes.size else float("nan"),
        "band_ratio": _geometric_mean_ratio(col["band_inside"], col["band_outside"]),
        "contrast_ratio": _geometric_mean_ratio(col["contrast_inside"], col["contrast_outside"]),
        "smooth_background": _nanmean(col["smooth_background"]),
        "window_rho": _nanmean(col["window_rho"]),
        "small": float(np.sum(all_areas < _COCO_SMALL) / n),
        "medium": float(np.sum((all_areas >= _COCO_SMALL) & (all_areas < _COCO_LARGE)) / n),
        "large": float(np.sum(all_areas >= _COCO_LARGE) / n),
    }
