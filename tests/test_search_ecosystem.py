"""A mixaq study opens meaningfully in Optuna's own tools (metric names, identity attributes, the
optuna-dashboard server), and the command line behaves as Unix tools do (--version, a closed pipe)."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep
from mixaq.search.cli import main

MIXAQ = [sys.executable, "-c", "import sys; from mixaq.search.cli import main; sys.exit(main(sys.argv[1:]))"]


def _study(tmp_path: Path, objectives=("map", "latency_ms", "area_mm2")) -> str:
    url = f"sqlite:///{tmp_path / 's.db'}"
    s = SweepSettings(space=SearchSpace(num_pairs=2), spec="bitfusion", population_size=4, baseline_points=0,
                      objectives=objectives)
    run_sweep(s, SyntheticAccuracy(), url, "demo", 3, progress=False)
    return url


def test_a_fresh_study_carries_metric_names_and_identity(tmp_path):
    url = _study(tmp_path)
    study = optuna.load_study(study_name="demo", storage=url)
    assert study.metric_names == ["map", "latency_ms", "area_mm2"]
    attrs = study.user_attrs
    assert attrs["mixaq.identity.objectives"] == "map (max), latency_ms (min), area_mm2 (min)"
    assert attrs["mixaq.identity.spec"] == "bitfusion"
    assert "arch swin_nano, input 64x64" in attrs["mixaq.identity.model"]
    assert "500 evaluation images" in attrs["mixaq.identity.data"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_optuna_dashboard_serves_the_study_with_its_objective_names(tmp_path):
    exe = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent)) or shutil.which("optuna-dashboard")
    if exe is None:
        pytest.skip("optuna-dashboard is not installed (it is in the dev extras)")
    url = _study(tmp_path, ("map", "speedup_bops"))
    port = _free_port()
    proc = subprocess.Popen([exe, url, "--host", "127.0.0.1", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and status is None:
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    status = r.status
            except OSError:
                time.sleep(0.25)
        assert status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as r:
            summaries = json.loads(r.read())["study_summaries"]
        sid = next(s["study_id"] for s in summaries if s["study_name"] == "demo")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{sid}", timeout=10) as r:
            detail = json.loads(r.read())
        assert detail["objective_names"] == ["map", "speedup_bops"]
        assert {a["key"] for a in detail["user_attrs"]} >= {"mixaq.identity.spec", "mixaq.identity.data"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode is not None


def test_version_and_specs(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"mixaq {version('mixaq')}\n"
    assert main(["specs"]) == 0
    out = capsys.readouterr().out.splitlines()
    from mixaq.search.hardware._hw_space import list_hw_spaces
    from mixaq.simulator import list_specs

    for name in list_specs() + list_hw_spaces():
        lines = [line for line in out if line.split()[:1] == [name]]
        assert len(lines) == 1, name  # one line each
    assert "accelerator presets (--spec NAME):" in out and "hardware spaces (--hw-space NAME):" in out
    assert any(line.split()[0] == "coexplore" and "124,416 points" in line for line in out[1:] if line.strip())


@pytest.mark.parametrize("argv", [["specs"], ["--help"], ["--version"]])
def test_a_closed_pipe_ends_quietly_with_the_sigpipe_status(argv):
    proc = subprocess.Popen(MIXAQ + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before mixaq writes (`mixaq specs | head -0`)
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert err == b"" and proc.returncode == 141
