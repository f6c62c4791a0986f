"""A model with buffers: BatchNorm1d keeps running statistics and a batch counter."""

from torch import nn


def make_model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
