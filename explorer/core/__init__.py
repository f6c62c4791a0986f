"""Primitives every layer uses: errors, caps, frozen values, seeds, devices, rebinding tensors, work slots, name patterns."""
