"""Window importance, ratio/threshold assignment and the per-forward window record."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixaq.models import (
    MixConfig,
    QuantConfig,
    TwoBranchSwinBlock,
    assignment_from_record,
    build_swin,
    calibrating,
    convert_swin,
    get_record,
    reset_record,
    set_mix,
    set_quant,
)
from mixaq.models._importance import (
    HIGH,
    LOW,
    PRUNED,
    assign_labels,
    label_counts,
    ratio_counts,
    threshold_counts,
    window_importance,
    window_ranks,
)
from mixaq.simulator import MixaqError, WindowAssignment, get_arch, window_counts


def _naive_importance(mag: np.ndarray, ws: int, shift: int) -> np.ndarray:
    """Loop reference: roll, zero-pad, L2 per window, windows row-major."""
    B, H, W = mag.shape
    rolled = np.roll(mag, (-shift, -shift), axis=(1, 2))
    Hp, Wp = math.ceil(H / ws) * ws, math.ceil(W / ws) * ws
    padded = np.zeros((B, Hp, Wp))
    padded[:, :H, :W] = rolled
    out = []
    for b in range(B):
        row = []
        for i in range(Hp // ws):
            for j in range(Wp // ws):
                row.append(np.sqrt((padded[b, i * ws : (i + 1) * ws, j * ws : (j + 1) * ws] ** 2).sum()))
        out.append(row)
    return np.asarray(out)


@pytest.mark.parametrize("hw, ws, shift", [((8, 8), 4, 0), ((8, 8), 4, 2), ((11, 9), 4, 2), ((7, 13), 3, 1)])
def test_window_importance_matches_loop_reference(hw, ws, shift):
    mag = torch.rand(2, *hw, generator=torch.Generator().manual_seed(0))
    got = window_importance(mag, (ws, ws), (shift, shift)).numpy()
    np.testing.assert_allclose(got, _naive_importance(mag.numpy(), ws, shift), rtol=1e-5)


@settings(max_examples=80, deadline=None)
@given(
    n_windows=st.integers(1, 40),
    batch=st.integers(1, 3),
    ratios=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=2, max_size=2),
    seed=st.integers(0, 1000),
)
def test_labels_follow_window_counts_and_nest(n_windows, batch, ratios, seed):
    scores = torch.rand(batch, n_windows, generator=torch.Generator().manual_seed(seed))
    ranks = window_ranks(scores)
    labels = []
    for low, prune in ratios:
        n_pruned, n_low = ratio_counts(n_windows, low, prune)
        lab = assign_labels(ranks, n_pruned, n_low)
        want_high, want_low, want_pruned = (int(v) for v in window_counts(n_windows, low, prune))
        assert label_counts(lab).tolist() == [[want_high, want_low, want_pruned]] * batch
        # The pruned windows are the lowest-scored ones, the low-bit ones come next.
        for b in range(batch):
            pruned_scores, low_scores, high_scores = (scores[b][lab[b] == k] for k in (PRUNED, LOW, HIGH))
            if len(pruned_scores) and len(low_scores):
                assert pruned_scores.max() <= low_scores.min()
            if len(low_scores) and len(high_scores):
                assert low_scores.max() <= high_scores.min()
        labels.append(lab)
    # Selections nest: one shared order means a larger demoted set contains the smaller one.
    (l0, p0), (l1, p1) = ratios
    first, second = labels
    if p0 <= p1:
        assert bool(((first == PRUNED) <= (second == PRUNED)).all())
    if window_counts(n_windows, l0, p0)[0] >= window_counts(n_windows, l1, p1)[0]:
        assert bool(((first != HIGH) <= (second != HIGH)).all())


def test_threshold_counts_match_reference():
    importance = torch.tensor(
        [[1.0, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 0.0, 0.0], [10.0, 20.0, 30.0, 60.0]]
    )
    n_pruned, n_low = threshold_counts(importance, low_threshold=1.0, prune_threshold=0.5)
    # Each image by its own mean: 3, 5, 0, 30 -> [1/3, 2/3, 1, 2], [1, 1, 1, 1], 0 (guarded), as the first.
    assert n_pruned.tolist() == [1, 0, 4, 1]
    assert n_low.tolist() == [1, 0, 0, 1]
    n_pruned, n_low = threshold_counts(importance, low_threshold=0.5, prune_threshold=0.9)
    assert n_pruned.tolist() == [2, 0, 4, 2] and n_low.tolist() == [0, 0, 0, 0]


def _scene(batch: int, size: int) -> torch.Tensor:
    """Images with a different number of bright objects each, on a faint texture."""
    gen = torch.Generator().manual_seed(1)
    x = 0.05 * torch.randn(batch, 3, size, size, generator=gen)
    for b in range(batch):
        for _k in range(b * 3 + 1):
            y0, x0 = torch.randint(0, size - 10, (2,), generator=gen).tolist()
            x[b, :, y0 : y0 + 10, x0 : x0 + 10] += 4 * torch.randn(3, 1, 1, generator=gen)
    return x


def test_threshold_mode_counts_vary_per_image_and_are_recorded():
    torch.manual_seed(0)
    model = convert_swin(build_swin("swin_micro", 72, features_only=True).eval())
    blocks = [b for b in model.modules() if isinstance(b, TwoBranchSwinBlock)]
    stage_inputs = {}
    for b in blocks:
        if b.first_in_stage:
            b.register_forward_pre_hook(lambda m, args: stage_inputs.__setitem__(m.mixaq_stage, args[0].detach()))
    low_t, prune_t = (1.0, 1.2, 0.9), (0.3, 0.5, 0.0)
    set_mix(model, MixConfig(mode="threshold", low_thresholds=low_t, prune_thresholds=prune_t))
    x = _scene(4, 72)
    with torch.no_grad():
        model(x)
    record = get_record(model)
    assert record.counts.shape == (4, 6, 3)
    for i, b in enumerate(blocks):
        mag = stage_inputs[b.mixaq_stage].abs().mean(-1).numpy()
        imp = _naive_importance(mag, b.window_size[0], b.shift_size[0])
        normalized = imp / imp.mean(1, keepdims=True)
        pruned = (normalized < prune_t[b.mixaq_pair]).sum(1)
        low = np.maximum((normalized < low_t[b.mixaq_pair]).sum(1) - pruned, 0)
        np.testing.assert_array_equal(record.n_pruned[:, i], pruned)
        np.testing.assert_array_equal(record.n_low[:, i], low)
        np.testing.assert_array_equal(record.n_windows[:, i], imp.shape[1])
    assert len(set(map(tuple, record.n_low.tolist()))) > 1  # counts really differ between images
    assignment = assignment_from_record(record, QuantConfig())
    np.testing.assert_allclose(assignment.low_fraction, (record.n_low / record.n_windows).mean(0))


@pytest.mark.parametrize("img", [64, 72])
def test_record_assignment_equals_simulator_ratios(img):
    arch = get_arch("swin_micro")
    model = convert_swin(build_swin(arch, img, features_only=True).eval())
    low, prune = (0.3, 0.55, 0.8), (0.1, 0.25, 0.0)
    set_mix(model, MixConfig(low_ratios=low, prune_ratios=prune, strategy="random"))
    quant = QuantConfig(high_act_bits=8, low_act_bits=4, weight_bits=4)
    with torch.no_grad():
        model(_scene(2, img))
        model(_scene(3, img))
    record = get_record(model)
    assert record.n_images == 5
    got = assignment_from_record(record, quant)
    want = WindowAssignment.from_pair_ratios(arch, (img, img), low, prune, 8, 4, 4)
    np.testing.assert_allclose(got.low_fraction, want.low_fraction, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.pruned_fraction, want.pruned_fraction, rtol=0, atol=1e-12)
    assert (got.high_act_bits, got.low_act_bits, got.weight_bits) == (8, 4, 4)
    np.testing.assert_array_equal(record.n_windows[0], arch.windows_per_block((img, img)))


def test_record_lifecycle():
    model = convert_swin(build_swin("swin_nano", 64).eval())
    x = _scene(2, 64)
    set_quant(model, QuantConfig())
    with torch.no_grad(), calibrating(model):
        model(x)
    assert get_record(model).n_images == 0  # calibration is not recorded
    with pytest.raises(MixaqError, match="empty"):
        assignment_from_record(get_record(model), QuantConfig())
    with torch.no_grad():
        model(x)
    record = get_record(model)
    assert record.n_images == 2 and (record.n_high == record.n_windows).all()
    frame = record.to_frame()
    assert len(frame) == 2 * 4 and list(frame.columns) == ["image", "block", "name", "high", "low", "pruned"]
    assert frame["name"].iloc[0] == "layers.0.blocks.0"
    reset_record(model)
    assert get_record(model).n_images == 0
    block = next(b for b in model.modules() if isinstance(b, TwoBranchSwinBlock))
    with torch.no_grad():
        block(torch.randn(1, 16, 16, 16))  # one block alone: the others recorded nothing
    with pytest.raises(MixaqError, match="different numbers of images"):
        get_record(model)
