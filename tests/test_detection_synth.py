"""Synthetic COCO data: deterministic, valid COCO, boxes consistent with the pixels."""
from __future__ import annotations

import json

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixaq.models.data._coco import CocoDetection, SyntheticStream, resolve_data
from mixaq.models.data._synth import SYNTH_CLASSES, render_sample, write_synthetic
from mixaq.search.cli import main


def test_render_is_deterministic_and_seed_dependent():
    a, b = render_sample(7, 3), render_sample(7, 3)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.boxes_xywh, b.boxes_xywh)
    c = render_sample(8, 3)
    assert not np.array_equal(a.image, c.image)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), index=st.integers(0, 10_000), side=st.sampled_from([64, 96, 256]))
def test_boxes_lie_inside_the_image_and_cover_their_visible_area(seed, index, side):
    s = render_sample(seed, index, (side, side))
    assert s.image.shape == (side, side, 3) and s.image.dtype == np.uint8
    assert len(s.boxes_xywh) == len(s.labels) == len(s.areas)
    x, y, w, h = s.boxes_xywh.T
    assert np.all(x >= 0) and np.all(y >= 0) and np.all(x + w <= side) and np.all(y + h <= side)
    assert np.all(w > 0) and np.all(h > 0)
    # the visible pixels of an object fit in its box
    assert np.all(s.areas <= w * h + 1e-6) and np.all(s.areas > 0)
    assert np.all((s.labels >= 0) & (s.labels < len(SYNTH_CLASSES)))


def test_object_statistics_are_varied():
    samples = [render_sample(0, i) for i in range(30)]
    counts = [len(s.labels) for s in samples]
    sides = np.sqrt(np.concatenate([s.areas for s in samples]))
    labels = np.concatenate([s.labels for s in samples])
    assert min(counts) >= 1 and max(counts) >= 6
    assert sides.min() < 20 and sides.max() > 60  # small and large objects
    assert set(labels.tolist()) == set(range(len(SYNTH_CLASSES)))
    # textured background: far from flat
    assert np.mean([s.image.std() for s in samples]) > 25


def test_written_dataset_loads_and_matches_the_renderer(tmp_path):
    out = write_synthetic(tmp_path / "ds", 6, seed=4, image_hw=(64, 64), progress=False)
    data = json.loads((out / "annotations.json").read_text())
    assert len(data["images"]) == 6 and {c["name"] for c in data["categories"]} == set(SYNTH_CLASSES)
    ds = resolve_data(out)
    assert isinstance(ds, CocoDetection) and len(ds) == 6 and ds.num_classes == len(SYNTH_CLASSES)
    stream = SyntheticStream(4, 6, (64, 64))
    for i in range(6):
        image, target = ds[i]
        ref_image, ref_target = stream[i]
        assert image.shape == (3, 64, 64)
        assert np.array_equal(target["boxes"].numpy(), ref_target["boxes"].numpy())
        assert np.array_equal(target["labels"].numpy(), ref_target["labels"].numpy())
        # lossless PNG: the files hold exactly the pixels the training stream renders
        assert torch.equal(image, ref_image)


def test_cli_data_synth(tmp_path, capsys):
    assert main(["data", "synth", "--out", str(tmp_path / "d"), "--seed", "1", "--num-images", "3",
                 "--size", "64", "--quiet"]) == 0
    assert (tmp_path / "d" / "annotations.json").is_file()
    assert len(list((tmp_path / "d" / "images").iterdir())) == 3
    assert main(["data", "synth", "--out", str(tmp_path / "e"), "--num-images", "0"]) == 2
    assert "error" in capsys.readouterr().err
