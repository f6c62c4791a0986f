"""What the tree and tables show: ids, highlights, badges and filters."""

import torch
from torch import nn

import explorer
from explorer.view import name_of, param_id, parameter_rows, related_ids, tree_rows
from tests.models import chapter_mlp, tied_net


def tied_tree():
    return explorer.inspect(tied_net())


def test_param_ids_round_trip():
    """A parameter name maps to a tree id and back, root parameters included."""
    for name in ["0.1.0.bias", "weight", "a.b.weight"]:
        assert name_of(param_id(name)) == name
    assert name_of("0.1") is None


def test_selecting_a_tied_weight_highlights_its_alias():
    """Selecting 2.weight highlights 4.weight and nothing else."""
    assert related_ids(tied_tree(), "2/weight") == {"4/weight"}


def test_selecting_a_reused_block_highlights_the_other_place():
    """Selecting block 2 highlights block 4, the same module."""
    assert related_ids(tied_tree(), "2") == {"4"}


def test_tree_rows_badge_tied_parameters_with_a_group_letter():
    """Both aliases carry the same group badge; untied parameters carry none."""
    rows = {r["id"]: r for r in tree_rows(tied_tree(), selected="2/weight")}
    assert rows["2/weight"]["badge"] == rows["4/weight"]["badge"] == "tied B"
    assert rows["4/weight"]["highlight"] and not rows["0/weight"]["highlight"]
    assert rows["0/weight"]["badge"] == ""


def test_lazy_parameters_show_question_marks():
    """Before the first forward a lazy parameter's detail is '?'."""
    rows = tree_rows(explorer.inspect(nn.Sequential(nn.LazyLinear(8))))
    assert rows[-1]["detail"].startswith("?")


def test_filter_keeps_matching_parameters_and_their_blocks():
    """A '.*weight' filter keeps weights and the blocks above them, no biases."""
    ids = [r["id"] for r in tree_rows(tied_tree(), pattern=".*weight")]
    assert ids == ["", "0", "0/weight", "2", "2/weight", "4", "4/weight", "6", "6/weight"]


def test_output_shapes_appear_on_blocks_after_a_run():
    """After a run each block shows its output shape."""
    tree = tied_tree()
    rows = {r["id"]: r for r in tree_rows(tree, output_shapes={"0": (2, 8)})}
    assert rows["0"]["detail"] == "40 params · out (2, 8)"


def test_big_trees_start_collapsed_below_the_first_level():
    """A 500-layer model's rows are collapsed beyond depth 1."""
    net = nn.Sequential(*[nn.Sequential(nn.Linear(2, 2)) for _ in range(500)])
    rows = tree_rows(explorer.inspect(net))
    assert rows[0]["expanded"] and not any(r["expanded"] for r in rows if r["depth"] >= 1)


def test_parameter_rows_of_a_block_give_state_dict_keys():
    """Block 2's table lists weight and bias under their local keys, as net[2].state_dict()."""
    net = chapter_mlp()
    rows = parameter_rows(explorer.inspect(net), block="2")
    assert [r["local key"] for r in rows] == list(net[2].state_dict())
    assert rows[1]["access"] == "net[2].bias"
    assert rows[0]["shape"] == str(tuple(torch.Size([1, 8])))
