"""An event-driven tile simulation of one GEMM: a test oracle for `simulator/_gemm.py`.

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

__all__ = ["TileSimResult", "simulate_gemm"]


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


def _timeline(folds, reads, writes, ports, total_read, total_write) -> TileSimResult:
    """Double buffering per operand buffer: its next missing tile is requested when the fold that
    consumes its previous missing tile starts (that tile has left the prefetch half); a partial-sum
    read-back also waits for the write that put it in DRAM. Ports serve requests in issue order.
    A fold starts when the previous fold has ended and its blocking tiles have arrived; it ends
    `duration` later, but not before its streamed tiles have arrived (+1 cycle). Writes are
    issued when their fold ends."""
    n_folds = len(folds)
    events: list = []
    order = itertools.count()
    push = lambda time, kind, item: heapq.heappush(events, (time, next(order), kind, item))  # noqa: E731
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
    queues = {port: collections.deque() for port in set(ports.values())}
    busy = dict.fromkeys(queues, False)
    state = dict(next_fold=0, running=False, finish=0.0)
    started = [None] * n_folds
    for r, gate in enumerate(gates):
        if gate == 0:
            push(0.0, "issue", r)

    def serve(port, now: float) -> None:
        if not busy[port] and queues[port]:
            item, size = queues[port].popleft()
            busy[port] = True
            push(now + size / port.bandwidth, "done", (port, item))

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
            port = ports[port_name]
            queues[port].append((("write", f), size))
            serve(port, now)
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
        now, _, kind, item = heapq.heappop(events)
        state["finish"] = max(state["finish"], now)
        if kind == "issue":
            f, port_name, size, _ = requests[item]
            port = ports[port_name]
            queues[port].append((("read", item), size))
            serve(port, now)
        elif kind == "done":
            port, (what, index) = item
            busy[port] = False
            serve(port, now)
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
