"""Initialization.

The initializer table, rules applied to a module, the safe formula language and its
PyTorch code.
"""
