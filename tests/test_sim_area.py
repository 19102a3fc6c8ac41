"""Area model (simulator/_area.py), spec content hashes, and costing many specs at once
(simulator/_spec_batch.py) against one spec at a time."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixaq.search.cli import main
from mixaq.simulator import (MixaqError, estimate_batch, estimate_specs, fractions_from_pair_ratios, get_arch, list_specs,
                             load_spec, spec_area, spec_from_mapping)
from mixaq.simulator._area import BITFUSION_PE_UM2, FIXED_PE_UM2, SERIAL_PE_UM2, SRAM_MM2_PER_KIB, VECTOR_LANE_MM2, \
    pe_area_mm2

BASE = load_spec("bitfusion")


def test_pe_area_hits_the_synthesis_table_and_interpolates_between_its_points():
    for bits, um2 in FIXED_PE_UM2.items():
        assert pe_area_mm2("fixed", bits, bits) == pytest.approx(um2 * 1e-6, rel=1e-12)
    for bits, um2 in BITFUSION_PE_UM2.items():
        assert pe_area_mm2("bitfusion", 2, bits) == pytest.approx(um2 * 1e-6, rel=1e-12)
    assert pe_area_mm2("bitserial", 1, 8) == SERIAL_PE_UM2 * 1e-6
    # between table points: strictly between the neighbours
    assert FIXED_PE_UM2[4] * 1e-6 < pe_area_mm2("fixed", 6, 6) < FIXED_PE_UM2[8] * 1e-6
    # a Bit Fusion unit that fuses nothing (min = max) is a fixed PE
    assert pe_area_mm2("bitfusion", 8, 8) == pe_area_mm2("fixed", 8, 8)


def test_preset_area_is_the_sum_of_its_parts():
    for name in list_specs():
        spec = load_spec(name)
        a = spec_area(spec)
        kib = spec.sram_ifmap_kib + spec.sram_filter_kib + spec.sram_ofmap_kib
        assert a.sram_mm2 == pytest.approx(kib * SRAM_MM2_PER_KIB)
        assert a.vector_mm2 == pytest.approx(spec.vector_lanes * VECTOR_LANE_MM2)
        assert a.array_mm2 == pytest.approx(spec.rows * spec.cols * pe_area_mm2(spec.precision_model, spec.min_bits,
                                                                                 spec.max_bits))
        assert a.total_mm2 == pytest.approx(a.array_mm2 + a.sram_mm2 + a.vector_mm2) == spec.area_mm2


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 128), cols=st.integers(1, 128), kib=st.floats(0.5, 512), lanes=st.integers(1, 64),
       grow=st.sampled_from(["rows", "cols", "sram_ifmap_kib", "vector_lanes"]))
def test_area_grows_with_every_resource(rows, cols, kib, lanes, grow):
    spec = dataclasses.replace(BASE, rows=rows, cols=cols, sram_ifmap_kib=kib, vector_lanes=lanes)
    bigger = dataclasses.replace(spec, **{grow: getattr(spec, grow) + 1})
    assert spec_area(bigger).total_mm2 > spec_area(spec).total_mm2 > 0


def test_area_overrides_win_and_bad_ones_are_one_line_errors():
    data = BASE.to_mapping()
    data["area_mm2"] = {"pe": 0.001, "sram_per_kib": 0.01, "vector_lane": 0.0, "other": 0.5}
    spec = spec_from_mapping(data, "x.yaml")
    a = spec_area(spec)
    assert a.array_mm2 == pytest.approx(512 * 0.001) and a.sram_mm2 == pytest.approx(112 * 0.01)
    assert a.vector_mm2 == 0.0 and a.other_mm2 == 0.5
    assert spec_from_mapping(spec.to_mapping()) == spec  # round trip keeps the overrides
    for bad, match in (({"pe": -1}, "area_mm2.pe: must be >= 0"), ({"gates": 1}, "area_mm2.gates: unknown field"),
                       ({"pe": "big"}, "area_mm2.pe: expected a number")):
        data["area_mm2"] = bad
        with pytest.raises(MixaqError, match=match) as err:
            spec_from_mapping(data, "x.yaml")
        assert "\n" not in str(err.value)


def test_content_hash_ignores_the_name_and_sees_every_cost_field():
    same = dataclasses.replace(BASE, name="other", description="renamed")
    assert same.content_hash() == BASE.content_hash()
    for change in ({"rows": 8}, {"dram_bytes_per_cycle": 8.0}, {"area_other_mm2": 1.0}, {"dataflow": "os"},
                   {"dram_ports": "per_operand"}, {"psum_policy": "write_every_fold"}, {"fold_order": "cols_outer"},
                   {"split_stream": False}, {"array_feed": "systolic"}, {"mapper_search": "folds"},
                   {"output_readback": True}, {"stall_model": "bitfusion"}, {"pad_to_array": True},
                   {"array_energy": "per_cycle"}, {"mapper_objective": "edp"}):
        assert dataclasses.replace(BASE, **change).content_hash() != BASE.content_hash()


def test_cost_cli_reports_area(capsys):
    assert main(["cost", "--spec", "bitfusion", "--arch", "swin_nano", "--image", "64", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["totals"]["area_mm2"] == pytest.approx(BASE.area_mm2)
    assert main(["cost", "--spec", "bitserial", "--arch", "swin_nano", "--image", "64"]) == 0
    assert f"area {load_spec('bitserial').area_mm2:.3f} mm2 at 45 nm" in capsys.readouterr().out


def _grid():
    rng = np.random.default_rng(0)
    specs = [load_spec(n) for n in list_specs()]
    for dataflow in ("os", "ws", "is"):
        for _ in range(6):
            specs.append(dataclasses.replace(
                BASE, dataflow=dataflow, rows=int(rng.choice([4, 8, 16, 32])), cols=int(rng.choice([4, 8, 32])),
                sram_ifmap_kib=float(rng.choice([2, 8, 64])), sram_ofmap_kib=float(rng.choice([1, 16])),
                dram_bytes_per_cycle=float(rng.choice([4, 16])), frequency_mhz=float(rng.choice([250, 500])),
                static_power_mw=float(rng.choice([0, 5])), vector_lanes=int(rng.choice([4, 16]))))
    specs.append(dataclasses.replace(BASE, min_bits=4))  # cannot run 2-bit activations
    return specs


def test_estimate_specs_equals_estimate_batch_on_each_spec():
    arch, hw = get_arch("swin_nano"), (64, 96)
    rng = np.random.default_rng(1)
    low, pruned = fractions_from_pair_ratios(arch, hw, rng.choice(np.arange(0, 0.9, 0.1), (4, arch.num_pairs)),
                                             rng.choice([0.0, 0.2], (4, arch.num_pairs)))
    specs = _grid()
    out = estimate_specs(specs, arch, hw, low, pruned, 8, np.array([4, 2, 4, 2]), 4, unsupported="nan")
    for h, spec in enumerate(specs):
        if spec.min_bits == 4:
            assert np.isnan(out["cycles"][h]).all()
            continue
        ref = estimate_batch(spec, arch, hw, low, pruned, 8, np.array([4, 2, 4, 2]), 4)
        for key in ref.columns:
            np.testing.assert_allclose(out[key][h], ref[key].to_numpy(), rtol=1e-12, err_msg=f"{spec.name} {key}")
    with pytest.raises(MixaqError, match="low_act_bits=2 is outside"):
        estimate_specs(specs, arch, hw, low, pruned, 8, 2, 4)


def test_estimate_specs_carries_the_memory_model_options():
    """Specs that differ only in the memory-model options (categorical: one group each) cost as
    `estimate_batch` does, and the options really move the numbers."""
    arch, hw = get_arch("swin_nano"), (64, 96)
    rng = np.random.default_rng(2)
    low, pruned = fractions_from_pair_ratios(arch, hw, rng.choice(np.arange(0, 0.9, 0.1), (3, arch.num_pairs)), 0.0)
    small = dataclasses.replace(BASE, rows=4, cols=4, sram_ifmap_kib=1.0, sram_filter_kib=2.0, sram_ofmap_kib=1.0,
                                dram_bytes_per_cycle=2.0, mapper_search="folds")
    specs = [dataclasses.replace(small, dataflow=dataflow, dram_ports=ports, psum_policy=psum, fold_order=order,
                                 split_stream=split)
             for dataflow in ("os", "ws") for ports in ("shared", "per_operand")
             for psum in ("on_chip_when_fits", "write_every_fold") for order in ("any", "cols_outer")
             for split in (True, False)]
    # the tile mapper's options (fold_order and split_stream belong to the fold schedules)
    specs += [dataclasses.replace(small, mapper_search="tiles", dataflow="ws", array_feed=feed, output_readback=back,
                                  stall_model=stall, dram_ports=ports)
              for feed in ("systolic", "buffered", "ideal") for back in (False, True)
              for stall in ("pipelined", "bitfusion") for ports in ("shared", "per_operand")]
    out = estimate_specs(specs, arch, hw, low, pruned, 8, 4, 4)
    for h, spec in enumerate(specs):
        ref = estimate_batch(spec, arch, hw, low, pruned, 8, 4, 4)
        for key in ref.columns:
            np.testing.assert_allclose(out[key][h], ref[key].to_numpy(), rtol=1e-12, err_msg=f"{h} {key}")
    # every option changes some spec's cycles or traffic when it alone changes
    result = {h: tuple(np.concatenate([out[key][h] for key in ("cycles", "dram_read_bytes", "dram_write_bytes")]))
              for h in range(len(specs))}
    for option in ("dram_ports", "psum_policy", "fold_order", "split_stream", "array_feed", "output_readback",
                   "stall_model", "mapper_search"):
        only_it_differs = lambda a, b: (getattr(a, option) != getattr(b, option)  # noqa: E731
                                        and dataclasses.replace(b, **{option: getattr(a, option)}) == a)
        moved = sum(result[h] != result[g] for h, a in enumerate(specs) for g, b in enumerate(specs)
                    if only_it_differs(a, b))
        assert moved > 0, option
