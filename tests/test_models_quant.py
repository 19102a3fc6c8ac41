"""Fake quantizers, observers, LSQ gradients and config validation."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mixaq.models import ACT_TARGETS, FakeQuant, MixConfig, QuantConfig
from mixaq.models._quant import fake_quantize, qparams_from_range, qrange
from mixaq.simulator import MixaqError


def _act_quant(bits: int, observer: str = "minmax", symmetric: bool = False, learnable: bool = False) -> FakeQuant:
    fq = FakeQuant()
    fq.configure(bits, symmetric, observer, 99.0, learnable)
    return fq


def _calibrate(fq: FakeQuant, *batches: torch.Tensor) -> None:
    fq.observing = True
    for b in batches:
        assert torch.equal(fq(b), b)  # observing passes activations through in float
    fq.observing = False
    fq.freeze()


@settings(max_examples=60, deadline=None)
@given(
    bits=st.integers(2, 8),
    symmetric=st.booleans(),
    lo=st.floats(-50, 0.0),
    width=st.floats(1e-3, 100),
    seed=st.integers(0, 2**16),
)
def test_fake_quantize_lands_on_grid_within_half_step(bits, symmetric, lo, width, seed):
    hi = lo + width
    scale, zp = qparams_from_range(torch.tensor([lo]), torch.tensor([hi]), bits, symmetric)
    qmin, qmax = qrange(bits, symmetric)
    x = torch.empty(257).uniform_(lo, hi, generator=torch.Generator().manual_seed(seed))
    y = fake_quantize(x, scale, zp, qmin, qmax)
    codes = y / scale + zp
    assert torch.allclose(codes, codes.round(), atol=1e-3)
    assert codes.min() >= qmin - 1e-3 and codes.max() <= qmax + 1e-3
    # The grid covers [lo, hi] (widened to 0): error at most half a step (float slack).
    assert (y - x).abs().max() <= scale.item() / 2 * (1 + 1e-4) + 1e-6
    assert len(torch.unique(codes.round())) <= 2**bits


def test_inference_and_autograd_paths_agree():
    scale, zp = torch.tensor([0.1]), torch.tensor([3.0])
    x = torch.randn(1000) * 0.5
    with torch.no_grad():
        a = fake_quantize(x, scale, zp, 0, 15)
    b = fake_quantize(x.clone().requires_grad_(), scale, zp, 0, 15)
    assert torch.equal(a, b.detach())


def test_ste_gradient_is_one_inside_zero_outside():
    scale, zp = torch.tensor([0.1]), torch.tensor([0.0])
    x = torch.tensor([-0.5, 0.05, 0.31, 0.69, 2.0], requires_grad=True)
    fake_quantize(x, scale, zp, 0, 7).sum().backward()  # grid [0, 0.7]
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


def test_lsq_step_gradient_matches_formula():
    fq = _act_quant(3, learnable=True)
    _calibrate(fq, torch.tensor([-1.0, 2.5]))
    assert isinstance(fq.scale, torch.nn.Parameter) and isinstance(fq.zero_point, torch.nn.Parameter)
    with torch.no_grad():
        fq.scale.fill_(0.5)
        fq.zero_point.fill_(2.0)
    x = torch.tensor([0.26, -3.0, 10.0, -0.74])
    fq(x).sum().backward()
    # LSQ: d/ds = round(x/s) - x/s inside, (qmin-zp) / (qmax-zp) when clipped; scaled by 1/sqrt(n*qmax).
    v = x / 0.5 + 2.0
    inside = (v >= 0) & (v <= 7)
    expected = torch.where(inside, v.round() - v, torch.where(v < 0, torch.tensor(-2.0), torch.tensor(5.0)))
    g = 1 / math.sqrt(4 * 7)
    assert fq.scale.grad.item() == pytest.approx(expected.sum().item() * g, rel=1e-5)
    assert fq.zero_point.grad is not None


def test_minmax_covers_every_batch():
    fq = _act_quant(8)
    _calibrate(fq, torch.tensor([-1.0, 0.5]), torch.tensor([0.2, 3.0]))
    lo = (0 - fq.zero_point) * fq.scale
    hi = (255 - fq.zero_point) * fq.scale
    assert lo.item() <= -1.0 + fq.scale.item() and hi.item() >= 3.0 - fq.scale.item()
    assert fq.scale.item() == pytest.approx(4.0 / 255)


def test_percentile_clips_outliers_and_mse_beats_minmax():
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(100_000, generator=gen)
    data[:10] = 40.0  # rare outliers
    minmax, pct, mse = _act_quant(4), _act_quant(4, "percentile"), _act_quant(4, "mse")
    for fq in (minmax, pct, mse):
        _calibrate(fq, data)
    assert pct.scale.item() < minmax.scale.item() / 5
    err = {name: (fq(data) - data).pow(2).mean().item() for name, fq in (("minmax", minmax), ("mse", mse))}
    # The MSE search includes the full range as a candidate, so it cannot do worse than min-max.
    assert err["mse"] <= err["minmax"]
    assert err["mse"] < 0.5 * err["minmax"]


def test_weight_quantizer_is_per_channel_and_tracks_weight_changes():
    w = torch.tensor([[1.0, -0.5, 0.25], [0.01, 0.02, -0.03]])
    fq = FakeQuant(channels=2)
    fq.configure(4, True, "minmax", 99.0, False)
    with torch.no_grad():
        q = fq(w)
    # Each row's largest magnitude is exactly representable (it sets that row's step).
    assert q[0, 0].item() == pytest.approx(1.0) and q[1, 2].item() == pytest.approx(-0.03)
    with torch.no_grad():
        w.mul_(2.0)  # in place: the cached step must not be reused
        q2 = fq(w)
    assert torch.allclose(q2, 2 * q)


def test_uncalibrated_activation_quantizer_raises():
    fq = _act_quant(4)
    with pytest.raises(MixaqError, match="calibrat"):
        fq(torch.randn(4))


def test_float_quantizer_is_identity_and_needs_no_calibration():
    fq = FakeQuant()
    fq.configure(None, False, "minmax", 99.0, False)
    x = torch.randn(10)
    assert fq(x) is x


def test_configure_change_forgets_calibration_and_state_dict_keeps_it():
    fq = _act_quant(4)
    _calibrate(fq, torch.randn(100))
    state = fq.state_dict()
    other = _act_quant(4)
    other.load_state_dict(state)
    x = torch.randn(50)
    assert torch.equal(other(x), fq(x))
    fq.configure(4, False, "minmax", 99.0, False)  # unchanged: keeps calibration
    fq(x)
    fq.configure(3, False, "minmax", 99.0, False)
    with pytest.raises(MixaqError):
        fq(x)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(high_act_bits=1), "high_act_bits"),
        (dict(low_act_bits=9), "low_act_bits"),
        (dict(weight_bits=True), "weight_bits"),
        (dict(weight_bits=4.0), "weight_bits"),
        (dict(observer="kl"), "observer"),
        (dict(weight_observer="percentile"), "weight_observer"),
        (dict(percentile=30), "percentile"),
        (dict(targets=("qkv_in", "softmax")), "target"),
    ],
)
def test_quant_config_rejects_bad_fields(kwargs, field):
    with pytest.raises(MixaqError, match=field) as info:
        QuantConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_quant_config_normalises_targets_and_presets():
    assert QuantConfig(targets=("v", "qkv_in")).targets == ("qkv_in", "v")
    assert QuantConfig().targets == ACT_TARGETS
    ptq, qat = QuantConfig.paper_ptq(), QuantConfig.paper_qat()
    assert (ptq.weight_bits, ptq.high_act_bits, ptq.low_act_bits) == (4, 8, 4) and ptq.repq
    assert (qat.weight_bits, qat.high_act_bits, qat.low_act_bits, qat.learnable) == (4, 4, 2, True)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(mode="topk"), "mode"),
        (dict(strategy="best"), "strategy"),
        (dict(low_ratios=1.2), "low_ratios"),
        (dict(prune_ratios=(0.1, -0.1)), "prune_ratios"),
        (dict(low_thresholds=float("nan")), "low_thresholds"),
        (dict(low_ratios=()), "low_ratios"),
        (dict(seed=1.5), "seed"),
    ],
)
def test_mix_config_rejects_bad_fields(kwargs, field):
    with pytest.raises(MixaqError, match=field):
        MixConfig(**kwargs)


def test_mix_config_per_pair():
    assert MixConfig(low_ratios=0.3).per_pair("low_ratios", 3) == (0.3, 0.3, 0.3)
    assert MixConfig(low_ratios=[0.1, 0.2]).per_pair("low_ratios", 2) == (0.1, 0.2)
    with pytest.raises(MixaqError, match="3 block pairs"):
        MixConfig(low_ratios=[0.1, 0.2]).per_pair("low_ratios", 3)
