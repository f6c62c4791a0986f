"""Looking at a module without changing it: the parameter tree, ties, on-device reductions, figures, the notebook view."""
