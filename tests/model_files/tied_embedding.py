"""A tiny language model whose output head is its input embedding (one tensor, two names)."""

import torch
from torch import nn


class TiedEmbeddingLM(nn.Module):
    """Embedding(16, 8) -> Linear(8, 8) -> head, with ``head.weight is embed.weight``."""

    def __init__(self, vocab: int = 16, width: int = 8):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.mix = nn.Linear(width, width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.mix(self.embed(tokens))))  # (B, T, vocab)


def make_model() -> nn.Module:
    return TiedEmbeddingLM()
