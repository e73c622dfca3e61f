"""Latency harness, the side-by-side benchmark of compressed generators, its report, and the demo."""
