"""Accelerator spec presets (`load_spec("bitfusion")`), shipped as package data of `mixaq.specs`."""
