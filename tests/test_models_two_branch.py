"""Two-branch conversion of timm's Swin: equivalence, branch routing, pruning, calibration."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
from timm.models.swin_transformer import SwinTransformerBlock

from mixaq.models import (
    MixConfig,
    QuantConfig,
    TwoBranchSwinBlock,
    build_swin,
    calibrating,
    convert_swin,
    get_record,
    set_mix,
    set_quant,
)
from mixaq.models._importance import HIGH, LOW, PRUNED, assign_labels, ratio_counts, token_magnitude, window_importance, window_ranks
from mixaq.simulator import MixaqError

torch.manual_seed(0)


def _pair(arch: str, img, features_only: bool = False):
    """(timm original, converted deep copy) in eval mode, same weights."""
    torch.manual_seed(1)
    ref = build_swin(arch, img, features_only=features_only).eval()
    # Non-trivial LayerNorm affine so the branch copies matter.
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return ref, convert_swin(copy.deepcopy(ref))


def _outputs(model, x):
    out = model(x)
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _max_diff(a, b) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a, b))


def _calibrated(model, x, quant):
    set_quant(model, quant)
    with torch.no_grad(), calibrating(model):
        model(x)
    return model


def _images(batch: int, size, seed: int = 0) -> torch.Tensor:
    """Textured background with a few bright objects, so window importance is not uniform."""
    gen = torch.Generator().manual_seed(seed)
    h, w = (size, size) if isinstance(size, int) else size
    x = 0.2 * torch.randn(batch, 3, h, w, generator=gen)
    for b in range(batch):
        for _ in range(1 + b):
            y0, x0 = torch.randint(0, h - 12, (2,), generator=gen).tolist()
            x[b, :, y0 : y0 + 12, x0 : x0 + 12] += 3 * torch.randn(3, 1, 1, generator=gen)
    return x


# -- equivalence with timm ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arch, img, batch, features_only",
    [
        ("swin_nano", 64, 1, False),  # windows tile the map exactly; shifted blocks
        ("swin_nano", (60, 52), 2, True),  # padding on both axes, features_only
        ("swin_micro", 72, 3, True),  # padding, three stages, batch > 1
        ("swin_micro", 96, 2, False),  # last stage smaller than the window (timm shrinks it, no shift)
    ],
)
def test_float_branches_equal_timm(arch, img, batch, features_only):
    ref, model = _pair(arch, img, features_only)
    x = _images(batch, img)
    with torch.no_grad():
        expected = _outputs(ref, x)
        assert _max_diff(expected, _outputs(model, x)) <= 1e-5
        # Windows split across both (float) branches and none pruned: still timm's function.
        set_mix(model, MixConfig(low_ratios=0.5))
        assert _max_diff(expected, _outputs(model, x)) <= 1e-5
        set_mix(model, MixConfig(mode="threshold", low_thresholds=1.0, strategy="random", seed=3))
        assert _max_diff(expected, _outputs(model, x)) <= 1e-5


def test_float_branches_equal_timm_gradients_in_training():
    ref, model = _pair("swin_nano", (60, 52), features_only=True)
    for net in (ref, model):
        net.train()
        for m in net.modules():
            if hasattr(m, "drop_prob"):
                m.drop_prob = 0.0
    set_mix(model, MixConfig(low_ratios=0.5, prune_ratios=0.0))
    x = _images(2, (60, 52))
    grads = []
    for net in (ref, model):
        net.zero_grad()
        sum((o * torch.linspace(-1, 1, o.shape[-1])).sum() for o in _outputs(net, x)).backward()
        grads.append({n: p.grad for n, p in net.named_parameters() if p.grad is not None})
    for name, g in grads[0].items():
        low = name.replace("norm1.", "norm1_low.").replace("norm2.", "norm2_low.")
        total = grads[1][name] + (grads[1][low] if low != name else 0)
        # Shared weights collect gradient from both branches; LN copies split timm's LN gradient.
        assert torch.allclose(g, total, atol=1e-5, rtol=1e-4), name


def test_stochastic_depth_is_per_image():
    ref, model = _pair("swin_nano", 64)
    for net in (ref, model):
        net.train()
        for m in net.modules():
            if hasattr(m, "drop_prob"):
                m.drop_prob = 1.0  # every residual branch dropped: all blocks are identities
    x = _images(2, 64)
    assert _max_diff(_outputs(ref, x), _outputs(model, x)) <= 1e-5


def test_convert_finds_blocks_in_any_module_and_is_idempotent():
    class Detector(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = build_swin("swin_micro", 64, features_only=True)
            self.head = nn.Conv2d(128, 4, 1)

    det = Detector()
    assert convert_swin(det) is det
    blocks = [m for m in det.modules() if isinstance(m, SwinTransformerBlock)]
    assert len(blocks) == 6 and all(isinstance(b, TwoBranchSwinBlock) for b in blocks)
    assert [b.mixaq_pair for b in blocks] == [0, 0, 1, 1, 2, 2]
    assert [b.mixaq_index for b in blocks] == list(range(6))
    state = det.state_dict()
    convert_swin(det)
    assert set(det.state_dict()) == set(state)
    with pytest.raises(MixaqError, match="no timm SwinTransformerBlock"):
        convert_swin(nn.Linear(2, 2))
    with pytest.raises(MixaqError, match="convert_swin first"):
        set_mix(nn.Linear(2, 2), None)


def test_float_checkpoint_keys_are_kept():
    ref, model = _pair("swin_nano", 64)
    original = set(ref.state_dict())
    assert original <= set(model.state_dict())
    missing = model.load_state_dict(ref.state_dict(), strict=False).missing_keys
    assert all("_low." in k or "quant." in k for k in missing)


# -- quantized branches ---------------------------------------------------------------------------
def test_low_ratio_one_equals_uniform_low_and_zero_equals_uniform_high():
    ref, mixed = _pair("swin_micro", 72, features_only=True)
    x = _images(2, 72)
    _calibrated(mixed, x, QuantConfig(high_act_bits=8, low_act_bits=3, weight_bits=8))
    uniform_low = _calibrated(convert_swin(copy.deepcopy(ref)), x, QuantConfig(high_act_bits=3, low_act_bits=3, weight_bits=8))
    uniform_high = _calibrated(convert_swin(copy.deepcopy(ref)), x, QuantConfig(high_act_bits=8, low_act_bits=8, weight_bits=8))
    with torch.no_grad():
        float_out = _outputs(ref, x)
        high, low = _outputs(uniform_high, x), _outputs(uniform_low, x)
        set_mix(mixed, MixConfig(low_ratios=1.0))
        assert _max_diff(_outputs(mixed, x), low) <= 1e-6
        set_mix(mixed, MixConfig(low_ratios=0.0))
        assert _max_diff(_outputs(mixed, x), high) <= 1e-6
        set_mix(mixed, None)
        assert _max_diff(_outputs(mixed, x), high) <= 1e-6
    # The quantizers are really active: 3-bit is further from float than 8-bit.
    assert _max_diff(low, float_out) > 10 * _max_diff(high, float_out) > 0


def test_equal_bits_mixed_equals_uniform():
    """Calibration feeds both branches every window, so at equal bits their quantizers coincide."""
    _, model = _pair("swin_nano", (60, 52), features_only=True)
    x = _images(2, (60, 52))
    _calibrated(model, x, QuantConfig(high_act_bits=5, low_act_bits=5, weight_bits=5, observer="percentile"))
    with torch.no_grad():
        uniform = _outputs(model, x)
        set_mix(model, MixConfig(low_ratios=(0.3, 0.6)))
        assert _max_diff(_outputs(model, x), uniform) <= 1e-5


def test_calibration_does_not_depend_on_the_mix():
    ref, a = _pair("swin_nano", 64)
    b = convert_swin(copy.deepcopy(ref))
    set_mix(b, MixConfig(low_ratios=0.7, prune_ratios=0.2))
    x = _images(2, 64)
    for net in (a, b):
        _calibrated(net, x, QuantConfig(observer="percentile"))
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa if "act_quant" in k)


def test_routed_calibration_fits_each_branch_to_its_windows():
    ref, shared = _pair("swin_nano", 64)
    routed = convert_swin(copy.deepcopy(ref))
    mix = MixConfig(low_ratios=0.5)
    x = _images(2, 64)
    _calibrated(shared, x, QuantConfig(observer="minmax"))
    set_mix(routed, mix)
    _calibrated(routed, x, QuantConfig(observer="minmax", calibration="routed"))
    # Float activations are identical either way, so each branch's routed range is the range of
    # a subset of the windows: never wider than the shared one, and narrower somewhere.
    ss, sr = shared.state_dict(), routed.state_dict()
    keys = [k for k in ss if "act_quant" in k and k.endswith(".scale")]
    assert keys and all(bool((sr[k] <= ss[k] + 1e-12).all()) for k in keys)
    assert any(bool((sr[k] < ss[k] * 0.999).any()) for k in keys if ".low." in k)
    # Routed calibration under "everything high" leaves the low branch uncalibrated: using it fails.
    unused = convert_swin(copy.deepcopy(ref))
    set_mix(unused, MixConfig(low_ratios=0.0))
    _calibrated(unused, x, QuantConfig(calibration="routed"))
    set_mix(unused, mix)
    with pytest.raises(MixaqError, match="not calibrated"):
        unused(x)


def _block_input(block: TwoBranchSwinBlock, batch: int, hw) -> torch.Tensor:
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(batch, *hw, block.dim, generator=gen)
    return x * torch.rand(batch, *hw, 1, generator=gen) * 4  # uneven token magnitudes


def _token_labels(block: TwoBranchSwinBlock, labels: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """(B, nW) window labels -> (B, H, W) per token, re-derived independently of the block's code."""
    (wh, ww), (sh, sw) = block.window_size, block.shift_size
    Hp, Wp = -(-H // wh) * wh, -(-W // ww) * ww
    grid = labels.view(-1, Hp // wh, Wp // ww)
    tokens = grid.repeat_interleave(wh, 1).repeat_interleave(ww, 2)[:, :H, :W]  # shifted coordinates
    return torch.roll(tokens, shifts=(sh, sw), dims=(1, 2))


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("hw", [(16, 16), (15, 13)])
def test_block_routes_each_window_to_its_branch(shifted, hw):
    """Per block, every window is computed independently, so the routed output must equal, window
    by window, the all-high output, the all-low output or the input (pruned)."""
    _, model = _pair("swin_nano", hw[0] * 4)
    block = [b for b in model.modules() if isinstance(b, TwoBranchSwinBlock)][int(shifted)]
    assert any(block.shift_size) == shifted
    x = _block_input(block, 2, hw)
    set_quant(model, QuantConfig(high_act_bits=6, low_act_bits=2, weight_bits=4))
    block.first_in_stage = True  # call the block alone: it computes the importance itself
    with torch.no_grad(), calibrating(model):
        block(x)
    with torch.no_grad():
        all_high = block(x)
        set_mix(model, MixConfig(low_ratios=1.0))
        all_low = block(x)
        set_mix(model, MixConfig(low_ratios=0.4, prune_ratios=0.3))
        routed = block(x)
    n_windows = window_importance(token_magnitude(x), block.window_size, block.shift_size).shape[1]
    ranks = window_ranks(window_importance(token_magnitude(x), block.window_size, block.shift_size))
    n_pruned, n_low = ratio_counts(n_windows, 0.4, 0.3)
    tokens = _token_labels(block, assign_labels(ranks, n_pruned, n_low), *hw)
    assert {HIGH, LOW, PRUNED} <= set(tokens.unique().tolist())
    expected = torch.where(tokens[..., None] == HIGH, all_high, torch.where(tokens[..., None] == LOW, all_low, x))
    assert (routed - expected).abs().max().item() <= 1e-5
    pruned = tokens == PRUNED
    assert torch.equal(routed[pruned], x[pruned])  # bit-exact pass-through
    assert not torch.allclose(all_high[~pruned], all_low[~pruned])


def test_full_pruning_makes_stages_identities():
    ref, model = _pair("swin_nano", 64, features_only=True)
    x = _images(2, 64)
    set_mix(model, MixConfig(prune_ratios=1.0))
    with torch.no_grad():
        feats = _outputs(model, x)
        stem = ref.patch_embed(x)
    assert torch.equal(feats[0], stem)
    assert torch.equal(feats[1], ref.layers_1.downsample(stem))


def test_importance_strategy_quantizes_the_least_important_windows():
    """Importance sends the lowest-magnitude windows low; reversed the highest; random neither in
    particular; all with the same counts."""
    _, model = _pair("swin_nano", 64)
    block = next(b for b in model.modules() if isinstance(b, TwoBranchSwinBlock))
    x = _block_input(block, 1, (16, 16))
    importance = window_importance(token_magnitude(x), block.window_size, block.shift_size)[0]
    pruned_windows = {}
    for strategy in ("importance", "reversed", "random"):
        set_mix(model, MixConfig(prune_ratios=0.25, strategy=strategy, seed=7))
        with torch.no_grad():
            out = block(x)
        same = (out == x).all(-1)  # (1, H, W) tokens passed through
        windows = same.view(4, 4, 4, 4).permute(0, 2, 1, 3).reshape(16, 16).all(-1)
        assert windows.sum().item() == 4
        pruned_windows[strategy] = set(windows.nonzero().squeeze(1).tolist())
    order = importance.argsort().tolist()
    assert pruned_windows["importance"] == set(order[:4])
    assert pruned_windows["reversed"] == set(order[-4:])
    # Same seed, same windows.
    set_mix(model, MixConfig(prune_ratios=0.25, strategy="random", seed=7))
    with torch.no_grad():
        again = (block(x) == x).all(-1).view(4, 4, 4, 4).permute(0, 2, 1, 3).reshape(16, 16).all(-1)
    assert set(again.nonzero().squeeze(1).tolist()) == pruned_windows["random"]


def test_set_mix_checks_pair_count_and_quantizer_needs_calibration():
    _, model = _pair("swin_micro", 64)
    with pytest.raises(MixaqError, match="3 block pairs"):
        set_mix(model, MixConfig(low_ratios=(0.1, 0.2)))
    set_quant(model, QuantConfig())
    with pytest.raises(MixaqError, match="calibrat"):
        model(_images(1, 64))


def test_learnable_quantizers_train():
    _, model = _pair("swin_nano", 64)
    x = _images(2, 64)
    _calibrated(model, x, QuantConfig(high_act_bits=4, low_act_bits=2, weight_bits=4, learnable=True))
    set_mix(model, MixConfig(low_ratios=0.5))
    model.train()
    model(x).sum().backward()
    blocks = [b for b in model.modules() if isinstance(b, TwoBranchSwinBlock)]
    for b in blocks:
        for branch in ("high", "low"):
            assert b.act_quant[branch]["qkv_in"].scale.grad is not None
            assert b.act_quant[branch]["qkv_in"].scale.grad.abs().sum() > 0
        assert b.weight_quant["fc1"].scale.grad.abs().sum() > 0
        assert b.norm1_low.weight.grad.abs().sum() > 0 and b.norm1.weight.grad.abs().sum() > 0
    assert get_record(model).n_images == 0  # training forwards are not recorded
