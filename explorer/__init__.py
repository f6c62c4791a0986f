"""See inside a PyTorch model's parameters: build, initialize, inspect and run.

Example::

    import torch, explorer
    net = explorer.build(explorer.PRESETS["tied"].spec)
    result = explorer.run(net, torch.rand(2, 4))
    tree = explorer.inspect(net)
    tree.tied_groups            # [{"2.bias", "4.bias"}, {"2.weight", "4.weight"}]
    result.grad_by_use["2.weight"]  # two gradients, one per use; they add up to .grad
"""

from explorer.build import build
from explorer.errors import DeviceError, ExplorerError, SpecError
from explorer.experiment import Experiment
from explorer.init import initialize
from explorer.plots import heatmap, histogram
from explorer.presets import PRESETS
from explorer.run import RunResult, run
from explorer.train import TrainLog, train
from explorer.tree import ParamTree, inspect
from explorer.workspace import Workspace

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
