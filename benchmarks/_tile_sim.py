"""An event-driven tile simulation of one GEMM: a test oracle for `simulator/_gemm.py`.

Two replays: `simulate_gemm` walks a fold-level schedule (`mapper.search: folds`) fold by fold (below);
`simulate_tiles` walks the tile mapper's tiling and loop order tile by tile (its docstring).

Written separately from the closed forms (it shares nothing with `_gemm.py` but the spec): it walks
the folds of a given schedule one by one, keeps each operand's tiles in an LRU buffer of half its
SRAM (the other half takes the prefetch: double buffering), sends every miss, partial-sum spill and
output through FIFO DRAM ports of `dram_bytes_per_cycle` (one shared port, or one per operand
SRAM), and times each fold from the arrival of its data. The closed forms answer in O(1) per
GEMM; this answers in O(folds), fold by fold, so the two can disagree where an assumption of the
closed form is wrong. Never imported by the library; used by tests and `benchmarks/table_oracle.py`.

Model, per fold (row fold i, column fold j, stream chunk c):
- duration: stream steps × serial passes + skew (R + C − 2 for os, 2R + C − 2 for ws/is), one
  cycle less for the last fold of each chunk (SCALE-Sim's per-fold demand matrices);
- tiles: os reads an ifmap tile (i) and a filter tile (j) and writes its output tile (i, j); ws/is
  hold a stationary tile (i, j), stream an X1 tile (i, c) (ifmap for ws, filter for is) and update
  the partial sums of tile (j, c), which leave as outputs after the last K fold;
- double buffering per operand buffer: its next missing tile is requested as soon as the fold that
  consumes its previous missing tile starts; a fold starts when the previous one has ended and its
  blocking tiles have arrived (os: both input tiles; ws/is: the stationary tile) and cannot end
  before its streamed data (ws/is: the X1 tile and any partial sums read back) has arrived; writes
  are queued when their fold ends; each port serves its requests in the order they are issued;
- partial sums (`psum_policy`): on_chip_when_fits keeps them in the ofmap buffer, spilling a tile
  at psum_bits when the LRU evicts it and reading it back when it is needed again;
  write_every_fold writes every fold's partial sums and never reads them back.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import math
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["TileSimResult", "simulate_gemm", "simulate_tiles"]


@dataclass(frozen=True)
class TileSimResult:
    cycles: float  # first request to last byte written
    compute_cycles: float  # sum of fold durations
    dram_read_bytes: float
    dram_write_bytes: float
    folds: int


class _Port:
    """A DRAM port of `bandwidth` bytes per cycle; `_timeline` serves its requests in issue order."""

    def __init__(self, bandwidth: float) -> None:
        self.bandwidth = bandwidth


class _Buffer:
    """LRU residency of tiles (key -> bytes) in `capacity` bytes; a tile larger than the buffer
    streams through and is never kept."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.tiles: OrderedDict = OrderedDict()
        self.used = 0.0

    def touch(self, key) -> bool:
        if key in self.tiles:
            self.tiles.move_to_end(key)
            return True
        return False

    def insert(self, key, size: float) -> list:
        """Keep `key`; returns the (key, size) pairs evicted to make room."""
        if size > self.capacity:
            return []
        evicted = []
        while self.used + size > self.capacity:
            old, old_size = self.tiles.popitem(last=False)
            self.used -= old_size
            evicted.append((old, old_size))
        self.tiles[key] = size
        self.used += size
        return evicted

    def drop(self, key) -> None:
        if key in self.tiles:
            self.used -= self.tiles.pop(key)


def _ranges(total: int, step: int) -> list[tuple[int, int]]:
    return [(start, min(start + step, total)) for start in range(0, total, step)]


def simulate_gemm(spec, m: int, n: int, k: int, act_bits: int, weight_bits: int, *, fold_order: int,
                  stream_chunk: int, pack: int) -> TileSimResult:
    """Simulate one (M×K)·(K×N) GEMM under a schedule: `fold_order` 0 walks row folds outermost, 1
    column folds; `stream_chunk` is the stream chunk length (ws/is: M resp. N); `pack` reduction
    elements per PE and cycle (Bit Fusion)."""
    rows, cols, dataflow = spec.rows, spec.cols, spec.dataflow
    ba, bw = act_bits, weight_bits
    if spec.precision_model == "bitserial":
        passes = ba * bw if spec.serial_operands == "both" else ba
    else:
        passes = 1
    half = 512.0  # bytes per KiB in the working half of a double-buffered SRAM
    sram = {"ifmap": spec.sram_ifmap_kib * half, "filter": spec.sram_filter_kib * half, "ofmap": spec.sram_ofmap_kib * half}
    out_byte, psum_byte = spec.output_bits / 8, spec.psum_bits / 8
    # Row folds cover `rows` packed reduction steps (ws/is: rows·pack K elements) or rows of M (os).
    if dataflow == "os":
        row_ranges, col_ranges = _ranges(m, rows), _ranges(n, cols)
        chunk_ranges = [(0, k)]
        steps = lambda c: math.ceil(k / pack)  # noqa: E731  (the stream is the packed reduction)
        skew = rows + cols - 2
    else:
        row_ranges = _ranges(k, rows * pack)
        col_ranges = _ranges(n if dataflow == "ws" else m, cols)
        chunk_ranges = _ranges(m if dataflow == "ws" else n, stream_chunk)
        steps = lambda c: c[1] - c[0]  # noqa: E731
        skew = 2 * rows + cols - 2
    ports = ({name: _Port(spec.dram_bytes_per_cycle) for name in ("ifmap", "filter", "ofmap")}
             if spec.dram_ports == "per_operand" else dict.fromkeys(("ifmap", "filter", "ofmap"), _Port(spec.dram_bytes_per_cycle)))
    x1_name = "filter" if dataflow == "is" else "ifmap"
    stat_name = {"os": None, "ws": "filter", "is": "ifmap"}[dataflow]
    x1_buf = _Buffer(sram[x1_name])
    x2_buf = _Buffer(sram["filter"] if dataflow == "os" else sram["ofmap"])  # os: filter tiles; ws/is: partial sums
    stat_buf = _Buffer(sram[stat_name]) if stat_name else None
    x1_bits = bw if dataflow == "is" else ba

    folds = []
    for ci, chunk in enumerate(chunk_ranges):
        pairs = ([(i, j) for i in range(len(row_ranges)) for j in range(len(col_ranges))] if fold_order == 0 else
                 [(i, j) for j in range(len(col_ranges)) for i in range(len(row_ranges))])
        for index, (i, j) in enumerate(pairs):
            last_in_chunk = index == len(pairs) - 1
            folds.append((ci, chunk, i, j, steps(chunk) * passes + skew - (1 if last_in_chunk else 0)))

    # Pass 1 (state, in fold order): which transfers each fold causes.
    reads = []  # per fold: [(buffer, port, bytes, blocking, fold whose writes it waits for or None)]
    writes = []  # per fold: [(port, bytes)]
    spilled_by = {}  # psum tile -> fold whose end last wrote it to DRAM (a read-back waits for it)
    n_k = len(row_ranges)
    total_read = total_write = 0.0
    for f, (ci, chunk, i, j, _) in enumerate(folds):
        r0, r1 = row_ranges[i]
        c0, c1 = col_ranges[j]
        s0, s1 = chunk
        fold_reads, fold_writes = [], []
        if dataflow == "os":
            x1_key, x1_size = ("x1", i), (r1 - r0) * k * ba / 8
            x2_key, x2_size = ("x2", j), (c1 - c0) * k * bw / 8
            for name, buf, key, size, port in (("x1", x1_buf, x1_key, x1_size, "ifmap"),
                                               ("x2", x2_buf, x2_key, x2_size, "filter")):
                if not buf.touch(key):
                    fold_reads.append((name, port, size, True, None))
                    buf.insert(key, size)
            fold_writes.append(("ofmap", (r1 - r0) * (c1 - c0) * out_byte))
        else:
            stat_key, stat_size = ("stat", i, j), (r1 - r0) * (c1 - c0) * (bw if dataflow == "ws" else ba) / 8
            if not stat_buf.touch(stat_key):
                fold_reads.append(("stat", stat_name, stat_size, True, None))
                stat_buf.insert(stat_key, stat_size)
            x1_key, x1_size = ("x1", i, ci), (r1 - r0) * (s1 - s0) * x1_bits / 8
            if not x1_buf.touch(x1_key):
                fold_reads.append(("x1", x1_name, x1_size, False, None))
                x1_buf.insert(x1_key, x1_size)
            tile, elements = (j, ci), (c1 - c0) * (s1 - s0)
            final = i == n_k - 1
            if spec.psum_policy == "write_every_fold":
                fold_writes.append(("ofmap", elements * (out_byte if final else psum_byte)))
            else:
                resident = i > 0 and x2_buf.touch(tile)
                if i > 0 and not resident:  # the previous K fold's partial sums are in DRAM
                    fold_reads.append(("psum", "ofmap", elements * psum_byte, False, spilled_by[tile]))
                if not resident:
                    for old, old_size in x2_buf.insert(tile, elements * psum_byte):
                        fold_writes.append(("ofmap", old_size))  # an evicted partial tile spills
                        spilled_by[old] = f
                if final:
                    x2_buf.drop(tile)
                    fold_writes.append(("ofmap", elements * out_byte))
                elif elements * psum_byte > x2_buf.capacity:  # cannot stay at all: out after this fold
                    fold_writes.append(("ofmap", elements * psum_byte))
                    spilled_by[tile] = f
        reads.append(fold_reads)
        writes.append(fold_writes)
        total_read += sum(r[2] for r in fold_reads)
        total_write += sum(size for _, size in fold_writes)

    # Pass 2 (time): a discrete-event simulation.
    return _timeline(folds, reads, writes, ports, total_read, total_write)


class _Events:
    """The simulations' clock: a time-ordered event queue (ties in push order) and FIFO DRAM ports,
    each serving one request at a time at its bandwidth; a served request comes back as a "done"
    event carrying (port, item)."""

    def __init__(self, ports) -> None:
        self._heap: list = []
        self._order = itertools.count()
        self._queues = {port: collections.deque() for port in set(ports)}
        self._busy = dict.fromkeys(self._queues, False)

    def push(self, time: float, kind: str, item) -> None:
        heapq.heappush(self._heap, (time, next(self._order), kind, item))

    def pop(self):
        return heapq.heappop(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def send(self, port, item, size: float, now: float) -> None:
        """Queue `size` bytes on `port` (served in issue order)."""
        self._queues[port].append((item, size))
        self._serve(port, now)

    def done(self, port, now: float) -> None:
        """`port` finished its request: serve the next one."""
        self._busy[port] = False
        self._serve(port, now)

    def _serve(self, port, now: float) -> None:
        if not self._busy[port] and self._queues[port]:
            item, size = self._queues[port].popleft()
            self._busy[port] = True
            self.push(now + size / port.bandwidth, "done", (port, item))


def _timeline(folds, reads, writes, ports, total_read, total_write) -> TileSimResult:
    """Double buffering per operand buffer: its next missing tile is requested when the fold that
    consumes its previous missing tile starts (that tile has left the prefetch half); a partial-sum
    read-back also waits for the write that put it in DRAM. Ports serve requests in issue order.
    A fold starts when the previous fold has ended and its blocking tiles have arrived; it ends
    `duration` later, but not before its streamed tiles have arrived (+1 cycle). Writes are
    issued when their fold ends."""
    n_folds = len(folds)
    events = _Events(ports.values())
    push = events.push
    # Requests: (fold, port, bytes, blocking); gates: how many conditions each still waits for.
    requests, gates, waiting_on_start, waiting_on_writes = [], [], {}, {}
    previous = {}  # buffer -> fold of its previous missing tile
    for f, fold_reads in enumerate(reads):
        for buffer, port, size, blocking, after in fold_reads:
            r = len(requests)
            requests.append((f, port, size, blocking))
            gate = 0
            if buffer in previous:
                waiting_on_start.setdefault(previous[buffer], []).append(r)
                gate += 1
            if after is not None:
                waiting_on_writes.setdefault(after, []).append(r)
                gate += 1
            gates.append(gate)
            previous[buffer] = f
    blocking_left = [sum(1 for r in fold_reads if r[3]) for fold_reads in reads]
    streamed_left = [sum(1 for r in fold_reads if not r[3]) for fold_reads in reads]
    streamed_at = [0.0] * n_folds
    writes_left = [len(w) for w in writes]
    state = dict(next_fold=0, running=False, finish=0.0)
    started = [None] * n_folds
    for r, gate in enumerate(gates):
        if gate == 0:
            push(0.0, "issue", r)

    def try_start(now: float) -> None:
        f = state["next_fold"]
        if f < n_folds and blocking_left[f] == 0 and not state["running"]:
            started[f] = now
            state["next_fold"], state["running"] = f + 1, True
            for r in waiting_on_start.get(f, ()):
                gates[r] -= 1
                if gates[r] == 0:
                    push(now, "issue", r)
            if streamed_left[f] == 0:
                push(max(now + folds[f][-1], streamed_at[f] + 1), "end", f)

    def fold_end(f: int, now: float) -> None:
        state["running"] = False
        state["finish"] = max(state["finish"], now)
        for port_name, size in writes[f]:
            events.send(ports[port_name], ("write", f), size, now)
        if not writes[f]:
            writes_done(f, now)
        try_start(now)

    def writes_done(f: int, now: float) -> None:
        for r in waiting_on_writes.get(f, ()):
            gates[r] -= 1
            if gates[r] == 0:
                push(now, "issue", r)

    try_start(0.0)
    while events:
        now, _, kind, item = events.pop()
        state["finish"] = max(state["finish"], now)
        if kind == "issue":
            f, port_name, size, _ = requests[item]
            events.send(ports[port_name], ("read", item), size, now)
        elif kind == "done":
            port, (what, index) = item
            events.done(port, now)
            if what == "read":
                f, _, _, blocking = requests[index]
                if blocking:
                    blocking_left[f] -= 1
                    if f == state["next_fold"]:
                        try_start(now)
                else:
                    streamed_left[f] -= 1
                    streamed_at[f] = max(streamed_at[f], now)
                    if streamed_left[f] == 0 and started[f] is not None:
                        push(max(started[f] + folds[f][-1], now + 1), "end", f)
            else:
                writes_left[index] -= 1
                if writes_left[index] == 0:
                    writes_done(index, now)
        else:  # a fold ends
            fold_end(item, now)
    compute = float(sum(fold[-1] for fold in folds))
    return TileSimResult(cycles=state["finish"], compute_cycles=compute, dram_read_bytes=total_read,
                         dram_write_bytes=total_write, folds=n_folds)


# ---- the tile mapper's schedules ------------------------------------------------------------------

_ROLES = {"os": ("m", "n", "k"), "ws": ("k", "n", "m"), "is": ("k", "m", "n")}  # array rows, columns, stream


def _passes(spec, ba: int, bw: int) -> int:
    if spec.precision_model == "bitserial":
        return ba * bw if spec.serial_operands == "both" else ba
    return 1


def _tile_compute(spec, tm, tn, tk, pack: int, passes: int):
    """Compute cycles of tiles of sizes (tm, tn, tk) (numpy arrays), from the folds the array runs in
    each: the tile's mapped lengths R (rows) and C (columns) fold into ⌈R/rows⌉ × ⌈C/cols⌉ folds that
    each stream the third dimension (passes times); K is consumed `pack` elements per unit. Fill and
    drain (`array.feed`): systolic, every fold skew·r + c − 2 with that fold's own rows r and columns c;
    buffered, once per tile over the lines the tile uses; ideal, never."""
    import numpy as np

    length = {"m": tm, "n": tn, "k": np.ceil(tk / pack)}
    row_dim, col_dim, stream_dim = _ROLES[spec.dataflow]
    r_len, c_len, s_len = length[row_dim], length[col_dim], length[stream_dim]
    r_folds, c_folds = np.ceil(r_len / spec.rows), np.ceil(c_len / spec.cols)
    skew = 1 if spec.dataflow == "os" else 2
    work = r_folds * c_folds * s_len * passes
    if spec.array_feed == "systolic":
        # Σ over the folds of skew·r + c − 2: each row fold's r appears once per column fold.
        fill = skew * r_len * c_folds + c_len * r_folds - 2 * r_folds * c_folds
    elif spec.array_feed == "buffered":
        fill = skew * np.minimum(r_len, spec.rows) + np.minimum(c_len, spec.cols) - 2
    else:
        fill = 0 * work
    return work + fill


def simulate_tiles(spec, m: int, n: int, k: int, act_bits: int, weight_bits: int, *, tile_m: int, tile_n: int,
                   tile_k: int, loop_order: str, pack: int, prefetch: str = "half") -> TileSimResult:
    """Simulate one (M×K)·(K×N) GEMM cut into tile_m × tile_n × tile_k tiles walked in `loop_order`
    (outermost first, e.g. "nmk"), tile by tile: an event per tile, not per cycle.

    Residency: each operand's tiles live in an LRU buffer of half its SRAM (A: ifmap, B: filter,
    C: ofmap; the other half takes the prefetch). A missing input tile is read from DRAM. An output
    tile that accumulates over several K tiles, or over several K folds inside a tile (ws/is), is kept
    in the ofmap buffer at psum width; when the LRU evicts it before its last K tile it is written
    out at psum width and read back when next needed (`write_every_fold`: never read back, as
    SCALE-Sim). After its last K tile an output leaves at output width. Time: the tiles run one after
    another; a tile starts once its missing inputs (and read-back partial sums) have arrived. Prefetch
    (`prefetch`): "half" requests each operand's missing tiles in order as long as the tiles requested
    and not yet consumed fit the other half of its SRAM (what double buffering allows); "tile" requests
    an operand's next missing tile only when the tile consuming its previous one starts (one tile ahead,
    as `simulate_gemm` does per fold). Writes go out when their tile ends; FIFO DRAM ports as in
    `simulate_gemm`. Bit Fusion's simulator's counting options (`pad_to_array`, `output_readback`,
    `stall_model: bitfusion`) are not simulated."""
    import numpy as np

    if spec.pad_to_array or spec.output_readback or spec.stall_model != "pipelined":
        raise ValueError("simulate_tiles covers the default counting (no pad_to_array, output_readback or "
                         "stall_model: bitfusion)")
    passes = _passes(spec, act_bits, weight_bits)
    dims = {"m": m, "n": n, "k": k}
    tile = {"m": tile_m, "n": tile_n, "k": tile_k}
    count = {d: -(-dims[d] // tile[d]) for d in "mnk"}
    # Every tile's indices in walk order (vectorized): the last letter of the loop order varies fastest.
    grids = np.indices([count[d] for d in loop_order]).reshape(3, -1)
    index = {d: grids[loop_order.index(d)] for d in "mnk"}
    size = {d: np.minimum(tile[d], dims[d] - index[d] * tile[d]) for d in "mnk"}
    duration = _tile_compute(spec, size["m"], size["n"], size["k"], pack, passes)
    a_bytes = size["m"] * size["k"] * act_bits / 8
    b_bytes = size["k"] * size["n"] * weight_bits / 8
    last_k = index["k"] == count["k"] - 1
    k_folds = np.ceil(np.ceil(size["k"] / pack) / spec.rows)
    accumulates = (count["k"] > 1) | ((k_folds > 1) & (spec.dataflow != "os"))
    psum_bytes = size["m"] * size["n"] * spec.psum_bits / 8
    out_bytes = size["m"] * size["n"] * spec.output_bits / 8
    half = 512.0
    buffers = {"a": _Buffer(spec.sram_ifmap_kib * half), "b": _Buffer(spec.sram_filter_kib * half),
               "c": _Buffer(spec.sram_ofmap_kib * half)}
    port_of = {"a": "ifmap", "b": "filter", "c": "ofmap"}
    ports = ({name: _Port(spec.dram_bytes_per_cycle) for name in ("ifmap", "filter", "ofmap")}
             if spec.dram_ports == "per_operand" else dict.fromkeys(("ifmap", "filter", "ofmap"), _Port(spec.dram_bytes_per_cycle)))
    write_back = spec.psum_policy != "write_every_fold"
    reads, writes, folds = [], [], []
    spilled_by = {}
    total_read = total_write = 0.0
    im, in_, ik = index["m"].tolist(), index["n"].tolist(), index["k"].tolist()
    for t in range(len(duration)):
        tile_reads, tile_writes = [], []
        for name, key, nbytes in (("a", (im[t], ik[t]), a_bytes[t]), ("b", (ik[t], in_[t]), b_bytes[t])):
            buf = buffers[name]
            if not buf.touch(key):
                tile_reads.append((name, port_of[name], float(nbytes), True, None))
                buf.insert(key, float(nbytes))
        out_key = (im[t], in_[t])
        if accumulates[t]:
            buf = buffers["c"]
            if not buf.touch(out_key):
                if ik[t] > 0 and write_back:  # its partial sums went out: read them back
                    tile_reads.append(("c", "ofmap", float(psum_bytes[t]), True, spilled_by[out_key]))
                for old, old_size in buf.insert(out_key, float(psum_bytes[t])):
                    tile_writes.append(("ofmap", old_size))  # an evicted partial tile spills
                    spilled_by[old] = t
            if last_k[t]:
                buf.drop(out_key)
                tile_writes.append(("ofmap", float(out_bytes[t])))
            elif psum_bytes[t] > buf.capacity:  # cannot stay at all: out after this tile
                tile_writes.append(("ofmap", float(psum_bytes[t])))
                spilled_by[out_key] = t
        else:  # one K tile and one K fold: the output streams out
            tile_writes.append(("ofmap", float(out_bytes[t])))
        reads.append(tile_reads)
        writes.append(tile_writes)
        folds.append((float(duration[t]),))
        total_read += sum(r[2] for r in tile_reads)
        total_write += sum(size_ for _, size_ in tile_writes)
    if prefetch == "tile":
        return _timeline(folds, reads, writes, ports, total_read, total_write)
    caps = {name: buf.capacity for name, buf in buffers.items()}
    return _window_timeline([f[0] for f in folds], reads, writes, ports, caps, total_read, total_write)


def _window_timeline(durations, reads, writes, ports, caps, total_read, total_write) -> TileSimResult:
    """Tiles run in order, each once all its reads have arrived. Each buffer requests its reads in
    order while the bytes requested and not yet consumed (by a started tile) fit `caps[buffer]` (one
    request at a time when a single one is larger); a partial-sum read-back also waits until the
    write that spilled it has landed. Ports serve requests in issue order; writes are issued when
    their tile ends."""
    n_tiles = len(durations)
    events = _Events(ports.values())
    push = events.push
    pending = {name: collections.deque() for name in caps}  # buffer -> request ids not yet issued
    requests = []  # (tile, buffer, port, bytes, write it waits for or None)
    for t, tile_reads in enumerate(reads):
        for buffer, port, size, _, after in tile_reads:
            pending[buffer].append(len(requests))
            requests.append((t, buffer, port, size, after))
    outstanding = dict.fromkeys(caps, 0.0)
    left = [len(r) for r in reads]  # reads of each tile still to arrive
    writes_left = [len(w) for w in writes]
    written = [False] * n_tiles
    state = dict(next=0, running=False, finish=0.0)

    def ready(buffer: str) -> bool:
        queue = pending[buffer]
        if not queue:
            return False
        _, _, _, size, after = requests[queue[0]]
        if after is not None and not written[after]:
            return False
        return outstanding[buffer] == 0 or outstanding[buffer] + size <= caps[buffer]

    def issue(now: float) -> None:
        """Issue every request the windows allow, the earliest tile's first (ports are FIFO)."""
        while True:
            heads = [pending[b][0] for b in pending if ready(b)]
            if not heads:
                return
            r = min(heads)  # request ids grow with the tile
            t, buffer, port_name, size, _ = requests[r]
            pending[buffer].popleft()
            outstanding[buffer] += size
            events.send(ports[port_name], ("read", r), size, now)

    def try_start(now: float) -> None:
        t = state["next"]
        if t < n_tiles and not state["running"] and left[t] == 0:
            state["next"], state["running"] = t + 1, True
            for buffer, _, size, _, _ in reads[t]:
                outstanding[buffer] -= size
            issue(now)
            push(now + durations[t], "end", t)

    def wrote(t: int, now: float) -> None:
        written[t] = True
        issue(now)

    issue(0.0)
    try_start(0.0)
    while events:
        now, _, kind, item = events.pop()
        state["finish"] = max(state["finish"], now)
        if kind == "done":
            port, (what, index) = item
            events.done(port, now)
            if what == "read":
                t = requests[index][0]
                left[t] -= 1
                if left[t] == 0:
                    try_start(now)
            else:
                writes_left[index] -= 1
                if writes_left[index] == 0:
                    wrote(index, now)
        else:  # a tile ends: its writes go out, the next tile may start
            state["running"] = False
            for port_name, size in writes[item]:
                events.send(ports[port_name], ("write", item), size, now)
            if not writes[item]:
                wrote(item, now)
            try_start(now)
    return TileSimResult(cycles=state["finish"], compute_cycles=float(sum(durations)), dram_read_bytes=total_read,
                         dram_write_bytes=total_write, folds=n_tiles)
