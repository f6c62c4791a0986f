"""Running a module.

One forward and backward pass with per-use gradients, training, and the training tasks.
"""
