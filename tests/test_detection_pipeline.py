"""The whole detection path on tiny data: synth -> train -> save -> load -> eval (float and fake-quant)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mixaq.models import MixConfig, QuantConfig
from mixaq.models.detection import Evaluator
from mixaq.models.detection._checkpoint import load_backbone_weights, load_detector
from mixaq.models.evaluation._cocoeval import predict
from mixaq.models.data._synth import write_synthetic
from mixaq.models.evaluation._train import load_run_config, train
from mixaq.search.cli import main
from mixaq.simulator import MixaqError, WindowAssignment

TINY = Path(__file__).resolve().parents[1] / "models" / "detection" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("det")
    data = write_synthetic(root / "val", 10, seed=9, image_hw=(64, 64), progress=False)
    run = load_run_config(TINY)
    summary = train(run, root / "ck.pt", progress=False)
    return root, data, summary


@pytest.fixture(scope="module")
def evaluator(trained):
    root, data, _ = trained
    torch.set_num_threads(1)
    return Evaluator(root / "ck.pt", data, calib_images=3, batch_size=4)


def test_training_logs_and_checkpoints(trained):
    root, _, summary = trained
    assert summary["steps_done"] == 4 and not summary["stopped_early"]
    lines = [json.loads(l) for l in (root / "ck.log.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines[:4]] == [1, 2, 3, 4] and lines[-1]["final"]
    assert all(np.isfinite(l["loss"]) for l in lines[:4])
    model, config, categories, extra = load_detector(root / "ck.pt")
    assert config.arch == "swin_nano" and len(categories) == 5 and extra["steps_done"] == 4


def test_training_is_deterministic(tmp_path):
    run = load_run_config(TINY)
    run = replace(run, train=replace(run.train, steps=2))
    train(run, tmp_path / "a.pt", progress=False)
    train(run, tmp_path / "b.pt", progress=False)
    a, b = load_detector(tmp_path / "a.pt")[0], load_detector(tmp_path / "b.pt")[0]
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_float_branches_give_exactly_the_float_model(evaluator):
    ref = evaluator.evaluate(None)
    dets_ref = predict(evaluator.model, evaluator.dataset, evaluator.eval_ids, images=evaluator._images)
    assert len(dets_ref) > 0  # the comparison is not between two empty results
    for mix in (None, MixConfig(low_ratios=0.5)):
        res = evaluator.evaluate(QuantConfig.float(), mix)
        assert res.stats() == ref.stats()
        model = evaluator._quantized(QuantConfig.float(), None)
        from mixaq.models import set_mix

        set_mix(model, mix)
        dets = predict(model, evaluator.dataset, evaluator.eval_ids, images=evaluator._images)
        np.testing.assert_allclose(dets, dets_ref, rtol=0, atol=1e-4)
    assert ref.n_images == 7 and -1 <= ref.ap <= 1


def test_quantized_eval_records_the_requested_windows(evaluator):
    quant = QuantConfig(high_act_bits=8, low_act_bits=4, weight_bits=4)
    res = evaluator.evaluate(quant, MixConfig(low_ratios=0.5))
    expected = WindowAssignment.from_pair_ratios(evaluator.arch, evaluator.image_hw, 0.5)
    np.testing.assert_allclose(res.assignment.low_fraction, expected.low_fraction)
    assert res.assignment.high_act_bits == 8 and res.assignment.low_act_bits == 4
    # W4A4 changes the detections relative to float (the quantizers are live)
    float_dets = predict(evaluator.model, evaluator.dataset, evaluator.eval_ids, images=evaluator._images)
    q_dets = predict(evaluator._quantized(QuantConfig(4, 4, 4), None), evaluator.dataset, evaluator.eval_ids,
                     images=evaluator._images)
    assert float_dets.shape != q_dets.shape or not np.allclose(float_dets, q_dets)


def test_calibration_is_cached_per_quantizer_setting(evaluator):
    quant = QuantConfig(high_act_bits=8, low_act_bits=4, weight_bits=4)
    first = evaluator._quantized(quant, None)
    evaluator.evaluate(quant, MixConfig(low_ratios=0.3))
    assert evaluator._quantized(quant, None) is first
    assert evaluator._quantized(replace(quant, low_act_bits=3), None) is not first


def test_calibration_images_are_not_evaluated(evaluator):
    assert not set(evaluator.calib_ids) & set(evaluator.eval_ids)
    assert len(evaluator.calib_ids) == 3


def test_cli_eval_json_reports_stats_windows_and_cost(trained, capsys):
    root, data, _ = trained
    rc = main(["eval", "--checkpoint", str(root / "ck.pt"), "--data", str(data), "--calib", "3",
               "--low-ratios", "0.5,0.5", "--format", "json", "--threads", "1"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large"):
        assert -1 <= out[key] <= 1
    assert out["windows"]["low_fraction"] == pytest.approx([0.5] * 4)
    assert out["cost"]["speedup"]["bops"] > 1.0


def test_cli_eval_float_flags_give_the_float_model(trained, evaluator, capsys):
    root, data, _ = trained
    rc = main(["eval", "--checkpoint", str(root / "ck.pt"), "--data", str(data), "--calib", "3",
               "--high-bits", "float", "--low-bits", "float", "--format", "json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    ref = evaluator.evaluate(None)
    assert {k: out[k] for k in ref.stats()} == ref.stats()
    assert out["quant"]["weight_bits"] is None and out["cost"] is None


def test_timm_backbone_state_dict_loads(trained, tmp_path):
    from safetensors.torch import save_file

    from mixaq.models import build_swin

    root, _, _ = trained
    model = load_detector(root / "ck.pt")[0]
    swin = build_swin("swin_nano", 64)  # classification model: timm's key layout (layers.N.…, head.fc)
    torch.nn.init.normal_(swin.layers[1].blocks[0].mlp.fc1.weight)
    for path, save in ((tmp_path / "b.pth", lambda sd, p: torch.save(sd, p)),
                       (tmp_path / "b.safetensors", lambda sd, p: save_file(sd, str(p)))):
        save({k: v.contiguous() for k, v in swin.state_dict().items()}, path)
        loaded, total = load_backbone_weights(model, path)
        assert loaded == total
        assert torch.equal(model.backbone.body.layers_1.blocks[0].mlp.fc1.weight, swin.layers[1].blocks[0].mlp.fc1.weight)
    wrong = build_swin("swin_micro", 64)
    torch.save(wrong.state_dict(), tmp_path / "wrong.pth")
    with pytest.raises(MixaqError, match="shape"):
        load_backbone_weights(model, tmp_path / "wrong.pth")


def test_cli_eval_threshold_mode_and_pruning(trained, capsys):
    root, data, _ = trained
    rc = main(["eval", "--checkpoint", str(root / "ck.pt"), "--data", str(data), "--calib", "3",
               "--low-threshold", "1.0", "--prune-ratio", "0.0", "--format", "json"])
    assert rc == 2 and "exclude each other" in capsys.readouterr().err
    rc = main(["eval", "--checkpoint", str(root / "ck.pt"), "--data", str(data), "--calib", "3",
               "--low-threshold", "1e9", "--format", "json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mix"]["mode"] == "threshold"
    assert out["windows"]["low_fraction"] == pytest.approx([1.0] * 4)  # every window below a huge threshold
    rc = main(["eval", "--checkpoint", str(root / "ck.pt"), "--data", str(data), "--calib", "3",
               "--low-ratio", "0.25", "--prune-ratio", "0.25", "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["windows"]["pruned_fraction"] == pytest.approx([0.25] * 4)
