"""Torch-free plumbing all three packages share (errors, output paths, YAML, JSON cleaning, lazy exports, CLI tables): it sits below `simulator`, `models` and `search` so none of them reaches into another's private modules for it."""
from __future__ import annotations

from mixaq.core._util import lazy_exports

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "MixaqError": "._errors",
    "first_line": "._errors",
    "check_out_dir": "._paths",
    "check_out_file": "._paths",
    "read_yaml": "._yaml",
    "check_fields": "._util",
    "dataclass_from_mapping": "._util",
    "json_ready": "._util",
    "lazy_exports": "._util",
    "read_config_sections": "._util",
    "format_number": "._cli_format",
    "render_csv": "._cli_format",
    "render_json": "._cli_format",
    "render_table": "._cli_format",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
