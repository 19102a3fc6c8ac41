"""Object/background crops for backbone pretraining: deterministic, labelled like the image."""
from __future__ import annotations

import numpy as np
import torch

from mixaq.models.data._crops import ObjectCrops, _coverage, collate_crops
from mixaq.models.data._synth import SYNTH_CLASSES, renderer


def test_crops_are_deterministic_and_labelled_like_the_image():
    ds = ObjectCrops(3, 10, (128, 128), generator="scenes", crop_px=32, background_crops=3)
    assert ds.num_classes == len(SYNTH_CLASSES) + 1
    for i in range(4):
        crops, labels = ds[i]
        again, labels_again = ds[i]
        assert torch.equal(crops, again) and torch.equal(labels, labels_again)
        sample = renderer("scenes")(3, i, (128, 128))
        k = len(sample.labels)
        assert crops.shape[1:] == (3, 32, 32) and len(crops) == len(labels)
        assert torch.equal(labels[:k], torch.from_numpy(sample.labels))
        assert torch.all(labels[k:] == len(SYNTH_CLASSES)) and 0 <= len(labels) - k <= 3
        assert crops.min() >= 0 and crops.max() <= 1
    x, y = collate_crops([ds[0], ds[1]])
    assert len(x) == len(y) == len(ds[0][1]) + len(ds[1][1])


def test_background_coverage():
    squares = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 20, 20]], dtype=float)
    boxes = np.array([[5, 0, 15, 10]], dtype=float)
    assert np.allclose(_coverage(squares, boxes), [0.5, 0.0, 0.25])
    assert np.allclose(_coverage(squares, np.zeros((0, 4))), 0)
