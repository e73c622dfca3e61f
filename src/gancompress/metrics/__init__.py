"""Measurements: MACs/params (profile), and the quality metrics."""
