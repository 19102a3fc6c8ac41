"""The COCO loader checks every field it reads (types, ranges, image sizes on disk) before any work,
reads 16-bit and palette images as they look, and identifies data by image content."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mixaq.models.data._coco import resolve_data, to_rgb8
from mixaq.models.data._synth import write_synthetic
from mixaq.simulator import MixaqError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("d") / "ds", 3, seed=0, image_hw=(64, 64), progress=False)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXAQ_CACHE", str(tmp_path / "cache"))


def _copy(dataset: Path, out: Path, edit=None) -> Path:
    (out / "images").mkdir(parents=True)
    for f in (dataset / "images").iterdir():
        (out / "images" / f.name).write_bytes(f.read_bytes())
    data = json.loads((dataset / "annotations.json").read_text())
    text = edit(data) if edit else None
    (out / "annotations.json").write_text(text if isinstance(text, str) else json.dumps(data))
    return out


def _img(m, k=0):
    return m["images"][k]


def _ann(m, k=0):
    return m["annotations"][k]


BAD = {
    "file_name a number": (lambda m: _img(m).update(file_name=123), "images[0].file_name"),
    "file_name null": (lambda m: _img(m).update(file_name=None), "images[0].file_name"),
    "file_name escaping the image dir": (lambda m: _img(m).update(file_name="../../etc/passwd"), "images[0].file_name"),
    "file_name absolute": (lambda m: _img(m).update(file_name="/etc/passwd"), "images[0].file_name"),
    "image id a string": (lambda m: _img(m).update(id="img-a"), "images[0].id"),
    "image id near 2**60": (lambda m: _img(m).update(id=2**60), "images[0].id"),
    "image id a bool": (lambda m: _img(m).update(id=True), "images[0].id"),
    "category id a string": (lambda m: m["categories"][0].update(id="circle-id"), "categories[0].id"),
    "category name a number": (lambda m: m["categories"][0].update(name=5), "categories[0].name"),
    "annotation image_id float": (lambda m: _ann(m).update(image_id=1.5), "annotations[0].image_id"),
    "iscrowd 'yes'": (lambda m: _ann(m).update(iscrowd="yes"), "annotations[0].iscrowd"),
    "iscrowd 2": (lambda m: _ann(m).update(iscrowd=2), "annotations[0].iscrowd"),
    "area missing": (lambda m: _ann(m).pop("area"), "has no 'area'"),
    "area a word": (lambda m: _ann(m).update(area="big"), "annotations[0].area"),
    "area NaN": (lambda m: _ann(m).update(area=float("nan")), "annotations[0].area"),
    "width a word": (lambda m: _img(m).update(width="wide"), "images[0].width"),
    "width 0": (lambda m: _img(m).update(width=0), "images[0].width"),
    "JSON 200000 deep": (lambda m: "[" * 200_000 + "]" * 200_000, "nested too deep"),
    "declared size larger than the file": (lambda m: [i.update(width=4096, height=4096) for i in m["images"]],
                                           "is 64x64 on disk but the annotation file says 4096x4096"),
    "declared size smaller than the file": (lambda m: _img(m, 1).update(width=1, height=1),
                                            "is 64x64 on disk but the annotation file says 1x1"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_field_is_one_line_before_any_work(dataset, tmp_path, case):
    edit, needle = BAD[case]
    bad = _copy(dataset, tmp_path / "bad", edit)
    with pytest.raises(MixaqError) as info:
        resolve_data(bad)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg and len(msg) < 400, msg


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h (no pixel data worth decoding)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [40000, 20000])
def test_an_image_header_claiming_a_huge_size_is_refused_without_decoding(dataset, tmp_path, side):
    bad = _copy(dataset, tmp_path / "bad", lambda m: [i.pop("width") or i.pop("height") for i in m["images"]])
    victim = sorted((bad / "images").iterdir())[0]
    victim.write_bytes(_png_header(side, side))
    with pytest.raises(MixaqError, match="px a side"):
        resolve_data(bad)


def test_boxes_are_checked_against_the_real_image_size(dataset, tmp_path):
    """No declared size: the size on disk (64) is what a box at (3000, 3000) is checked against."""
    def edit(m):
        for i in m["images"]:
            i.pop("width"), i.pop("height")
        _ann(m)["bbox"] = [3000.0, 3000.0, 10.0, 10.0]
    bad = _copy(dataset, tmp_path / "bad", edit)
    with pytest.raises(MixaqError, match="outside its image"):
        resolve_data(bad)


def test_16_bit_and_palette_images_read_as_they_look(tmp_path):
    grey8 = (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)
    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "g16.png")  # same picture, 16 bits
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")
        got = to_rgb8(im)
    assert got.shape == (64, 64, 3) and np.array_equal(got[:, :, 0], grey8)
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0], rgb[:4, :, 2] = 200, 90
    Image.fromarray(rgb).quantize(colors=4, dither=Image.Dither.NONE).save(tmp_path / "p.png")  # exact palette
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "P"
        assert np.array_equal(to_rgb8(im), rgb)


def test_the_data_identity_is_the_image_content_not_its_size(dataset, tmp_path):
    a = _copy(dataset, tmp_path / "a")
    ds = resolve_data(a)
    ids = ds.image_ids
    base = ds.fingerprint(ids[:2], ids[2:])
    assert resolve_data(a).fingerprint(ids[:2], ids[2:]) == base  # stable (and served from the cache)
    victim = sorted((a / "images").iterdir())[0]
    size = victim.stat().st_size
    other = sorted((a / "images").iterdir())[1].read_bytes()
    victim.write_bytes((other + b"\0" * size)[:size] if len(other) <= size else other[:size])
    assert victim.stat().st_size == size
    assert resolve_data(a).fingerprint(ids[:2], ids[2:]) != base
