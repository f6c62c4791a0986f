"""Random JSON values and random nesting: validate, build and from_json raise only the
explorer's own errors, each within a second."""

import contextlib
import json
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.core.errors import ExplorerError
from explorer.core.limits import LOCAL
from explorer.spec.blocks import BLOCKS, COMMON
from explorer.spec.build import build
from explorer.spec.fields import Kind
from explorer.spec.validate import from_json, validate

# Small enough that whatever passes the budget builds in well under a second.
SMALL = replace(LOCAL, max_params=200_000, max_modules=2_000, max_param_names=2_000)

FIELD_NAMES = sorted(
    {f.name for bt in BLOCKS.values() for f in bt.fields} | {"type", "name", "key"}
)
_ = COMMON  # the common fields are among FIELD_NAMES

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 70_000)
    | st.integers()
    | st.builds(lambda n: 10**n, st.integers(0, 6_000))
    | st.builds(lambda n: -(10**n), st.integers(4_300, 6_000))  # past int's text limit
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["{i}", "block {i}", "a.weight", "b.bias", "x.y.z", "", "forward", "tanh"])
)
keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=6)


def blocks(inner):
    """Dicts that look like blocks: a known type (mostly) and fields with random values."""
    return st.builds(
        lambda kind, fields: {"type": kind, **fields},
        st.sampled_from(list(BLOCKS)) | scalars,
        st.dictionaries(keys, inner, max_size=5),
    )


NAMES = st.sampled_from(["a", "b", "c"])


def field_value(f, inner):
    """Mostly plausible values for one field of the table, sometimes anything at all."""
    plausible = {
        Kind.WHOLE: st.integers(int(f.lo) - 1, 40) | st.integers(int(f.lo), 70_000),
        Kind.SIZE: st.integers(0, 40) | st.lists(st.integers(0, 40), min_size=1, max_size=3),
        Kind.NUMBER: st.floats(-0.5, 1.5) | st.sampled_from([f.lo, 0.5, 1e-5]),
        Kind.FLAG: st.booleans(),
        Kind.CHOICE: st.sampled_from(f.choices or ("none",)),
        Kind.REF: NAMES,
        Kind.TIE: st.dictionaries(
            st.sampled_from(["weight", "bias", "gamma"]),
            st.sampled_from(["a.weight", "b.bias", "c.weight", "a.gamma"]),
            max_size=2,
        ),
        Kind.BLOCK: inner,
        Kind.BLOCKS: st.lists(inner, max_size=4),
        Kind.KEY_FORMAT: st.sampled_from(["{i}", "block {i}", "b{i}{i}", "x.{i}", "{j}"]),
    }[f.kind]
    huge = st.builds(lambda n: 10**n, st.integers(4_300, 6_000))
    return st.one_of(plausible, plausible, plausible, scalars, huge)


def typed_blocks(inner):
    """Blocks of a registered type with their own fields (random, mostly plausible values)."""

    def of(kind):
        fields = {f.name: field_value(f, inner) for f in BLOCKS[kind].fields}
        fields |= {"name": NAMES, "key": st.sampled_from(["k", "0", "1", "forward", "a.b"])}
        return st.fixed_dictionaries({"type": st.just(kind)}, optional=fields)

    return st.sampled_from(list(BLOCKS)).flatmap(of)


leaf_blocks = typed_blocks(
    st.sampled_from([{"type": "relu"}, {"type": "linear", "out_features": 4}])
)
values = st.recursive(
    leaf_blocks | leaf_blocks | leaf_blocks | scalars | blocks(scalars),
    lambda inner: (
        typed_blocks(inner)
        | typed_blocks(inner)
        | typed_blocks(inner)
        | typed_blocks(inner)
        | st.lists(inner, max_size=4)
        | st.dictionaries(keys, inner, max_size=4)
        | blocks(inner)
    ),
    max_leaves=25,
)


@st.composite
def deep(draw):
    """A value wrapped in up to 3,000 levels of sequentials, lists or repeats."""
    leaf, depth = draw(values), draw(st.integers(0, 3_000))
    wrap = draw(st.sampled_from(["sequential", "list", "repeat", "dict"]))
    for _ in range(depth):
        if wrap == "sequential":
            leaf = {"type": "sequential", "children": [leaf]}
        elif wrap == "repeat":
            leaf = {"type": "repeat", "times": 2, "block": leaf}
        elif wrap == "list":
            leaf = [leaf]
        else:
            leaf = {"block": leaf}
    return leaf


def only_explorer_errors(call, *args) -> None:
    with contextlib.suppress(ExplorerError):
        call(*args)


CHECKS = settings(
    max_examples=300,
    deadline=1000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@CHECKS
@given(spec=values | deep() | st.dictionaries(st.integers() | st.text(), values, max_size=3))
def test_validate_and_build_raise_only_explorer_errors(spec):
    """validate and build on any value raise an ExplorerError or succeed, within a second."""
    only_explorer_errors(validate, spec, SMALL)
    only_explorer_errors(build, spec, SMALL)


def as_text(value) -> str:
    try:
        return json.dumps(value)
    except (ValueError, RecursionError):  # a number too long for text, or nesting too deep
        return "[" * 10_000


@CHECKS
@given(
    text=st.builds(as_text, values | deep())
    | st.text(max_size=200)
    | st.builds(
        lambda n: '{"type": "linear", "out_features": ' + "9" * n + "}", st.integers(0, 6000)
    )
    | st.builds(lambda n: "[" * n + "]" * n, st.integers(0, 20_000))
    | st.builds(lambda n: "{" * n, st.integers(0, 20_000))
)
def test_from_json_raises_only_explorer_errors(text):
    """from_json on any text raises an ExplorerError or returns a valid spec, within a second."""
    only_explorer_errors(from_json, text, SMALL)
