"""One Linear module object used in two places of a Sequential (the chapter's tied net)."""

from torch import nn


def make_model() -> nn.Module:
    shared = nn.Linear(8, 8)
    return nn.Sequential(
        nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1)
    )
