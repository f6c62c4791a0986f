"""Each preset against the same model written in plain PyTorch: names, printout and counts."""

from torch import nn

import explorer
from explorer.presets import PRESETS


def state_dict_shapes(net: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def test_rgnet_has_the_chapters_child_names():
    """rgnet built from its preset prints and names its parameters as the chapter's code does."""

    def block1():
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU())

    def block2():
        net = nn.Sequential()
        for i in range(4):
            net.add_module(f"block {i}", block1())  # the chapter's code, verbatim
        return net

    rgnet = nn.Sequential(block2(), nn.Linear(4, 1))
    built = explorer.build(PRESETS["rgnet"].spec)
    assert str(built) == str(rgnet)
    assert "(block 0): Sequential(" in str(built)
    assert state_dict_shapes(built) == state_dict_shapes(rgnet)
    assert list(built.state_dict())[:2] == ["0.block 0.0.weight", "0.block 0.0.bias"]
    assert built[0][1][0] is built[0].get_submodule("block 1")[0]
