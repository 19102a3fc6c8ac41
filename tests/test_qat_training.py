"""QAT and SAQA on the tiny detector: loss goes down, the right tensors train, resume is exact,
and the checkpoints evaluate with their trained quantizers."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mixaq.models import MixConfig, QuantConfig, calibrating, convert_swin, set_mix
from mixaq.models._two_branch import converted_blocks
from mixaq.models.detection import Evaluator
from mixaq.models.detection._checkpoint import load_detector
from mixaq.models.data._coco import collate
from mixaq.models.data._synth import write_synthetic
from mixaq.models.evaluation._train import SyntheticStream, load_run_config, train
from mixaq.models.qat import fine_tune, load_finetune_config, load_quantized, resume_path
from mixaq.models.qat._loop import _initial_model, _optimizer, _sampler
from mixaq.search.cli import main
from mixaq.simulator import MixaqError

ROOT = Path(__file__).resolve().parents[1]
DET_TINY = ROOT / "models" / "detection" / "configs" / "tiny.yaml"
QAT_TINY = ROOT / "models" / "qat" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """A tiny float detector, its W4A4 QAT and a W4 A4/A2 SAQA from that (blocks scope)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("qat")
    train(load_run_config(DET_TINY), root / "float.pt", progress=False)
    run = load_finetune_config(QAT_TINY)
    fine_tune(root / "float.pt", root / "qat.pt", run, kind="qat", progress=False)
    saqa = replace(run, train=replace(run.train, train_scope="blocks"))
    fine_tune(root / "qat.pt", root / "saqa.pt", saqa, kind="saqa", progress=False)
    val = write_synthetic(root / "val", 8, seed=9, image_hw=(64, 64), progress=False)
    return root, val


def _batch(n=4, seed=1):
    data = SyntheticStream(seed, 64, (64, 64))
    images, targets = collate([data[i] for i in range(n)])
    return images, targets


def test_qat_steps_reduce_the_loss(ckpts):
    root, _ = ckpts
    run = load_finetune_config(QAT_TINY)
    quant = replace(run.quant, low_act_bits=4)
    data = SyntheticStream(1, 64, (64, 64))
    model, *_ = _initial_model(root / "float.pt", quant, data, run.train)
    model.train()
    opt = _optimizer(model, replace(run.train, lr=3e-3, quant_lr=3e-3))
    images, targets = _batch()
    for t in targets:
        t["labels"] = t["labels"] + model.label_offset
    block = converted_blocks(model)[0][1]
    scale0 = block.act_quant["high"]["qkv_in"].scale.detach().clone()
    losses = []
    for _ in range(8):
        loss = sum(model(images, targets).values())
        opt.zero_grad()
        loss.backward()
        assert block.act_quant["high"]["qkv_in"].scale.grad.abs().sum() > 0  # LSQ step gets a gradient
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], losses
    assert not torch.equal(block.act_quant["high"]["qkv_in"].scale.detach(), scale0)


def test_shared_weights_get_gradients_from_both_branches(ckpts):
    root, _ = ckpts
    model, *_ = load_detector(root / "float.pt")
    convert_swin(model, QuantConfig(4, 2, 4, learnable=True, observer="minmax"))
    images, targets = _batch()
    with torch.no_grad(), calibrating(model.eval()):
        model(images)
    set_mix(model, MixConfig(low_ratios=0.5))
    model.train()
    _, block = converted_blocks(model)[0]
    outputs = []

    def keep(module, inputs, output):  # noqa: ANN001
        output.retain_grad()
        outputs.append(output)

    hook = block.weight_quant["qkv"].register_forward_hook(keep)
    for t in targets:
        t["labels"] = t["labels"] + model.label_offset
    sum(model(images, targets).values()).backward()
    hook.remove()
    assert len(outputs) == 2  # one fake-quantized use per branch, of the same weight tensor
    weight = block.attn.qkv.weight
    assert all(o.grad is not None and o.grad.abs().sum() > 0 for o in outputs)
    fq = block.weight_quant["qkv"]
    # the STE's pass band on the signed 4-bit grid, with the step exactly as LSQ's gradient scaling forms it
    factor = 1.0 / np.sqrt(weight[0].numel() * 7)
    step = fq.scale.detach().clamp_min(1e-8)
    step = step * factor + (step - step * factor)
    ratio = weight.detach() * step.reciprocal()
    # clamp with tensor bounds splits a tie's gradient between input and bound (torch's min/max rule)
    inside = ((ratio > -8) & (ratio < 7)).float() + 0.5 * ((ratio == -8) | (ratio == 7)).float()
    torch.testing.assert_close(weight.grad, (outputs[0].grad + outputs[1].grad) * inside)
    # one weight tensor: the low branch has LN copies and quantizers, no weights of its own
    low_only = [n for n, _ in model.named_parameters() if "low" in n]
    assert low_only and all(".norm1_low." in n or ".norm2_low." in n or ".act_quant.low." in n for n in low_only)


def _rounded(state):
    return {k: (v.round() if k.endswith("zero_point") else v) for k, v in state.items()}


def test_adaptation_changes_only_what_it_should(ckpts):
    root, _ = ckpts
    run = load_finetune_config(QAT_TINY)
    run = replace(run, train=replace(run.train, train_scope="blocks"))
    before, *_ = _initial_model(root / "qat.pt", run.quant, SyntheticStream(1, 64, (64, 64)), run.train)
    before = _rounded(before.state_dict())
    after, _, _, extra, quant = load_quantized(root / "saqa.pt")
    assert (quant.high_act_bits, quant.low_act_bits, quant.weight_bits) == (4, 2, 4)
    assert extra["qat"]["kind"] == "saqa" and extra["qat"]["steps_done"] == 4
    after = after.state_dict()
    assert before.keys() == after.keys()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    block_names = [n + "." for n, _ in converted_blocks(load_quantized(root / "saqa.pt")[0])]
    outside = [k for k in changed if not any(k.startswith(b) for b in block_names)]
    assert not outside, outside  # patch embedding, merging, FPN and head are frozen
    for part in ("attn.qkv.weight", "mlp.fc2.weight", "norm1.weight", "norm1_low.weight", "norm2_low.bias",
                 "act_quant.high.qkv_in.scale", "act_quant.low.qkv_in.scale", "act_quant.low.fc2_in.scale",
                 "weight_quant.fc1.scale"):
        assert any(k.endswith(part) for k in changed), part


def test_qat_checkpoint_is_uniform_and_small(ckpts):
    root, _ = ckpts
    model, _, _, extra, quant = load_quantized(root / "qat.pt")
    assert (quant.high_act_bits, quant.low_act_bits) == (4, 4) and extra["qat"]["finished"]
    for _, block in converted_blocks(model):
        assert torch.equal(block.norm1_low.weight, block.norm1.weight)
        assert torch.equal(block.act_quant["low"]["q"].scale, block.act_quant["high"]["q"].scale)
    assert not resume_path(root / "qat.pt").exists()  # finished runs leave no resume file


def test_resume_continues_exactly(ckpts, tmp_path):
    root, _ = ckpts
    run = load_finetune_config(QAT_TINY)
    fine_tune(root / "qat.pt", tmp_path / "whole.pt", run, kind="saqa", progress=False)
    cut = replace(run, train=replace(run.train, max_minutes=0.0))  # stops after the first step
    first = fine_tune(root / "qat.pt", tmp_path / "cut.pt", cut, kind="saqa", progress=False)
    assert first["stopped_early"] and first["steps_done"] == 1 and resume_path(tmp_path / "cut.pt").is_file()
    assert not load_detector(tmp_path / "cut.pt")[3]["qat"]["finished"]
    # a resume file written before QuantConfig gained its `calibration` field still resumes
    state = torch.load(resume_path(tmp_path / "cut.pt"), weights_only=True)
    assert state["run"]["quant"].pop("calibration") == "shared"
    torch.save(state, resume_path(tmp_path / "cut.pt"))
    second = fine_tune(root / "qat.pt", tmp_path / "cut.pt", run, kind="saqa", resume=True, progress=False)
    assert second["steps_done"] == 4 and not second["stopped_early"]
    a = load_quantized(tmp_path / "whole.pt")[0].state_dict()
    b = load_quantized(tmp_path / "cut.pt")[0].state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [json.loads(l).get("step") for l in (tmp_path / "cut.log.jsonl").read_text().splitlines()]
    assert steps[:1] == [1] and steps[-2:] == [4, 4]


def test_resume_errors(ckpts, tmp_path):
    root, _ = ckpts
    run = load_finetune_config(QAT_TINY)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        fine_tune(root / "qat.pt", tmp_path / "x.pt", run, kind="qat", resume=True, progress=False)
    cut = replace(run, train=replace(run.train, max_minutes=0.0))
    fine_tune(root / "qat.pt", tmp_path / "x.pt", cut, kind="saqa", progress=False)
    with pytest.raises(MixaqError, match="not a resume file of a `qat` run"):
        fine_tune(root / "qat.pt", tmp_path / "x.pt", run, kind="qat", resume=True, progress=False)
    other = replace(run, train=replace(run.train, lr=0.5))
    with pytest.raises(MixaqError, match="settings differ"):
        fine_tune(root / "qat.pt", tmp_path / "x.pt", other, kind="saqa", resume=True, progress=False)
    # the same settings from another checkpoint would silently continue the old run's weights
    with pytest.raises(MixaqError, match=r"started from .*qat\.pt, not from .*saqa\.pt \(a different file\)"):
        fine_tune(root / "saqa.pt", tmp_path / "x.pt", run, kind="saqa", resume=True, progress=False)


def test_evaluator_uses_the_trained_quantizers(ckpts):
    root, val = ckpts
    stored = load_detector(root / "saqa.pt")[3]["qat"]["state"]
    ev = Evaluator(root / "saqa.pt", val, calib_images=3, batch_size=4)
    res = ev.evaluate(QuantConfig(4, 2, 4), MixConfig(low_ratios=0.5, prune_ratios=0.2))
    assert res.n_images == 5 and 0 <= res.ap <= 1
    name, block = converted_blocks(ev._quantized(QuantConfig(4, 2, 4)))[1]
    own = block.state_dict()
    for key in ("act_quant.low.attn.scale", "act_quant.high.fc1_in.scale", "weight_quant.qkv.scale", "norm2_low.weight"):
        assert torch.equal(own[key], stored[f"{name}.{key}"]), key
    # other bits: the low branch is calibrated afresh (PTQ), the matching high branch restored
    _, other = converted_blocks(ev._quantized(QuantConfig(4, 3, 4)))[1]
    assert other.act_quant["low"]["attn"].bits == 3
    assert not torch.equal(other.act_quant["low"]["attn"].scale, block.act_quant["low"]["attn"].scale)
    torch.testing.assert_close(other.act_quant["high"]["attn"].scale, block.act_quant["high"]["attn"].scale)


def test_cli_eval_and_commands(ckpts, tmp_path, capsys):
    root, val = ckpts
    assert main(["eval", "--checkpoint", str(root / "saqa.pt"), "--data", str(val), "--calib", "3",
                 "--high-bits", "4", "--low-bits", "2", "--low-ratio", "0.5", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["windows"]["low_fraction"][0] == pytest.approx(0.5)
    assert main(["qat", "--checkpoint", str(root / "float.pt"), "--config", str(QAT_TINY), "--out",
                 str(tmp_path / "q.pt"), "--steps", "1", "--act-bits", "3", "--quiet"]) == 0
    quant = load_quantized(tmp_path / "q.pt")[4]
    assert (quant.high_act_bits, quant.low_act_bits) == (3, 3)
    assert main(["adapt", "--checkpoint", str(tmp_path / "missing.pt"), "--config", str(QAT_TINY),
                 "--out", str(tmp_path / "a.pt"), "--quiet"]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_bad_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {synthetic: {seed: 1}}\nadapt: {max_ratios: 0.5}\n")
    run = load_finetune_config(bad)
    with pytest.raises(MixaqError, match="unknown field"):
        _sampler(run, 3)
    bad.write_text("data: {synthetic: {seed: 1}}\ntrain: {stepz: 3}\n")
    with pytest.raises(MixaqError, match="stepz"):
        load_finetune_config(bad)
    bad.write_text("data: {synthetic: {seed: 1}}\ntrain: {train_scope: head}\n")
    with pytest.raises(MixaqError, match="train_scope"):
        load_finetune_config(bad)


def test_distillation_trains_the_low_branch_towards_the_high_one(ckpts, tmp_path):
    from mixaq.models.qat import DistillTap

    root, _ = ckpts
    model, *_ = load_quantized(root / "saqa.pt")
    set_mix(model, MixConfig(low_ratios=0.5))
    model.train()
    images, targets = _batch()
    with DistillTap(model) as tap:
        model.backbone(torch.stack(images))
        loss = tap.pop_loss()
    assert "_branch" not in converted_blocks(model)[0][1].__dict__  # the tap is gone
    assert torch.isfinite(loss) and loss > 0
    loss.backward()
    _, block = converted_blocks(model)[-1]
    assert block.norm1_low.weight.grad.abs().sum() > 0 and block.act_quant["low"]["fc1_in"].scale.grad.abs().sum() > 0
    # the last block's high output is only a (detached) target: its own high LN gets no gradient
    assert block.norm1.weight.grad is None
    run = load_finetune_config(QAT_TINY)
    run = replace(run, adapt={**run.adapt, "distill_weight": 0.5}, train=replace(run.train, steps=2))
    fine_tune(root / "qat.pt", tmp_path / "d.pt", run, kind="saqa", progress=False)
    logged = [json.loads(l) for l in (tmp_path / "d.log.jsonl").read_text().splitlines()[:2]]
    assert all(l["distill"] > 0 for l in logged)
