"""The block-type table: every entry builds, counts and describes itself, and nothing else
restates what it says."""

import re
from pathlib import Path

import jsonschema
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import explorer
from explorer.core.limits import HOSTED, LOCAL
from explorer.spec import edit as spec_edit
from explorer.spec.blocks import BLOCKS, example, json_schema, readme_table
from explorer.spec.presets import PRESETS
from explorer.spec.validate import validate

ROOT = Path(__file__).resolve().parent.parent
LEAVES = [k for k, bt in BLOCKS.items() if not bt.child_fields and not bt.is_alias]
WITH_INPUT = {  # inputs for the example of each type: (shape, is it token ids)
    "embedding": ((2, 3), True),
    "conv2d": ((2, 3, 5, 5), False),
    "self_attention": ((2, 5, 16), False),
    "swiglu": ((2, 5, 16), False),
    "pos_embedding": ((2, 5, 16), False),
    "fixed_hidden_mlp": ((2, 20), False),  # the chapter's class: its rand_weight is 20 x 20
}


def known_example(kind: str) -> dict:
    """The example block, with in_channels set: a lazy conv's shape is not inferred (NCHW)."""
    spec = example(kind)
    return {**spec, "in_channels": 3} if kind == "conv2d" else spec


def example_input(kind: str) -> torch.Tensor:
    shape, tokens = WITH_INPUT.get(kind, ((2, 8), False))
    return torch.randint(0, 50, shape) if tokens else torch.rand(shape)


def torch_counts(net: nn.Module) -> tuple[int, int, int]:
    """(unique parameter elements, module paths, parameter names) as PyTorch counts them."""
    return (
        sum(p.numel() for p in net.parameters()),
        len(list(net.named_modules(remove_duplicate=False))),
        len(list(net.named_parameters(remove_duplicate=False))),
    )


@pytest.mark.parametrize("kind", [k for k in BLOCKS if k != "shared"])
def test_every_example_validates_builds_and_runs(kind):
    """The builder's new block of each type validates, builds and runs a forward pass."""
    net = explorer.build(example(kind))
    net(example_input(kind))


@pytest.mark.parametrize("kind", LEAVES)
def test_each_leaf_predicts_its_parameter_shapes(kind):
    """The shapes the table infers before building are the built module's shapes."""
    spec = known_example(kind)
    x = example_input(kind)
    info = validate(spec, input_shape=None if kind == "embedding" else tuple(x.shape))
    net = explorer.build(spec)
    net(x)  # lazy layers take their shapes
    assert info.shapes[""] == {n: tuple(p.shape) for n, p in net.named_parameters()}


@pytest.mark.parametrize("kind", LEAVES)
def test_each_leaf_counts_like_pytorch(kind):
    """Parameter and buffer elements, module paths and parameter names match PyTorch's."""
    spec = known_example(kind)
    x = example_input(kind)
    info = validate(spec, input_shape=None if kind == "embedding" else tuple(x.shape))
    net = explorer.build(spec)
    net(x)
    assert (info.param_count, info.modules, info.param_names) == torch_counts(net)
    assert info.buffer_count == sum(b.numel() for b in net.buffers())


def test_summaries_read_from_the_table():
    """Each type's outline summary comes from its entry, with its defaults filled in."""
    summaries = {k: spec_edit.outline(example(k))[0].summary for k in BLOCKS if k != "shared"}
    assert summaries["layernorm"] == "layernorm 8, eps 1e-05"
    assert summaries["rmsnorm"] == "rmsnorm 8, eps 1e-06"
    assert summaries["self_attention"] == "self-attention 16, 2 heads, causal"
    assert summaries["conv2d"] == "conv2d ? → 4, kernel 3, padding 1, bias"


def test_readme_spec_table_is_the_generated_one():
    """The README's spec table is exactly what the registry generates, so no type is missing."""
    readme = (ROOT / "README.md").read_text()
    assert readme_table() in readme
    assert all(f"| `{kind}` |" in readme_table() for kind in BLOCKS)


def test_builder_menu_offers_every_type_but_shared():
    """Every registered type is in the builder's add menu; shared is offered per named block."""
    assert set(spec_edit.KINDS) == set(BLOCKS) - {"shared"}


def test_eps_default_is_written_once():
    """The layernorm (and batchnorm) eps default lives in the table only, not in its readers."""
    readers = [
        "explorer/spec/validate.py",
        "explorer/spec/build.py",
        "explorer/spec/edit.py",
        "ui/build_tab.py",
    ]
    for path in readers:
        assert not re.search(r"1e-0?5", (ROOT / path).read_text()), path
    blocks = (ROOT / "explorer/spec/blocks.py").read_text()
    assert len(re.findall(r"TORCH_EPS = 1e-5\b", blocks)) == 1
    assert not re.search(r"_eps\(1e-0?5\)", blocks)  # every entry reads the one constant


def test_json_schema_accepts_every_preset():
    """Every preset is valid under the generated JSON Schema."""
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for p in PRESETS.values():
        jsonschema.validate(p.spec, schema)


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "linear"},
        {"type": "linear", "out_features": 0},
        {"type": "linear", "out_features": 8, "units": 3},
        {"type": "dropout", "p": 1.0},
        {"type": "sequential", "children": [{"type": "dense"}]},
        {"type": "repeat", "times": 2, "block": {"type": "relu"}, "key_format": "block"},
    ],
)
def test_json_schema_refuses_what_validate_refuses(bad):
    """A spec that validate refuses is also invalid under the schema."""
    with pytest.raises(explorer.SpecError):
        validate(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json_schema())


def test_json_schema_has_one_definition_per_type():
    """The schema's block union lists each registered type once."""
    refs = [r["$ref"] for r in json_schema()["$defs"]["block"]["oneOf"]]
    assert refs == [f"#/$defs/{k}" for k in BLOCKS]


# --- the layers that torch.nn does not have, against plain PyTorch ---


def test_self_attention_is_causal_multi_head_attention():
    """self_attention gives what nn.MultiheadAttention gives with its weights and a causal mask."""
    torch.manual_seed(0)
    attn = explorer.build({"type": "self_attention", "embed_dim": 16, "num_heads": 4})
    mha = nn.MultiheadAttention(16, 4, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(attn.in_proj.weight)
        mha.in_proj_bias.copy_(attn.in_proj.bias)
        mha.out_proj.weight.copy_(attn.out_proj.weight)
        mha.out_proj.bias.copy_(attn.out_proj.bias)
    x = torch.rand(2, 5, 16)
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    expected, _ = mha(x, x, x, attn_mask=mask, need_weights=False)
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-6)


def test_self_attention_does_not_look_ahead():
    """Changing later positions leaves the output at earlier positions exactly as it was."""
    attn = explorer.build({"type": "self_attention", "embed_dim": 8, "num_heads": 2})
    x = torch.rand(1, 6, 8)
    y = x.clone()
    y[:, 3:] = torch.rand(1, 3, 8)
    assert torch.equal(attn(x)[:, :3], attn(y)[:, :3])
    assert not torch.equal(attn(x)[:, 3:], attn(y)[:, 3:])


def test_residual_adds_its_input():
    """residual(block)(x) is x + block(x)."""
    net = explorer.build({"type": "residual", "block": {"type": "linear", "out_features": 8}})
    x = torch.rand(3, 8)
    assert torch.equal(net(x), x + net.block(x))


def test_swiglu_is_llamas_gated_mlp():
    """swiglu is down_proj(silu(gate_proj(x)) * up_proj(x)), with no biases by default."""
    net = explorer.build({"type": "swiglu", "embed_dim": 8, "hidden_features": 12})
    x = torch.rand(3, 8)
    expected = net.down_proj(F.silu(net.gate_proj(x)) * net.up_proj(x))
    assert torch.equal(net(x), expected)
    assert [n for n, _ in net.named_parameters()] == [
        "gate_proj.weight",
        "up_proj.weight",
        "down_proj.weight",
    ]


def test_pos_embedding_adds_one_row_per_position():
    """pos_embedding adds weight[:T] to a (B, T, D) input and refuses inputs past max_len."""
    net = explorer.build({"type": "pos_embedding", "max_len": 4, "embedding_dim": 3})
    x = torch.rand(2, 3, 3)
    assert torch.equal(net(x), x + net.weight[:3])
    with pytest.raises(explorer.SpecError, match="the input has 5 positions but pos_embedding"):
        net(torch.rand(2, 5, 3))


def test_gelu_tanh_is_gpt2s_approximation():
    """gelu with approximate tanh is F.gelu(x, approximate="tanh")."""
    x = torch.randn(10)
    net = explorer.build({"type": "gelu", "approximate": "tanh"})
    assert torch.equal(net(x), F.gelu(x, approximate="tanh"))


def test_meta_build_allocates_no_values():
    """device="meta" builds every parameter and buffer on meta."""
    spec = {"type": "sequential", "children": [example("self_attention"), example("relu")]}
    net = explorer.build(spec, device="meta")
    assert all(t.is_meta for t in [*net.parameters(), *net.buffers()])
    fixed = explorer.build(example("constant_linear"), device="meta")
    assert fixed.weight.is_meta


def test_readme_budget_table_matches_the_limits():
    """Each row of the README's budget table states the local and hosted Limits values."""
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(max_\w+)`: [^|]+\| ([^|]+) \| ([^|]+) \|$", readme, flags=re.M)
    assert {name for name, *_ in rows} >= {"max_params", "max_modules", "max_param_names"}

    def number(text: str) -> int:  # "20,000" or "10¹²"
        text = text.strip()
        if text.startswith("10") and not text.isascii():
            return 10 ** int(text[2:].translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")))
        return int(text.replace(",", ""))

    for name, local, hosted in rows:
        assert (number(local), number(hosted)) == (getattr(LOCAL, name), getattr(HOSTED, name))
