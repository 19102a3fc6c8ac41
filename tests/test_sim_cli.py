"""`mixaq gemm` and `mixaq cost`: outputs, errors, and a lean import path."""
from __future__ import annotations

import csv
import io
import dataclasses
import json
import subprocess
import sys

import pytest
import yaml

from mixaq.search.cli import main
from mixaq.simulator._mapper import LOOP_ORDERS
from mixaq.simulator import WindowAssignment, estimate, gemm_cost, get_arch, load_spec


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_gemm_json_matches_the_model(capsys):
    code, out, _ = run_cli(capsys, "gemm", "--spec", "bitfusion", "--m", "49", "--n", "49", "--k", "32",
                           "--act-bits", "4", "--weight-bits", "4", "--format", "json")
    assert code == 0
    got = json.loads(out)
    want = gemm_cost(load_spec("bitfusion"), 49, 49, 32, 4, 4)
    for key in ("compute_cycles", "stall_cycles", "macs", "bops", "dram_read_bytes", "dram_write_bytes",
                "utilization", "energy_pj"):
        assert got[key] == pytest.approx(float(want[key]), rel=1e-12), key
    assert got["total_cycles"] == got["compute_cycles"] + got["stall_cycles"]
    # the chosen schedule: tiles and the loop order by name (outermost first)
    for key in ("tile_m", "tile_n", "tile_k", "tiles", "pack"):
        assert got[key] == want[key], key
    assert got["loop_order"] == LOOP_ORDERS[int(want["loop_order"])]
    assert got["bound"] in ("compute", "memory") and got["power_mw"] > 0
    code, out, _ = run_cli(capsys, "gemm", "--spec", "bitfusion", "--m", "49", "--n", "49", "--k", "32", "--format",
                           "csv", "--mapper-objective", "dram")
    (row,) = list(csv.DictReader(io.StringIO(out)))
    frugal = gemm_cost(dataclasses.replace(load_spec("bitfusion"), mapper_objective="dram"), 49, 49, 32, 8, 8)
    assert float(row["dram_read_bytes"]) == frugal["dram_read_bytes"] and row["mapper"] == "tiles, dram"
    code, out, _ = run_cli(capsys, "gemm", "--m", "64", "--n", "64", "--k", "64")
    assert code == 0 and "compute_cycles" in out and "act_bits          8" in out


def test_cost_json_totals_and_speedup(capsys):
    code, out, _ = run_cli(capsys, "cost", "--spec", "bitfusion", "--arch", "swin_t", "--image", "800x1333",
                           "--high-bits", "8", "--low-bits", "4", "--weight-bits", "4", "--low-ratio", "0.5",
                           "--format", "json")
    assert code == 0
    got = json.loads(out)
    for key in ("macs", "bops", "cycles", "latency_ms", "energy_pj", "dram_bytes"):
        assert key in got["totals"]
    assert set(got["speedup"]) == {"bops", "cycles", "latency", "energy"}
    arch = get_arch("swin_t")
    a = WindowAssignment.from_pair_ratios(arch, (800, 1333), 0.5, 0.0, 8, 4, 4)
    report = estimate("bitfusion", arch, (800, 1333), a)
    assert got["totals"]["cycles"] == report.totals.cycles
    assert got["speedup"]["bops"] == pytest.approx(
        estimate("bitfusion", arch, (800, 1333), WindowAssignment.uniform(arch, 8, 4)).totals.bops / report.totals.bops)
    assert [s["stage"] for s in got["stages"]] == [0, 1, 2, 3]


def test_cost_csv_table_and_per_op(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "cost", "--low-ratios", "0.1,0.2,0.3,0.4,0.5,0.6", "--prune-ratio", "0.1",
                           "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["stage"] for r in rows] == ["0", "1", "2", "3", "total"]
    assert float(rows[-1]["macs"]) == pytest.approx(sum(float(r["macs"]) for r in rows[:-1]))
    code, out, _ = run_cli(capsys, "cost", "--arch", "swin_micro", "--image", "256", "--low-ratio", "0.3")
    assert code == 0 and "speedup over uniform A8 W4" in out and "total" in out
    arch_file = tmp_path / "tiny.yaml"
    arch_file.write_text(yaml.safe_dump({"embed_dim": 8, "depths": [2], "num_heads": [1], "window_size": 4}))
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump(load_spec("int8_systolic").to_mapping()))
    code, out, _ = run_cli(capsys, "cost", "--arch", str(arch_file), "--spec", str(spec_file), "--image", "64x96",
                           "--per-op", "--format", "json")
    ops = json.loads(out)["per_op"]
    assert code == 0 and {"patch_embed", "qkv", "fc2"} <= {r["op"] for r in ops}


@pytest.mark.parametrize("argv,needle", [
    (["cost", "--spec", "nope"], "unknown spec 'nope'"),
    (["cost", "--low-ratios", "0.1,0.2"], "expected 6 low ratios"),
    (["cost", "--low-ratios", "a,b"], "--low-ratios"),
    (["cost", "--image", "800by1333"], "--image"),
    (["cost", "--high-bits", "9"], "--high-bits=9"),
    (["cost", "--low-bits", "16"], "--low-bits=16"),  # checked although the low ratio is 0
    (["cost", "--baseline-bits", "16"], "--baseline-bits=16"),  # named as itself, not high_act_bits
    (["cost", "--low-ratio", "nan"], "--low-ratio: ratios must lie in [0, 1], got nan"),  # no numpy warning
    (["cost", "--prune-ratios", "0,0,inf,0,0,0"], "--prune-ratios: ratios must lie in [0, 1]"),
    (["cost", "--low-ratio", "1.5"], "ratios must lie in [0, 1]"),
    (["cost", "--spec", "missing.yaml"], "missing.yaml"),
    (["gemm", "--m", "0", "--n", "4", "--k", "4"], "--m must be a positive integer"),
    (["gemm", "--m", "4", "--n", "4", "--k", "4", "--weight-bits", "1"], "--weight-bits=1"),
])
def test_errors_are_one_line_with_exit_2(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"mixaq {argv[0]}: error: ") and needle in err


def test_cli_fast_path_imports_neither_pandas_nor_torch():
    probe = ("import sys, io, contextlib\n"
             "from mixaq.search.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    assert main(['cost', '--low-ratio', '0.5', '--format', 'json']) == 0\n"
             "    assert main(['gemm', '--m', '8', '--n', '8', '--k', '8']) == 0\n"
             "heavy = sorted({'pandas', 'torch', 'matplotlib', 'optuna'} & set(sys.modules))\n"
             "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("extra", [[], ["--per-op"], ["--prune-ratio", "0.2", "--spec", "int8_systolic"]])
def test_cost_total_row_is_the_sum_of_its_rows_in_every_numeric_column(capsys, extra):
    """The README's `total` once left the vector cycles out of compute_cycles while the stage rows
    counted them. Every numeric column of the total row must be the column sum (or be left empty)."""
    code, out, _ = run_cli(capsys, "cost", "--arch", "swin_t", "--image", "800x1333", "--low-ratio", "0.5",
                           "--format", "csv", *extra)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows[-1]["stage"] == "total"
    body, total = rows[:-1], rows[-1]
    checked = 0
    for column in rows[0]:
        if column in ("stage", "block", "op", "branch", "unit"):
            continue
        if total[column] == "":  # not additive (shares, shapes, bit widths): no total claimed
            continue
        values = [float(r[column]) for r in body if r[column] != ""]
        assert float(total[column]) == pytest.approx(sum(values), rel=1e-9), column
        checked += 1
    assert checked >= 9
    for r in body:  # and each row is consistent in itself
        assert float(r["cycles"]) == pytest.approx(
            float(r["compute_cycles"]) + float(r["vector_cycles"]) + float(r["stall_cycles"]), rel=1e-9)


def test_arch_file_errors_name_the_file_and_field(capsys, tmp_path):
    bad = tmp_path / "arch.yaml"
    bad.write_text("embed_dim: big\ndepths: [2]\nnum_heads: [1]\n")
    code, _, err = run_cli(capsys, "cost", "--arch", str(bad))
    assert code == 2 and err.strip() == f"mixaq cost: error: arch file {bad}: embed_dim: expected an integer, got 'big'"
    code, _, err = run_cli(capsys, "cost", "--arch", str(tmp_path))
    assert code == 2 and "is a directory" in err and err.count("\n") == 1
