"""A wheel built from a clean checkout of HEAD ships every module and data file, installs into a
fresh venv, and `mixaq cost` works there from a directory holding the user's own `models/`,
`search/` and `simulator/` packages (the import names are `mixaq.*`, so they never collide)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy
import pytest
import yaml

from mixaq.search.cli import main

REPO = Path(__file__).resolve().parents[1]
# repository folder -> import name (pyproject's package-dir)
FOLDERS = {"core": "mixaq/core", "simulator": "mixaq/simulator", "models": "mixaq/models", "search": "mixaq/search", "specs": "mixaq/specs"}
COST_ARGS = ["cost", "--spec", "bitfusion", "--arch", "swin_t", "--image", "224x224"]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(clone, wheel, venv python): HEAD cloned, built without build isolation, installed without deps."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout")
    tmp = tmp_path_factory.mktemp("wheel")
    clone = tmp / "clone"
    _run(["git", "clone", "-q", str(REPO), str(clone)])
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
          str(clone)])
    (wheel,) = (tmp / "dist").glob("mixaq-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # Dependencies come from this environment by plain path lines (which run no editable finder).
    deps = sorted({str(Path(m.__file__).resolve().parents[1]) for m in (numpy, yaml)})
    (site / "_deps.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)])
    return clone, wheel, python


def test_wheel_ships_every_module_and_data_file(installed):
    clone, wheel, _ = installed
    tracked = _run(["git", "ls-files", *FOLDERS], cwd=clone).stdout.split()
    want = {FOLDERS[path.split("/", 1)[0]] + "/" + path.split("/", 1)[1] for path in tracked}
    with zipfile.ZipFile(wheel) as zf:
        shipped = {n for n in zf.namelist() if n.startswith("mixaq/")}
    assert want - shipped == set(), "missing from the wheel (add the subpackage to pyproject's packages / package-data)"
    assert shipped - want == set(), "the wheel ships files that are not in the source tree"


def test_cost_runs_from_the_wheel_beside_user_packages(installed, tmp_path, capsys):
    _, _, python = installed
    user = tmp_path / "my_project"  # a typical ML repository with its own top-level packages
    for name in ("models", "search", "simulator"):
        (user / name).mkdir(parents=True)
        (user / name / "__init__.py").write_text(f"USERS = {name!r}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    script = _run([str(python.parent / "mixaq"), *COST_ARGS], cwd=user, env=env)
    assert main(COST_ARGS) == 0
    assert script.stdout == capsys.readouterr().out  # the same table as this checkout prints
    probe = ("import importlib.util, sys, models, search, simulator\n"
             "from pathlib import Path\n"
             "import mixaq.simulator\n"
             "from mixaq.search.cli import main\n"
             "assert (models.USERS, search.USERS, simulator.USERS) == ('models', 'search', 'simulator')\n"
             "print(mixaq.simulator.__file__)\n"
             "print(','.join(mixaq.simulator.list_specs()))\n"
             "detection = Path(importlib.util.find_spec('mixaq.models.detection').origin).parent\n"
             "print(detection / 'default' / 'model.pt')\n"
             f"sys.exit(main({COST_ARGS!r}))\n")
    out = _run([str(python), "-c", probe], cwd=user, env=env).stdout.splitlines()
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    assert Path(out[0]).is_relative_to(site), out[0]  # imported from the wheel, not this checkout
    assert out[1].split(",") == sorted(p.stem for p in (REPO / "specs").glob("*.yaml"))
    assert Path(out[2]).is_relative_to(site) and Path(out[2]).is_file()  # the embedded default model ships
    assert "\n".join(out[3:]) + "\n" == script.stdout
