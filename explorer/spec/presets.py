"""The chapter's own models as specs, with the input each one is run on.

Besides the chapter's nets (the MLP, rgnet, tied layers, the exercises' FancyMLP and
NestMLP), there are models to see parameters at scale: a 10-layer MLP for the depth lab,
GPT-2 small (124 M parameters, head tied to the token embedding) and a 2-layer GPT-2 for
hosted sessions, and a Llama-shaped 6.7 B model that is built on the meta device only.
"""

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
    device: str | None = None  # "meta": structure only (names, shapes, tying), no values


def _seq(*children: dict, **extra) -> dict:
    return {"type": "sequential", "children": list(children), **extra}


def _linear(out: int, n_in: int | None = None, **extra) -> dict:
    layer = {"type": "linear", "out_features": out, **extra}
    return layer if n_in is None else {**layer, "in_features": n_in}


RELU = {"type": "relu"}


def _keyed(key: str, block: dict) -> dict:
    return {**block, "key": key}


def _gpt2(layers: int, width: int = 768, heads: int = 12, vocab: int = 50257) -> dict:
    """GPT-2's shape: token + position embeddings, pre-norm blocks, a head tied to wte."""

    def norm(key: str) -> dict:
        return {"type": "layernorm", "normalized_shape": width, "key": key}

    attention = {"type": "self_attention", "embed_dim": width, "num_heads": heads, "key": "attn"}
    mlp = _seq(
        norm("ln_2"),
        _linear(4 * width, width, key="c_fc"),
        {"type": "gelu", "approximate": "tanh", "key": "gelu"},
        _linear(width, 4 * width, key="c_proj"),
    )
    block = _seq(
        {"type": "residual", "key": "attn", "block": _seq(norm("ln_1"), attention)},
        {"type": "residual", "key": "mlp", "block": mlp},
    )
    wte = {"type": "embedding", "num_embeddings": vocab, "embedding_dim": width, "name": "wte"}
    return _seq(
        _keyed("wte", wte),
        {"type": "pos_embedding", "max_len": 1024, "embedding_dim": width, "key": "wpe"},
        {"type": "repeat", "times": layers, "block": block, "key": "h"},
        norm("ln_f"),
        _linear(vocab, width, bias=False, tie={"weight": "wte.weight"}, key="lm_head"),
    )


def _llama(layers: int = 32, width: int = 4096, heads: int = 32, hidden: int = 11008) -> dict:
    """Llama-7B's shape: RMSNorm pre-norm blocks with a SwiGLU MLP, no biases, untied head."""

    def norm(key: str) -> dict:
        return {"type": "rmsnorm", "normalized_shape": width, "eps": 1e-6, "key": key}

    attention = {
        "type": "self_attention",
        "embed_dim": width,
        "num_heads": heads,
        "bias": False,
        "key": "self_attn",
    }
    mlp = {"type": "swiglu", "embed_dim": width, "hidden_features": hidden, "key": "mlp"}
    block = _seq(
        {"type": "residual", "key": "attn", "block": _seq(norm("input_layernorm"), attention)},
        {"type": "residual", "key": "mlp", "block": _seq(norm("post_attention_layernorm"), mlp)},
    )
    return _seq(
        {
            "type": "embedding",
            "num_embeddings": 32000,
            "embedding_dim": width,
            "key": "embed_tokens",
        },
        {"type": "repeat", "times": layers, "block": block, "key": "layers"},
        norm("norm"),
        _linear(32000, width, bias=False, key="lm_head"),
    )


_GPT2_CODE = """\
class Residual(nn.Module):            # x + block(x)
    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return x + self.block(x)

def gpt2_block(d=768, heads=12):
    return nn.Sequential(OrderedDict(
        attn=Residual(nn.Sequential(OrderedDict(
            ln_1=nn.LayerNorm(d), attn=SelfAttention(d, heads)))),  # causal, in_proj + out_proj
        mlp=Residual(nn.Sequential(OrderedDict(
            ln_2=nn.LayerNorm(d), c_fc=nn.Linear(d, 4 * d),
            gelu=nn.GELU(approximate="tanh"), c_proj=nn.Linear(4 * d, d))))))

wte = nn.Embedding(50257, 768)
lm_head = nn.Linear(768, 50257, bias=False)
lm_head.weight = wte.weight          # the head is the token embedding
net = nn.Sequential(OrderedDict(
    wte=wte, wpe=PositionEmbedding(1024, 768),    # x + wpe.weight[:T]
    h=nn.Sequential(*[gpt2_block() for _ in range({layers})]),
    ln_f=nn.LayerNorm(768), lm_head=lm_head))
net(torch.randint(0, 50257, (2, 8))).shape  # (2, 8, 50257)"""

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
        Preset(
            "fancy_mlp",
            "FancyMLP: one layer used twice (exercise)",
            _seq(
                _linear(20, name="linear", key="linear"),
                {
                    "type": "constant_linear",
                    "in_features": 20,
                    "out_features": 20,
                    "offset": 1.0,
                    "key": "rand_weight",
                },
                _keyed("relu", RELU),
                {"type": "shared", "ref": "linear", "key": "linear_again"},
            ),
            (2, 20),
            "The chapter's exercise 1 (FancyMLP, FixedHiddenMLP in the newest edition): a "
            "fixed random weight that is not trained, and one linear layer used twice, so "
            "its weight has two uses and two gradients. The model's while-loop (halve X until "
            "its sum is at most 1) and its final X.sum() are left out: a spec has no control "
            "flow, and the loss sums the output.",
            "class FixedHiddenMLP(nn.Module):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        # Random weight parameters that will not compute gradients and\n"
            "        # therefore keep constant during training\n"
            "        self.rand_weight = torch.rand((20, 20))\n"
            "        self.linear = nn.LazyLinear(20)\n\n"
            "    def forward(self, X):\n"
            "        X = self.linear(X)\n"
            "        X = F.relu(X @ self.rand_weight + 1)\n"
            "        # Reuse the fully connected layer. This is equivalent to sharing\n"
            "        # parameters with two fully connected layers\n"
            "        X = self.linear(X)\n"
            "        # Control flow (not in the preset)\n"
            "        while X.abs().sum() > 1:\n"
            "            X /= 2\n"
            "        return X.sum()",
        ),
        Preset(
            "nest_mlp",
            "NestMLP: named children (exercise)",
            _seq(
                _keyed("net", _seq(_linear(64), RELU, _linear(32), RELU)),
                _linear(16, key="linear"),
            ),
            (2, 20),
            "The chapter's exercise 1 in the newest edition: a block with two named children, "
            "net (a Sequential) and linear, so its parameters are net.0.weight … linear.bias.",
            "class NestMLP(nn.Module):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(),\n"
            "                                 nn.LazyLinear(32), nn.ReLU())\n"
            "        self.linear = nn.LazyLinear(16)\n\n"
            "    def forward(self, X):\n"
            "        return self.linear(self.net(X))\n\n"
            "net = NestMLP()\nnet(torch.rand(2, 20))",
        ),
        Preset(
            "deep_mlp",
            "A 10-layer MLP (why initialization matters)",
            _seq(*[x for _ in range(10) for x in (_linear(256, 256), RELU)]),
            (64, 256),
            "Ten Linear(256, 256) + ReLU layers: compare normal(0, 0.01), xavier_uniform and "
            "kaiming for ReLU, and watch the signal vanish or survive through depth.",
            "net = nn.Sequential(*[m for _ in range(10)\n"
            "                      for m in (nn.Linear(256, 256), nn.ReLU())])\n"
            "net(torch.rand(64, 256))",
        ),
        Preset(
            "gpt2_small",
            "GPT-2 small (124 M parameters)",
            _gpt2(12),
            (2, 8),
            "GPT-2's shape: 50257 × 768 token embedding, 1024 positions, 12 pre-norm blocks of "
            "causal self-attention (12 heads) and a 3072-wide GELU MLP, a final LayerNorm, and "
            "a head tied to the token embedding: 124,439,808 parameters, 149 names.",
            _GPT2_CODE.replace("{layers}", "12"),
            input_kind="tokens",
            vocab=50257,
            loss="cross_entropy",
        ),
        Preset(
            "gpt2_tiny",
            "GPT-2 with 2 layers",
            _gpt2(2),
            (2, 8),
            "GPT-2 small's embeddings, width and head with 2 blocks instead of 12.",
            _GPT2_CODE.replace("{layers}", "2"),
            input_kind="tokens",
            vocab=50257,
            loss="cross_entropy",
        ),
        Preset(
            "llama_7b",
            "Llama-shaped 7 B (structure only, on meta)",
            _llama(),
            (1, 8),
            "Llama-7B's shape on the meta device: names, shapes, counts and tying without "
            "memory for values (6,738,415,616 parameters would take 25 GiB in float32). 32 "
            "blocks of RMSNorm, causal self-attention (32 heads, no bias, q/k/v fused in "
            "in_proj) and a SwiGLU MLP (11008 wide); rotary position embeddings have no "
            "parameters and are left out.",
            "# on the meta device: shapes without memory\n"
            "with torch.device('meta'):\n"
            "    net = build_llama()  # 32 x (RMSNorm, attention, RMSNorm, SwiGLU)\n"
            "sum(p.numel() for p in net.parameters())  # 6738415616",
            input_kind="tokens",
            vocab=32000,
            loss="cross_entropy",
            device="meta",
        ),
    ]
}


def preset(key: str) -> Preset:
    """A fresh copy of a preset, safe to edit."""
    if key not in PRESETS:
        raise KeyError(f"no preset {key!r}; presets: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[key])
