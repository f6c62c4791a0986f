"""See inside a PyTorch model's parameters: build, initialize, inspect and run.

Example::

    import torch, explorer
    net = explorer.build(explorer.PRESETS["tied"].spec)
    result = explorer.run(net, torch.rand(2, 4))
    tree = explorer.inspect(net)
    tree.tied_groups            # [{"2.bias", "4.bias"}, {"2.weight", "4.weight"}]
    result.grad_by_use["2.weight"]  # two gradients, one per use; they add up to .grad
"""

from explorer.core.errors import DeviceError, ExplorerError, SpecError
from explorer.engine.run import RunResult, run
from explorer.engine.train import TrainLog, train
from explorer.init.rules import initialize
from explorer.session.experiment import Experiment
from explorer.session.workspace import Workspace
from explorer.spec.build import build
from explorer.spec.presets import PRESETS
from explorer.view.plots import heatmap, histogram
from explorer.view.tree import ParamTree, inspect

__all__ = [
    "build",
    "initialize",
    "inspect",
    "run",
    "heatmap",
    "histogram",
    "train",
    "TrainLog",
    "Experiment",
    "Workspace",
    "ParamTree",
    "RunResult",
    "SpecError",
    "ExplorerError",
    "DeviceError",
    "PRESETS",
]
