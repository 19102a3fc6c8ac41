"""importance_object_correlation: the per-stage Spearman of window importance vs object share."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from mixaq.models import build_swin
from mixaq.models._importance_objects import importance_object_correlation, stage_inputs


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = build_swin("swin_micro", 128).eval()
    x = torch.rand(3, 3, 128, 128)
    cover = torch.zeros(3, 1, 128, 128)
    cover[0, :, 8:40, 16:48] = 1
    cover[1, :, 30:128, 0:20] = 1
    cover[2, :, 4:12, 50:90] = 0.5  # fractions are allowed
    return model, x, cover


def test_matches_a_hand_computation_at_every_stage(setup):
    model, x, cover = setup
    table = importance_object_correlation(model, lambda net: net(x), cover)
    inputs, windows = stage_inputs(model, lambda net: net(x))
    assert list(table["stage"]) == sorted(inputs) == [0, 1, 2]
    for row in table.itertuples():
        feat = inputs[row.stage].numpy()  # (B, H, W, C); 128 px input: every grid is a window multiple
        B, H, W, _ = feat.shape
        wh, ww = windows[row.stage]
        mag = np.abs(feat).mean(-1).reshape(B, H // wh, wh, W // ww, ww)
        importance = np.sqrt((mag**2).sum((2, 4))).reshape(B, -1)
        c = cover.numpy()[:, 0].reshape(B, H, 128 // H, W, 128 // W).mean((2, 4))  # token shares
        share = c.reshape(B, H // wh, wh, W // ww, ww).mean((2, 4)).reshape(B, -1)
        rho = [spearmanr(i, s).statistic for i, s in zip(importance, share) if s.std() > 0]
        assert row.images == len(rho) and row.spearman == pytest.approx(np.mean(rho), abs=1e-6)


def test_inverting_the_objects_flips_the_sign(setup):
    model, x, cover = setup
    a = importance_object_correlation(model, lambda net: net(x), cover)
    b = importance_object_correlation(model, lambda net: net(x), 1 - cover)
    assert np.allclose(a["spearman"], -b["spearman"], atol=1e-9)
    assert np.all(a["spearman"].abs() > 0) and a["images"].min() > 0
    with pytest.raises(ValueError, match="masks"):
        importance_object_correlation(model, lambda net: net(x), cover[:2])
