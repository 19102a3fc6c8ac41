"""Run Bit Fusion's own simulator (Sharma et al., ISCA 2018; github.com/hsharma35/bitfusion) on GEMMs.

Its repository carries no licence, so none of its code is in mixaq: the harness takes the path of a
local checkout already ported to Python 3 (flag `--bitfusion-src` or env `MIXAQ_BITFUSION_SRC`; its
dependency hsharma35/dnnweaver2 from `--dnnweaver2-src` / `MIXAQ_DNNWEAVER2_SRC`, by default the
sibling directory `dnnweaver2`) and runs it in its own venv (`make bitfusion-venv` ->
`.venv-bitfusion/`, registry packages only) in a subprocess whose working directory is the checkout
(it reads `results/systolic_array_synth.csv` relative to it). The driver below calls the simulator's
own functions exactly as `Simulator.get_conv_cycles` does (optimize_for_order, then get_stats_fast),
and also returns the tiling and loop order the optimizer chose. Used by `benchmarks.table_bitfusion`
and the tests; nothing in the cost model depends on it.
"""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from mixaq.simulator import MixaqError
from benchmarks._refvenv import REPO_ROOT, ensure_venv

__all__ = ["BITFUSION_VENV", "SRC_ENV", "DNNWEAVER2_ENV", "BitFusionCase", "bitfusion_cases", "ensure_bitfusion_venv",
           "find_bitfusion_src", "run_bitfusion"]

BITFUSION_VENV = REPO_ROOT / ".venv-bitfusion"
SRC_ENV = "MIXAQ_BITFUSION_SRC"
DNNWEAVER2_ENV = "MIXAQ_DNNWEAVER2_SRC"
BIT_PAIRS = [(a, w) for a in (2, 4, 8) for w in (2, 4, 8)]  # the precisions a Fusion Unit fuses natively


@dataclass(frozen=True)
class BitFusionCase:
    """One GEMM (M×K)·(K×N) at (act_bits, weight_bits). Bit Fusion costs an FC layer with batch B as
    M = B, K = input neurons, N = output neurons. `conv` = (kernel, out_size, stride, in_channels) marks
    a first-layer convolution, which Bit Fusion costs through im2col (M = B·O², K = kernel²·in_channels,
    N = out channels) but tiles M as batch × square output tiles."""

    group: str
    network: str
    layer: str
    m: int
    n: int
    k: int
    act_bits: int
    weight_bits: int
    conv: tuple[int, int, int, int] | None = None


# FC / RNN / LSTM layers and im2col first layers of Bit Fusion's own benchmarks
# (bitfusion/src/benchmarks/benchmarks.py, WRPN variants as its sweep uses; batch 16), one per shape.
_FC = [("AlexNet", "fc1", 18432, 8192), ("AlexNet", "fc2", 8192, 8192), ("AlexNet", "fc3", 8192, 1000),
       ("SVHN", "fc6", 4096, 1024), ("SVHN", "fc7", 1024, 1024), ("SVHN", "fc8", 1024, 10),
       ("CIFAR10", "fc6", 8192, 1024), ("LeNet-5", "fc1", 4096, 512), ("LeNet-5", "fc2", 512, 10),
       ("RNN", "matmul", 4096, 4096), ("LSTM", "matmul", 3600, 3600)]
# (network, layer, kernel, out_size, stride, in_channels, out_channels)
_CONV = [("AlexNet", "conv1", 11, 55, 4, 3, 96), ("SVHN", "conv0", 3, 32, 1, 3, 64),
         ("CIFAR10", "conv0", 3, 32, 1, 3, 128), ("LeNet-5", "conv0", 5, 32, 1, 1, 32),
         ("RESNET-18", "conv1", 7, 112, 2, 3, 128)]
_BATCH = 16
# Swin-T at 224x224, batch 1, whole image per layer (as mixaq's workload costs it): (tokens, channels)
# per stage; per block qkv, proj, fc1, fc2; patch merging into stages 2-4; one window's attention
# matmuls per head (49 tokens, head dim 32); the patch embedding is a 4x4/4 conv, a first layer.
_SWIN_STAGES = [(3136, 96), (784, 192), (196, 384), (49, 768)]


def _swin_gemms() -> list[tuple[str, int, int, int]]:
    out = []
    for s, (tokens, c) in enumerate(_SWIN_STAGES, start=1):
        out += [(f"s{s}.qkv", tokens, 3 * c, c), (f"s{s}.proj", tokens, c, c),
                (f"s{s}.fc1", tokens, 4 * c, c), (f"s{s}.fc2", tokens, c, 4 * c)]
        if s > 1:
            out.append((f"s{s}.merge", tokens, c, 2 * c))
    out += [("attn.qk", 49, 49, 32), ("attn.av", 49, 32, 49)]
    return out


def bitfusion_cases(bit_pairs: Sequence[tuple[int, int]] = BIT_PAIRS) -> list[BitFusionCase]:
    """Every reference case: each layer at each bit pair."""
    shapes: list[tuple] = []
    for net, layer, ic, oc in _FC:
        shapes.append(("fc", net, layer, _BATCH, oc, ic, None))
    for name, m, n, k in _swin_gemms():
        shapes.append(("swin", "Swin-T", name, m, n, k, None))
    for net, layer, kernel, out_size, stride, ic, oc in _CONV + [("Swin-T", "patch_embed", 4, 56, 4, 3, 96)]:
        batch = 1 if net == "Swin-T" else _BATCH
        shapes.append(("im2col", net, layer, batch * out_size * out_size, oc, kernel * kernel * ic,
                       (kernel, out_size, stride, ic)))
    return [BitFusionCase(g, net, layer, m, n, k, a, w, conv)
            for g, net, layer, m, n, k, conv in shapes for a, w in bit_pairs]


def ensure_bitfusion_venv(timeout_s: float = 600.0) -> Path:
    """Build `.venv-bitfusion` with `make bitfusion-venv` if needed; returns its python."""
    return ensure_venv(BITFUSION_VENV, "bitfusion-venv", timeout_s)


def find_bitfusion_src(src: str | Path | None = None, dnnweaver2: str | Path | None = None) -> tuple[Path, Path] | None:
    """(bitfusion checkout, dnnweaver2 checkout) from the arguments or the environment; None when
    neither names a Bit Fusion checkout. Raises MixaqError when a named path is not a usable one."""
    src = src or os.environ.get(SRC_ENV)
    if not src:
        return None
    root = Path(src).expanduser().resolve()
    if not (root / "bitfusion" / "src" / "optimizer" / "optimizer.py").is_file() or not (root / "bf_e_conf.ini").is_file():
        raise MixaqError(f"{root} is not a Bit Fusion checkout (no bitfusion/src/optimizer/optimizer.py or bf_e_conf.ini)")
    if "import ConfigParser" in (root / "bitfusion" / "src" / "simulator" / "simulator.py").read_text():
        raise MixaqError(f"{root} is the Python 2 original: port it to Python 3 first (see docs/simulator.md)")
    dnnw = Path(dnnweaver2 or os.environ.get(DNNWEAVER2_ENV) or root.parent / "dnnweaver2").expanduser().resolve()
    if not (dnnw / "dnnweaver2" / "tensorOps" / "cnn.py").is_file():
        raise MixaqError(f"{dnnw} is not a dnnweaver2 checkout (Bit Fusion's simulator imports it); "
                         f"name it with --dnnweaver2-src or {DNNWEAVER2_ENV}")
    return root, dnnw


# Called exactly as Simulator.get_conv_cycles calls them; FC layers are convolutions with K = O = S = 1.
_DRIVER = r'''
import json, sys, time, warnings
warnings.filterwarnings("ignore")
src, dnnw, config, cases = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.stdin.read())
sys.path[:0] = [src, dnnw]
from bitfusion.src.simulator.simulator import Simulator
from bitfusion.src.optimizer.optimizer import optimize_for_order, get_stats_fast
sim = Simulator(config, False)
acc, energy = sim.accelerator, sim.get_energy_cost()
out = dict(config=dict(rows=acc.N, cols=acc.M, pmax=acc.pmax, pmin=acc.pmin, if_width_bits=acc.mem_if_width,
                       sram_bytes=acc.sram, frequency_hz=acc.frequency), energy_nj=list(energy), layers=[])
for c in cases:
    if c["conv"]:
        kernel, o, s, ic = c["conv"]
        params = (acc, kernel, o, s, ic, c["n"], c["m"] // (o * o), c["act_bits"], c["weight_bits"], True, energy)
    else:
        params = (acc, 1, 1, 1, c["k"], c["n"], c["m"], c["act_bits"], c["weight_bits"], False, energy)
    start = time.perf_counter()
    _, tiling, order = optimize_for_order(params)
    stats = get_stats_fast(params, tiling, order)
    seconds = time.perf_counter() - start
    core, sram, _, dram = stats.get_energy_breakdown(energy)
    out["layers"].append(dict(
        total_cycles=stats.total_cycles, stall_cycles=stats.mem_stall_cycles,
        reads={k: int(v) for k, v in stats.reads.items()}, writes={k: int(v) for k, v in stats.writes.items()},
        energy_core_nj=core, energy_sram_nj=sram, energy_dram_nj=dram, perf_factor=acc.get_perf_factor(c["act_bits"], c["weight_bits"]),
        tiling={k: list(v) for k, v in tiling.items()}, order=list(order), seconds=seconds))
print(json.dumps(out))
'''


def run_bitfusion(cases: Sequence[BitFusionCase], src: Path, dnnweaver2: Path, config: str = "bf_e_conf.ini",
                  python: Path | None = None, timeout_s: float = 7200.0) -> dict:
    """Bit Fusion's simulator on `cases` (its configuration file `config`, relative to the checkout):
    {"config": ..., "energy_nj": [its EnergyTuple], "layers": [one dict per case, counts in bits]}."""
    python = python or ensure_bitfusion_venv()
    payload = json.dumps([asdict(c) for c in cases])
    env = dict(os.environ, PYTHONHASHSEED="0")  # ties between loop orders follow set order: keep it fixed
    try:
        proc = subprocess.run([str(python), "-c", _DRIVER, str(src), str(dnnweaver2), config], input=payload,
                              cwd=src, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise MixaqError(f"Bit Fusion's simulator took over {timeout_s:.0f} s on {len(cases)} cases") from None
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-2:])
        raise MixaqError(f"Bit Fusion's simulator failed (exit {proc.returncode}): {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
