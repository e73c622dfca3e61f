"""Saved-model format, official checkpoint import, ONNX/int8 export."""

from .saved import load_generator, read_config, save_generator

__all__ = ["load_generator", "read_config", "save_generator"]
