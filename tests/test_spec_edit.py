"""Spec edits for the builder: each returns a new, valid spec and leaves its input alone."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.errors import SpecError
from explorer.core.frozen import FrozenDict, freeze
from explorer.spec.edit import (
    KINDS,
    block_of_error,
    del_field,
    get,
    insert,
    move,
    names,
    new_block,
    outline,
    parse_path,
    path_str,
    remove,
    rename,
    replace,
    set_field,
    unwrap,
    wrap,
)
from explorer.spec.presets import PRESETS
from explorer.spec.validate import validate

MLP = PRESETS["mlp"].spec
RGNET = PRESETS["rgnet"].spec
TIED = PRESETS["tied"].spec
TIED_LM = PRESETS["tied_lm"].spec
INNER = ("children", 0, "block")  # rgnet's block1


def types(spec):
    return [c["type"] for c in spec["children"]]


def test_get_reaches_a_nested_block():
    """get follows children and a repeat's block to rgnet[0][i][2]."""
    assert get(RGNET, (*INNER, "children", 2)) == {
        "type": "linear",
        "out_features": 4,
        "in_features": 8,
    }


def test_get_of_a_missing_path_names_it():
    """get of a path that is not in the spec raises a SpecError naming the path."""
    with pytest.raises(SpecError, match=r"^children\[5\]: there is no block here$"):
        get(MLP, ("children", 5))


def test_replace_swaps_one_block():
    """replace puts the new block at the path and leaves its siblings."""
    new = replace(MLP, ("children", 1), {"type": "tanh"})
    assert types(new) == ["linear", "tanh", "linear"]


def test_replace_at_the_root_returns_the_block():
    """replace at () gives the new block itself."""
    assert replace(MLP, (), {"type": "relu"}) == {"type": "relu"}


def test_insert_adds_a_child_at_the_index():
    """insert places the block before the child at that index."""
    new = insert(MLP, (), 1, {"type": "dropout", "p": 0.5})
    assert types(new) == ["linear", "dropout", "relu", "linear"]


def test_insert_past_the_end_appends():
    """An index past the end is clamped, so the block goes last."""
    new = insert(MLP, (), 99, {"type": "tanh"})
    assert types(new) == ["linear", "relu", "linear", "tanh"]


def test_insert_into_a_nested_sequential():
    """insert reaches a sequential inside a repeat."""
    new = insert(RGNET, INNER, 4, {"type": "tanh"})
    assert types(get(new, INNER)) == ["linear", "relu", "linear", "relu", "tanh"]


def test_insert_into_a_repeat_is_refused():
    """A repeat holds one block; inserting into it raises a SpecError at the repeat."""
    with pytest.raises(SpecError, match=r"^children\[0\]: a repeat holds exactly one block"):
        insert(RGNET, ("children", 0), 0, {"type": "relu"})


def test_insert_into_a_leaf_is_refused():
    """Only a sequential has children."""
    with pytest.raises(SpecError, match="only a sequential has children"):
        insert(MLP, ("children", 0), 0, {"type": "relu"})


def test_remove_drops_the_child():
    """remove deletes the block and closes the gap."""
    assert types(remove(MLP, ("children", 1))) == ["linear", "linear"]


def test_remove_of_the_root_is_refused():
    """The root cannot be removed."""
    with pytest.raises(SpecError, match="^cannot remove the root block$"):
        remove(MLP, ())


def test_remove_of_a_repeats_block_is_refused():
    """A repeat needs its block; removing it raises a SpecError at that block."""
    with pytest.raises(SpecError, match=r"^children\[0\]\.block: cannot remove a repeat's block"):
        remove(RGNET, INNER)


def test_remove_of_a_reused_block_is_refused():
    """Removing the block a shared ref reuses names the reuse, at the removed block's name."""
    with pytest.raises(
        SpecError,
        match=r"^children\[2\]\.name: block 'shared' is reused at "
        r"children\[4\]; remove that reuse first$",
    ):
        remove(TIED, ("children", 2))


def test_remove_of_a_tied_to_block_is_refused():
    """Removing an embedding that another layer ties its weight to is refused."""
    with pytest.raises(SpecError, match=r"block 'embed' is reused at children\[3\]"):
        remove(TIED_LM, ("children", 0))


def test_remove_of_a_block_with_its_own_reuse_inside_is_allowed():
    """A named block and its reuse removed together leave a valid spec."""
    spec = {
        "type": "sequential",
        "children": [
            {
                "type": "sequential",
                "children": [
                    {"type": "linear", "out_features": 2, "name": "a"},
                    {"type": "shared", "ref": "a"},
                ],
            },
            {"type": "relu"},
        ],
    }
    assert remove(spec, ("children", 0)) == {"type": "sequential", "children": [{"type": "relu"}]}


def test_move_swaps_with_the_next_sibling():
    """move by +1 swaps a child with the one after it."""
    assert types(move(MLP, ("children", 0), 1)) == ["relu", "linear", "linear"]


def test_move_is_clamped_at_the_ends():
    """Moving the first child up leaves the order unchanged."""
    assert move(MLP, ("children", 0), -1) == MLP


def test_wrap_in_sequential_nests_the_block():
    """wrap "sequential" makes the block the only child of a new sequential."""
    new = wrap(MLP, ("children", 0), "sequential")
    assert new["children"][0] == {"type": "sequential", "children": [MLP["children"][0]]}


def test_wrap_in_repeat_makes_two_copies():
    """wrap "repeat" makes the block the block of a new repeat with times 2."""
    new = wrap(MLP, ("children", 2), "repeat")
    assert new["children"][2] == {"type": "repeat", "times": 2, "block": MLP["children"][2]}


def test_wrap_in_repeat_drops_unused_names():
    """A name nobody reuses is dropped, since blocks inside a repeat cannot be named."""
    spec = set_field(MLP, ("children", 0), "name", "hidden")
    new = wrap(spec, ("children", 0), "repeat")
    assert new["children"][0]["block"] == {"type": "linear", "out_features": 8}
    validate(new)


def test_wrap_in_repeat_refuses_a_reused_name():
    """A name that a shared block reuses is refused, naming where it is."""
    with pytest.raises(SpecError, match=r"^children\[2\]\.name: block 'shared' is reused"):
        wrap(TIED, ("children", 2), "repeat")


def test_wrap_of_another_kind_is_refused():
    """Only sequential and repeat can wrap a block."""
    with pytest.raises(SpecError, match="not 'linear'"):
        wrap(MLP, ("children", 0), "linear")


def test_unwrap_a_repeat_gives_its_block():
    """unwrap of rgnet's repeat puts block1 in its place."""
    assert unwrap(RGNET, ("children", 0))["children"][0] == get(RGNET, INNER)


def test_unwrap_a_one_child_sequential_gives_the_child():
    """unwrap undoes wrap "sequential"."""
    nested = wrap(MLP, ("children", 1), "sequential")
    assert unwrap(nested, ("children", 1)) == MLP


def test_unwrap_moves_the_wrappers_name_to_the_child():
    """The name of an unwrapped sequential goes to its child, so refs still resolve."""
    nested = {"type": "sequential", "name": "body", "children": [{"type": "relu"}]}
    assert unwrap(nested, ()) == {"type": "relu", "name": "body"}


def test_unwrap_of_a_sequential_with_several_children_is_refused():
    """A sequential with more than one child cannot be unwrapped."""
    with pytest.raises(SpecError, match="^only a sequential with one child, or a repeat"):
        unwrap(MLP, ())


def test_set_field_sets_one_field():
    """set_field changes out_features of the last layer."""
    assert get(set_field(MLP, ("children", 2), "out_features", 3), ("children", 2)) == {
        "type": "linear",
        "out_features": 3,
    }


def test_del_field_removes_one_field():
    """del_field of in_features makes the layer lazy again."""
    new = del_field(RGNET, ("children", 1), "in_features")
    assert get(new, ("children", 1)) == {"type": "linear", "out_features": 1}


def test_del_field_of_an_absent_field_changes_nothing():
    """Deleting a field that is not there returns an equal spec."""
    assert del_field(MLP, ("children", 0), "bias") == MLP


def test_rename_follows_shared_refs():
    """Renaming a reused block renames the shared ref too, so the spec stays valid."""
    new = rename(TIED, ("children", 2), "middle")
    assert (new["children"][2]["name"], new["children"][4]["ref"]) == ("middle", "middle")
    validate(new)


def test_rename_follows_ties():
    """Renaming a tied-to block renames the tie target too."""
    new = rename(TIED_LM, ("children", 0), "tokens")
    assert new["children"][3]["tie"] == {"weight": "tokens.weight"}


def test_rename_to_nothing_removes_the_name():
    """An empty name removes the field."""
    assert "name" not in rename(TIED, ("children", 2), "")["children"][2]


def test_names_lists_named_blocks_in_order():
    """names gives every named block, for reuse and tie pickers."""
    spec = set_field(TIED, (), "name", "net")
    assert names(spec) == ["net", "shared"]


def test_path_str_writes_spec_paths():
    """Steps become the text SpecError uses."""
    assert path_str(("children", 0, "block", "children", 1, "ref")) == (
        "children[0].block.children[1].ref"
    )


def test_path_str_of_the_root_is_empty():
    """The root path is the empty string."""
    assert path_str(()) == ""


def test_parse_path_inverts_path_str():
    """parse_path reads back what path_str wrote."""
    path = ("children", 0, "block", "children", 12, "tie", "weight")
    assert parse_path(path_str(path)) == path


def test_parse_path_refuses_garbage():
    """Text that is not a spec path raises a SpecError."""
    with pytest.raises(SpecError, match="not a spec path"):
        parse_path("children[x]")


def test_block_of_error_finds_the_field_owner():
    """A field error belongs to the block that holds the field."""
    assert block_of_error(RGNET, "children[0].block.children[2].out_features") == (
        *INNER,
        "children",
        2,
    )


def test_block_of_error_of_a_tie_is_the_tying_layer():
    """An error inside tie.weight belongs to the layer with the tie."""
    assert block_of_error(TIED_LM, "children[3].tie.weight") == ("children", 3)


def test_block_of_error_of_a_missing_child_is_its_parent():
    """A path past the existing children stops at the deepest block that exists."""
    assert block_of_error(RGNET, "children[0].block.children[9].ref") == INNER


def test_block_of_error_of_a_non_spec_path_is_the_root():
    """Errors about other fields (input_shape) or with no path belong to the root."""
    assert (block_of_error(MLP, "input_shape"), block_of_error(MLP, "")) == ((), ())


def test_outline_of_rgnet_in_pre_order():
    """The outline lists rgnet's blocks depth first, with keys as PyTorch prints them."""
    rows = outline(RGNET)
    assert [(r.depth, r.label, r.type) for r in rows] == [
        (0, "", "sequential"),
        (1, "0", "repeat"),
        (2, "block 0–3", "sequential"),
        (3, "0", "linear"),
        (3, "1", "relu"),
        (3, "2", "linear"),
        (3, "3", "relu"),
        (1, "1", "linear"),
    ]


def test_outline_marks_blocks_inside_a_repeat():
    """Rows inside a repeat say so, because they cannot be named."""
    assert [r.in_repeat for r in outline(RGNET)] == [
        False,
        False,
        True,
        True,
        True,
        True,
        True,
        False,
    ]


def test_outline_summaries_are_one_line():
    """Each summary states the block's key numbers."""
    assert [r.summary for r in outline(TIED_LM)] == [
        "sequential, 4 children",
        "embedding 50 × 16",
        "linear 16 → 16, bias",
        "tanh",
        "linear 16 → 50, no bias, weight tied to embed.weight",
    ]


def test_outline_shows_names_and_lazy_inputs():
    """A named lazy linear shows its name and ? for the unknown input size."""
    row = outline(TIED)[3]
    assert (row.name, row.summary) == ("shared", "linear ? → 8, bias")


def test_new_block_defaults():
    """New blocks start with the registry's example values; defaults stay implicit."""
    assert [
        new_block(k)
        for k in ("linear", "conv2d", "embedding", "layernorm", "dropout", "repeat", "sequential")
    ] == [
        {"type": "linear", "out_features": 8},
        {"type": "conv2d", "out_channels": 4, "padding": 1},
        {"type": "embedding", "num_embeddings": 50, "embedding_dim": 16},
        {"type": "layernorm", "normalized_shape": 8},
        {"type": "dropout"},
        {"type": "repeat", "times": 2, "block": {"type": "linear", "out_features": 8}},
        {"type": "sequential", "children": []},
    ]


def test_every_new_block_is_valid():
    """Each kind the builder offers validates on its own."""
    for kind in KINDS:
        validate(new_block(kind))


def test_new_shared_block_needs_a_ref():
    """A shared block without a ref is refused; with one it reuses that name."""
    assert new_block("shared", ref="shared") == {"type": "shared", "ref": "shared"}
    with pytest.raises(SpecError, match="needs the name"):
        new_block("shared")


def test_new_block_of_an_unknown_kind_is_refused():
    """Unknown kinds raise a SpecError listing the known ones."""
    with pytest.raises(SpecError, match="unknown block type 'lstm'"):
        new_block("lstm")


_EDIT = st.one_of(
    st.tuples(st.just("insert"), st.integers(-2, 12), st.sampled_from(KINDS)),
    st.tuples(st.just("remove"), st.integers(0, 12), st.none()),
    st.tuples(st.just("move"), st.integers(0, 12), st.integers(-3, 3)),
)


@settings(max_examples=200, deadline=None)
@given(edits=st.lists(_EDIT, max_size=12), preset=st.sampled_from(["mlp", "tied", "rgnet"]))
def test_random_edits_keep_the_spec_valid_and_the_input_untouched(edits, preset):
    """Any sequence of insert/remove/move on the root gives valid specs and mutates nothing."""
    spec = copy.deepcopy(PRESETS[preset].spec)
    for op, index, arg in edits:
        before = copy.deepcopy(spec)
        n = len(spec["children"])
        if op == "insert":
            new = insert(spec, (), index, new_block(arg))
        elif n == 0:
            continue
        elif op == "remove":
            try:
                new = remove(spec, ("children", index % n))
            except SpecError as err:  # only a reused block may refuse
                assert "is reused at" in err.reason
                continue
        else:
            new = move(spec, ("children", index % n), arg)
        assert spec == before
        validate(new)
        spec = new


def _plain(value) -> bool:
    """Whether a value is plain JSON data: dicts and lists all the way down, nothing frozen."""
    if isinstance(value, FrozenDict | tuple):
        return False
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return True


FROZEN_EDITS = {
    "replace": lambda s: replace(s, ("children", 0, "block", "children", 1), {"type": "tanh"}),
    "insert": lambda s: insert(s, ("children", 0, "block"), 0, {"type": "relu"}),
    "remove": lambda s: remove(s, ("children", 1)),
    "move": lambda s: move(s, ("children", 1), -1),
    "wrap sequential": lambda s: wrap(s, ("children", 1), "sequential"),
    "wrap repeat": lambda s: wrap(s, ("children", 1), "repeat"),
    "unwrap": lambda s: unwrap(s, ("children", 0)),
    "set_field": lambda s: set_field(s, ("children", 1), "bias", False),
    "del_field": lambda s: del_field(s, ("children", 1), "in_features"),
    "rename": lambda s: rename(s, ("children", 1), "head"),
    "replace root": lambda s: replace(s, (), s),
}


@pytest.mark.parametrize("edit", FROZEN_EDITS.values(), ids=FROZEN_EDITS.keys())
def test_an_edit_of_a_frozen_spec_returns_a_new_plain_spec(edit):
    """Each edit accepts a frozen spec and returns plain dicts and lists, as from a plain spec."""
    frozen = freeze(RGNET)
    new = edit(frozen)
    assert new == edit(copy.deepcopy(RGNET))
    assert _plain(new)
    assert frozen == freeze(RGNET)
    validate(new)


@pytest.mark.parametrize("edit", FROZEN_EDITS.values(), ids=FROZEN_EDITS.keys())
def test_an_edit_shares_nothing_with_its_input(edit):
    """Changing the result of an edit deep inside leaves the input spec as it was."""
    spec = copy.deepcopy(RGNET)
    new = edit(spec)
    for row in outline(new):
        get(new, row.path)["touched"] = True
    assert spec == RGNET


def test_reading_a_frozen_spec_works_like_a_plain_one():
    """get, names, outline and block_of_error read FrozenDicts and tuples."""
    frozen = freeze(TIED_LM)
    assert outline(frozen) == outline(TIED_LM)
    assert names(frozen) == ["embed"]
    assert get(frozen, ("children", 3, "tie")) == {"weight": "embed.weight"}
    assert block_of_error(freeze(RGNET), "children[0].block.children[2].out_features") == (
        *INNER,
        "children",
        2,
    )


KEYED = {
    "type": "sequential",
    "children": [
        {"type": "linear", "out_features": 8, "key": "hidden"},
        {"type": "relu"},
        {"type": "repeat", "times": 4, "key_format": "block {i}", "block": {"type": "relu"}},
    ],
}


def test_outline_labels_are_the_keys_pytorch_prints():
    """A keyed child is labelled with its key; a repeat's copies with their key format."""
    assert [r.label for r in outline(KEYED)] == ["", "hidden", "1", "2", "block 0–3"]
    assert [r.keyed for r in outline(KEYED)] == [False, True, True, True, False]


def test_wrap_moves_the_key_to_the_wrapper():
    """Nesting a keyed child keeps the key at its place: the new wrapper carries it."""
    for kind in ("sequential", "repeat"):
        new = wrap(KEYED, ("children", 0), kind)
        assert new["children"][0]["key"] == "hidden"
        assert "key" not in get(
            new, ("children", 0, *(("children", 0) if kind == "sequential" else ("block",)))
        )
        validate(new)


def test_unwrap_gives_the_wrappers_key_to_its_block():
    """Unwrapping a keyed sequential puts its only child in its place, under its key."""
    spec = wrap(KEYED, ("children", 0), "sequential")
    assert unwrap(spec, ("children", 0)) == KEYED
    inner_keyed = set_field(spec, ("children", 0, "children", 0), "key", "inner")
    assert unwrap(inner_keyed, ("children", 0))["children"][0]["key"] == "hidden"
