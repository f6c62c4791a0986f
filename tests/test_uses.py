"""Per-use gradient capture: what each call of a module sent to its parameters, and its cost."""

from __future__ import annotations

import torch

from explorer.figures import uses_heatmaps
from explorer.uses import use_scale


def test_use_scale_is_the_shared_robust_range_of_the_use_heatmaps():
    """use_scale equals the ±range uses_heatmaps draws, below a single huge outlier."""
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(16, 8, generator=generator), torch.randn(16, 8, generator=generator)
    second[3, 3] = 1e3
    total = first + second
    scale = use_scale([first, second], total)
    assert scale == uses_heatmaps([first, second], total)[0].data[0].zmax
    assert scale < 10
