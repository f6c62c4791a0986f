"""The chapter's FancyMLP (D2L's model-construction section): a constant weight, a reused layer
and Python control flow in ``forward``."""

import torch
from torch import nn
from torch.nn import functional as F


class FancyMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.rand_weight = torch.rand((20, 20), requires_grad=False)  # a constant, not trained
        self.linear = nn.Linear(20, 20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(torch.mm(X, self.rand_weight) + 1)
        X = self.linear(X)  # the same layer again: its parameters are shared
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


def make_model() -> nn.Module:
    return FancyMLP()
