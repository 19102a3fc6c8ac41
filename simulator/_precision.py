"""How each family of precision-scalable arrays turns operand bit widths into throughput and energy.

Every model answers, elementwise over numpy arrays of bit widths:
- `reduction_pack`: reduction-dimension (K) elements one PE consumes per cycle (Bit Fusion fuses
  BitBricks into several narrow multipliers whose products are summed, i.e. it packs K);
- `serial_passes`: how many times the streamed (temporal) dimension is replayed (bit-serial arrays
  consume one bit of an operand per cycle);
- `mac_energy_scale`: energy of one MAC relative to one full-width (`mac_8x8`) MAC.

A full-precision MAC on any model has pack 1, passes 1, scale 1 except bit-serial, whose native
step is one bit.
"""
from __future__ import annotations

import numpy as np

__all__ = ["PRECISION_MODELS", "SERIAL_OPERANDS", "PrecisionModel"]

SERIAL_OPERANDS = ("act", "both")


class PrecisionModel:
    """Base: a fixed-precision array (bits change storage, never throughput or MAC energy)."""

    name = "fixed"

    def reduction_pack(self, act_bits: np.ndarray, weight_bits: np.ndarray, min_bits: int, max_bits: int) -> np.ndarray:
        return np.ones(np.broadcast(act_bits, weight_bits).shape)

    def pack_options(self, act_bits, weight_bits, min_bits: int, max_bits: int) -> tuple[np.ndarray, np.ndarray]:
        """(P, ...) packings the array may run these operands at, and which of them are allowed.

        Only Bit Fusion has a choice: it may fuse its bricks for wider operands than it is given.
        """
        pack = self.reduction_pack(act_bits, weight_bits, min_bits, max_bits)
        return pack[None], np.ones((1,) + pack.shape, dtype=bool)

    def serial_passes(self, act_bits: np.ndarray, weight_bits: np.ndarray, serial: str) -> np.ndarray:
        return np.ones(np.broadcast(act_bits, weight_bits).shape)

    def mac_energy_scale(self, act_bits: np.ndarray, weight_bits: np.ndarray, min_bits: int, max_bits: int,
                         serial: str, pack=None) -> np.ndarray:
        return np.ones(np.broadcast(act_bits, weight_bits).shape)


class BitFusion(PrecisionModel):
    """Bit Fusion (Sharma et al., ISCA 2018): perf_factor = ⌊pmax/max(ba,pmin)⌋·⌊pmax/max(bw,pmin)⌋."""

    name = "bitfusion"

    def reduction_pack(self, act_bits, weight_bits, min_bits, max_bits):
        ba = np.maximum(act_bits, min_bits)
        bw = np.maximum(weight_bits, min_bits)
        # floor(a / b) rather than a // b: float floor_divide is several times slower.
        return np.floor(max_bits / np.asarray(ba, dtype=np.float64)) * np.floor(max_bits / np.asarray(bw, dtype=np.float64))

    def pack_options(self, act_bits, weight_bits, min_bits, max_bits):
        # Any fusion mode built for operands at least as wide also runs these (zero-padded):
        # per operand the multipliers-per-unit level is floor(pmax / width) for a width in
        # [pmin, pmax]; a mode is allowed when neither operand's level exceeds its own.
        ba = np.maximum(np.asarray(act_bits, dtype=np.float64), min_bits)
        bw = np.maximum(np.asarray(weight_bits, dtype=np.float64), min_bits)
        own_a, own_w = np.floor(max_bits / ba), np.floor(max_bits / bw)
        levels = sorted({max_bits // width for width in range(min_bits, max_bits + 1)})
        products = sorted({la * lw for la in levels for lw in levels}, reverse=True)  # native first: wins ties
        shape = np.broadcast(own_a, own_w).shape
        allowed = np.zeros((len(products),) + shape, dtype=bool)
        for la in levels:
            for lw in levels:
                allowed[products.index(la * lw)] |= (la <= own_a) & (lw <= own_w)
        packs = np.broadcast_to(np.asarray(products, dtype=np.float64).reshape((-1,) + (1,) * len(shape)), allowed.shape)
        return packs, allowed

    def mac_energy_scale(self, act_bits, weight_bits, min_bits, max_bits, serial, pack=None):
        # A Fusion Unit spends about the same energy per cycle whatever it is fused into,
        # so each of its `pack` MACs per cycle costs 1/pack of an 8x8 MAC.
        if pack is None:
            pack = self.reduction_pack(act_bits, weight_bits, min_bits, max_bits)
        return 1.0 / pack


class BitSerial(PrecisionModel):
    """Bit-serial PEs: Stripes (activations serial, cycles ∝ ba) or Loom (both, cycles ∝ ba·bw)."""

    name = "bitserial"

    def serial_passes(self, act_bits, weight_bits, serial):
        passes = act_bits * weight_bits if serial == "both" else act_bits * np.ones_like(weight_bits)
        return np.asarray(passes, dtype=np.float64)

    def mac_energy_scale(self, act_bits, weight_bits, min_bits, max_bits, serial, pack=None):
        # Each serial step is a 1-bit slice of a full-width MAC.
        full = max_bits * max_bits if serial == "both" else max_bits
        return self.serial_passes(act_bits, weight_bits, serial) / full


PRECISION_MODELS: dict[str, PrecisionModel] = {m.name: m for m in (PrecisionModel(), BitFusion(), BitSerial())}
