"""Benchmarks: speed and memory, the bf16/compile fast modes, the reference side by side."""
