"""RepQ-ViT PTQ (`observer="repq"`): its search rules, the fold's exactness, log√2 <-> log2 shifts,
what the branches share and what they keep apart, and (with a checkout) RepQ-ViT's own code."""
from __future__ import annotations

import copy
import math
import os

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from mixaq.models import MixConfig, QuantConfig, build_swin, calibrating, convert_swin, set_mix, set_quant
from mixaq.models._quant import fake_quantize
from mixaq.models._repq import (
    PERCENTILES,
    log2_codes,
    log2_shift_matmul,
    log_sqrt2_quantize,
    log_sqrt2_search,
    uniform_search,
)
from mixaq.models._two_branch import converted_blocks
from mixaq.simulator import MixaqError


def _swin(img=(36, 44), dtype=torch.float32, seed: int = 1) -> nn.Module:
    """swin_nano with LayerNorm affines spread over decades per channel (as trained Swins have);
    36x44 pads the stage-0 token grid (9x11) to window multiples."""
    torch.manual_seed(seed)
    model = build_swin("swin_nano", img, num_classes=0).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(torch.exp(torch.randn_like(p) * 1.5))
            elif "norm" in name and name.endswith("bias"):
                p.copy_(torch.randn_like(p))
    return model.to(dtype)


def _images(n=4, img=(36, 44), dtype=torch.float32, seed=0) -> torch.Tensor:
    return torch.randn(n, 3, *img, generator=torch.Generator().manual_seed(seed)).to(dtype)


def _calibrated(model, x, quant):
    set_quant(model, quant)
    with torch.no_grad(), calibrating(model):
        model(x)
    return model


def _blocks(model):
    return [b for _, b in converted_blocks(model)]


# -- RepQ-ViT's calibration rules -------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(bits=st.integers(2, 8), seed=st.integers(0, 10_000), spread=st.floats(0.1, 100.0))
def test_uniform_search_picks_least_mse_quantile_pair(bits, seed, spread):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 500, generator=g) * spread + torch.randn(3, 1, generator=g) * spread
    scale, zp, lo, hi = uniform_search(x, bits)
    for row in range(3):
        errors = []
        for p in PERCENTILES:  # independent: quantile pair -> grid -> MSE, per row
            a, b = torch.quantile(x[row], 1 - p), torch.quantile(x[row], p)
            s = (b - a) / (2**bits - 1)
            z = torch.round(-a / s)
            q = (torch.clamp(torch.round(x[row] / s) + z, 0, 2**bits - 1) - z) * s
            errors.append(((q - x[row]) ** 2).mean().item())
        best = min(range(3), key=errors.__getitem__)  # first of equals, as RepQ-ViT's strict `<`
        assert lo[row] == torch.quantile(x[row], 1 - PERCENTILES[best])
        assert hi[row] == torch.quantile(x[row], PERCENTILES[best])
        assert scale[row] == (hi[row] - lo[row]) / (2**bits - 1)
        assert zp[row] == torch.round(-lo[row] / scale[row])


def test_log_sqrt2_values_and_underflow():
    x = torch.tensor([1.0, 0.7071, 0.5, 0.3, 2.0, 0.0, 2.0**-8, 2.0**-7.4])
    out = log_sqrt2_quantize(x.double(), 1.0, 4)
    codes = torch.clamp(torch.round(-2 * torch.log2(x.double())), 0, 15)
    expected = 2.0 ** (-codes / 2)
    expected[x == 0] = 0.0
    expected[torch.round(-2 * torch.log2(x.double())) >= 16] = 0.0  # below the 16th level: zero
    assert torch.allclose(out, expected, rtol=1e-12, atol=0)
    assert out[4] == 1.0 and out[6] == 0.0 and out[7] > 0  # clipped above, underflow below 2^-7.75


def test_log_sqrt2_search_is_the_best_quantile():
    probs = torch.softmax(torch.randn(64, 49, 49) * 3, dim=-1)
    for bits in (3, 4, 8):
        scale = log_sqrt2_search(probs, bits)
        errors = {p: ((log_sqrt2_quantize(probs, torch.quantile(probs.reshape(-1), p), bits) - probs) ** 2).mean().item()
                  for p in PERCENTILES}
        assert torch.equal(scale, torch.quantile(probs.reshape(-1), min(errors, key=errors.get)).reshape(1))


@settings(max_examples=20, deadline=None)
@given(bits=st.integers(2, 8), seed=st.integers(0, 10_000))
def test_log2_shift_form_equals_log_sqrt2_matmul(bits, seed):
    """attn·V on the log√2 grid == the shift-add (log2) form on integer V, scales applied after."""
    g = torch.Generator().manual_seed(seed)
    attn = torch.softmax(torch.randn(2, 3, 16, 16, generator=g, dtype=torch.float64) * 4, dim=-1)
    v = torch.randn(2, 3, 16, 8, generator=g, dtype=torch.float64)
    a_scale, v_scale, v_zp = 0.6, 0.05, 3.0
    v_int = torch.clamp(torch.round(v / v_scale), -v_zp, 2**bits - 1 - v_zp)  # integer codes - zero point
    direct = log_sqrt2_quantize(attn, a_scale, bits) @ (v_int * v_scale)
    shift, odd, zero = log2_codes(attn, a_scale, bits)
    assert shift.dtype == torch.int64 and int(shift.max()) <= 2 ** (bits - 1)
    shifted = log2_shift_matmul(shift, odd, zero, v_int) * a_scale * v_scale
    assert torch.allclose(shifted, direct, rtol=1e-12, atol=1e-15)
    # The odd codes really carry the √2: dropping it breaks the equality wherever odd codes occur.
    if odd[~zero].any():
        assert not torch.allclose(log2_shift_matmul(shift, odd & False, zero, v_int) * a_scale * v_scale, direct)


# -- the fold ----------------------------------------------------------------------------------------
def _float_branches(model) -> None:
    """Keep the folds but drop all rounding (activation quantizers pass through)."""
    for block in _blocks(model):
        for branch in block.act_quant.values():
            for fq in branch.values():
                fq.bits = None


@pytest.mark.parametrize("calibration", ["shared", "routed"])
def test_reparameterized_float_model_equals_original(calibration):
    ref = _swin()
    x = _images()
    model = convert_swin(copy.deepcopy(ref))
    mix = MixConfig(low_ratios=0.5)
    set_mix(model, mix)
    _calibrated(model, x, QuantConfig(8, 4, None, observer="repq", calibration=calibration))
    blocks = _blocks(model)
    assert all(b.repq is not None and all(f.is_active for f in b.repq.values()) for b in blocks)
    # The fold is not the identity: ratios spread and the two branches' shifts differ.
    fold = blocks[0].repq["qkv_in"]
    assert fold.ratio.max() / fold.ratio.min() > 10 and not torch.equal(fold.shift[0], fold.shift[1])
    _float_branches(model)
    with torch.no_grad():
        expected, got = ref(x), model(x)
    assert (got - expected).abs().max().item() <= 1e-5 * max(1.0, expected.abs().max().item())


@pytest.mark.parametrize("target", ["qkv_in", "fc1_in"])
@pytest.mark.parametrize("branch", ["high", "low"])
def test_folded_quantized_equals_per_channel_reference(target, branch):
    """Float64: the reparameterized LN -> per-tensor quantizer -> linear equals the original LN,
    quantized per channel (scale r·δ_t, zero point round(-lo/scale)), into Q(W·r)·diag(1/r)."""
    dtype = torch.float64
    model = convert_swin(_swin()).to(dtype)  # quantizer buffers in float64 too
    x = _images(dtype=dtype)
    _calibrated(model, x, QuantConfig(8, 4, 4, observer="repq"))
    block = _blocks(model)[0]
    fold, fq = block.repq[target], block.act_quant[branch][target]
    bits = 8 if branch == "high" else 4
    norm = getattr(block, {"qkv_in": "norm1", "fc1_in": "norm2"}[target] + ("" if branch == "high" else "_low"))
    linear = block.attn.qkv if target == "qkv_in" else block.mlp.fc1
    tokens = torch.randn(6, 16, linear.in_features, dtype=dtype, generator=torch.Generator().manual_seed(3)) * 3
    valid = torch.ones(3, 16, 1, dtype=dtype)
    valid[1, 10:] = 0  # padded tokens: timm zeroes the LN output there
    with torch.no_grad():
        got = block._norm_linear(branch, target, tokens, valid)
        y = (norm(tokens).view(2, 3, 16, -1) * valid).view(6, 16, -1)
        scale = fold.ratio * fq.scale  # per channel
        zero_point = torch.round(-fold.lo / scale)
        assert torch.allclose(scale, (fold.hi - fold.lo) / (2**bits - 1), rtol=1e-9)
        y_q = fake_quantize(y, scale, zero_point, 0, 2**bits - 1)
        w_q = block.weight_quant[linear_name(target)](linear.weight * fold.ratio)
        expected = F.linear(y_q / fold.ratio, w_q, linear.bias)
        # and it is really quantized: the float LN output gives something else
        assert not torch.allclose(F.linear(y / fold.ratio, w_q, linear.bias), expected, rtol=1e-6, atol=1e-6)
    assert fq.zero_point == torch.round(fq.zero_point)  # integer target zero point
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-10)


def linear_name(target: str) -> str:
    return {"qkv_in": "qkv", "fc1_in": "fc1"}[target]


def test_recalibration_is_idempotent_and_switching_back_removes_the_folds():
    ref, x = _swin(), _images()
    model = convert_swin(copy.deepcopy(ref))
    _calibrated(model, x, QuantConfig(8, 4, 4, observer="repq"))
    set_mix(model, MixConfig(low_ratios=0.5))
    with torch.no_grad():
        first = model(x)
        with calibrating(model):  # observes the original LN output, not the folded one
            model(x)
        assert torch.equal(model(x), first)
    _calibrated(model, x, QuantConfig(8, 4, 4, observer="minmax"))
    fresh = _calibrated(convert_swin(copy.deepcopy(ref)), x, QuantConfig(8, 4, 4, observer="minmax"))
    set_mix(fresh, MixConfig(low_ratios=0.5))
    assert all(b.repq is None for b in _blocks(model))
    with torch.no_grad():
        assert torch.equal(model(x), fresh(x))


# -- what the branches share ---------------------------------------------------------------------
def test_branches_share_ranges_and_ratios_keep_their_own_steps_shifts_and_log_scales():
    ref, x = _swin(), _images()
    mixed = _calibrated(convert_swin(copy.deepcopy(ref)), x, QuantConfig(8, 4, 4, observer="repq"))
    a8 = _calibrated(convert_swin(copy.deepcopy(ref)), x, QuantConfig(8, 8, 4, observer="repq"))
    a4 = _calibrated(convert_swin(copy.deepcopy(ref)), x, QuantConfig(4, 4, 4, observer="repq"))
    for bm, b8, b4 in zip(_blocks(mixed), _blocks(a8), _blocks(a4)):
        # Per branch: every quantizer that is not folded equals the uniform model's at its bits.
        for target in ("q", "k", "attn", "v", "proj_in", "fc2_in"):
            assert torch.equal(bm.act_quant["high"][target].scale, b8.act_quant["high"][target].scale)
            assert torch.equal(bm.act_quant["low"][target].scale, b4.act_quant["low"][target].scale)
            assert torch.equal(bm.act_quant["low"][target].zero_point, b4.act_quant["low"][target].zero_point)
        assert bm.act_quant["high"]["attn"].grid == "log_sqrt2"
        probs = torch.softmax(torch.randn(4, 16, 16) * 3, dim=-1)
        assert not torch.equal(bm.act_quant["high"]["attn"](probs), bm.act_quant["low"]["attn"](probs))
        for target in ("qkv_in", "fc1_in"):
            fm, f4 = bm.repq[target], b4.repq[target]
            # Shared: ranges searched at the lowest width (4), hence ratios and the folded weight.
            assert torch.equal(fm.lo, f4.lo) and torch.equal(fm.hi, f4.hi) and torch.equal(fm.ratio, f4.ratio)
            # Per branch: the low branch is exactly the uniform A4 model's; the high one has 8-bit steps.
            assert torch.equal(fm.shift[1], f4.shift[1])
            assert torch.equal(bm.act_quant["low"][target].scale, b4.act_quant["low"][target].scale)
            hi_fq = bm.act_quant["high"][target]
            assert math.isclose(float(hi_fq.scale), float((fm.hi - fm.lo).mean() / 255), rel_tol=1e-6)
            assert not torch.equal(fm.shift[0], fm.shift[1])


def _norm_linear_inputs(model, x) -> list[dict[str, torch.Tensor]]:
    """Per block, the token windows each `_norm_linear` target received in one forward."""
    seen = []
    for block in _blocks(model):
        seen.append({})

        def record(branch, target, tokens, valid=None, _orig=block._norm_linear, _seen=seen[-1]):  # noqa: ANN001, ANN202
            _seen.setdefault(target, tokens.detach().clone())
            return _orig(branch, target, tokens, valid)

        block._norm_linear = record
    with torch.no_grad():
        model(x)
    for block in _blocks(model):
        del block._norm_linear
    return seen


@pytest.mark.parametrize("target", ["qkv_in", "fc1_in"])
def test_fold_beats_per_tensor_minmax_on_outlier_channels(target):
    """What the fold is for: post-LN channels whose ranges differ by decades lose far less to a
    4-bit grid per channel (folded) than to one per-tensor min-max grid (same calibration data)."""
    ref, x = _swin(img=(32, 32)), _images(8, img=(32, 32))
    inputs = _norm_linear_inputs(convert_swin(copy.deepcopy(ref)), x)
    errors = {}
    for observer in ("minmax", "repq"):
        model = _calibrated(convert_swin(copy.deepcopy(ref)), x, QuantConfig(4, 4, None, observer=observer))
        for block, seen in zip(_blocks(model), inputs):
            norm = block.norm1 if target == "qkv_in" else block.norm2
            linear = block.attn.qkv if target == "qkv_in" else block.mlp.fc1
            with torch.no_grad():
                expected = F.linear(norm(seen[target]), linear.weight, linear.bias)
                got = block._norm_linear("low", target, seen[target])
            errors.setdefault(observer, []).append(((got - expected).norm() / expected.norm()).item())
    ratios = [r / m for r, m in zip(errors["repq"], errors["minmax"])]
    assert max(ratios) < 0.7 and sum(ratios) / len(ratios) < 0.5, errors


def test_repq_minmax_differs_only_in_the_remaining_ranges():
    ref, x = _swin(), _images()
    faithful = _calibrated(convert_swin(copy.deepcopy(ref)), x, QuantConfig(8, 4, 4, observer="repq"))
    plain = _calibrated(convert_swin(copy.deepcopy(ref)), x, QuantConfig(8, 4, 4, observer="repq_minmax"))
    minmax = _calibrated(convert_swin(copy.deepcopy(ref)), x, QuantConfig(8, 4, 4, observer="minmax"))
    for bf, bp, bm in zip(_blocks(faithful), _blocks(plain), _blocks(minmax)):
        for target in ("qkv_in", "fc1_in"):
            assert torch.equal(bf.repq[target].shift, bp.repq[target].shift)
        for branch in ("high", "low"):
            assert torch.equal(bf.act_quant[branch]["attn"].scale, bp.act_quant[branch]["attn"].scale)
            for target in ("q", "k", "v", "proj_in", "fc2_in"):
                assert torch.equal(bp.act_quant[branch][target].scale, bm.act_quant[branch][target].scale)


@pytest.mark.parametrize("observer", ["repq", "repq_minmax"])
def test_repq_config_errors(observer):
    with pytest.raises(MixaqError, match="repq"):
        QuantConfig(observer=observer, learnable=True)
    with pytest.raises(MixaqError, match="repq"):
        QuantConfig(observer=observer, act_symmetric=True)


# -- RepQ-ViT's own code (needs a checkout; CI has no GitHub) --------------------------------------
REPQ_ROOT = os.environ.get("MIXAQ_REPQ_ROOT")


@pytest.mark.skipif(not REPQ_ROOT, reason="set MIXAQ_REPQ_ROOT to a checkout of github.com/zkkli/RepQ-ViT "
                    "to cross-check against RepQ-ViT's own quantizers")
@pytest.mark.parametrize("bits", [4, 8])
def test_matches_repq_vit_code(bits):
    from benchmarks.check_repq import compare

    rows = compare(REPQ_ROOT, bits)
    for row in rows:
        if row["tensor"] in ("qkv_in", "fc1_in", "attn") or not row.get("sampled", False):
            assert row["scales_equal"], row
        if row["tensor"] == "attn":
            assert row["max_act_diff"] == 0.0, row
        if row["tensor"] in ("qkv_in", "fc1_in"):
            # float32 rounding near a half step: at most a few values in a thousand, by one step
            assert row["flipped"] <= 1e-3 * row["elements"] and row["max_diff_steps"] <= 1.0 + 1e-3, row


def test_eval_flags_build_a_repq_config():
    import argparse

    from mixaq.models.evaluation._cli_eval import add_arguments, build_configs

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    quant, mix = build_configs(parser.parse_args(["--observer", "repq_minmax", "--low-ratio", "0.5"]))
    assert quant.repq and quant.observer == "repq_minmax" and mix.low_ratios == 0.5
    assert not build_configs(parser.parse_args([]))[0].repq
