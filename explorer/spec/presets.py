"""The chapter's own models as specs, with the input each one is run on.

Besides the chapter's nets (the MLP, rgnet, tied layers, the exercises' FancyMLP and
NestMLP), there are models to see parameters at scale: a 10-layer MLP for the depth lab,
GPT-2 small (124 M parameters, head tied to the token embedding) and a 2-layer GPT-2 for
hosted sessions, and a Llama-shaped 6.7 B model that is built on the meta device only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from explorer.spec.layers import FixedHiddenMLP, NestMLP

__all__ = [
    "Preset",
    "PRESETS",
    "preset",
    "MXNET_DEFAULT",
    "KERAS_DEFAULT",
    "DJL_DEFAULT",
    "FLAX_DEFAULT",
]


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
    edition: str = "pytorch"  # the edition whose net this is (explorer.editions.places)
    # where the editions' global name counters start: the seeds build rgnet after net, so
    # Gluon names its layers dense2 … dense10 inside sequential1 (places(first=)), and Keras
    # sequential_1 with dense_2 … (explorer.editions.listings.keras_first)
    mxnet_first: dict = field(default_factory=dict)


def _seq(*children: dict, **extra) -> dict:
    return {"type": "sequential", "children": list(children), **extra}


def _linear(out: int, n_in: int | None = None, **extra) -> dict:
    layer = {"type": "linear", "out_features": out, **extra}
    return layer if n_in is None else {**layer, "in_features": n_in}


RELU = {"type": "relu"}

# Each edition's default initialization, as its preset opens (the same rules as the
# recipes in explorer.init.initializers.RECIPES; tests/test_presets.py checks they agree).
_PYTORCH_DEFAULT = {"init": "default", "target": "*"}
_KERNELS = {"target": "*.weight", "min_ndim": 2}
_ZERO_BIAS = {"init": "zeros", "target": "*.bias"}
MXNET_DEFAULT = [
    _PYTORCH_DEFAULT,
    {"init": "uniform", "a": -0.07, "b": 0.07, **_KERNELS},
    _ZERO_BIAS,
]
KERAS_DEFAULT = [_PYTORCH_DEFAULT, {"init": "xavier_uniform", "gain": 1.0, **_KERNELS}, _ZERO_BIAS]
# DJL's Parameter.Type.WEIGHT default: XavierInitializer(GAUSSIAN, IN, 2) = N(0, √(2/fan_in))
DJL_DEFAULT = [
    _PYTORCH_DEFAULT,
    {"init": "kaiming_normal", "mode": "fan_in", "nonlinearity": "relu", "a": 0.0, **_KERNELS},
    _ZERO_BIAS,
]
# Flax's Dense: kernel_init = lecun_normal() (a normal truncated at ±2 std, its std chosen so
# that the kept values have std √(1/fan_in)), bias_init = zeros
FLAX_DEFAULT = [
    _PYTORCH_DEFAULT,
    {
        "init": "formula",
        "expr": "s = sqrt(1 / fan_in) / 0.87962566103423978; trunc_normal(0, s, -2 * s, 2 * s)",
        **_KERNELS,
    },
    _ZERO_BIAS,
]
_GLUON_FIRST = {"dense": 2, "sequential": 1}  # rgnet is built after net in both MXNet seeds


def _rgnet32() -> dict:
    """MXNet's and DJL's rgnet: block2 = four block1 (Dense 32, Dense 16, each ReLU), then
    Dense(10); every layer infers its input size, as Gluon's and DJL's do."""
    block1 = _seq(_linear(32), RELU, _linear(16), RELU)
    return _seq({"type": "repeat", "times": 4, "block": block1}, _linear(10))


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
            "The oldest (Gluon) edition's net: Dense(256, activation='relu') then Dense(10), "
            "on a (2, 20) input, opened with MXNet's default initialization: weights "
            "U(−0.07, 0.07), biases 0 (PyTorch's own default draws nonzero biases).",
            "net = nn.Sequential()\n"
            "net.add(nn.Dense(256, activation='relu'))\n"
            "net.add(nn.Dense(10))\n"
            "net.initialize()  # the default initialization method\n\n"
            "x = np.random.uniform(size=(2, 20))\nnet(x)  # forward computation",
            rules=MXNET_DEFAULT,
            edition="mxnet",
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
            mxnet_first=_GLUON_FIRST,
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
            "FixedHiddenMLP (FancyMLP): one layer used twice (exercise)",
            {"type": "fixed_hidden_mlp"},
            (2, 20),
            "The chapter's exercise 1 in the MXNet, PyTorch, TensorFlow and DJL editions "
            "(FancyMLP, now FixedHiddenMLP): a constant rand_weight that is not a parameter, "
            "and one linear layer used twice, so state_dict() holds linear.weight and "
            "linear.bias only (420 elements) and the weight has two uses. Reach it as "
            "net.linear.weight: the class is not subscriptable.",
            FixedHiddenMLP.CHAPTER_CODE + "\n\nnet = FixedHiddenMLP()\nnet(torch.rand(2, 20))",
        ),
        Preset(
            "nest_mlp",
            "NestMLP: named children (exercise)",
            {"type": "nest_mlp"},
            (2, 20),
            "The chapter's exercise 1 in the newest edition: a block with two named children, "
            "net (a Sequential) and linear, so its parameters are net.0.weight … linear.bias "
            "and are reached as net.net[0].weight and net.linear.weight (NestMLP is not "
            "subscriptable).",
            NestMLP.CHAPTER_CODE + "\n\nnet = NestMLP()\nnet(torch.rand(2, 20))",
        ),
        Preset(
            "keras_mlp",
            "Keras's Dense(4) net",
            _seq(_linear(4), RELU, _linear(1)),
            (2, 4),
            "The TensorFlow edition's net: Flatten(), Dense(4, activation=relu), Dense(1), "
            "opened with Keras's default initialization: glorot_uniform kernels, zero biases. "
            "25 parameters; get_weights() lists (4, 4), (4,), (4, 1), (1,).",
            "net = tf.keras.models.Sequential([\n"
            "    tf.keras.layers.Flatten(),\n"
            "    tf.keras.layers.Dense(4, activation=tf.nn.relu),\n"
            "    tf.keras.layers.Dense(1),\n])\n\n"
            "X = tf.random.uniform((2, 4))\nnet(X).shape",
            rules=KERAS_DEFAULT,
            edition="keras",
        ),
        Preset(
            "keras_rgnet",
            "Keras's rgnet (85 parameters)",
            _seq(
                {
                    "type": "repeat",
                    "times": 4,
                    "key_format": "block-{i}",
                    "block": _seq(_linear(4), RELU),
                },
                _linear(1),
            ),
            (2, 4),
            "The TensorFlow edition's rgnet: block2 holds four block1 = [Flatten(), Dense(4, "
            "relu)] named block-0 … block-3, then Dense(1). rgnet.summary() counts 80 + 5 = "
            "85 parameters.",
            "def block1(name):\n"
            "    return tf.keras.Sequential([\n"
            "        tf.keras.layers.Flatten(),\n"
            "        tf.keras.layers.Dense(4, activation=tf.nn.relu)],\n"
            "        name=name)\n\n"
            "def block2():\n"
            "    net = tf.keras.Sequential()\n"
            "    for i in range(4):\n"
            "        # Nested here\n"
            "        net.add(block1(name=f'block-{i}'))\n"
            "    return net\n\n"
            "rgnet = tf.keras.Sequential()\n"
            "rgnet.add(block2())\n"
            "rgnet.add(tf.keras.layers.Dense(1))\n"
            "rgnet(X)\nrgnet.summary()",
            root_name="rgnet",
            rules=KERAS_DEFAULT,
            edition="keras",
            mxnet_first=_GLUON_FIRST,
        ),
        Preset(
            "gluon_rgnet",
            "Gluon's rgnet (Dense 32/16 → 10)",
            _rgnet32(),
            (2, 20),
            "The MXNet editions' rgnet: block2 adds four block1 = Dense(32, relu), Dense(16, "
            "relu), then Dense(10). Built after net in the same notebook, so Gluon names it "
            "sequential1 with layers dense2 … dense10: rgnet[0][1][0].bias is dense4_bias. "
            "On the oldest edition's (2, 20) input: 4,586 parameters (4,074 on (2, 4)).",
            "def block1():\n"
            "    net = nn.Sequential()\n"
            "    net.add(nn.Dense(32, activation='relu'))\n"
            "    net.add(nn.Dense(16, activation='relu'))\n"
            "    return net\n\n"
            "def block2():\n"
            "    net = nn.Sequential()\n"
            "    for _ in range(4):\n"
            "        net.add(block1())\n"
            "    return net\n\n"
            "rgnet = nn.Sequential()\n"
            "rgnet.add(block2())\n"
            "rgnet.add(nn.Dense(10))\n"
            "rgnet.initialize()\n"
            "rgnet(x)",
            root_name="rgnet",
            rules=MXNET_DEFAULT,
            edition="mxnet",
            mxnet_first=_GLUON_FIRST,
        ),
        Preset(
            "djl_rgnet",
            "DJL's rgnet (Linear 32/16 → 10)",
            _rgnet32(),
            (2, 4),
            "The DJL edition's rgnet: block2 adds four block1 = Linear(32), relu, Linear(16), "
            "relu, then Linear(10), on a (2, 4) input: 4,074 parameters, opened with DJL's "
            "default initialization (weights N(0, √(2/fan_in)), biases 0).",
            "public SequentialBlock block1() {\n"
            "    SequentialBlock net = new SequentialBlock();\n"
            "    net.add(Linear.builder().setUnits(32).build());\n"
            "    net.add(Activation.reluBlock());\n"
            "    net.add(Linear.builder().setUnits(16).build());\n"
            "    net.add(Activation.reluBlock());\n"
            "    return net;\n}\n\n"
            "public SequentialBlock block2() {\n"
            "    SequentialBlock net = new SequentialBlock();\n"
            "    for (int i = 0; i < 4; i++) {\n"
            "        net.add(block1());\n"
            "    }\n"
            "    return net;\n}\n\n"
            "SequentialBlock rgnet = new SequentialBlock();\n"
            "rgnet.add(block2());\n"
            "rgnet.add(Linear.builder().setUnits(10).build());\n"
            "rgnet.initialize(manager, DataType.FLOAT32, x.getShape());",
            root_name="rgnet",
            rules=DJL_DEFAULT,
            edition="djl",
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
