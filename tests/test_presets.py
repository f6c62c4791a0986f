"""Each preset against the same model written in plain PyTorch: names, printout and counts."""

import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import explorer
from explorer.spec.presets import PRESETS


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


# --- plain PyTorch references, written here as a reader would write them ---


class Residual(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return x + self.block(x)


class Attention(nn.Module):
    """The parameters of a causal self-attention layer: one fused in_proj, one out_proj."""

    def __init__(self, d, bias=True):
        super().__init__()
        self.in_proj = nn.Linear(d, 3 * d, bias=bias)
        self.out_proj = nn.Linear(d, d, bias=bias)


class SwiGLU(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.gate_proj = nn.Linear(d, hidden, bias=False)
        self.up_proj = nn.Linear(d, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d, bias=False)


class Positions(nn.Module):
    def __init__(self, n, d):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, d))


def plain_gpt2(layers: int) -> nn.Module:
    d = 768

    def block():
        attn = nn.Sequential(OrderedDict(ln_1=nn.LayerNorm(d), attn=Attention(d)))
        mlp = nn.Sequential(
            OrderedDict(
                ln_2=nn.LayerNorm(d),
                c_fc=nn.Linear(d, 4 * d),
                gelu=nn.GELU(approximate="tanh"),
                c_proj=nn.Linear(4 * d, d),
            )
        )
        return nn.Sequential(OrderedDict(attn=Residual(attn), mlp=Residual(mlp)))

    wte = nn.Embedding(50257, d)
    head = nn.Linear(d, 50257, bias=False)
    head.weight = wte.weight
    return nn.Sequential(
        OrderedDict(
            wte=wte,
            wpe=Positions(1024, d),
            h=nn.Sequential(*[block() for _ in range(layers)]),
            ln_f=nn.LayerNorm(d),
            lm_head=head,
        )
    )


def plain_llama() -> nn.Module:
    d = 4096

    def block():
        attn = nn.Sequential(
            OrderedDict(input_layernorm=nn.RMSNorm(d), self_attn=Attention(d, bias=False))
        )
        mlp = nn.Sequential(
            OrderedDict(post_attention_layernorm=nn.RMSNorm(d), mlp=SwiGLU(d, 11008))
        )
        return nn.Sequential(OrderedDict(attn=Residual(attn), mlp=Residual(mlp)))

    return nn.Sequential(
        OrderedDict(
            embed_tokens=nn.Embedding(32000, d),
            layers=nn.Sequential(*[block() for _ in range(32)]),
            norm=nn.RMSNorm(d),
            lm_head=nn.Linear(d, 32000, bias=False),
        )
    )


def names_and_shapes(net: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    return [(n, tuple(p.shape)) for n, p in net.named_parameters(remove_duplicate=False)]


def test_gpt2_small_is_gpt2s_shape_and_runs_on_tokens():
    """GPT-2 small: 124,439,808 parameters (the tied head once), names as the plain model's."""
    net = explorer.build(PRESETS["gpt2_small"].spec)
    with torch.device("meta"):
        plain = plain_gpt2(12)
    assert sum(p.numel() for p in net.parameters()) == 124_439_808
    assert names_and_shapes(net) == names_and_shapes(plain)
    assert net.lm_head.weight is net.wte.weight
    logits = net(torch.randint(0, 50257, (2, 8)))
    assert logits.shape == (2, 8, 50257)


def test_gpt2_tiny_is_gpt2_with_two_layers():
    """The 2-layer GPT-2 has the same names and shapes as the plain 2-layer model."""
    net = explorer.build(PRESETS["gpt2_tiny"].spec, device="meta")
    with torch.device("meta"):
        plain = plain_gpt2(2)
    assert names_and_shapes(net) == names_and_shapes(plain)
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in plain.parameters())


def test_llama_7b_on_meta_has_llamas_parameter_count():
    """On meta, the Llama preset has Llama-7B's 6,738,415,616 parameters and the plain names."""
    p = PRESETS["llama_7b"]
    assert p.device == "meta"
    net = explorer.build(p.spec, device="meta")
    with torch.device("meta"):
        plain = plain_llama()
    assert sum(q.numel() for q in net.parameters()) == 6_738_415_616
    assert names_and_shapes(net) == names_and_shapes(plain)
    assert all(q.is_meta for q in net.parameters())


def _init_calls(monkeypatch, make) -> list:
    """The torch functions that reach the meta device context while ``make()`` runs."""
    from torch.utils._device import DeviceContext

    seen = []
    handle = DeviceContext.__torch_function__

    def recording(self, func, types, args=(), kwargs=None):
        seen.append(func)
        return handle(self, func, types, args, kwargs)

    monkeypatch.setattr(DeviceContext, "__torch_function__", recording)
    make()
    inits = {torch.Tensor.uniform_, torch.Tensor.normal_, torch.Tensor.fill_}
    return [f for f in seen if f in inits or getattr(f, "__module__", "") == "torch.nn.init"]


def test_a_meta_build_runs_no_default_initialization(monkeypatch):
    """Meta tensors have no values: the build skips every layer's reset_parameters work, which
    plain ``with torch.device("meta")`` does; the mode is gone afterwards."""
    spec = PRESETS["gpt2_tiny"].spec

    def plain():
        with torch.device("meta"):
            nn.Linear(4, 4)

    assert torch.nn.init.kaiming_uniform_ in _init_calls(monkeypatch, plain)  # the recorder sees
    assert _init_calls(monkeypatch, lambda: explorer.build(spec, device="meta")) == []
    assert torch.empty(1).device.type == "cpu"
    fresh = nn.Linear(4, 4)  # initialization works again outside the build
    assert fresh.weight.abs().sum() > 0 and fresh.bias.abs().sum() > 0


_META_IN_A_BOX = """
import resource
from explorer.spec.build import build
from explorer.spec.presets import PRESETS
vm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize:"))
cap = vm * 1024 + 256 * 2**20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
net = build(PRESETS["llama_7b"].spec, device="meta")
print(sum(p.numel() for p in net.parameters()))
"""


def test_llama_7b_on_meta_needs_no_memory_for_values():
    """Building the 25 GiB model on meta fits in 256 MiB more than the interpreter holds."""
    out = subprocess.run(
        [sys.executable, "-c", _META_IN_A_BOX],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert (out.returncode, out.stdout.strip()) == (0, "6738415616"), out.stderr[-2000:]


def test_llama_7b_is_refused_off_meta():
    """Without the meta device, 6.7 B parameters are over the budget, before any allocation."""
    with pytest.raises(explorer.SpecError, match="6,738,415,616 parameters; the limit is"):
        explorer.build(PRESETS["llama_7b"].spec)


def test_deep_mlp_is_ten_linear_relu_layers():
    """deep_mlp is 10 × (Linear(256, 256), ReLU), as the plain Sequential."""
    plain = nn.Sequential(*[m for _ in range(10) for m in (nn.Linear(256, 256), nn.ReLU())])
    net = explorer.build(PRESETS["deep_mlp"].spec)
    assert str(net) == str(plain)
    assert names_and_shapes(net) == names_and_shapes(plain)


class NestMLP(nn.Module):  # the chapter's code
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())
        self.linear = nn.LazyLinear(16)

    def forward(self, X):
        return self.linear(self.net(X))


def test_nest_mlp_has_nestmlps_names_and_output():
    """nest_mlp names its parameters as NestMLP does and computes the same output."""
    x = torch.rand(2, 20)
    chapter, net = NestMLP(), explorer.build(PRESETS["nest_mlp"].spec)
    chapter(x), net(x)
    assert names_and_shapes(net) == names_and_shapes(chapter)
    net.load_state_dict(chapter.state_dict())
    assert torch.equal(net(x), chapter(x))


class FixedHiddenMLP(nn.Module):  # the chapter's code
    def __init__(self):
        super().__init__()
        self.rand_weight = torch.rand((20, 20))
        self.linear = nn.LazyLinear(20)

    def forward(self, X):
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)
        X = self.linear(X)
        while X.abs().sum() > 1:
            X /= 2
        return X.sum()


def test_fancy_mlp_is_the_chapters_fixed_hidden_mlp():
    """fancy_mlp: 420 parameters in one layer used twice, a constant that is not a parameter,
    and the chapter's output, bit for bit from the same seed."""
    x = torch.rand(2, 20)
    torch.manual_seed(5)
    chapter = FixedHiddenMLP()
    torch.manual_seed(5)
    net = explorer.build(PRESETS["fancy_mlp"].spec)
    assert torch.equal(net.rand_weight, chapter.rand_weight)
    chapter(x), net(x)
    assert sum(p.numel() for p in net.parameters()) == 420
    assert list(net.state_dict()) == ["linear.weight", "linear.bias"] == list(chapter.state_dict())
    assert not list(net.buffers())
    chapter.linear.load_state_dict(net.linear.state_dict())
    assert torch.equal(net(x), chapter(x))


def test_fancy_mlp_weight_has_two_uses():
    """A forward and backward pass records one gradient per use of the reused layer."""
    net = explorer.build(PRESETS["fancy_mlp"].spec)
    result = explorer.run(net, torch.rand(2, 20))
    assert len(result.grad_by_use["linear.weight"]) == 2


def test_fancy_mlp_constant_is_drawn_with_the_seed():
    """rand_weight is ``torch.rand((20, 20))`` drawn when the model is built, as the chapter's."""
    torch.manual_seed(3)
    a = explorer.build(PRESETS["fancy_mlp"].spec).rand_weight
    torch.manual_seed(3)
    assert torch.equal(a, torch.rand((20, 20)))


SMALL_PRESETS = [k for k, p in PRESETS.items() if p.device != "meta" and k != "gpt2_small"]


@pytest.mark.parametrize("key", SMALL_PRESETS)
def test_every_preset_runs_forward_and_backward(key):
    """Each preset that holds values runs a forward and backward pass on its own input."""
    p = PRESETS[key]
    net = explorer.build(p.spec)
    tokens = p.input_kind == "tokens"
    x = torch.randint(0, p.vocab, p.input_shape) if tokens else torch.rand(p.input_shape)
    net(x).sum().backward()
    assert all(q.grad is not None for q in net.parameters())
