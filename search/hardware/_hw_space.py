"""A hardware space file: a base accelerator spec, knobs with choices or ranges, optional budgets.

```yaml
name: bf-space                      # default: the file name
base: bitfusion                     # a preset, a spec file (relative to this one) or an inline spec mapping
knobs:                              # spec keys (dotted below a section) -> choices
  array.rows: [8, 16, 32]
  array.cols: {min: 8, max: 64, factor: 2}     # 8, 16, 32, 64
  dram_bytes_per_cycle: {min: 8, max: 32, step: 8}
  precision:                        # a whole section: each choice is merged into the base's
    - {model: bitfusion, min_bits: 2, max_bits: 8}
    - {model: bitserial, min_bits: 1, max_bits: 8}
budgets: {area_mm2: 3.0, power_mw: 800, dram_gbps: 16}
sample: 4096                        # at most this many points, drawn with the study seed
```

Every point is validated as a spec (the spec's own one-line errors, naming the knob values), and
every problem with the file is one line naming the file and the key.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from mixaq.simulator import AcceleratorSpec, load_spec, spec_area, spec_from_mapping
from mixaq.core._errors import MixaqError
from mixaq.simulator._spec import SPECS_DIR, spec_keys

__all__ = ["BUDGETS", "HardwareSpace", "dram_gbps", "knob_cell", "load_hw_space", "list_hw_spaces"]

# Budget -> (what it limits, unit). area and DRAM bandwidth are properties of a hardware point alone;
# power (energy / latency of the assignment) depends on the precision configuration too.
BUDGETS: dict[str, str] = {"area_mm2": "area (mm², 45 nm)", "power_mw": "average power (mW): energy / latency",
                           "dram_gbps": "DRAM bandwidth (GB/s): dram_bytes_per_cycle x frequency x ports"}
_TOP_KEYS = ("name", "description", "base", "knobs", "budgets", "sample")
_MAX_GRID = 100_000  # enumerated points without `sample:`
_MAX_CHOICES = 1000  # values one range may expand to
SPACES_DIR = SPECS_DIR / "spaces"


def list_hw_spaces() -> list[str]:
    """Names of the hardware spaces shipped in `specs/spaces/`."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


@dataclass(frozen=True)
class HardwareSpace:
    """A parsed space file: everything as plain JSON values, so a study stores and compares it by content."""

    name: str
    base: Mapping[str, Any]  # the base spec's nested mapping (validated)
    knobs: tuple[tuple[str, tuple[Any, ...]], ...]  # (spec key or section, choices), file order
    budgets: Mapping[str, float] = field(default_factory=dict)
    sample: int | None = None
    source: str = field(default="<dict>", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "base": copy.deepcopy(dict(self.base)),
                "knobs": [[k, list(v)] for k, v in self.knobs], "budgets": dict(self.budgets), "sample": self.sample}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<study>") -> "HardwareSpace":
        return cls(data["name"], data["base"], tuple((k, tuple(v)) for k, v in data["knobs"]),
                   dict(data.get("budgets") or {}), data.get("sample"), source)

    def content_hash(self) -> str:
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    @property
    def size(self) -> int:
        """Points in the full grid (before sampling and budgets)."""
        return int(np.prod([len(v) for _, v in self.knobs], dtype=np.float64)) if self.knobs else 1

    def indices(self, seed: int) -> np.ndarray:
        """Grid positions (row-major over the knobs) of the points searched: all, or `sample` drawn with `seed`."""
        total = self.size
        if self.sample is None or total <= self.sample:
            if total > _MAX_GRID:
                raise MixaqError(f"hardware space {self.source}: {total:,} points; add `sample: N` (N <= {_MAX_GRID:,})")
            return np.arange(total)
        rng = np.random.default_rng(seed)
        picked: set[int] = set()
        while len(picked) < self.sample:
            picked.update(int(i) for i in rng.integers(0, total, size=self.sample - len(picked)))
        return np.array(sorted(picked))

    def point_mapping(self, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(spec mapping, knob values) of grid position `index`."""
        shape = [len(v) for _, v in self.knobs]
        pos = np.unravel_index(int(index), shape) if shape else ()
        mapping = copy.deepcopy(dict(self.base))
        values: dict[str, Any] = {}
        for (key, choices), i in zip(self.knobs, pos):
            value = choices[int(i)]
            values[key] = value
            head, _, tail = key.partition(".")
            if tail:
                mapping.setdefault(head, {})[tail] = value
            elif isinstance(value, Mapping):
                mapping[head] = {**(mapping.get(head) or {}), **value}
            else:
                mapping[head] = value
        mapping["name"] = f"{self.name}-{int(index)}"
        mapping["description"] = f"point {int(index)} of hardware space {self.name}: " + ", ".join(
            f"{k}={json.dumps(v, sort_keys=True)}" for k, v in values.items())
        return mapping, values

    def spec(self, index: int) -> AcceleratorSpec:
        mapping, values = self.point_mapping(index)
        try:
            return spec_from_mapping(mapping, source=f"{self.name}-{int(index)}")
        except MixaqError as exc:
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            raise MixaqError(f"hardware space {self.source}: knobs {shown} give an invalid spec ({exc})") from None

    def check_points(self, seed: int) -> None:
        """Build every searched point's spec once (a sampled space: the sample `seed` draws): an
        invalid knob combination is a one-line error before anything else runs."""
        for i in self.indices(seed):
            self.spec(int(i))

    def supported_bits(self) -> tuple[int, ...]:
        """Every bit width some precision choice of the space runs (the base's range if none is a knob)."""
        ranges = [(self.base["precision"]["min_bits"], self.base["precision"]["max_bits"])]
        for key, choices in self.knobs:
            if key == "precision":
                ranges = [(c.get("min_bits", self.base["precision"]["min_bits"]),
                           c.get("max_bits", self.base["precision"]["max_bits"])) for c in choices]
            elif key in ("precision.min_bits", "precision.max_bits"):
                lo = min(choices) if key.endswith("min_bits") else ranges[0][0]
                hi = max(choices) if key.endswith("max_bits") else ranges[0][1]
                ranges = [(lo, hi)]
        return tuple(sorted({b for lo, hi in ranges for b in range(int(lo), int(hi) + 1)}))

    def budget_violations(self, spec: AcceleratorSpec) -> dict[str, float]:
        """Hardware-only budgets (area, DRAM bandwidth) this spec exceeds, with its value."""
        out = {}
        if "area_mm2" in self.budgets and spec_area(spec).total_mm2 > self.budgets["area_mm2"]:
            out["area_mm2"] = spec_area(spec).total_mm2
        gbps = dram_gbps(spec)
        if "dram_gbps" in self.budgets and gbps > self.budgets["dram_gbps"]:
            out["dram_gbps"] = gbps
        return out


def knob_cell(value: Any) -> Any:
    """A knob value as a table cell (a section choice as compact JSON)."""
    return json.dumps(value, sort_keys=True) if isinstance(value, Mapping) else value


def dram_gbps(spec: AcceleratorSpec) -> float:
    """Peak DRAM bandwidth of a hardware point: every port (three with `dram_ports: per_operand`)."""
    ports = 3 if spec.dram_ports == "per_operand" else 1
    return ports * spec.dram_bytes_per_cycle * spec.frequency_mhz / 1e3


def _expand(key: str, value: Any, where: str) -> tuple[Any, ...]:
    if isinstance(value, list):
        if not value:
            raise MixaqError(f"{where}: knobs.{key}: no choices")
        return tuple(value)
    if isinstance(value, Mapping):
        unknown = set(value) - {"min", "max", "step", "factor"}
        if unknown or not {"min", "max"} <= set(value) or ("step" in value) == ("factor" in value):
            raise MixaqError(f"{where}: knobs.{key}: a range is {{min, max, step}} or {{min, max, factor}}, got {dict(value)}")
        lo, hi = value["min"], value["max"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()) or lo > hi:
            raise MixaqError(f"{where}: knobs.{key}: range bounds must be numbers with min <= max, got {dict(value)}")
        if "step" in value:
            if value["step"] <= 0:
                raise MixaqError(f"{where}: knobs.{key}: step must be > 0")
            n = int(math.floor((hi - lo) / value["step"] + 1e-9)) + 1
            seq = [lo + i * value["step"] for i in range(min(n, _MAX_CHOICES + 1))]
        else:
            if value["factor"] <= 1:
                raise MixaqError(f"{where}: knobs.{key}: factor must be > 1")
            seq, v = [], lo
            while v <= hi * (1 + 1e-9) and len(seq) <= _MAX_CHOICES and lo > 0:
                seq.append(v)
                v = v * value["factor"]
            if lo <= 0:
                raise MixaqError(f"{where}: knobs.{key}: a geometric range needs min > 0")
        if len(seq) > _MAX_CHOICES:
            raise MixaqError(f"{where}: knobs.{key}: the range has more than {_MAX_CHOICES} values")
        as_int = all(isinstance(value[k], int) for k in value)
        return tuple(int(round(x)) if as_int else round(float(x), 9) for x in seq)
    raise MixaqError(f"{where}: knobs.{key}: expected a list of choices or a range mapping, got {value!r}")


def load_hw_space(name_or_path: str | Path | Mapping[str, Any]) -> HardwareSpace:
    """A shipped space name (`specs/spaces/NAME.yaml`), a YAML path, or a mapping; validated, every
    point included (an invalid combination is a one-line error naming its knob values)."""
    base_dir = Path(".")
    if isinstance(name_or_path, Mapping):
        data, where = dict(name_or_path), "<dict>"
    else:
        path = Path(name_or_path)
        if not path.exists() and not str(name_or_path).endswith((".yaml", ".yml")):
            shipped = SPACES_DIR / f"{name_or_path}.yaml"
            if not shipped.exists():
                raise MixaqError(f"unknown hardware space {str(name_or_path)!r}: not a file and not a shipped space "
                                 f"({', '.join(list_hw_spaces()) or 'none'})")
            path = shipped
        from mixaq.core._yaml import read_yaml

        data = read_yaml(path, "hardware space")
        where, base_dir = str(path), path.parent
        if not isinstance(data, Mapping):
            raise MixaqError(f"hardware space {path}: expected a mapping with {', '.join(_TOP_KEYS)}")
        data = dict(data)
        data.setdefault("name", path.stem)
    unknown = set(data) - set(_TOP_KEYS)
    if unknown:
        raise MixaqError(f"hardware space {where}: unknown key(s) {sorted(unknown)} (known: {', '.join(_TOP_KEYS)})")
    for key in ("base", "knobs"):
        if key not in data:
            raise MixaqError(f"hardware space {where}: missing {key!r}")
    base_ref = data["base"]
    if isinstance(base_ref, str) and not Path(base_ref).is_absolute() and (base_dir / base_ref).is_file():
        base_ref = str(base_dir / base_ref)
    try:
        base = load_spec(base_ref)
    except (MixaqError, FileNotFoundError) as exc:
        raise MixaqError(f"hardware space {where}: base: {exc}") from None
    knobs_in = data["knobs"]
    if not isinstance(knobs_in, Mapping) or not knobs_in:
        raise MixaqError(f"hardware space {where}: knobs must be a non-empty mapping of spec keys to choices")
    keys = spec_keys()
    sections = {k.split(".")[0] for k in keys if "." in k}
    knobs = []
    for key, value in knobs_in.items():
        if key not in keys and key not in sections:
            raise MixaqError(f"hardware space {where}: knobs.{key}: not a spec key (e.g. array.rows, sram_kib.ifmap, "
                             "frequency_mhz, precision)")
        if key in ("name", "description"):
            raise MixaqError(f"hardware space {where}: knobs.{key}: not a hardware knob")
        choices = _expand(key, value, f"hardware space {where}")
        if key in sections and not all(isinstance(c, Mapping) for c in choices):
            raise MixaqError(f"hardware space {where}: knobs.{key}: choices of a section are mappings "
                             f"(e.g. {{model: bitfusion, min_bits: 2, max_bits: 8}})")
        knobs.append((str(key), choices))
    budgets = data.get("budgets") or {}
    if not isinstance(budgets, Mapping):
        raise MixaqError(f"hardware space {where}: budgets must be a mapping")
    for key, value in budgets.items():
        if key not in BUDGETS:
            raise MixaqError(f"hardware space {where}: budgets.{key}: unknown (known: {', '.join(BUDGETS)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise MixaqError(f"hardware space {where}: budgets.{key}: must be a positive number, got {value!r}")
    sample = data.get("sample")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int) or sample < 1):
        raise MixaqError(f"hardware space {where}: sample must be a positive integer, got {sample!r}")
    space = HardwareSpace(str(data["name"]), base.to_mapping(), tuple(knobs),
                          {k: float(v) for k, v in budgets.items()}, sample, where)
    if space.size > _MAX_GRID and sample is None:
        raise MixaqError(f"hardware space {where}: {space.size:,} points; add `sample: N` (N <= {_MAX_GRID:,})")
    return space
