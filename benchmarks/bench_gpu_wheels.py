"""The wheel folder for a bare GPU machine (`make gpu-wheels`), and a check that it installs and runs.

A bare GPU machine has python3 with torch, torchvision, timm, OpenCV, pandas and numpy, no network.
`build_wheel_folder` writes everything else the GPU check needs into one folder:

- `mixaq-*.whl` built from this tree (installed with `--no-deps`: its torch pin is not the machine's);
- binary wheels of mixaq's other dependencies (`gpu_requirements.txt`: pycocotools, optuna, scipy,
  matplotlib, pyyaml, tqdm, pillow) and of their dependencies, for CPython 3.10-3.13 on manylinux
  x86_64 (`pip download --only-binary=:all:`), so the machine's python version needs no build;
- `gpu_check.py` and `requirements.txt`.

`check_wheel_install` is what the slow test runs here (`python -m benchmarks gpu_wheels` too): a fresh
venv that sees only the bare machine's packages (torch, torchvision, timm, cv2, pandas, numpy and
their own dependencies, linked from this environment; no mixaq, no pycocotools, no optuna), the two
`pip install --no-index --find-links` commands of docs/gpu_check.md, then `gpu_check.py --device cpu
--tiny --ddp-cpu` from outside the repository (every part, the 2-process ones with gloo). Only this machine's python version is downloaded for it.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = Path(__file__).with_name("gpu_requirements.txt")
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
# What a bare GPU machine has (the list, with torchvision and numpy that come with them).
BARE = ("torch", "torchvision", "timm", "opencv-python-headless", "pandas", "numpy")


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return proc


def build_wheel_folder(out: Path, pythons: tuple[str, ...] = PYTHONS) -> list[str]:
    """Write the wheel folder; returns the file names in it."""
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    had_build = (REPO / "build").exists()
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)])
    if not had_build:  # setuptools' in-tree build directory, not ours to keep
        shutil.rmtree(REPO / "build", ignore_errors=True)
    for version in pythons:
        platforms = [a for p in PLATFORMS for a in ("--platform", p)]
        _run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--implementation", "cp",
              "--python-version", version, *platforms, "-d", str(out), "-r", str(REQUIREMENTS)])
    shutil.copy(Path(__file__).with_name("gpu_check.py"), out / "gpu_check.py")
    shutil.copy(REQUIREMENTS, out / "requirements.txt")
    return sorted(p.name for p in out.iterdir())


def _closure(names: tuple[str, ...]) -> set[str]:
    """The installed distributions `names` need (their requirements without extras, transitively)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = re.split(r"[ ;<>=!~\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen.add(name)
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(req)
    return seen


def bare_site(target: Path) -> Path:
    """A directory that holds (as links) exactly the bare machine's packages and their metadata."""
    target.mkdir(parents=True, exist_ok=True)
    for name in sorted(_closure(BARE)):
        dist = md.distribution(name)
        tops = {f.parts[0] for f in dist.files or [] if f.parts and not f.parts[0].endswith(".pth")
                and f.parts[0] not in ("..", "bin", "__pycache__")}
        for top in tops:
            src = Path(dist.locate_file(top))
            if src.exists() and not (target / top).exists():
                (target / top).symlink_to(src)
    return target


def check_wheel_install(tmp: Path, wheels: Path | None = None) -> dict:
    """Build (unless given) the wheel folder for this python, install it into a bare venv, run the tiny check."""
    tmp = Path(tmp)
    began = time.perf_counter()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if wheels is None:
        wheels = tmp / "gpu-wheels"
        build_wheel_folder(wheels, (version,))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "_bare_machine.pth").write_text(str(bare_site(tmp / "bare")) + "\n")
    probe = _run([str(python), "-c", "import importlib.util as u; print([m for m in ('mixaq', 'pycocotools', 'optuna') "
                  "if u.find_spec(m)])"]).stdout.strip()
    if probe != "[]":
        raise RuntimeError(f"the bare venv already sees {probe}")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index", "--find-links", str(wheels)]
    (wheel,) = wheels.glob("mixaq-*.whl")
    _run([*pip, "--no-deps", str(wheel)])
    _run([*pip, "-r", str(wheels / "requirements.txt")])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(python), str(wheels / "gpu_check.py"), "--device", "cpu", "--tiny", "--images", "1",
                           "--ddp-cpu"], capture_output=True, text=True, cwd=tmp, env=env, timeout=1200)
    return {"returncode": proc.returncode, "output": proc.stdout + proc.stderr[-2000:],
            "wheels": sorted(p.name for p in wheels.glob("*.whl")), "seconds": round(time.perf_counter() - began, 1)}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_gpu_wheels", description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=None, help="only write the wheel folder here (all python versions)")
    parser.add_argument("--pythons", default=",".join(PYTHONS), help="with --build: CPython versions")
    args = parser.parse_args([] if argv is None else argv)
    if args.build:
        names = build_wheel_folder(Path(args.build), tuple(v for v in args.pythons.split(",") if v))
        print(f"{args.build}: {len(names)} files ({sum(n.endswith('.whl') for n in names)} wheels)")
        return 0
    with tempfile.TemporaryDirectory(prefix="mixaq-gpu-wheels-") as tmp:
        summary = check_wheel_install(Path(tmp))
    print(summary["output"].split("\n{")[0])
    print(json.dumps({k: v for k, v in summary.items() if k != "output"}, indent=2))
    return summary["returncode"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
