"""Accelerator specs: the YAML schema, its validation, and the preset files in `specs/`.

A spec file is nested YAML (see docs/simulator.md); `AcceleratorSpec` is its flat, validated,
frozen form with units in the field names. Every problem is reported as a one-line `MixaqError`
naming the field and the file.
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from mixaq.core._errors import MixaqError, short
from mixaq.simulator._precision import PRECISION_MODELS, SERIAL_OPERANDS

__all__ = ["ARRAY_ENERGY", "AcceleratorSpec", "DATAFLOWS", "DRAM_PORTS", "FEEDS", "FOLD_ORDERS", "MAPPER_OBJECTIVES",
           "MAPPER_SEARCHES", "PSUM_POLICIES", "SPECS_DIR", "STALL_MODELS", "VECTOR_DRAM", "list_specs", "load_spec", "names_a_file",
           "spec_from_mapping", "spec_keys"]

# Preset specs live at the repository root next to the packages (`specs/<name>.yaml`).
# Presets are package data of `mixaq.specs` (the repository's `specs/` folder), so wheels carry them.
SPECS_DIR = Path(importlib.util.find_spec("mixaq.specs").origin).parent
DATAFLOWS = ("os", "ws", "is")
MAPPER_OBJECTIVES = ("latency", "dram", "energy", "edp")
_OBJECTIVE_ALIASES = {"traffic": "dram"}  # the objective's name before issue 20
# How operands reach the units: systolic (SCALE-Sim's skew on every fold), buffered (each unit reads
# its own bank: fill/drain once per tile, Bit Fusion's hardware), ideal (no fill/drain at all: Bit
# Fusion's simulator counts none).
FEEDS = ("systolic", "buffered", "ideal")
MAPPER_SEARCHES = ("tiles", "folds")  # tiles: the tile/loop-order mapper; folds: fold-level schedules (SCALE-Sim)
STALL_MODELS = ("pipelined", "bitfusion")
# Where a vector-unit op's tensors live (simulator/_vector.py): fits (SRAM only when input + output fit
# the working half of the ofmap SRAM, else DRAM round trip), always (DRAM round trip), never (fused).
VECTOR_DRAM = ("fits", "always", "never")
ARRAY_ENERGY = ("per_mac", "per_cycle")
# Memory-system choices that differ between real designs and between reference tools (see
# docs/simulator.md, "Memory-model options"); the first of each is the default.
DRAM_PORTS = ("shared", "per_operand")
PSUM_POLICIES = ("on_chip_when_fits", "write_every_fold")
FOLD_ORDERS = ("any", "rows_outer", "cols_outer")

# YAML path -> (flat field, type, default or _REQUIRED). The table is the schema: parsing,
# defaults and the "unknown key" check all come from it.
_REQUIRED = object()
_SCHEMA: dict[str, tuple[str, type, Any]] = {
    "name": ("name", str, _REQUIRED),
    "description": ("description", str, ""),
    "frequency_mhz": ("frequency_mhz", float, _REQUIRED),
    "array.rows": ("rows", int, _REQUIRED),
    "array.cols": ("cols", int, _REQUIRED),
    "array.dataflow": ("dataflow", str, _REQUIRED),
    "array.feed": ("array_feed", str, "systolic"),
    "precision.model": ("precision_model", str, _REQUIRED),
    "precision.min_bits": ("min_bits", int, _REQUIRED),
    "precision.max_bits": ("max_bits", int, _REQUIRED),
    "precision.serial": ("serial_operands", str, "act"),
    "sram_kib.ifmap": ("sram_ifmap_kib", float, _REQUIRED),
    "sram_kib.filter": ("sram_filter_kib", float, _REQUIRED),
    "sram_kib.ofmap": ("sram_ofmap_kib", float, _REQUIRED),
    "dram_bytes_per_cycle": ("dram_bytes_per_cycle", float, _REQUIRED),
    "vector_unit.lanes": ("vector_lanes", int, 16),
    "vector_unit.dram": ("vector_dram", str, "fits"),
    "memory.output_bits": ("output_bits", int, 8),
    "mapper.objective": ("mapper_objective", str, "latency"),
    "mapper.fold_order": ("fold_order", str, "any"),
    "mapper.split_stream": ("split_stream", bool, True),
    "mapper.search": ("mapper_search", str, "tiles"),
    "memory.psum_bits": ("psum_bits", int, 32),
    "memory.dram_ports": ("dram_ports", str, "shared"),
    "memory.psum_policy": ("psum_policy", str, "on_chip_when_fits"),
    "memory.output_readback": ("output_readback", bool, False),
    "memory.stall_model": ("stall_model", str, "pipelined"),
    "memory.pad_to_array": ("pad_to_array", bool, False),
    "energy_pj.mac_8x8": ("mac_8x8_energy_pj", float, _REQUIRED),
    "energy_pj.sram_byte": ("sram_byte_energy_pj", float, _REQUIRED),
    "energy_pj.dram_byte": ("dram_byte_energy_pj", float, _REQUIRED),
    "energy_pj.vector_op": ("vector_op_energy_pj", float, 0.05),
    "energy_pj.static_mw": ("static_power_mw", float, 0.0),
    "energy_pj.array": ("array_energy", str, "per_mac"),
    # Area model overrides (simulator/_area.py); None = the published default for this spec.
    "area_mm2.pe": ("area_pe_mm2", float, None),
    "area_mm2.sram_per_kib": ("area_sram_mm2_per_kib", float, None),
    "area_mm2.vector_lane": ("area_vector_lane_mm2", float, None),
    "area_mm2.other": ("area_other_mm2", float, 0.0),
}
# Sign rules of the numeric fields (tests/test_spec_table.py: every numeric field has one, and the
# schema's defaults are the dataclass's).
_POSITIVE = ("frequency_mhz", "rows", "cols", "dram_bytes_per_cycle", "vector_lanes", "min_bits", "max_bits",
             "output_bits", "psum_bits", "sram_ifmap_kib", "sram_filter_kib", "sram_ofmap_kib")
_NON_NEGATIVE = ("mac_8x8_energy_pj", "sram_byte_energy_pj", "dram_byte_energy_pj", "vector_op_energy_pj",
                 "static_power_mw", "area_pe_mm2", "area_sram_mm2_per_kib", "area_vector_lane_mm2", "area_other_mm2")
_LOWERCASE = ("array.dataflow", "precision.model", "precision.serial", "mapper.objective", "mapper.fold_order",
              "memory.dram_ports", "memory.psum_policy", "array.feed", "mapper.search", "memory.stall_model",
              "energy_pj.array", "vector_unit.dram")
_SECTIONS = {key.split(".")[0] for key in _SCHEMA if "." in key}
_FIELD_TO_KEY = {flat: key for key, (flat, _, _) in _SCHEMA.items()}
_NUMERIC = tuple(flat for flat, kind, _ in _SCHEMA.values() if kind in (int, float))
# Sane bounds (inclusive) of every numeric field: outside them no real accelerator exists and the
# arithmetic breaks down (1e-320 MHz gives an infinite latency, a 1e308 pJ byte a NaN energy).
_RANGES: dict[str, tuple[float, float]] = {
    "frequency_mhz": (1e-3, 1e5), "rows": (1, 1 << 16), "cols": (1, 1 << 16), "min_bits": (1, 32),
    "max_bits": (1, 32), "sram_ifmap_kib": (1 / 1024, 1 << 24), "sram_filter_kib": (1 / 1024, 1 << 24),
    "sram_ofmap_kib": (1 / 1024, 1 << 24), "dram_bytes_per_cycle": (1e-6, 1 << 20), "vector_lanes": (1, 1 << 20),
    "output_bits": (1, 64), "psum_bits": (1, 128), "mac_8x8_energy_pj": (0, 1e6), "sram_byte_energy_pj": (0, 1e6),
    "dram_byte_energy_pj": (0, 1e6), "vector_op_energy_pj": (0, 1e6), "static_power_mw": (0, 1e9),
    "area_pe_mm2": (0, 1e6), "area_sram_mm2_per_kib": (0, 1e6), "area_vector_lane_mm2": (0, 1e6),
    "area_other_mm2": (0, 1e6),
}


@dataclass(frozen=True)
class AcceleratorSpec:
    """A precision-scalable systolic array with double-buffered SRAMs, a DRAM port and a vector unit."""

    name: str
    frequency_mhz: float
    rows: int
    cols: int
    dataflow: str  # os | ws | is, as SCALE-Sim
    precision_model: str  # bitfusion | bitserial | fixed
    min_bits: int
    max_bits: int
    sram_ifmap_kib: float
    sram_filter_kib: float
    sram_ofmap_kib: float
    dram_bytes_per_cycle: float
    mac_8x8_energy_pj: float
    sram_byte_energy_pj: float
    dram_byte_energy_pj: float
    serial_operands: str = "act"  # bitserial only: act (Stripes) | both (Loom)
    vector_lanes: int = 16
    vector_dram: str = "fits"  # fits | always | never: vector ops' tensors cross DRAM (simulator/_vector.py)
    output_bits: int = 8  # GEMM results leave the array requantized to this width
    psum_bits: int = 32  # partial sums that must be kept between folds
    vector_op_energy_pj: float = 0.05
    static_power_mw: float = 0.0
    mapper_objective: str = "latency"  # which schedule a GEMM gets: the fastest, or the fewest DRAM bytes
    fold_order: str = "any"  # any: the mapper picks | rows_outer | cols_outer (SCALE-Sim's loop order)
    split_stream: bool = True  # ws/is may cut the streamed dimension into chunks that fit the buffers
    dram_ports: str = "shared"  # shared: one port of dram_bytes_per_cycle | per_operand: one each (SCALE-Sim)
    psum_policy: str = "on_chip_when_fits"  # | write_every_fold: every K fold's partial sums go out (SCALE-Sim)
    array_feed: str = "systolic"  # systolic | buffered | ideal: fill/drain per fold, per tile, never
    mapper_search: str = "tiles"  # tiles: search tile sizes and loop orders | folds: fold-level schedules
    output_readback: bool = False  # outputs read from DRAM before every accumulation (Bit Fusion's simulator)
    stall_model: str = "pipelined"  # | bitfusion: Bit Fusion's simulator's stall formula
    pad_to_array: bool = False  # weights padded to rows*pack along K, outputs to cols (Bit Fusion's simulator)
    array_energy: str = "per_mac"  # | per_cycle: every unit spends mac_8x8 each compute cycle, idle or not
    area_pe_mm2: float | None = None  # area model overrides (simulator/_area.py); None: published default
    area_sram_mm2_per_kib: float | None = None
    area_vector_lane_mm2: float | None = None
    area_other_mm2: float = 0.0  # fixed extra area (controller, DRAM PHY, ...)
    description: str = ""
    source: str = field(default="<dict>", compare=False)

    def __post_init__(self) -> None:
        if self.mapper_objective in _OBJECTIVE_ALIASES:  # dataclasses.replace / direct construction
            object.__setattr__(self, "mapper_objective", _OBJECTIVE_ALIASES[self.mapper_objective])
        if len(self.name) > 200 or len(self.description) > 10_000:
            self._fail("name" if len(self.name) > 200 else "description",
                       f"too long ({max(len(self.name), len(self.description)):,} characters)")
        for name in _NUMERIC:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                self._fail(name, f"must be a finite number, got {value}")
        for name in _POSITIVE:
            if not getattr(self, name) > 0:
                self._fail(name, f"must be > 0, got {getattr(self, name)}")
        for name in _NON_NEGATIVE:
            if getattr(self, name) is not None and getattr(self, name) < 0:
                self._fail(name, f"must be >= 0, got {getattr(self, name)}")
        for name, (lo, hi) in _RANGES.items():
            value = getattr(self, name)
            if value is not None and not lo <= value <= hi:
                self._fail(name, f"must lie in [{lo:g}, {hi:g}], got {value:g}")
        if self.dataflow not in DATAFLOWS:
            self._fail("dataflow", f"unknown dataflow {short(self.dataflow)} (choose from {', '.join(DATAFLOWS)})")
        if self.precision_model not in PRECISION_MODELS:
            self._fail("precision_model",
                       f"unknown precision model {short(self.precision_model)} (choose from {', '.join(PRECISION_MODELS)})")
        if self.serial_operands not in SERIAL_OPERANDS:
            self._fail("serial_operands", f"must be one of {', '.join(SERIAL_OPERANDS)}, got {short(self.serial_operands)}")
        for name, choices in (("mapper_objective", MAPPER_OBJECTIVES), ("fold_order", FOLD_ORDERS),
                              ("dram_ports", DRAM_PORTS), ("psum_policy", PSUM_POLICIES), ("array_feed", FEEDS),
                              ("mapper_search", MAPPER_SEARCHES), ("stall_model", STALL_MODELS),
                              ("array_energy", ARRAY_ENERGY), ("vector_dram", VECTOR_DRAM)):
            if getattr(self, name) not in choices:
                self._fail(name, f"must be one of {', '.join(choices)}, got {short(getattr(self, name))}")
        if self.min_bits > self.max_bits:
            self._fail("min_bits", f"{self.min_bits} exceeds max_bits {self.max_bits}")
        if self.max_bits > 32:
            self._fail("max_bits", f"must be <= 32, got {self.max_bits}")

    def _fail(self, flat_field: str, message: str) -> None:
        raise MixaqError(f"spec {self.source}: {_FIELD_TO_KEY.get(flat_field, flat_field)}: {message}")

    @property
    def supported_act_bits(self) -> tuple[int, ...]:
        return tuple(range(self.min_bits, self.max_bits + 1))

    @property
    def supported_weight_bits(self) -> tuple[int, ...]:
        return tuple(range(self.min_bits, self.max_bits + 1))

    @property
    def cycle_ns(self) -> float:
        return 1e3 / self.frequency_mhz

    def check_bits(self, what: str, bits: Any) -> None:
        """Raise a one-line MixaqError unless every entry of `bits` is an integer this array runs."""
        import numpy as np

        numeric = np.asarray(bits) if not isinstance(bits, np.ndarray) or bits.dtype != object else bits
        if numeric.dtype.kind in "iu" and numeric.size:  # the batch path: one vectorized check
            if numeric.min() >= self.min_bits and numeric.max() <= self.max_bits:
                return
        arr = np.asarray(bits, dtype=object).ravel()
        for value in arr:
            if value is None:
                raise MixaqError(f"{what} is None (float): float tensors are not costable on integer "
                                 f"accelerator {self.name!r}; choose bits in {self.min_bits}..{self.max_bits}")
            if isinstance(value, float) and float(value).is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise MixaqError(f"{what} must be an integer, got {short(value)}")
            if not self.min_bits <= value <= self.max_bits:
                raise MixaqError(f"{what}={value} is outside the range {self.min_bits}..{self.max_bits} "
                                 f"of accelerator {self.name!r} ({self.source})")

    @property
    def area_mm2(self) -> float:
        """Silicon area (mm², 45 nm) by `simulator._area.spec_area`."""
        from mixaq.simulator._area import spec_area

        return spec_area(self).total_mm2

    def content_hash(self) -> str:
        """sha1 (12 hex digits) of the spec's content (`to_mapping`, name and description excluded):
        two files describing the same hardware hash alike, any field that changes a cost changes it."""
        import hashlib
        import json

        body = {k: v for k, v in self.to_mapping().items() if k not in ("name", "description")}
        return hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]

    def to_mapping(self) -> dict[str, Any]:
        """The nested YAML form (what `spec_from_mapping` reads back); unset optional fields are left out."""
        out: dict[str, Any] = {}
        for key, (flat, _, _) in _SCHEMA.items():
            value = getattr(self, flat)
            if value is None:
                continue
            head, _, tail = key.partition(".")
            if tail:
                out.setdefault(head, {})[tail] = value
            else:
                out[head] = value
        return out


def _coerce(value: Any, kind: type, key: str, source: str) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise MixaqError(f"spec {source}: {key}: expected true or false, got {short(value)}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise MixaqError(f"spec {source}: {key}: expected a string, got {short(value)}")
        value = value.strip().lower() if key in _LOWERCASE else value
        return _OBJECTIVE_ALIASES.get(value, value) if key == "mapper.objective" else value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MixaqError(f"spec {source}: {key}: expected a number, got {short(value)}")
    if not math.isfinite(value):
        raise MixaqError(f"spec {source}: {key}: must be a finite number, got {value}")
    if kind is int:
        if float(value) != int(value):
            raise MixaqError(f"spec {source}: {key}: expected an integer, got {value!r}")
        return int(value)
    return float(value)


def spec_from_mapping(data: Mapping[str, Any], source: str = "<dict>") -> AcceleratorSpec:
    """Validate a nested spec mapping (the parsed YAML) into an `AcceleratorSpec`."""
    if not isinstance(data, Mapping):
        raise MixaqError(f"spec {source}: expected a mapping at the top level, got {type(data).__name__}")
    for top, value in data.items():
        if top in _SECTIONS:
            if not isinstance(value, Mapping):
                raise MixaqError(f"spec {source}: {top}: expected a mapping, got {short(value)}")
            for sub in value:
                if f"{top}.{sub}" not in _SCHEMA:
                    known = sorted(k.split(".")[1] for k in _SCHEMA if k.startswith(top + "."))
                    raise MixaqError(f"spec {source}: {top}.{sub}: unknown field (known: {', '.join(known)})")
        elif top not in _SCHEMA:
            known = sorted({k.split(".")[0] for k in _SCHEMA})
            raise MixaqError(f"spec {source}: {top}: unknown field (known: {', '.join(known)})")
    kwargs: dict[str, Any] = {"source": source}
    for key, (flat, kind, default) in _SCHEMA.items():
        head, _, tail = key.partition(".")
        value = data.get(head) if not tail else (data.get(head) or {}).get(tail)
        if value is None:
            if default is _REQUIRED:
                raise MixaqError(f"spec {source}: {key}: missing required field")
            value = default
        kwargs[flat] = None if value is None else _coerce(value, kind, key, source)
    return AcceleratorSpec(**kwargs)


def spec_keys() -> tuple[str, ...]:
    """Every key a spec file may hold, dotted below sections (`array.rows`, `frequency_mhz`, ...)."""
    return tuple(_SCHEMA)


def names_a_file(text: str) -> bool:
    """The rule for every `--spec`, `--arch` and `--hw-space` value: it names a file when it holds a
    `/` or ends in `.yaml`/`.yml`; otherwise it is the name of a preset (docs/simulator.md)."""
    import os

    return "/" in text or os.sep in text or text.lower().endswith((".yaml", ".yml"))


def list_specs() -> list[str]:
    """Names of the preset specs shipped in `specs/`."""
    return sorted(p.stem for p in SPECS_DIR.glob("*.yaml"))


def load_spec(name_or_path: str | Path | Mapping[str, Any] | AcceleratorSpec) -> AcceleratorSpec:
    """A preset name (`bitfusion`), a path to a YAML file, a nested mapping, or a spec (returned as is)."""
    if isinstance(name_or_path, AcceleratorSpec):
        return name_or_path
    if isinstance(name_or_path, Mapping):
        return spec_from_mapping(name_or_path)
    text = str(name_or_path)
    path = Path(text)
    if not names_a_file(text):
        # A bare name is a preset, always: a file or directory of that name in the working
        # directory never replaces it (write ./NAME to mean the file).
        preset = SPECS_DIR / f"{text}.yaml"
        if not preset.is_file():
            hint = f"; to use the file write ./{text}" if path.exists() else ""
            raise MixaqError(f"unknown spec {short(text)}: not a file and not a preset (presets: "
                             f"{', '.join(list_specs())}){hint}")
        path = preset
    from mixaq.core._yaml import read_yaml  # only spec files need PyYAML: `import simulator` stays lean

    data = read_yaml(path, "spec file")
    return spec_from_mapping(data if data is not None else {}, source=str(path))

