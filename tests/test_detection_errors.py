"""Bad input gives a one-line MixaqError / FileNotFoundError, never a deep traceback."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mixaq.models.detection._checkpoint import load_checkpoint, load_detector, save_checkpoint
from mixaq.models.data._coco import resolve_data
from mixaq.models.detection._detector import DetectorConfig, build_detector
from mixaq.models.data._synth import write_synthetic
from mixaq.models.evaluation._train import load_run_config
from mixaq.search.cli import main
from mixaq.simulator import MixaqError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("d") / "ds", 3, seed=0, image_hw=(64, 64), progress=False)


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg
    return msg


def _corrupt(dataset: Path, tmp_path: Path, edit) -> Path:
    out = tmp_path / "bad"
    (out / "images").mkdir(parents=True)
    for f in (dataset / "images").iterdir():
        (out / "images" / f.name).write_bytes(f.read_bytes())
    data = json.loads((dataset / "annotations.json").read_text())
    text = edit(data)
    (out / "annotations.json").write_text(text if isinstance(text, str) else json.dumps(data))
    return out


@pytest.mark.parametrize("edit, match", [
    (lambda d: "{not json", "not valid JSON"),
    (lambda d: d.pop("images"), "images"),
    (lambda d: d["annotations"][0].pop("bbox"), "bbox"),
    (lambda d: d["annotations"][0].__setitem__("bbox", [1, 2]), "bbox"),
    (lambda d: d["annotations"][0].__setitem__("category_id", 99), "category_id 99"),
    (lambda d: d["annotations"][0].__setitem__("image_id", 1234), "image_id 1234"),
    (lambda d: d.__setitem__("categories", []), "no categories"),
    # Boxes the docs call errors, and data that used to give AP -1 or silently merge images.
    (lambda d: d["annotations"][0]["bbox"].__setitem__(2, -5), "non-positive width or height"),
    (lambda d: d["annotations"][1]["bbox"].__setitem__(3, 0), "non-positive width or height"),
    (lambda d: d["annotations"][0]["bbox"].__setitem__(2, float("nan")), "non-finite"),  # json writes NaN
    (lambda d: d["annotations"][0].__setitem__("bbox", [60.0, 10.0, 30.0, 5.0]), "outside its image"),
    (lambda d: d["annotations"][0].__setitem__("bbox", [-9.0, 10.0, 5.0, 5.0]), "outside its image"),
    (lambda d: d["images"][1].__setitem__("id", d["images"][0]["id"]), "duplicate image id"),
    (lambda d: d.__setitem__("annotations", []), "no annotations"),
    (lambda d: d["annotations"][0]["bbox"].__setitem__(0, True), "bbox must be 4 numbers"),
])
def test_bad_coco_json(dataset, tmp_path, edit, match):
    bad = _corrupt(dataset, tmp_path, edit)
    with pytest.raises(MixaqError, match=match) as info:
        resolve_data(bad)
    assert "annotations.json" in _one_line(info.value)


def test_missing_image_and_missing_files(dataset, tmp_path):
    bad = _corrupt(dataset, tmp_path, lambda d: None)
    victim = sorted((bad / "images").iterdir())[1]
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=victim.name) as info:
        resolve_data(bad)
    _one_line(info.value)
    with pytest.raises(FileNotFoundError, match="dataset directory"):
        resolve_data(tmp_path / "nowhere")
    with pytest.raises(MixaqError, match="--ann"):
        resolve_data(images=bad / "images")


def test_unreadable_image(dataset, tmp_path):
    bad = _corrupt(dataset, tmp_path, lambda d: None)
    victim = sorted((bad / "images").iterdir())[0]
    victim.write_bytes(b"not a png")
    ds = resolve_data(bad)
    with pytest.raises(MixaqError, match="cannot read image") as info:
        ds[0]
    _one_line(info.value)


def test_wrong_or_corrupt_checkpoints(tmp_path):
    (tmp_path / "garbage.pt").write_bytes(b"\x00\x01garbage" * 10)
    (tmp_path / "text.pt").write_text("hello")
    torch.save({"a": torch.zeros(2)}, tmp_path / "other.pt")
    from mixaq.models import build_swin

    torch.save(build_swin("swin_nano", 64).state_dict(), tmp_path / "swin.pth")
    (tmp_path / "bad.safetensors").write_bytes(b"\xff" * 40)
    cases = {"garbage.pt": "not a readable torch checkpoint", "text.pt": "not a readable torch checkpoint",
             "other.pt": "not a mixaq detector checkpoint", "swin.pth": "Swin backbone state dict",
             "bad.safetensors": "not a readable safetensors"}
    for name, match in cases.items():
        with pytest.raises(MixaqError, match=match) as info:
            load_checkpoint(tmp_path / name)
        assert name in _one_line(info.value)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "absent.pt")


def test_checkpoint_whose_weights_do_not_fit_its_config(tmp_path):
    config = DetectorConfig(arch="swin_nano", image_size=64, fpn_channels=32, head_convs=1, out_indices=(0, 1))
    model = build_detector(config)
    save_checkpoint(tmp_path / "ck.pt", model, config, [{"id": i, "name": str(i)} for i in range(5)])
    payload = torch.load(tmp_path / "ck.pt", weights_only=True)
    payload["config"]["fpn_channels"] = 64
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(MixaqError, match="do not fit") as info:
        load_detector(tmp_path / "mismatch.pt")
    _one_line(info.value)


def test_checkpoint_with_overwritten_weights_is_refused(tmp_path):
    """The zip is intact, three tensors are NaN: it used to load and evaluate to AP 0.0000, exit 0."""
    config = DetectorConfig(arch="swin_nano", image_size=64, fpn_channels=32, head_convs=1, out_indices=(0, 1))
    save_checkpoint(tmp_path / "ck.pt", build_detector(config), config, [{"id": i, "name": str(i)} for i in range(5)])
    payload = torch.load(tmp_path / "ck.pt", weights_only=True)
    victims = [k for k, v in payload["state_dict"].items() if v.is_floating_point()][3:6]
    for k in victims:
        payload["state_dict"][k].fill_(float("nan"))
    payload["state_dict"][victims[1]].fill_(float("inf"))
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(MixaqError, match=rf"3 weight tensor\(s\) hold NaN or inf \(first: {victims[0]}\)") as info:
        load_detector(tmp_path / "nan.pt")
    assert "nan.pt" in _one_line(info.value)


def test_truncated_checkpoint_message_is_not_cut_mid_word(tmp_path):
    config = DetectorConfig(arch="swin_nano", image_size=64, fpn_channels=32, head_convs=1, out_indices=(0, 1))
    save_checkpoint(tmp_path / "ck.pt", build_detector(config), config, [{"id": 1, "name": "a"}])
    data = (tmp_path / "ck.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception) as raw:  # what torch itself says
        torch.load(tmp_path / "cut.pt", weights_only=True)
    original = str(raw.value).strip().splitlines()[0]
    with pytest.raises(MixaqError) as info:
        load_checkpoint(tmp_path / "cut.pt")
    quoted = _one_line(info.value).split("(", 1)[1].rsplit(")", 1)[0].removesuffix(" …")
    assert original.startswith(quoted) and len(quoted) > 20
    assert len(quoted) == len(original) or original[len(quoted)] == " "  # cut between words


def test_bad_configs(tmp_path):
    cases = {
        "model: {arch: swin_nano, head: yolo}\ndata: {synthetic: {}}\n": "unknown head",
        "model: {arch: swin_nano, colour: red}\ndata: {synthetic: {}}\n": "unknown field",
        "model: {arch: nope}\ndata: {synthetic: {}}\n": "unknown arch",
        "model: {arch: swin_nano}\n": "missing 'data'",
        "model: {arch: swin_micro, fpn_channels: 48}\ndata: {synthetic: {}}\n": "multiple of 32",
        "model: [1\n": "not valid YAML",
        "model: {}\ndata: {synthetic: {}}\ntrain: {step: 3}\n": "unknown field",
    }
    for i, (text, match) in enumerate(cases.items()):
        path = tmp_path / f"c{i}.yaml"
        path.write_text(text)
        with pytest.raises(MixaqError, match=match) as info:
            load_run_config(path)
        _one_line(info.value)


def test_cli_errors_are_one_line(dataset, tmp_path, capsys):
    (tmp_path / "ck.pt").write_bytes(b"junk")
    assert main(["eval", "--checkpoint", str(tmp_path / "ck.pt"), "--data", str(dataset)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mixaq eval: error:") and len(err.splitlines()) == 1
    assert main(["train", "--config", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and len(err.splitlines()) == 1
    assert main(["eval", "--checkpoint", str(tmp_path / "ck.pt"), "--low-ratio", "0.5",
                 "--low-threshold", "1.0"]) == 2
    assert "exclude each other" in capsys.readouterr().err
