"""Primitives every layer uses.

Errors, caps, frozen values, seeds, devices and dtypes, rebinding tensors, heavy-work slots,
name patterns, and how numbers are written as code.
"""
