"""Running a module: one forward and backward pass with per-use gradients, training, the training tasks."""
