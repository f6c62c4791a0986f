"""Benchmarks that time the explorer against plain PyTorch in the same run, as ratios.

Run ``python -m benchmarks [--quick] [--out FILE.md]``; see ``benchmarks.__main__``.
"""
