"""The invariant every action keeps: the live state is what its experiment rebuilds."""

from __future__ import annotations

import torch
from torch.nn.parameter import is_lazy

from explorer.session.state import realize
from explorer.session.workspace import Workspace

__all__ = ["assert_live_is_replay"]


def assert_live_is_replay(ws: Workspace) -> None:
    """Values, .grad, buffers, train/eval mode and lazy shapes equal a fresh ``realize``."""
    live, replay = ws.state.module, realize(ws.experiment, ws.limits, blobs=ws.blobs).module
    live_params = dict(live.named_parameters(remove_duplicate=False))
    replay_params = dict(replay.named_parameters(remove_duplicate=False))
    assert live_params.keys() == replay_params.keys()
    for name, p in live_params.items():
        q = replay_params[name]
        assert is_lazy(p) == is_lazy(q), name
        if is_lazy(p):
            continue
        assert torch.equal(p.detach(), q.detach()), f"{name} values"
        assert (p.grad is None) == (q.grad is None), f"{name}.grad is {p.grad is None}"
        if p.grad is not None:
            assert torch.equal(p.grad, q.grad), f"{name}.grad"
    live_buffers, replay_buffers = dict(live.named_buffers()), dict(replay.named_buffers())
    assert live_buffers.keys() == replay_buffers.keys()
    for name, b in live_buffers.items():
        assert torch.equal(b, replay_buffers[name]), f"buffer {name}"
    assert [m.training for m in live.modules()] == [m.training for m in replay.modules()]
