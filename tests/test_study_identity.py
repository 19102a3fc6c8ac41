"""A study is tied to its model and data by content: a sweep on other annotations (same images,
boxes shifted) or with another checkpoint cannot join it; the same data elsewhere on disk can."""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from mixaq.models.data._coco import resolve_data
from mixaq.models.evaluation._train import load_run_config, train
from mixaq.models.data._synth import write_synthetic
from mixaq.search import EvaluatorFactory, SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep
from mixaq.search.cli._sweep import add_arguments, build_settings
from mixaq.search.cli import main
from mixaq.simulator import MixaqError

DET_TINY = Path(__file__).resolve().parents[1] / "models" / "detection" / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def two_annotation_files(tmp_path_factory):
    """Three synthetic images, their annotations (A) and the same with every box shifted by 9 px (B)."""
    root = write_synthetic(tmp_path_factory.mktemp("identity") / "d", 3, seed=3, image_hw=(64, 64),
                           progress=False)
    ann_a = root / "annotations.json"
    coco = json.loads(ann_a.read_text())
    for ann in coco["annotations"]:
        ann["bbox"] = [ann["bbox"][0] + 9, ann["bbox"][1] + 9, *ann["bbox"][2:]]
    ann_b = root / "shifted.json"
    ann_b.write_text(json.dumps(coco))
    return root, ann_a, ann_b


def test_data_fingerprint_is_content_not_path(two_annotation_files, tmp_path):
    root, ann_a, ann_b = two_annotation_files
    a = resolve_data(images=root / "images", ann=ann_a)
    ids = a.image_ids
    base = a.fingerprint(ids[:2], ids[2:])
    assert resolve_data(images=root / "images", ann=ann_b).fingerprint(ids[:2], ids[2:]) != base  # boxes
    assert a.fingerprint(ids[:1], ids[1:]) != base  # which images are evaluated / calibrate
    assert a.fingerprint(ids[1::-1], ids[2:]) == base  # order within a group does not matter
    copy = shutil.copytree(root, tmp_path / "elsewhere")
    assert resolve_data(copy).fingerprint(ids[:2], ids[2:]) == base  # same files at another path
    first = copy / "images" / a.coco.imgs[ids[0]]["file_name"]
    first.write_bytes(first.read_bytes() + b"\0")  # another image file (size changes)
    assert resolve_data(copy).fingerprint(ids[:2], ids[2:]) != base


def test_sweep_on_other_annotations_cannot_join_the_study(two_annotation_files, tmp_path, capsys):
    root, ann_a, ann_b = two_annotation_files
    url = f"sqlite:///{tmp_path / 'study.db'}"
    checkpoint = tmp_path / "tiny.pt"
    train(load_run_config(DET_TINY), checkpoint, progress=False)
    argv = ["sweep", "--checkpoint", str(checkpoint), "--coco-root", str(root / "images"), "--ann", str(ann_b),
            "--max-images", "1", "--calib-images", "1", "--n-trials", "1", "--population", "2", "--baseline-points", "0",
            "--storage", url, "--study", "s", "--out", str(tmp_path / "out"), "--no-progress"]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = build_settings(parser.parse_args(argv[1:]), num_pairs=2)  # what `mixaq sweep` stores

    def sweep_a() -> None:  # the same sweep, measured on annotations A (no plots: faster)
        run_sweep(settings, EvaluatorFactory(str(checkpoint), str(root / "images"), max_images=1, calib_images=1,
                                             ann=str(ann_a)), url, "s", 1, progress=False)

    sweep_a()
    assert main(argv) == 2  # on annotations B: same images, boxes shifted
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("mixaq sweep: error: study 's' was measured on another model/data (data_sha1 differ)"), err
    sweep_a()  # the data it was measured on joins again


def test_another_checkpoint_cannot_join_the_study(tmp_path):
    class OtherCheckpoint(SyntheticAccuracy):
        def fingerprint(self):
            return {**super().fingerprint(), "checkpoint_sha1": "another"}

    url = f"sqlite:///{tmp_path / 's.db'}"
    settings = SweepSettings(space=SearchSpace(num_pairs=2), spec="bitfusion", population_size=4)
    run_sweep(settings, SyntheticAccuracy(), url, "m", 1, progress=False)
    with pytest.raises(MixaqError, match=r"another model/data \(checkpoint_sha1 differ\)") as err:
        run_sweep(settings, OtherCheckpoint(), url, "m", 1, progress=False)
    assert "\n" not in str(err.value)
