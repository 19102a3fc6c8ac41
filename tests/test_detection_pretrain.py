"""Backbone pretraining as the first phase of `mixaq train` (a `pretrain:` config section)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mixaq.core._errors import MixaqError
from mixaq.models.detection._checkpoint import load_backbone_weights, load_detector
from mixaq.models.detection._detector import build_detector
from mixaq.models.evaluation._train import load_run_config, train

TINY = Path(__file__).resolve().parents[1] / "models" / "detection" / "configs" / "tiny.yaml"
PRETRAIN = """
pretrain:
  steps: 3
  batch_size: 2
  warmup_steps: 1
  log_every: 1
  checkpoint_every: 2
  crop_px: 32
  background_crops: 2
  val_images: 2
  data: {synthetic: {seed: 9, num_images: 32, generator: scenes}}
"""


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    config = root / "tiny_pretrain.yaml"
    config.write_text(TINY.read_text() + PRETRAIN)
    run = load_run_config(config)
    summary = train(run, root / "model.pt", log_path=root / "log.jsonl", progress=False)
    return run, root, summary


def test_pretraining_runs_first_and_is_recorded(pretrained_run):
    run, root, summary = pretrained_run
    assert run.pretrain.steps == 3 and run.pretrain.data["generator"] == "scenes"
    backbone = root / "model.backbone.pth"
    assert backbone.is_file() and summary["pretrain"]["backbone"] == str(backbone)
    records = [json.loads(line) for line in (root / "log.pretrain.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if not r.get("final")] == [1, 2, 3]
    final = records[-1]
    assert final["final"] and 0.0 <= final["val"]["accuracy"] <= 1.0 and final["val"]["crops"] > 0
    _, _, _, extra = load_detector(root / "model.pt")
    assert extra["pretrain"]["steps_done"] == 3 and extra["pretrain"]["val"] == final["val"]
    # the file is a timm-format Swin state dict that loads into the detector's backbone, all of it
    fresh = build_detector(run.model)
    loaded, total = load_backbone_weights(fresh, backbone)
    assert loaded == total
    state = torch.load(backbone, weights_only=True)
    assert torch.equal(fresh.backbone.body.state_dict()["patch_embed.proj.weight"], state["patch_embed.proj.weight"])


def test_detection_starts_from_the_pretrained_backbone(pretrained_run, tmp_path):
    """With a negligible detection learning rate, the trained detector's backbone is the pretrained
    one (the EMA of nearly constant weights is those weights)."""
    run, root, _ = pretrained_run
    config = tmp_path / "zero_lr.yaml"
    config.write_text(TINY.read_text().replace("lr: 1.0e-3", "lr: 1.0e-12") + PRETRAIN)
    train(load_run_config(config), tmp_path / "m.pt", log_path=tmp_path / "log.jsonl", progress=False)
    model, *_ = load_detector(tmp_path / "m.pt")
    state = torch.load(tmp_path / "m.backbone.pth", weights_only=True)
    assert torch.allclose(model.backbone.body.state_dict()["layers_1.blocks.0.attn.qkv.weight"],
                          state["layers.1.blocks.0.attn.qkv.weight"], atol=1e-6)
    # and the same seed pretrains the same weights
    assert torch.equal(state["patch_embed.proj.weight"],
                       torch.load(root / "model.backbone.pth", weights_only=True)["patch_embed.proj.weight"])


@pytest.mark.parametrize("section, match", [
    ("pretrain: {steps: 0}\n", "must be >= 1"),
    ("pretrain: {stepz: 3}\n", "unknown field"),
    ("pretrain: {data: {dir: x}}\n", "synthetic"),
    ("pretrain: {data: {synthetic: {generator: photos}}}\n", "unknown synthetic generator"),
    ("pretrain: {data: {synthetic: {seed: 1, size: 3}}}\n", "unknown field"),
])
def test_bad_pretrain_sections(tmp_path, section, match):
    config = tmp_path / "c.yaml"
    config.write_text(TINY.read_text() + section)
    with pytest.raises(MixaqError, match=match) as info:
        load_run_config(config)
    assert "\n" not in str(info.value)


def test_pretrain_and_init_backbone_exclude_each_other(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(TINY.read_text() + PRETRAIN)
    with pytest.raises(MixaqError, match="init-backbone"):
        train(load_run_config(config), tmp_path / "m.pt", init_backbone=tmp_path / "x.pth", progress=False)
