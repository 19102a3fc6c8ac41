"""Every bad input we tried on `mixaq`, run for real: its exit status and message -> docs/bad_inputs.md.

    python -m benchmarks.bad_inputs            # runs every case, rewrites docs/bad_inputs.md
    python -m benchmarks.bad_inputs --check    # exit 1 when the doc differs from what the code says now

A case is one command line plus the files it needs, made in a scratch directory shown as `$D`.
The table holds what `mixaq` printed on stderr and its exit status, nothing typed by hand.
tests/test_bad_inputs.py reruns the torch-free cases against the table and checks that the table
lists exactly the cases defined here.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

DOC = Path(__file__).resolve().parent.parent / "docs" / "bad_inputs.md"
# Commands that import torch (the test reruns the others; these run here only).
TORCH_COMMANDS = ("data", "train", "eval", "qat", "adapt")


@dataclass(frozen=True)
class Case:
    what: str  # the bad input, in words
    argv: tuple[str, ...]  # `{D}` is the scratch directory, `{PORT}` a silent server's port
    needs: tuple[str, ...] = ()  # scratch fixtures (names in FIXTURES)
    slow: bool = False  # waits for a timeout: the test leaves it to this script

    @property
    def command(self) -> str:
        return self.argv[0]

    @property
    def torch(self) -> bool:
        return self.command in TORCH_COMMANDS


def _c(what: str, *argv: str, needs: tuple[str, ...] = (), slow: bool = False) -> Case:
    return Case(what, tuple(argv), needs, slow)


_SPEC = "{D}/spec"
_SWEEP = ("sweep", "--out", "{D}/sweep", "--no-progress")
_PLOT = ("plot", "--out", "{D}/plots")
_EVAL = ("eval", "--max-images", "2")

_LISTED: tuple[Case | str, ...] = (
    "The dispatcher and argparse (every command)",
    _c("unknown command", "colour"),
    _c("missing required options", "gemm"),
    _c("a word where a number goes", "gemm", "--m", "x", "--n", "4", "--k", "4"),
    _c("a choice that does not exist", "cost", "--format", "xml"),
    "`mixaq gemm`",
    _c("zero GEMM size", "gemm", "--m", "0", "--n", "4", "--k", "4"),
    _c("activation bits the spec cannot run", "gemm", "--m", "4", "--n", "4", "--k", "4", "--act-bits", "9"),
    _c("unknown spec preset", "gemm", "--spec", "nope", "--m", "4", "--n", "4", "--k", "4"),
    "Spec files (`--spec` of every command)",
    _c("spec file that does not exist", "cost", "--spec", "{D}/missing.yaml"),
    _c("a directory as --spec", "cost", "--spec", "{D}/a_dir"),
    _c("a non-UTF-8 file as --spec", "cost", "--spec", f"{_SPEC}/latin1.yaml", needs=("specs",)),
    _c("spec that is not YAML", "cost", "--spec", f"{_SPEC}/broken.yaml", needs=("specs",)),
    _c("spec that is a list", "cost", "--spec", f"{_SPEC}/list.yaml", needs=("specs",)),
    _c("spec with an unknown field", "cost", "--spec", f"{_SPEC}/unknown_field.yaml", needs=("specs",)),
    _c("spec missing a required field", "cost", "--spec", f"{_SPEC}/missing_field.yaml", needs=("specs",)),
    _c("spec with a string for a number", "cost", "--spec", f"{_SPEC}/string_number.yaml", needs=("specs",)),
    _c("spec with sram_kib 0", "cost", "--spec", f"{_SPEC}/sram_zero.yaml", needs=("specs",)),
    _c("spec with a negative energy", "cost", "--spec", f"{_SPEC}/negative_energy.yaml", needs=("specs",)),
    _c("spec with a negative area override", "cost", "--spec", f"{_SPEC}/negative_area.yaml", needs=("specs",)),
    _c("spec with frequency_mhz .inf", "cost", "--spec", f"{_SPEC}/frequency_inf.yaml", needs=("specs",)),
    _c("spec with frequency_mhz .nan", "cost", "--spec", f"{_SPEC}/frequency_nan.yaml", needs=("specs",)),
    _c("spec with an unknown dataflow", "cost", "--spec", f"{_SPEC}/dataflow.yaml", needs=("specs",)),
    _c("spec with an unknown dram_ports", "cost", "--spec", f"{_SPEC}/dram_ports.yaml", needs=("specs",)),
    _c("spec with split_stream as a string", "cost", "--spec", f"{_SPEC}/split_stream.yaml", needs=("specs",)),
    _c("spec with min_bits above max_bits", "cost", "--spec", f"{_SPEC}/bits.yaml", needs=("specs",)),
    _c("spec with a fractional array size", "cost", "--spec", f"{_SPEC}/rows_fraction.yaml", needs=("specs",)),
    _c("spec writing 500 MHz as 5e2 (accepted)", "cost", "--spec", f"{_SPEC}/exponent.yaml", "--image", "224",
       "--format", "csv", needs=("specs",)),
    _c("spec with nested YAML aliases (a billion-laughs bomb)", "cost", "--spec", f"{_SPEC}/alias_bomb.yaml",
       needs=("specs",)),
    _c("spec with one anchor and alias", "cost", "--spec", f"{_SPEC}/alias_one.yaml", needs=("specs",)),
    _c("spec giving rows twice", "cost", "--spec", f"{_SPEC}/duplicate_rows.yaml", needs=("specs",)),
    _c("spec giving frequency_mhz twice", "cost", "--spec", f"{_SPEC}/duplicate_frequency.yaml", needs=("specs",)),
    _c("spec with rows .inf", "cost", "--spec", f"{_SPEC}/rows_inf.yaml", needs=("specs",)),
    _c("spec with cols .nan", "cost", "--spec", f"{_SPEC}/cols_nan.yaml", needs=("specs",)),
    _c("spec with frequency_mhz 1e-320", "cost", "--spec", f"{_SPEC}/frequency_tiny.yaml", needs=("specs",)),
    _c("spec with energy dram_byte 1e308", "cost", "--spec", f"{_SPEC}/energy_huge.yaml", needs=("specs",)),
    _c("spec with a 10^9-row array", "cost", "--spec", f"{_SPEC}/rows_huge.yaml", needs=("specs",)),
    _c("spec whose name is nested 5000 deep", "cost", "--spec", f"{_SPEC}/deep_name.yaml", needs=("specs",)),
    _c("spec whose name is a 100 kB string", "cost", "--spec", f"{_SPEC}/long_name.yaml", needs=("specs",)),
    _c("spec with a 1 MB string for a number", "cost", "--spec", f"{_SPEC}/long_value.yaml", needs=("specs",)),
    "`mixaq cost`: options and arch files",
    _c("unknown arch preset", "cost", "--arch", "swin_xl"),
    _c("arch file that does not exist", "cost", "--arch", "{D}/missing_arch.yaml"),
    _c("arch file with a word for a size", "cost", "--arch", "{D}/arch/word.yaml", needs=("arch",)),
    _c("arch file with an unknown field", "cost", "--arch", "{D}/arch/unknown.yaml", needs=("arch",)),
    _c("arch file with mismatched depths and heads", "cost", "--arch", "{D}/arch/lengths.yaml", needs=("arch",)),
    _c("arch whose dims do not split into heads", "cost", "--arch", "{D}/arch/heads.yaml", needs=("arch",)),
    _c("arch with 20 million blocks in a stage", "cost", "--arch", "{D}/arch/deep.yaml", needs=("arch",)),
    _c("arch with an embedding of 10^7", "cost", "--arch", "{D}/arch/wide.yaml", needs=("arch",)),
    _c("arch file with an alias", "cost", "--arch", "{D}/arch/alias.yaml", needs=("arch",)),
    _c("arch file giving depths twice", "cost", "--arch", "{D}/arch/duplicate.yaml", needs=("arch",)),
    _c("image of 40000x40000", "cost", "--image", "40000x40000"),
    _c("image size that is not HxW", "cost", "--image", "800by1333"),
    _c("image with a zero side", "cost", "--image", "0x1333"),
    _c("high bits the spec cannot run", "cost", "--high-bits", "9"),
    _c("low bits the spec cannot run, low ratio 0", "cost", "--low-bits", "16"),
    _c("baseline bits the spec cannot run", "cost", "--baseline-bits", "16"),
    _c("weight bits below the spec's range", "cost", "--weight-bits", "1"),
    _c("low ratio above 1", "cost", "--low-ratio", "1.5"),
    _c("low ratio nan", "cost", "--low-ratio", "nan"),
    _c("negative prune ratio", "cost", "--prune-ratio", "-0.1"),
    _c("per-pair ratios, too few", "cost", "--low-ratios", "0.1,0.2"),
    _c("per-pair ratios that are not numbers", "cost", "--low-ratios", "a,b"),
    _c("per-pair prune ratio inf", "cost", "--prune-ratios", "0,0,inf,0,0,0"),
    "`mixaq sweep` and `mixaq demo`: checked before the model loads",
    _c("--n-trials 0", *_SWEEP, "--n-trials", "0"),
    _c("--workers 0", *_SWEEP, "--workers", "0"),
    _c("--heartbeat 0", *_SWEEP, "--heartbeat", "0"),
    _c("--grace shorter than --heartbeat", *_SWEEP, "--grace", "2", "--heartbeat", "5"),
    _c("--max-images 0", *_SWEEP, "--max-images", "0"),
    _c("--calib-images 0", *_SWEEP, "--calib-images", "0"),
    _c("--pick of a negative trial", *_SWEEP, "--pick", "-1"),
    _c("--population 1", *_SWEEP, "--population", "1"),
    _c("--max-map-drop on the 0-100 scale", *_SWEEP, "--max-map-drop", "5"),
    _c("--min-speedup 0", *_SWEEP, "--min-speedup", "0"),
    _c("--screen-tolerance below 0", *_SWEEP, "--screen-tolerance", "-1"),
    _c("--baseline-points below 0", *_SWEEP, "--baseline-points", "-1"),
    _c("--ratio-choices outside [0, 1]", *_SWEEP, "--ratio-choices", "0,2"),
    _c("--search with an unknown knob", *_SWEEP, "--search", "low,colour"),
    _c("--high-act-bits the spec cannot run", *_SWEEP, "--high-act-bits", "16"),
    _c("--low-act-bits above --high-act-bits", *_SWEEP, "--low-act-bits", "8", "--high-act-bits", "4"),
    _c("--act-bit-choices the spec cannot run", *_SWEEP, "--search", "act-bits", "--act-bit-choices", "1,4"),
    _c("--spec that is a directory", *_SWEEP, "--spec", "{D}/a_dir"),
    _c("--coco-root without --ann", *_SWEEP, "--coco-root", "{D}/a_dir"),
    _c("--data and --coco-root together", *_SWEEP, "--data", "{D}/a_dir", "--coco-root", "{D}/a_dir",
       "--ann", "{D}/afile"),
    _c("--checkpoint that does not exist", *_SWEEP, "--checkpoint", "{D}/missing.pt"),
    _c("--data that does not exist", *_SWEEP, "--data", "{D}/missing_data"),
    _c("--out naming an existing file", "sweep", "--out", "{D}/afile"),
    _c("--out below an existing file", "sweep", "--out", "{D}/afile/run"),
    _c("storage URL with an unknown scheme", *_SWEEP, "--storage", "foo://bar"),
    _c("storage that is not a URL", *_SWEEP, "--storage", "study.db"),
    _c("SQLite file in a missing directory", *_SWEEP, "--storage", "sqlite:////no/such/dir/study.db"),
    _c("SQLite URL naming a directory", *_SWEEP, "--storage", "sqlite:///{D}/a_dir"),
    _c("in-memory SQLite", *_SWEEP, "--storage", "sqlite:///:memory:"),
    _c("journal file in a missing directory", *_SWEEP, "--storage", "journal:/no/such/dir/study.log"),
    _c("PostgreSQL server refusing connections", *_SWEEP, "--storage", "postgresql://mixaq:secret@127.0.0.1:1/db"),
    _c("PostgreSQL server that accepts and never answers", *_SWEEP, "--storage",
       "postgresql://mixaq:secret@127.0.0.1:{PORT}/db", needs=("silent_server",), slow=True),
    _c("--pick of a trial the fresh study does not have", *_SWEEP, "--pick", "999"),
    _c("--objectives with an unknown objective", *_SWEEP, "--objectives", "map,speed"),
    _c("--objectives with one objective", *_SWEEP, "--objectives", "map"),
    _c("--objectives naming one twice", *_SWEEP, "--objectives", "map,area_mm2,map"),
    _c("--fidelity not increasing", *_SWEEP, "--fidelity", "500,64"),
    _c("--fidelity whose last count is not --max-images", *_SWEEP, "--fidelity", "16,64", "--max-images", "32"),
    _c("--hw-space that does not exist", *_SWEEP, "--hw-space", "{D}/missing_space.yaml"),
    _c("--hw-space with an unknown key", *_SWEEP, "--hw-space", f"{_SPEC}/space_key.yaml", needs=("specs",)),
    _c("--hw-space knob that is not a spec key", *_SWEEP, "--hw-space", f"{_SPEC}/space_knob.yaml", needs=("specs",)),
    _c("--hw-space range with min > max", *_SWEEP, "--hw-space", f"{_SPEC}/space_range.yaml", needs=("specs",)),
    _c("--hw-space knob values that make an invalid spec", *_SWEEP, "--hw-space", f"{_SPEC}/space_invalid.yaml",
       needs=("specs",)),
    _c("--hw-space whose name climbs out of --out", *_SWEEP, "--hw-space", f"{_SPEC}/space_escape.yaml",
       needs=("specs",)),
    _c("--hw-space name with a slash", *_SWEEP, "--hw-space", f"{_SPEC}/space_slash.yaml", needs=("specs",)),
    _c("--hw-space range up to .inf", *_SWEEP, "--hw-space", f"{_SPEC}/space_inf.yaml", needs=("specs",)),
    _c("--hw-space choice .nan", *_SWEEP, "--hw-space", f"{_SPEC}/space_nan.yaml", needs=("specs",)),
    _c("--hw-space min_bits choices that are words", *_SWEEP, "--hw-space", f"{_SPEC}/space_words.yaml",
       needs=("specs",)),
    _c("--hw-space section choice with a word", *_SWEEP, "--hw-space", f"{_SPEC}/space_section.yaml", needs=("specs",)),
    _c("--hw-space budget .nan", *_SWEEP, "--hw-space", f"{_SPEC}/space_budget_nan.yaml", needs=("specs",)),
    _c("--hw-space of 10^21 points with sample: 10", *_SWEEP, "--hw-space", f"{_SPEC}/space_huge.yaml",
       needs=("specs",)),
    _c("--hw-space sample of 10^9", *_SWEEP, "--hw-space", f"{_SPEC}/space_sample.yaml", needs=("specs",)),
    _c("--hw-space with a YAML alias", *_SWEEP, "--hw-space", f"{_SPEC}/space_alias.yaml", needs=("specs",)),
    _c("--hw-space giving a knob twice", *_SWEEP, "--hw-space", f"{_SPEC}/space_duplicate.yaml", needs=("specs",)),
    _c("--min-speedup nan", *_SWEEP, "--min-speedup", "nan"),
    _c("--screen-tolerance nan", *_SWEEP, "--screen-tolerance", "nan"),
    _c("--screen-tolerance inf", *_SWEEP, "--screen-tolerance", "inf"),
    _c("--max-map-drop nan", *_SWEEP, "--max-map-drop", "nan"),
    _c("--seed -1", *_SWEEP, "--seed", "-1"),
    _c("--seed 2^32", *_SWEEP, "--seed", "4294967296"),
    _c("PostgreSQL URL with a password and no user", *_SWEEP, "--storage", "postgresql://:pw-nouser@127.0.0.1:1/db"),
    _c("PostgreSQL URL whose password holds '@'", *_SWEEP, "--storage", "postgresql://u:pw1@pw2@127.0.0.1:1/db"),
    _c("PostgreSQL URL with the password in the query", *_SWEEP, "--storage",
       "postgresql://u@127.0.0.1:1/db?user=u&password=pw-query"),
    _c("MySQL URL with a password and no database", *_SWEEP, "--storage", "mysql+pymysql://u:pw-mysql@127.0.0.1:1"),
    _c("--out holding another study's outputs", "sweep", "--out", "{D}/owned", "--no-progress", "--study", "other",
       needs=("owned",)),
    _c("--out that cannot be written", "sweep", "--out", "/proc/mixaq_run", "--no-progress"),
    _c("demo --out naming an existing file", "demo", "--out", "{D}/afile"),
    _c("demo --readme-image naming a directory", "demo", "--out", "{D}/demo", "--readme-image", "{D}/a_dir"),
    "`mixaq plot`: a reader, it never writes into the storage",
    _c("SQLite file that does not exist", *_PLOT, "--storage", "sqlite:///{D}/missing.db"),
    _c("an empty file as the study database", *_PLOT, "--storage", "sqlite:///{D}/empty.db", needs=("files",)),
    _c("a text file as the study database", *_PLOT, "--storage", "sqlite:///{D}/text.db", needs=("files",)),
    _c("an SQLite database without Optuna tables", *_PLOT, "--storage", "sqlite:///{D}/foreign.db",
       needs=("files",)),
    _c("a text file as the journal", *_PLOT, "--storage", "journal:{D}/text.db", needs=("files",)),
    _c("a study name that is not there", *_PLOT, "--storage", "sqlite:///{D}/studies.db", "--study", "absent",
       needs=("studies",)),
    _c("a study with no trials", *_PLOT, "--storage", "sqlite:///{D}/studies.db", "--study", "empty",
       needs=("studies",)),
    _c("--pick of a trial that does not exist", *_PLOT, "--storage", "sqlite:///{D}/studies.db", "--study", "two",
       "--pick", "999", needs=("studies",)),
    _c("--out naming an existing file", "plot", "--out", "{D}/afile", "--storage", "sqlite:///{D}/studies.db",
       needs=("studies",)),
    _c("--compare with one study", *_PLOT, "--compare", "sqlite:///{D}/studies.db#two", needs=("studies",)),
    _c("--compare of a directory without study.db", *_PLOT, "--compare", "{D}/a_dir", "{D}/a_dir"),
    _c("--compare of a storage holding several studies, none named", *_PLOT, "--compare",
       "sqlite:///{D}/studies.db", "sqlite:///{D}/studies.db#two", needs=("studies",)),
    _c("--compare of a server study, password in the URL", *_PLOT, "--compare",
       "postgresql://u:pw-compare@127.0.0.1:1/db#nosuch", "sqlite:///{D}/studies.db#two", needs=("studies",)),
    _c("--out holding another study's outputs", "plot", "--out", "{D}/owned", "--storage", "sqlite:///{D}/studies.db",
       "--study", "empty", needs=("studies", "owned")),
    _c("--out that cannot be written", "plot", "--out", "/proc/mixaq_plots", "--storage", "sqlite:///{D}/studies.db",
       "--study", "two", needs=("studies",)),
    _c("a study database with random bytes inside", *_PLOT, "--storage", "sqlite:///{D}/damaged.db",
       needs=("damaged",)),
    _c("a journal whose last line was cut mid-write, read as far as it is whole (accepted)", "plot", "--out",
       "{D}/plots_cut", "--storage", "journal:{D}/cut.log", "--study", "two", "--no-progress", needs=("damaged",)),
    "`mixaq data`, `train`, `qat`, `adapt`",
    _c("data synth --num-images 0", "data", "synth", "--out", "{D}/synth", "--num-images", "0"),
    _c("data synth --out naming an existing file", "data", "synth", "--out", "{D}/afile", "--num-images", "2"),
    _c("data without its subcommand", "data"),
    _c("train config that does not exist", "train", "--config", "{D}/missing.yaml", "--out", "{D}/det.pt"),
    _c("train config that is not YAML", "train", "--config", f"{_SPEC}/broken.yaml", "--out", "{D}/det.pt",
       needs=("specs",)),
    _c("train config that is a directory", "train", "--config", "{D}/a_dir", "--out", "{D}/det.pt"),
    _c("train config that is not UTF-8", "train", "--config", f"{_SPEC}/latin1.yaml", "--out", "{D}/det.pt",
       needs=("specs",)),
    _c("train config with an unknown section", "train", "--config", "{D}/configs/section.yaml", "--out",
       "{D}/det.pt", needs=("configs",)),
    _c("train config with an unknown arch", "train", "--config", "{D}/configs/arch.yaml", "--out", "{D}/det.pt",
       needs=("configs",)),
    _c("train --out naming a directory", "train", "--config", "{D}/configs/arch.yaml", "--out", "{D}/a_dir",
       needs=("configs",)),
    _c("train --steps 0", "train", "--config", "{D}/configs/arch.yaml", "--out", "{D}/det.pt", "--steps", "0",
       needs=("configs",)),
    _c("qat --out naming a directory", "qat", "--out", "{D}/a_dir"),
    _c("qat config that does not exist", "qat", "--config", "{D}/missing.yaml", "--out", "{D}/q.pt"),
    _c("adapt --steps 0", "adapt", "--out", "{D}/a.pt", "--steps", "0"),
    _c("data synth --seed -1", "data", "synth", "--out", "{D}/synth", "--seed", "-1"),
    _c("data synth --size 200000", "data", "synth", "--out", "{D}/synth", "--size", "200000"),
    _c("qat --resume of a garbage file", "qat", "--out", "{D}/ckpt/garbage_run.pt", "--resume", needs=("checkpoints",)),
    _c("Mask R-CNN QAT on a COCO train file without masks", "qat", "--checkpoint", "{D}/rcnn/official.pth",
       "--data", "{D}/coco/clean/images", "--ann", "{D}/coco/clean/annotations.json", "--out", "{D}/q.pt",
       needs=("rcnn", "coco")),
    _c("qat --detector mask_rcnn on a Cascade Mask R-CNN file", "qat", "--checkpoint", "{D}/rcnn/cascade.pth",
       "--detector", "mask_rcnn", "--out", "{D}/q.pt", needs=("rcnn",)),
    _c("adapt --detector mask_rcnn on the embedded default model (FCOS)", "adapt", "--detector", "mask_rcnn",
       "--out", "{D}/a.pt"),
    _c("qat --nproc 0", "qat", "--out", "{D}/q.pt", "--nproc", "0"),
    _c("qat --nproc larger than the CPU cores (gloo: one process per core)", "qat", "--out", "{D}/q.pt", "--nproc",
       "100000", "--device", "cpu"),
    _c("qat --nproc larger than the GPUs (or no GPU at all)", "qat", "--out", "{D}/q.pt", "--nproc", "64", "--device",
       "cuda"),
    _c("adapt --nproc with one named GPU", "adapt", "--out", "{D}/a.pt", "--nproc", "2", "--device", "cuda:1"),
    _c("adapt --dist-timeout 0", "adapt", "--out", "{D}/a.pt", "--nproc", "2", "--dist-timeout", "0"),
    "`mixaq eval`: checkpoints",
    _c("checkpoint that does not exist", *_EVAL, "--checkpoint", "{D}/missing.pt"),
    _c("checkpoint of random bytes", *_EVAL, "--checkpoint", "{D}/ckpt/garbage.pt", needs=("checkpoints",)),
    _c("checkpoint cut in half", *_EVAL, "--checkpoint", "{D}/ckpt/truncated.pt", needs=("checkpoints",)),
    _c("checkpoint whose weights were overwritten with NaN", *_EVAL, "--checkpoint", "{D}/ckpt/nan.pt",
       needs=("checkpoints",)),
    _c("a Swin backbone state dict as the detector", *_EVAL, "--checkpoint", "{D}/ckpt/swin.pth",
       needs=("checkpoints",)),
    _c("a torch file that is not a checkpoint", *_EVAL, "--checkpoint", "{D}/ckpt/other.pt", needs=("checkpoints",)),
    _c("checkpoint config that is a string", *_EVAL, "--checkpoint", "{D}/ckpt/config_string.pt",
       needs=("checkpoints",)),
    _c("checkpoint categories that are a number", *_EVAL, "--checkpoint", "{D}/ckpt/categories_int.pt",
       needs=("checkpoints",)),
    _c("checkpoint extra that is a string", *_EVAL, "--checkpoint", "{D}/ckpt/extra_string.pt", needs=("checkpoints",)),
    _c("checkpoint whose float weights are int64", *_EVAL, "--checkpoint", "{D}/ckpt/int_weights.pt",
       needs=("checkpoints",)),
    _c("checkpoint whose float weights are bool", *_EVAL, "--checkpoint", "{D}/ckpt/bool_weights.pt",
       needs=("checkpoints",)),
    "`mixaq eval`: official / mmdet Swin (Cascade) Mask R-CNN files",
    _c("a COCO detector with no data given and no $MIXAQ_COCO", "eval", "--checkpoint", "{D}/rcnn/official.pth",
       needs=("rcnn",)),
    _c("a Swin classification checkpoint (official release)", *_EVAL, "--checkpoint", "{D}/rcnn/classification.pth",
       "--data", "{D}/coco/clean", needs=("rcnn", "coco")),
    _c("a RetinaNet checkpoint", *_EVAL, "--checkpoint", "{D}/rcnn/retinanet.pth", "--data", "{D}/coco/clean",
       needs=("rcnn", "coco")),
    _c("a Faster R-CNN checkpoint (no mask head)", *_EVAL, "--checkpoint", "{D}/rcnn/faster.pth",
       "--data", "{D}/coco/clean", needs=("rcnn", "coco")),
    _c("a Mask R-CNN with a ResNet backbone", *_EVAL, "--checkpoint", "{D}/rcnn/resnet.pth",
       "--data", "{D}/coco/clean", needs=("rcnn", "coco")),
    _c("an official detector file cut in half", *_EVAL, "--checkpoint", "{D}/rcnn/truncated.pth",
       "--data", "{D}/coco/clean", needs=("rcnn", "coco")),
    _c("--detector naming a family the file does not fit", *_EVAL, "--checkpoint", "{D}/rcnn/official.pth",
       "--detector", "cascade_mask_rcnn", "--data", "{D}/coco/clean", needs=("rcnn", "coco")),
    _c("class names that differ from the annotation file's", *_EVAL, "--checkpoint", "{D}/rcnn/renamed.pth",
       "--data", "{D}/coco/clean", needs=("rcnn", "coco")),
    "`mixaq eval`: COCO data (also `train`, `sweep`)",
    _c("--data that does not exist", *_EVAL, "--data", "{D}/missing_data"),
    _c("--coco-root without --ann", *_EVAL, "--coco-root", "{D}/a_dir"),
    _c("COCO json that is not JSON", *_EVAL, "--data", "{D}/coco/not_json", needs=("coco",)),
    _c("COCO box with negative width", *_EVAL, "--data", "{D}/coco/negative_width", needs=("coco",)),
    _c("COCO box with zero height", *_EVAL, "--data", "{D}/coco/zero_height", needs=("coco",)),
    _c("COCO box with NaN width", *_EVAL, "--data", "{D}/coco/nan_width", needs=("coco",)),
    _c("COCO box outside its image", *_EVAL, "--data", "{D}/coco/outside", needs=("coco",)),
    _c("COCO duplicate image ids", *_EVAL, "--data", "{D}/coco/duplicate_ids", needs=("coco",)),
    _c("COCO with an empty annotation list", *_EVAL, "--data", "{D}/coco/no_annotations", needs=("coco",)),
    _c("COCO annotation of an unknown category", *_EVAL, "--data", "{D}/coco/unknown_category", needs=("coco",)),
    _c("COCO image file missing", *_EVAL, "--data", "{D}/coco/missing_image", needs=("coco",)),
    _c("COCO file_name a number", *_EVAL, "--data", "{D}/coco/file_name_int", needs=("coco",)),
    _c("COCO file_name null", *_EVAL, "--data", "{D}/coco/file_name_null", needs=("coco",)),
    _c("COCO file_name climbing out of the image dir", *_EVAL, "--data", "{D}/coco/file_name_escape", needs=("coco",)),
    _c("COCO image id a string", *_EVAL, "--data", "{D}/coco/image_id_str", needs=("coco",)),
    _c("COCO image id near 2^60", *_EVAL, "--data", "{D}/coco/image_id_huge", needs=("coco",)),
    _c("COCO category id a string", *_EVAL, "--data", "{D}/coco/category_id_str", needs=("coco",)),
    _c("COCO iscrowd 'yes'", *_EVAL, "--data", "{D}/coco/iscrowd_yes", needs=("coco",)),
    _c("COCO area missing", *_EVAL, "--data", "{D}/coco/area_missing", needs=("coco",)),
    _c("COCO area 'big'", *_EVAL, "--data", "{D}/coco/area_word", needs=("coco",)),
    _c("COCO width 'wide'", *_EVAL, "--data", "{D}/coco/width_word", needs=("coco",)),
    _c("COCO JSON nested 200000 deep", *_EVAL, "--data", "{D}/coco/deep", needs=("coco",)),
    _c("COCO image whose header claims 40000x40000", *_EVAL, "--data", "{D}/coco/huge_header", needs=("coco",)),
    _c("COCO sizes declared 4096x4096 for 64-pixel images", *_EVAL, "--data", "{D}/coco/declared_large",
       needs=("coco",)),
    _c("COCO size declared 1x1 for a 64-pixel image", *_EVAL, "--data", "{D}/coco/declared_small", needs=("coco",)),
    _c("COCO box outside the real image (no size declared)", *_EVAL, "--data", "{D}/coco/outside_real",
       needs=("coco",)),
    _c("COCO categories of the checkpoint in another id order", *_EVAL, "--data", "{D}/coco/reordered",
       needs=("coco",)),
    _c("COCO categories renamed", *_EVAL, "--data", "{D}/coco/renamed", needs=("coco",)),
    "`mixaq eval`: options",
    _c("--spec unknown (used only for the cost, at the end)", *_EVAL, "--spec", "nope"),
    _c("--high-bits 9", *_EVAL, "--high-bits", "9"),
    _c("--high-bits that is not a number", *_EVAL, "--high-bits", "eight"),
    _c("--low-ratio 1.5", *_EVAL, "--low-ratio", "1.5"),
    _c("--low-ratio nan", *_EVAL, "--low-ratio", "nan"),
    _c("ratio and threshold flags together", *_EVAL, "--low-ratio", "0.5", "--low-threshold", "1.0"),
    _c("--max-images 0", "eval", "--max-images", "0"),
    _c("--calib-images -1", *_EVAL, "--calib-images", "-1"),
    _c("--batch-size 0", *_EVAL, "--batch-size", "0"),
    _c("--calib-images leaving no image to evaluate", *_EVAL, "--calib-images", "100000"),
    _c("--save-detections into a device", *_EVAL, "--save-detections", "/dev/full"),
    _c("--save-detections where nothing can be written", *_EVAL, "--save-detections", "/proc/mixaq_dets.json"),
)

# A string starts a section of the table; CASES are the rest, in order.
CASES: tuple[Case, ...] = tuple(c for c in _LISTED if isinstance(c, Case))
SECTION: dict[Case, str] = {}
for _item in _LISTED:
    if isinstance(_item, str):
        _section = _item
    else:
        SECTION[_item] = _section


# -- fixtures ---------------------------------------------------------------------------------------

def _spec_files(d: Path) -> None:
    import yaml

    from mixaq.simulator import load_spec

    base = load_spec("bitfusion").to_mapping()
    out = d / "spec"
    out.mkdir()

    def variant(name: str, edit: Callable[[dict], None]) -> None:
        data = json.loads(json.dumps(base))
        edit(data)
        (out / name).write_text(yaml.safe_dump(data, sort_keys=False))

    (out / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (out / "broken.yaml").write_text("name: [unclosed\n")
    (out / "list.yaml").write_text("- 1\n- 2\n")
    variant("unknown_field.yaml", lambda m: m.update(colour="red"))
    variant("missing_field.yaml", lambda m: m.pop("frequency_mhz"))
    variant("string_number.yaml", lambda m: m.update(dram_bytes_per_cycle="fast"))
    variant("sram_zero.yaml", lambda m: m["sram_kib"].update(ofmap=0))
    variant("negative_energy.yaml", lambda m: m["energy_pj"].update(dram_byte=-1))
    variant("frequency_inf.yaml", lambda m: m.update(frequency_mhz=float("inf")))
    variant("frequency_nan.yaml", lambda m: m.update(frequency_mhz=float("nan")))
    variant("dataflow.yaml", lambda m: m["array"].update(dataflow="rs"))
    variant("dram_ports.yaml", lambda m: m["memory"].update(dram_ports="two"))
    variant("split_stream.yaml", lambda m: m["mapper"].update(split_stream="yes"))
    variant("bits.yaml", lambda m: m["precision"].update(min_bits=9))
    variant("rows_fraction.yaml", lambda m: m["array"].update(rows=2.5))
    variant("negative_area.yaml", lambda m: m.update(area_mm2={"pe": -1}))
    space = {"base": "bitfusion", "knobs": {"array.rows": [8, 16]}}
    for name, edit in (("space_key", lambda m: m.update(colour="red")),
                       ("space_knob", lambda m: m["knobs"].update({"array.depth": [2]})),
                       ("space_range", lambda m: m["knobs"].update({"array.cols": {"min": 64, "max": 8, "step": 8}})),
                       ("space_invalid", lambda m: m["knobs"].update({"sram_kib.ifmap": [0, 8]}))):
        data = json.loads(json.dumps(space))
        edit(data)
        (out / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    variant("exponent.yaml", lambda m: m.update(frequency_mhz=500.0))
    text = (out / "exponent.yaml").read_text()
    (out / "exponent.yaml").write_text(text.replace("frequency_mhz: 500.0", "frequency_mhz: 5e2"))
    # YAML that is valid but refused: aliases, duplicate keys, values out of every sane range.
    good = yaml.safe_dump(base, sort_keys=False)
    lols = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 8))
    (out / "alias_bomb.yaml").write_text("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + lols
                                         + good.replace("name: bitfusion", "name: *l7"))
    (out / "alias_one.yaml").write_text(good.replace("frequency_mhz: 500", "frequency_mhz: &f 500")
                                        .replace("dram_bytes_per_cycle: ", "dram_bytes_per_cycle: *f #"))
    doubled = re.sub(r"^(\s+rows: \d+\n)", r"\1  rows: 96\n", good, count=1, flags=re.M)
    assert doubled != good, "the preset's YAML has no `rows:` line to give twice"
    (out / "duplicate_rows.yaml").write_text(doubled)
    (out / "duplicate_frequency.yaml").write_text(good + "frequency_mhz: 5\n")
    variant("rows_inf.yaml", lambda m: m["array"].update(rows=float("inf")))
    variant("cols_nan.yaml", lambda m: m["array"].update(cols=float("nan")))
    variant("frequency_tiny.yaml", lambda m: m.update(frequency_mhz=1e-320))
    variant("energy_huge.yaml", lambda m: m["energy_pj"].update(dram_byte=1e308))
    variant("rows_huge.yaml", lambda m: m["array"].update(rows=10**9))
    (out / "deep_name.yaml").write_text(good.replace("name: bitfusion", "name: " + "[" * 5000 + "]" * 5000))
    variant("long_name.yaml", lambda m: m.update(name="x" * 100_000))
    variant("long_value.yaml", lambda m: m.update(dram_bytes_per_cycle="9" * 1_000_000 + "x"))
    spaces = {
        "space_escape": {"name": "../../../escaped_space"}, "space_slash": {"name": "a/b"},
        "space_inf": {"knobs": {"array.rows": {"min": 8, "max": float("inf"), "step": 8}}},
        "space_nan": {"knobs": {"frequency_mhz": [float("nan"), 500]}},
        "space_words": {"knobs": {"precision.min_bits": ["a", "b"]}},
        "space_section": {"knobs": {"precision": [{"model": "bitfusion", "max_bits": "eight"}]}},
        "space_budget_nan": {"budgets": {"area_mm2": float("nan")}},
        "space_huge": {"knobs": {k: {"min": 1, "max": 1000, "step": 1} for k in
                                 ("array.rows", "array.cols", "sram_kib.ifmap", "sram_kib.filter", "sram_kib.ofmap",
                                  "frequency_mhz", "dram_bytes_per_cycle")}, "sample": 10},
        "space_sample": {"sample": 10**9},
    }
    for name, extra in spaces.items():
        data = {"base": "bitfusion", "knobs": {"array.rows": [8, 16]}, **extra}
        (out / f"{name}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (out / "space_alias.yaml").write_text("base: bitfusion\nknobs:\n  array.rows: &r [8, 16]\n  array.cols: *r\n")
    (out / "space_duplicate.yaml").write_text("base: bitfusion\nknobs:\n  array.rows: [8]\n  array.rows: [16]\n")


def _arch_files(d: Path) -> None:
    out = d / "arch"
    out.mkdir()
    (out / "word.yaml").write_text("embed_dim: big\ndepths: [2]\nnum_heads: [1]\n")
    (out / "unknown.yaml").write_text("embed_dim: 32\ndepths: [2]\nnum_heads: [1]\nwindow: 7\n")
    (out / "lengths.yaml").write_text("embed_dim: 32\ndepths: [2, 2]\nnum_heads: [1]\n")
    (out / "heads.yaml").write_text("embed_dim: 30\ndepths: [2]\nnum_heads: [4]\n")
    (out / "deep.yaml").write_text("embed_dim: 32\ndepths: [2, 2, 20000000, 2]\nnum_heads: [1, 2, 4, 8]\n")
    (out / "wide.yaml").write_text("embed_dim: 10000000\ndepths: [2]\nnum_heads: [1]\n")
    (out / "alias.yaml").write_text("embed_dim: 32\ndepths: &d [2, 2]\nnum_heads: *d\n")
    (out / "duplicate.yaml").write_text("embed_dim: 32\ndepths: [2]\nnum_heads: [1]\ndepths: [2000]\n")


def _files(d: Path) -> None:
    import sqlite3

    (d / "empty.db").touch()
    (d / "text.db").write_text("these are my notes\n")
    with sqlite3.connect(d / "foreign.db") as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")


def _studies(d: Path) -> None:
    from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep

    url = f"sqlite:///{d / 'studies.db'}"
    settings = SweepSettings(space=SearchSpace(num_pairs=2), spec="bitfusion", population_size=4)
    run_sweep(settings, SyntheticAccuracy(), url, "empty", 0, progress=False)
    run_sweep(settings, SyntheticAccuracy(), url, "two", 2, progress=False)


def _owned(d: Path) -> None:
    """A directory holding study 'two's outputs (its stamp), as `mixaq plot --out` leaves it."""
    from mixaq.search.records._outputs import OWNER_FILE, output_owner

    (d / "owned").mkdir()
    (d / "owned" / OWNER_FILE).write_text(json.dumps(output_owner(f"sqlite:///{d / 'studies.db'}", "two")))


def _damaged(d: Path) -> None:
    """A study database with random bytes in its pages, and a journal whose last record was cut."""
    import random

    from mixaq.search import SearchSpace, SweepSettings, SyntheticAccuracy, run_sweep

    settings = SweepSettings(space=SearchSpace(num_pairs=2), spec="bitfusion", population_size=4)
    run_sweep(settings, SyntheticAccuracy(), f"sqlite:///{d / 'damaged.db'}", "two", 3, progress=False)
    data = bytearray((d / "damaged.db").read_bytes())
    rng = random.Random(1)
    for i in range(4096, len(data), 7):
        data[i] = rng.randrange(256)
    (d / "damaged.db").write_bytes(bytes(data))
    run_sweep(settings, SyntheticAccuracy(), f"journal:{d / 'cut.log'}", "two", 3, progress=False)
    text = (d / "cut.log").read_bytes()
    last = text.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    (d / "cut.log").write_bytes(text + last[: len(last) // 2])


def _configs(d: Path) -> None:
    out = d / "configs"
    out.mkdir()
    (out / "section.yaml").write_text("model: {arch: swin_nano}\ndata: {synthetic: {}}\nextras: {a: 1}\n")
    (out / "arch.yaml").write_text("model: {arch: swin_xl}\ndata: {synthetic: {}}\n")


def _checkpoints(d: Path) -> None:
    import torch

    from mixaq.models import build_swin
    from mixaq.models.evaluation._evaluate import DEFAULT_CHECKPOINT

    out = d / "ckpt"
    out.mkdir()
    (out / "garbage.pt").write_bytes(b"\x00\x01garbage" * 64)
    data = DEFAULT_CHECKPOINT.read_bytes()
    (out / "truncated.pt").write_bytes(data[: len(data) // 2])
    payload = torch.load(DEFAULT_CHECKPOINT, weights_only=True)
    victims = [k for k, v in payload["state_dict"].items() if v.is_floating_point()][10:13]
    for k in victims:
        payload["state_dict"][k].fill_(float("nan"))
    torch.save(payload, out / "nan.pt")
    torch.save(build_swin("swin_nano", 64).state_dict(), out / "swin.pth")
    torch.save({"a": torch.zeros(2)}, out / "other.pt")
    clean = torch.load(DEFAULT_CHECKPOINT, weights_only=True)
    torch.save({**clean, "config": "swin_nano"}, out / "config_string.pt")
    torch.save({**clean, "categories": 5}, out / "categories_int.pt")
    torch.save({**clean, "extra": "notes"}, out / "extra_string.pt")
    for name, dtype in (("int_weights", torch.int64), ("bool_weights", torch.bool)):
        state = dict(clean["state_dict"])
        key = [k for k, v in state.items() if v.is_floating_point()][5]
        state[key] = state[key].to(dtype)
        torch.save({**clean, "state_dict": state}, out / f"{name}.pt")
    (out / "garbage_run.pt.resume").write_bytes(b"\x00\x01garbage" * 64)


def _rcnn(d: Path) -> None:
    """A random official-format Swin Mask R-CNN (5 classes) and files that are something else."""
    import torch

    from benchmarks._oracle_check import make_checkpoint

    out = d / "rcnn"
    out.mkdir()
    official = make_checkpoint("mask_rcnn", out / "official.pth")
    make_checkpoint("cascade_mask_rcnn", out / "cascade.pth")
    payload = torch.load(official, weights_only=True)
    state = payload["state_dict"]
    backbone = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    torch.save({"model": backbone}, out / "classification.pth")
    retina = {k: v for k, v in state.items() if k.startswith(("backbone.", "neck."))}
    torch.save({"state_dict": {**retina, "bbox_head.retina_cls.weight": torch.zeros(45, 64, 3, 3)}},
               out / "retinanet.pth")
    torch.save({"state_dict": {k: v for k, v in state.items() if "mask_head" not in k}}, out / "faster.pth")
    resnet = {k: v for k, v in state.items() if not k.startswith("backbone.")}
    torch.save({"state_dict": {**resnet, "backbone.conv1.weight": torch.zeros(64, 3, 7, 7)}}, out / "resnet.pth")
    data = official.read_bytes()
    (out / "truncated.pth").write_bytes(data[: len(data) // 2])
    torch.save({**payload, "meta": {"CLASSES": ("circle", "square", "star", "triangle", "cross")}}, out / "renamed.pth")


def _coco(d: Path) -> None:
    from mixaq.models.data._synth import write_synthetic

    clean = write_synthetic(d / "coco" / "clean", 4, seed=1, image_hw=(64, 64), progress=False)

    def variant(name: str, edit: Callable[[dict], object]) -> None:
        out = d / "coco" / name
        (out / "images").mkdir(parents=True)
        for f in (clean / "images").iterdir():
            (out / "images" / f.name).write_bytes(f.read_bytes())
        data = json.loads((clean / "annotations.json").read_text())
        text = edit(data)
        (out / "annotations.json").write_text(text if isinstance(text, str) else json.dumps(data))

    first = lambda m: next(a for a in m["annotations"])  # noqa: E731
    variant("not_json", lambda m: "{not json")
    variant("negative_width", lambda m: first(m)["bbox"].__setitem__(2, -5))
    variant("zero_height", lambda m: first(m)["bbox"].__setitem__(3, 0))
    variant("nan_width", lambda m: first(m)["bbox"].__setitem__(2, float("nan")))
    variant("outside", lambda m: first(m).__setitem__("bbox", [60.0, 10.0, 30.0, 5.0]))
    variant("duplicate_ids", lambda m: m["images"][1].__setitem__("id", m["images"][0]["id"]))
    variant("no_annotations", lambda m: m.__setitem__("annotations", []))
    variant("unknown_category", lambda m: first(m).__setitem__("category_id", 999))
    variant("missing_image", lambda m: m["images"][0].__setitem__("file_name", "gone.png"))
    image = lambda m: m["images"][0]  # noqa: E731
    variant("file_name_int", lambda m: image(m).update(file_name=123))
    variant("file_name_null", lambda m: image(m).update(file_name=None))
    variant("file_name_escape", lambda m: image(m).update(file_name="../../../../etc/hostname"))
    variant("image_id_str", lambda m: image(m).update(id="img-a"))
    variant("image_id_huge", lambda m: image(m).update(id=2**60 + 1))
    variant("category_id_str", lambda m: m["categories"][0].update(id="circle-id"))
    variant("iscrowd_yes", lambda m: first(m).update(iscrowd="yes"))
    variant("area_missing", lambda m: first(m).pop("area"))
    variant("area_word", lambda m: first(m).update(area="big"))
    variant("width_word", lambda m: image(m).update(width="wide"))
    variant("deep", lambda m: "[" * 200_000 + "]" * 200_000)
    variant("declared_large", lambda m: [i.update(width=4096, height=4096) for i in m["images"]])
    variant("declared_small", lambda m: m["images"][1].update(width=1, height=1))

    def no_sizes_box_outside(m: dict) -> None:
        for i in m["images"]:
            i.pop("width"), i.pop("height")
        first(m)["bbox"] = [3000.0, 3000.0, 10.0, 10.0]
    variant("outside_real", no_sizes_box_outside)

    def huge_header(m: dict) -> None:
        import struct
        import zlib

        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        name = m["images"][0]["file_name"]
        (d / "coco" / "huge_header" / "images" / name).write_bytes(
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0))
            + chunk(b"IEND", b""))
        for i in m["images"]:
            i.pop("width"), i.pop("height")
    variant("huge_header", huge_header)

    def reorder(m: dict) -> None:
        new_id = {c["id"]: len(m["categories"]) - k for k, c in enumerate(m["categories"])}
        for c in m["categories"]:
            c["id"] = new_id[c["id"]]
        for a in m["annotations"]:
            a["category_id"] = new_id[a["category_id"]]
    variant("reordered", reorder)
    variant("renamed", lambda m: [c.update(name=n) for c, n in zip(m["categories"],
                                                                   ("dog", "cat", "cow", "owl", "emu"))])


FIXTURES: dict[str, Callable[[Path], None]] = {
    "specs": _spec_files, "arch": _arch_files, "files": _files, "studies": _studies, "configs": _configs,
    "checkpoints": _checkpoints, "coco": _coco, "rcnn": _rcnn, "owned": _owned, "damaged": _damaged,
}


class Scratch:
    """The scratch directory `$D`: common files always, fixtures on first use, a silent server."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "a_dir").mkdir()
        (root / "afile").write_text("a file, not a directory\n")
        self._made: set[str] = set()
        self._server: socket.socket | None = None
        self.port = 0

    def prepare(self, case: Case) -> None:
        for name in case.needs:
            if name == "silent_server":
                self._start_silent_server()
            elif name not in self._made:
                FIXTURES[name](self.root)
                self._made.add(name)

    def _start_silent_server(self) -> None:
        if self._server is not None:
            return
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(16)
        self.port = self._server.getsockname()[1]
        held: list[socket.socket] = []

        def accept() -> None:
            while True:
                try:
                    held.append(self._server.accept()[0])  # keep the connection, never answer
                except OSError:
                    return

        threading.Thread(target=accept, daemon=True).start()

    def argv(self, case: Case) -> list[str]:
        return [a.replace("{D}", str(self.root)).replace("{PORT}", str(self.port)) for a in case.argv]

    def shown(self, text: str) -> str:
        """Output with run-specific paths and ports replaced, so the table is the same on any machine."""
        from mixaq.simulator._spec import SPECS_DIR

        text = text.replace(str(self.root), "$D").replace(str(SPECS_DIR), "<specs>")
        text = text.replace(str(Path(__file__).resolve().parent.parent), "<repo>")
        text = text.replace(str(Path.home()), "~")
        if self.port:
            text = text.replace(f":{self.port}", ":PORT").replace(f"port {self.port}", "port PORT")
        return text


def run_case(case: Case, scratch: Scratch) -> tuple[int, str]:
    """(exit status, what the user reads: stderr's lines, else the first line of stdout)."""
    from mixaq.search.cli import main

    scratch.prepare(case)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(scratch.argv(case))
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
    text = err.getvalue().strip() or (out.getvalue().strip().splitlines() or [""])[0]
    return int(code), scratch.shown(text)


# -- the document -------------------------------------------------------------------------------------

HEADER = """# Bad input: what `mixaq` says

Generated by `python -m benchmarks.bad_inputs` from the cases listed in `benchmarks/bad_inputs.py`:
each row is a real run of the command (in a scratch directory shown as `$D`), its exit status and
what it printed on stderr. `tests/test_bad_inputs.py` reruns the rows that do not need torch and
checks that this table lists exactly the cases the script defines. Exit status 2 with one line
`mixaq <command>: error: …` is the contract (`docs/architecture.md`); exit 0 marks input that is
accepted on purpose. Every error is reported before the command loads a model, measures or writes
results.

Faults that are not a command line are covered by tests instead: two sweeps started together on
one SQLite or PostgreSQL study (`tests/test_search_distributed.py`), kill -9 of a `--workers`
parent, a server that accepts and never answers, a reader pointed at a file that is not a study,
several processes creating one fresh storage (`tests/test_search_faults.py`), kill -9 and resume
(`tests/test_search_resume.py`), a journal cut mid-write, a disk filling up while outputs are written,
random bytes inside study.db, `--out` holding another study's outputs (`tests/test_output_faults.py`),
a closed pipe, Ctrl-C, a full disk inside Optuna (`tests/test_cli_faults.py`). No password of a
storage URL appears in any message, table or plot (`tests/test_redaction.py`).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ⏎ ")


def render(rows: list[tuple[Case, int, str]]) -> str:
    lines = [HEADER]
    section = None
    for case, code, text in rows:
        if SECTION[case] != section:
            section = SECTION[case]
            lines += ["", f"## {section}", "", "| bad input | `mixaq` … | exit | message |",
                      "|---|---|---|---|"]
        shown_argv = " ".join(case.argv).replace("{D}", "$D")
        lines.append(f"| {_cell(case.what)} | `{_cell(shown_argv)}` | {code} | {_cell(text)} |")
    return "\n".join(lines) + "\n"


_ROW = re.compile(r"^\| (?P<what>.*?) \| `(?P<argv>.*?)` \| (?P<code>-?\d+) \| (?P<message>.*) \|$")


def parse(doc: str) -> dict[str, tuple[str, int, str]]:
    """what -> (argv as shown, exit, message) of every row of the document."""
    rows = {}
    for line in doc.splitlines():
        m = _ROW.match(line)
        if m:
            rows[m["what"].replace("\\|", "|") + " @ " + m["argv"]] = (m["argv"], int(m["code"]), m["message"])
    return rows


def row_key(case: Case) -> str:
    return f"{case.what} @ {_cell(' '.join(case.argv).replace('{D}', '$D'))}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bad_inputs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with docs/bad_inputs.md instead of writing")
    parser.add_argument("--out", default=str(DOC), help="markdown file to write (default docs/bad_inputs.md)")
    args = parser.parse_args(argv)
    os.environ.pop("MIXAQ_COCO", None)  # the "no data given" case must not find a COCO on this machine
    start = time.perf_counter()
    rows = []
    # Torch-free commands first: that they never import torch is part of the contract.
    ordered = sorted(CASES, key=lambda c: c.torch)
    with tempfile.TemporaryDirectory(prefix="mixaq-bad-") as tmp:
        scratch = Scratch(Path(tmp))
        for case in ordered:
            if case.torch is False and "torch" in sys.modules:
                print(f"note: torch was imported before {case.what!r}", file=sys.stderr)
            code, text = run_case(case, scratch)
            rows.append((case, code, text))
            print(f"[{code}] {case.command}: {case.what}: {text}", flush=True)
    order = {c: i for i, c in enumerate(CASES)}
    doc = render(sorted(rows, key=lambda r: order[r[0]]))
    print(f"{len(rows)} cases in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if args.check:
        same = Path(args.out).is_file() and Path(args.out).read_text() == doc
        print("docs/bad_inputs.md is current" if same else "docs/bad_inputs.md is stale: rerun without --check",
              file=sys.stderr)
        return 0 if same else 1
    Path(args.out).write_text(doc)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
