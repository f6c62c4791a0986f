"""The PyTorch code behind the current state: one runnable script, and one line per action.

``to_script(experiment)`` writes a plain PyTorch script (no ``import explorer``) that
rebuilds the experiment's model and values bit for bit on the CPU; the small ``*_line``
functions give the line of PyTorch that does what one action in the app does.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["train_lines"]

_LOSS_CODE = {
    "mse": "F.mse_loss(net(X), y)",
    "bce": "F.binary_cross_entropy_with_logits(net(X), y)",
    "cross_entropy": "F.cross_entropy(net(X).flatten(0, -2), y.flatten())",
}
_TASK_LOSS = {"regression": "mse", "teacher": "mse", "moons": None, "next_token": "cross_entropy"}


def optimizer_line(op: Mapping, root: str = "net") -> str:
    """``opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)``, or Adam."""
    if op["optimizer"] == "adam":
        return f"opt = torch.optim.Adam({root}.parameters(), lr={op['lr']!r})"
    return (
        f"opt = torch.optim.SGD({root}.parameters(), lr={op['lr']!r}, momentum={op['momentum']!r})"
    )


def train_lines(op: Mapping, root: str = "net", loss: str | None = None) -> str:
    """The training loop a train op runs, as a student would write it (batches elided)."""
    loss = loss or _TASK_LOSS[op["task"]] or "cross_entropy"
    call = _LOSS_CODE[loss].replace("net(", f"{root}(")
    return "\n".join(
        [
            optimizer_line(op, root),
            f"for step in range({op['steps']}):",
            f"    X, y = batch({op['batch_size']})  # {op['task']} examples, drawn with the seed",
            "    opt.zero_grad()",
            f"    loss = {call}",
            "    loss.backward()",
            "    opt.step()",
        ]
    )
