"""Looking at a module without changing it.

The parameter tree, ties (detected by memory overlap), on-device reductions, figures, and
the notebook view.
"""
