"""Seeded randomness that is safe when many sessions share one process.

PyTorch's default generators are global: two Streamlit sessions (threads) seeding and
drawing at the same time would interleave their draws, and ``fork_rng`` would restore one
thread's state over the other's. ``seeded`` holds a process-wide lock for the whole seeded
section, forks the generators of the devices in use and restores them afterwards, so a
seed always gives the same values and the caller's RNG is left as it was.

Example::

    with seeded(0):
        torch.nn.init.normal_(w)   # the same values as torch.manual_seed(0) then normal_
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["seeded", "RNG_LOCK"]

RNG_LOCK = threading.RLock()


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the block with every default generator seeded with ``seed``, then restore them.

    With ``seed=None`` the block still runs under the lock, with the generators as they are.
    ``torch.manual_seed`` seeds every CUDA device too, so all of them are forked.
    """
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with RNG_LOCK, torch.random.fork_rng(devices=cuda, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        yield
