"""The chapter's own models as specs, with the input each one is run on."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

__all__ = ["Preset", "PRESETS", "preset"]


@dataclass(frozen=True)
class Preset:
    """A model spec plus the input, loss and chapter code that go with it."""

    key: str
    title: str
    spec: dict
    input_shape: tuple[int, ...]
    description: str
    code: str
    input_kind: str = "uniform"  # "uniform" (torch.rand) or "tokens" (integer ids)
    vocab: int | None = None  # highest token id + 1 for "tokens"
    loss: str = "sum"
    root_name: str = "net"  # what the chapter calls the model: net, rgnet
    rules: list[dict] = field(default_factory=lambda: [{"init": "default", "target": "*"}])


def _seq(*children: dict, **extra) -> dict:
    return {"type": "sequential", "children": list(children), **extra}


def _linear(out: int, n_in: int | None = None, **extra) -> dict:
    layer = {"type": "linear", "out_features": out, **extra}
    return layer if n_in is None else {**layer, "in_features": n_in}


RELU = {"type": "relu"}

PRESETS: dict[str, Preset] = {
    p.key: p
    for p in [
        Preset(
            "mlp",
            "The chapter's MLP (lazy layers)",
            _seq(_linear(8), RELU, _linear(1)),
            (2, 4),
            "One hidden layer of 8 units. The layers are lazy: their shapes are unknown (?) "
            "until the first forward pass.",
            "net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))\n"
            "X = torch.rand(size=(2, 4))\nnet(X).shape",
        ),
        Preset(
            "gluon_dense",
            "Gluon's Dense(256) net",
            _seq(_linear(256, 20), RELU, _linear(10, 256)),
            (2, 20),
            "The oldest edition's net: Dense(256, activation='relu') then Dense(10), "
            "on a (2, 20) input. "
            "MXNet sets biases to 0 by default; PyTorch does not.",
            "net = nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))\n"
            "X = torch.rand(2, 20)\nnet(X)",
        ),
        Preset(
            "rgnet",
            "rgnet: nested blocks",
            _seq(
                {
                    "type": "repeat",
                    "times": 4,
                    "key_format": "block {i}",
                    "block": _seq(_linear(8, 4), RELU, _linear(4, 8), RELU),
                },
                _linear(1, 4),
            ),
            (2, 4),
            "block2() adds block1() four times under the names 'block 0' … 'block 3', each "
            "copy with its own parameters. Reach a parameter as rgnet[0][1][0].bias; its "
            "state_dict key is '0.block 1.0.bias'.",
            "def block1():\n    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(),\n"
            "                         nn.Linear(8, 4), nn.ReLU())\n\n"
            "def block2():\n    net = nn.Sequential()\n    for i in range(4):\n"
            "        net.add_module(f'block {i}', block1())\n    return net\n\n"
            "rgnet = nn.Sequential(block2(), nn.Linear(4, 1))\nrgnet(X)",
            root_name="rgnet",
        ),
        Preset(
            "tied",
            "Tied layers (shared used twice)",
            _seq(
                _linear(8),
                RELU,
                _linear(8, name="shared"),
                RELU,
                {"type": "shared", "ref": "shared"},
                RELU,
                _linear(1),
            ),
            (2, 4),
            "Layers 2 and 4 are the same module: one weight, two names, and gradients that add up.",
            "shared = nn.LazyLinear(8)\n"
            "net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(),\n"
            "                    shared, nn.ReLU(),\n                    shared, nn.ReLU(),\n"
            "                    nn.LazyLinear(1))\nnet(X)\n"
            "net[2].weight.data[0, 0] = 100\nnet[2].weight.data[0] == net[4].weight.data[0]",
        ),
        Preset(
            "tied_lm",
            "Language model with tied embeddings",
            _seq(
                {"type": "embedding", "name": "embed", "num_embeddings": 50, "embedding_dim": 16},
                _linear(16, 16),
                {"type": "tanh"},
                _linear(50, 16, bias=False, tie={"weight": "embed.weight"}),
            ),
            (2, 6),
            "The output layer's weight is the input embedding (50 × 16): "
            "one tensor under two names, "
            "as in GPT-2.",
            "embed = nn.Embedding(50, 16)\nhead = nn.Linear(16, 50, bias=False)\n"
            "head.weight = embed.weight  # tie input and output embeddings\n"
            "net = nn.Sequential(embed, nn.Linear(16, 16), nn.Tanh(), head)\n"
            "tokens = torch.randint(0, 50, (2, 6))\nnet(tokens)",
            input_kind="tokens",
            vocab=50,
            loss="cross_entropy",
        ),
        Preset(
            "cnn",
            "A small CNN",
            _seq(
                {
                    "type": "conv2d",
                    "in_channels": 1,
                    "out_channels": 4,
                    "kernel_size": 3,
                    "padding": 1,
                },
                RELU,
                {
                    "type": "conv2d",
                    "in_channels": 4,
                    "out_channels": 8,
                    "kernel_size": 3,
                    "stride": 2,
                    "padding": 1,
                },
                RELU,
                {"type": "flatten"},
                _linear(10),
            ),
            (2, 1, 8, 8),
            "Convolution weights are 4-D (out, in, kh, kw); "
            "the heatmap shows them as out × (in·kh·kw).",
            "net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),\n"
            "                    nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU(),\n"
            "                    nn.Flatten(), nn.LazyLinear(10))\nnet(torch.rand(2, 1, 8, 8))",
        ),
    ]
}


def preset(key: str) -> Preset:
    """A fresh copy of a preset, safe to edit."""
    if key not in PRESETS:
        raise KeyError(f"no preset {key!r}; presets: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[key])
