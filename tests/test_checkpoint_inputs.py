"""Checkpoints: field types, weight dtypes, class names against the annotation file (every
checkpoint kind, id order included), mmengine's pretty-printed config, a garbage resume file."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch

from mixaq.models.detection._checkpoint import load_detector
from mixaq.models.evaluation._evaluate import DEFAULT_CHECKPOINT
from mixaq.models.detection._import import _stds_from_meta
from mixaq.models.data._synth import write_synthetic
from mixaq.search.cli import main
from mixaq.simulator import MixaqError


@pytest.fixture(scope="module")
def payload():
    return torch.load(DEFAULT_CHECKPOINT, weights_only=True)


def _save(payload, tmp_path: Path, name: str, **changes) -> Path:
    path = tmp_path / name
    torch.save({**payload, **changes}, path)
    return path


@pytest.mark.parametrize("field, value, needle", [
    ("config", "swin_nano", "'config' must be a mapping"),
    ("categories", 5, "'categories' must be a list"),
    ("categories", [{"id": "a", "name": "circle"}], "'categories' must be a list"),
    ("extra", "notes", "'extra' must be a mapping"),
    ("state_dict", [1, 2], "'state_dict' is not a mapping"),
])
def test_checkpoint_field_types_are_one_line(payload, tmp_path, field, value, needle):
    path = _save(payload, tmp_path, "c.pt", **{field: value})
    with pytest.raises(MixaqError, match=needle) as info:
        load_detector(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_float_weights_stored_as_int_or_bool_are_refused(payload, tmp_path, dtype):
    state = dict(payload["state_dict"])
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 4)
    state[key] = state[key].to(dtype)
    path = _save(payload, tmp_path, "c.pt", state_dict=state)
    with pytest.raises(MixaqError, match=f"{key} holds {str(dtype).split('.')[-1]} values"):
        load_detector(path)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("d") / "ds", 3, seed=0, image_hw=(64, 64), progress=False)


def _variant(data: Path, out: Path, edit) -> Path:
    (out / "images").mkdir(parents=True)
    for f in (data / "images").iterdir():
        (out / "images" / f.name).write_bytes(f.read_bytes())
    m = json.loads((data / "annotations.json").read_text())
    edit(m)
    (out / "annotations.json").write_text(json.dumps(m))
    return out


def _eval(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def _rename(m):
    for c, name in zip(m["categories"], ("dog", "cat", "cow", "owl", "emu")):
        c["name"] = name


def _reorder(m):
    """Same names, ids in another order: class i of the checkpoint is now another shape."""
    new_id = {c["id"]: len(m["categories"]) - i for i, c in enumerate(m["categories"])}
    for c in m["categories"]:
        c["id"] = new_id[c["id"]]
    for a in m["annotations"]:
        a["category_id"] = new_id[a["category_id"]]


@pytest.mark.parametrize("edit, needle", [(_rename, "class 0 is 'circle'"), (_reorder, "in another id order")])
def test_our_checkpoints_class_names_are_compared_with_the_annotation_file(data, tmp_path, edit, needle):
    bad = _variant(data, tmp_path / "bad", edit)
    code, err = _eval(["eval", "--max-images", "1", "--data", str(bad)])
    assert code == 2 and needle in err and err.count("\n") == 1, err


def test_mmengine_pretty_printed_config_is_parsed():
    pretty = "".join("bbox_coder=dict(\n    target_stds=[\n        %s,\n        %s,\n        0.2,\n        0.2,\n    ],\n),\n"
                     % (s, s) for s in ("0.1", "0.05", "0.033"))
    assert _stds_from_meta({"cfg": pretty}, 3) == ((0.1, 0.1, 0.2, 0.2), (0.05, 0.05, 0.2, 0.2),
                                                   (0.033, 0.033, 0.2, 0.2))
    assert _stds_from_meta({"cfg": "target_stds=[0.1, 0.1, 0.2, 0.2]"}, 1) == ((0.1, 0.1, 0.2, 0.2),)


@pytest.mark.parametrize("content", [b"\x00\x01garbage" * 64, b""])
def test_qat_resume_of_a_garbage_file_is_one_line(tmp_path, content):
    out = tmp_path / "q.pt"
    Path(str(out) + ".resume").write_bytes(content)
    code, err = _eval(["qat", "--out", str(out), "--resume"])
    assert code == 2 and err.count("\n") == 1 and "q.pt.resume" in err, err
