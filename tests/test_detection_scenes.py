"""The `scenes` generator (docs/scenes.md): the `shapes` contract, photograph-like statistics, and the
statistics themselves checked on images whose answer is known."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixaq.core._errors import MixaqError
from mixaq.models.data._coco import SyntheticStream, resolve_data
from mixaq.models.evaluation._evaluate import DEFAULT_VAL, default_val_dir, val_generator
from mixaq.models.data._image_stats import dataset_stats, image_stats, spectrum_slope
from mixaq.models.data._scenes import render_scene
from mixaq.models.data._stats_table import BARS, measure_sources
from mixaq.models.data._synth import GENERATORS, SYNTH_CLASSES, render_sample, renderer, synth_categories, write_synthetic
from mixaq.models.evaluation._train import load_run_config
from mixaq.search.cli import main


def test_scenes_are_deterministic_and_differ_from_shapes():
    a, b = render_scene(7, 3), render_scene(7, 3)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes_xywh, b.boxes_xywh)
    assert not np.array_equal(a.image, render_scene(8, 3).image)
    assert not np.array_equal(a.image, render_scene(7, 4).image)
    assert not np.array_equal(a.image, render_sample(7, 3).image)
    assert renderer("scenes") is render_scene and renderer("shapes") is render_sample
    with pytest.raises(MixaqError, match="unknown synthetic generator"):
        renderer("photos")


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), index=st.integers(0, 10_000), side=st.sampled_from([64, 96, 256]))
def test_scene_boxes_lie_inside_the_image_and_cover_their_visible_area(seed, index, side):
    s = render_scene(seed, index, (side, side))
    assert s.image.shape == (side, side, 3) and s.image.dtype == np.uint8 and s.image.flags.c_contiguous
    assert len(s.boxes_xywh) == len(s.labels) == len(s.areas)
    x, y, w, h = s.boxes_xywh.T
    assert np.all(x >= 0) and np.all(y >= 0) and np.all(x + w <= side) and np.all(y + h <= side)
    assert np.all(w > 0) and np.all(h > 0)
    assert np.all(s.areas <= w * h + 1e-6) and np.all(s.areas > 0)
    # a visible object touches all four sides of its box: the box is its visible extent, so the area
    # fills at least one row and one column of it
    assert np.all(s.areas >= np.maximum(w, h) - 1e-6)
    assert np.all((s.labels >= 0) & (s.labels < len(SYNTH_CLASSES)))


def test_scenes_keep_the_object_statistics_of_shapes():
    scenes = [render_scene(0, i) for i in range(60)]
    counts = [len(s.labels) for s in scenes]
    sides = np.sqrt(np.concatenate([s.areas for s in scenes]))
    labels = np.concatenate([s.labels for s in scenes])
    assert min(counts) >= 1 and max(counts) >= 6 and max(counts) <= 10
    assert sides.min() < 20 and sides.max() > 60
    assert set(labels.tolist()) == set(range(len(SYNTH_CLASSES)))


def test_written_scenes_load_and_match_the_stream(tmp_path):
    out = write_synthetic(tmp_path / "ds", 5, seed=4, image_hw=(64, 64), generator="scenes", progress=False)
    data = json.loads((out / "annotations.json").read_text())
    assert data["info"]["generator"] == "scenes" and data["categories"] == synth_categories()
    ds = resolve_data(out)
    stream = SyntheticStream(4, 5, (64, 64), generator="scenes")
    assert stream.category_ids == ds.category_ids and stream.category_names == ds.category_names
    for i in range(5):
        (image, target), (ref_image, ref_target) = ds[i], stream[i]
        assert torch.equal(image, ref_image)  # lossless: the files hold the rendered pixels
        assert torch.equal(target["boxes"], ref_target["boxes"]) and torch.equal(target["labels"], ref_target["labels"])


# --- the statistics, on images whose answer is known ------------------------------------------------

def _power_law_image(alpha: float, seed: int, side: int = 256) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(side)[:, None], np.fft.rfftfreq(side)[None, :])
    f[0, 0] = 1
    spec = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) * f**-alpha
    spec[0, 0] = 0
    y = np.fft.irfft2(spec, s=(side, side))
    y = 128 + 40 * y / y.std()
    return np.repeat(np.clip(y, 0, 255)[..., None], 3, axis=2).astype(np.uint8)


@pytest.mark.parametrize("alpha", [0.8, 1.0, 1.5])
def test_spectrum_slope_recovers_the_power_law_it_was_built_with(alpha):
    slopes = [spectrum_slope(_power_law_image(alpha, s).astype(np.float64)[..., 0]) for s in range(3)]
    assert np.mean(slopes) == pytest.approx(-alpha, abs=0.1)


def test_texture_ratios_and_smooth_share_on_a_constructed_image():
    image = np.full((128, 128, 3), 120, dtype=np.uint8)
    yy, xx = np.mgrid[:128, :128]
    stripes = (np.sin(2 * np.pi * xx / 8) > 0) * 80 + 80  # period 8 px: inside the DoG band
    image[32:64, 40:80] = stripes[32:64, 40:80, None]
    boxes = np.array([[40, 32, 40, 32]], dtype=np.float32)  # exactly the striped patch
    s = image_stats(image, boxes)
    assert s.band_inside > 10 * s.band_outside and s.contrast_inside > 10 * s.contrast_outside
    assert 0.9 < s.smooth_background <= 1.0  # flat outside, except next to the patch
    assert s.window_rho > 0.5
    swapped = image_stats(image, np.array([[0, 96, 32, 32]], dtype=np.float32))  # a box on flat ground
    assert swapped.band_inside < swapped.band_outside


def test_size_shares_use_coco_area_ranges():
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    boxes = np.zeros((4, 4), dtype=np.float32)
    stats = dataset_stats([(image, boxes, np.array([1023.0, 1024.0, 9215.0, 9216.0]))])
    assert (stats["small"], stats["medium"], stats["large"]) == (0.25, 0.5, 0.25)


def test_scenes_meet_the_bars_that_shapes_miss():
    table = measure_sources(list(GENERATORS), [], seed=2, num_images=24, progress=False).set_index("source")
    scenes, shapes = table.loc["scenes (seed 2)"], table.loc["shapes (seed 2)"]
    for column in BARS:
        assert scenes[f"{column}_ok"], (column, scenes[column])
    assert not shapes["smooth_background_ok"]  # the old backgrounds are textured everywhere
    assert scenes["smooth_background"] > shapes["smooth_background"] + 0.2


# --- wiring: configs, CLI, the evaluator's val split ------------------------------------------------

def test_config_generator_is_checked_at_load(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("model: {}\ndata: {synthetic: {seed: 1, generator: scenes}}\n")
    assert load_run_config(good).data["synthetic"]["generator"] == "scenes"
    for i, (text, match) in enumerate({
        "data: {synthetic: {generator: photos}}\n": "unknown synthetic generator",
        "data: {synthetic: {seed: 1, size: 3}}\n": "unknown field",
        "data: {synthetic: {}}\nval: {synthetic: {generator: x}}\n": "unknown synthetic generator",
    }.items()):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        with pytest.raises(MixaqError, match=match) as info:
            load_run_config(path)
        assert "\n" not in str(info.value)


def test_val_split_follows_the_generator_the_checkpoint_was_trained_on(tmp_path, monkeypatch):
    assert val_generator({"data": {"synthetic": {"seed": 1, "num_images": 10}}}) == "shapes"
    assert val_generator({"data": {"synthetic": {"seed": 1, "generator": "scenes"}}}) == "scenes"
    assert val_generator({"data": {"dir": "x"}}) == DEFAULT_VAL["generator"] == val_generator(None)
    monkeypatch.setenv("MIXAQ_CACHE", str(tmp_path))
    assert default_val_dir("shapes").name == "synth_val_seed2_n532_256"  # unchanged from before `scenes`
    assert default_val_dir("scenes").name == "scenes_val_seed2_n532_256"


def test_cli_synth_and_stats(tmp_path, capsys):
    assert main(["data", "synth", "--generator", "scenes", "--out", str(tmp_path / "d"), "--seed", "1",
                 "--num-images", "3", "--size", "64", "--quiet"]) == 0
    assert json.loads((tmp_path / "d" / "annotations.json").read_text())["info"]["generator"] == "scenes"
    capsys.readouterr()
    assert main(["data", "stats", "--generator", "shapes,scenes", "--data", str(tmp_path / "d"), "--num-images", "3",
                 "--size", "64", "--quiet", "--csv", str(tmp_path / "s.csv")]) == 0
    out = capsys.readouterr().out
    assert "| shapes (seed 2) | 3 |" in out and "| scenes (seed 2) | 3 |" in out and str(tmp_path / "d") in out
    assert (tmp_path / "s.csv").read_text().count("\n") == 4  # header + 3 sources
    assert main(["data", "stats", "--generator", "photos", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mixaq data: error:") and "photos" in err and len(err.splitlines()) == 1
    assert main(["data", "stats", "--coco-root", str(tmp_path), "--quiet"]) == 2
    assert "--ann" in capsys.readouterr().err
