"""Accelerator spec files: presets, validation, one-line errors naming field and file."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from mixaq.simulator import AcceleratorSpec, MixaqError, list_specs, load_spec, spec_from_mapping

GOOD = {
    "name": "bitfusion-16x16",
    "frequency_mhz": 500,
    "array": {"rows": 16, "cols": 16, "dataflow": "ws"},
    "precision": {"model": "bitfusion", "min_bits": 2, "max_bits": 8},
    "sram_kib": {"ifmap": 64, "filter": 64, "ofmap": 64},
    "dram_bytes_per_cycle": 16,
    "vector_unit": {"lanes": 16},
    "energy_pj": {"mac_8x8": 0.2, "sram_byte": 1.0, "dram_byte": 100.0},
}


def write(tmp_path, data, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_presets_cover_the_three_precision_families():
    names = list_specs()
    assert {"bitfusion", "int8_systolic", "bitserial"} <= set(names)
    models = {load_spec(name).precision_model for name in names}
    assert {"bitfusion", "fixed", "bitserial"} <= models
    fixed = load_spec("int8_systolic")
    assert fixed.precision_model == "fixed" and fixed.max_bits == 8
    assert load_spec("bitfusion").supported_act_bits == (2, 3, 4, 5, 6, 7, 8)


def test_issue_schema_loads_with_defaults(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert isinstance(spec, AcceleratorSpec)
    assert (spec.rows, spec.cols, spec.dataflow, spec.precision_model) == (16, 16, "ws", "bitfusion")
    assert spec.psum_bits == 32 and spec.output_bits == 8 and spec.static_power_mw == 0.0
    assert spec.supported_weight_bits == tuple(range(2, 9))
    assert spec_from_mapping(spec.to_mapping()) == spec
    assert load_spec(spec) is spec


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.pop("frequency_mhz"), "frequency_mhz"),
    (lambda d: d["array"].pop("rows"), "array.rows"),
    (lambda d: d["sram_kib"].update(ifmap=-4), "sram_kib.ifmap"),
    (lambda d: d["array"].update(rows=0), "array.rows"),
    (lambda d: d["array"].update(dataflow="rs"), "array.dataflow"),
    (lambda d: d["precision"].update(model="analog"), "precision.model"),
    (lambda d: d["precision"].update(min_bits=9), "precision.min_bits"),
    (lambda d: d["array"].update(rows=2.5), "array.rows"),
    (lambda d: d["energy_pj"].update(dram_byte="lots"), "energy_pj.dram_byte"),
    (lambda d: d.update(colour="red"), "colour"),
    (lambda d: d["array"].update(depth=3), "array.depth"),
    (lambda d: d.update(array=[16, 16]), "array"),
    (lambda d: d["sram_kib"].update(ofmap=0), "sram_kib.ofmap"),  # sizes must be positive
    (lambda d: d.update(frequency_mhz=float("inf")), "frequency_mhz"),  # would print `latency infx`
    (lambda d: d["energy_pj"].update(dram_byte=float("nan")), "energy_pj.dram_byte"),
    (lambda d: d.update(dram_bytes_per_cycle=float("inf")), "dram_bytes_per_cycle"),
])
def test_bad_spec_is_one_line_error_naming_field_and_file(tmp_path, mutate, field):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD.items()}
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(MixaqError) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message
    assert field in message and str(path) in message


def test_unparsable_yaml_missing_file_and_unknown_preset(tmp_path):
    bad = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(MixaqError, match=str(bad)):
        load_spec(bad)
    with pytest.raises(FileNotFoundError):
        load_spec(tmp_path / "absent.yaml")
    with pytest.raises(MixaqError, match="unknown spec 'nope'.*bitfusion"):
        load_spec("nope")


def test_bit_checks_name_the_operand_and_the_range():
    spec = load_spec("bitfusion")
    spec.check_bits("act", [2, 4, 8])
    with pytest.raises(MixaqError, match=r"act=9 is outside the range 2\.\.8"):
        spec.check_bits("act", 9)
    with pytest.raises(MixaqError, match="weight_bits is None .float."):
        spec.check_bits("weight_bits", None)
    with pytest.raises(MixaqError, match="integer"):
        spec.check_bits("act", 4.5)


def test_replace_revalidates():
    spec = load_spec("bitfusion")
    assert dataclasses.replace(spec, rows=64).rows == 64
    with pytest.raises(MixaqError, match="array.dataflow"):
        dataclasses.replace(spec, dataflow="diagonal")


def test_yaml_1_2_numbers_are_numbers(tmp_path):
    """PyYAML reads `5e2` as a string (YAML 1.1); spec files accept it as 500."""
    text = yaml.safe_dump(GOOD).replace("frequency_mhz: 500", "frequency_mhz: 5e2").replace("dram_byte: 100.0",
                                                                                             "dram_byte: 1E+2")
    assert "5e2" in text and "1E+2" in text
    spec = load_spec(write(tmp_path, text))
    assert spec.frequency_mhz == 500.0 and spec.dram_byte_energy_pj == 100.0
    assert spec == load_spec(write(tmp_path, GOOD, "plain.yaml"))  # the same spec as the plain file


@pytest.mark.parametrize("make, needle", [
    (lambda d: d / "a_dir.yaml", "is a directory"),
    (lambda d: d, "is a directory"),
    (lambda d: _write_bytes(d / "latin1.yaml", "name: caf\xe9\n".encode("latin-1")), "not UTF-8 text"),
])
def test_directory_or_binary_file_as_spec_is_one_line(tmp_path, make, needle):
    (tmp_path / "a_dir.yaml").mkdir()
    path = make(tmp_path)
    with pytest.raises(MixaqError, match=needle) as info:
        load_spec(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("section,key,value", [("array", "feed", "pipelined"), ("mapper", "search", "all"),
                                               ("mapper", "objective", "speed"), ("memory", "stall_model", "x"),
                                               ("energy_pj", "array", "per_unit"), ("memory", "output_readback", "yes")])
def test_issue20_options_are_validated(section, key, value):
    data = load_spec("bitfusion").to_mapping()
    data[section][key] = value
    with pytest.raises(MixaqError, match=f"{section}.{key}"):
        spec_from_mapping(data)


def test_traffic_objective_is_read_as_dram():
    data = load_spec("bitfusion").to_mapping()
    data["mapper"]["objective"] = "traffic"
    assert spec_from_mapping(data).mapper_objective == "dram"
