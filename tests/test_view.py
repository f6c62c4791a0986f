"""What the tree and tables show: ids, structured rows, badges, counts, and only visible rows."""

import json

import pytest
import torch
from torch import nn

import explorer
from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS
from tests.models import OverlappingViews, chapter_mlp, lazy_mlp, rgnet, tied_net
from ui.tree_rows import (
    TreeView,
    compile_filter,
    count_text,
    name_of,
    param_id,
    parameter_rows,
    related_ids,
    tree_rows,
    treemap_rows,
)


def tied_tree():
    return explorer.inspect(tied_net())


def wide_tree(blocks: int):
    """A Sequential of ``blocks`` Linear(8, 8) on the meta device: structure without values."""
    with torch.device("meta"):
        return explorer.inspect(nn.Sequential(*(nn.Linear(8, 8) for _ in range(blocks))))


def by_id(rows):
    return {r["id"]: r for r in rows}


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


def test_rows_carry_structured_fields_not_joined_strings():
    """A block row has its name and type apart; the hover title is the full path."""
    rows = by_id(tree_rows(explorer.inspect(rgnet(), root_name="rgnet")))
    row = rows["0.block 1.0"]
    assert (row["name"], row["type"], row["kind"]) == ("0", "Linear", "block")
    assert row["title"] == "0.block 1.0 · Linear"
    assert (rows[""]["name"], rows[""]["type"]) == ("rgnet", "Sequential")
    assert (rows["0.block 1.0/bias"]["name"], rows["0.block 1.0/bias"]["title"]) == (
        "bias",
        "0.block 1.0.bias",
    )


def test_tree_rows_badge_tied_parameters_with_a_group_letter():
    """Both aliases carry the same group badge; untied parameters carry none."""
    rows = by_id(tree_rows(tied_tree(), selected="2/weight"))
    assert rows["2/weight"]["badge"] == rows["4/weight"]["badge"] == "tied B"
    assert rows["4/weight"]["highlight"] and not rows["0/weight"]["highlight"]
    assert rows["0/weight"]["badge"] == ""


def test_badges_and_the_tied_groups_box_use_the_same_letters_past_26_groups():
    """Group 27's badge is 'tied AA' wherever it is shown (it was 'A1' and 'A' before)."""
    shared = [nn.Linear(1, 1, bias=False) for _ in range(27)]
    tree = explorer.inspect(nn.Sequential(*shared, *shared))
    rows = by_id(tree_rows(tree))
    last = sorted(tree.tied_groups, key=sorted)[26]
    assert {rows[param_id(name)]["badge"] for name in last} == {"tied AA"}
    assert {tree.group_labels[name] for name in last} == {"AA"}


def test_overlapping_views_are_badged():
    """a and b = a[:4] carry an 'overlaps' badge whose title names the other."""
    rows = by_id(tree_rows(explorer.inspect(OverlappingViews())))
    assert rows["/a"]["badge"] == rows["/b"]["badge"] == "overlaps"
    assert rows["/b"]["title"] == "b · shares memory with a"


def test_root_count_is_what_parameters_counts():
    """The tied net's root says 121 params, as parameters() does, and the 72 via aliases."""
    net = tied_net()
    row = by_id(tree_rows(explorer.inspect(net)))[""]
    assert sum(p.numel() for p in net.parameters()) == 121
    assert row["detail"] == "121 params (+72 via aliases)"
    assert by_id(tree_rows(explorer.inspect(net)))["4"]["detail"] == "72 params"


def test_lazy_counts_show_question_marks():
    """Before the first forward lazy blocks count '?', not 0, and lazy shapes are '?'."""
    tree = explorer.inspect(lazy_mlp())
    rows = by_id(tree_rows(tree))
    assert rows[""]["detail"] == rows["0"]["detail"] == "? params"
    assert rows["0/weight"]["detail"].startswith("?")
    assert count_text(tree, "1") == "0 params"


def test_filter_keeps_matching_parameters_and_their_blocks():
    """A '.*weight' filter keeps weights and the blocks above them, no biases."""
    ids = [r["id"] for r in tree_rows(tied_tree(), pattern=".*weight")]
    assert ids == ["", "0", "0/weight", "2", "2/weight", "4", "4/weight", "6", "6/weight"]


def test_output_shapes_appear_on_blocks_after_a_run():
    """After a run each block shows its output shape."""
    rows = by_id(tree_rows(tied_tree(), output_shapes={"0": (2, 8)}))
    assert rows["0"]["detail"] == "40 params · out (2, 8)"


def test_small_trees_open_fully():
    """The tied net (16 rows) is sent whole, every block open."""
    rows = tree_rows(tied_tree())
    assert len(rows) == 8 + 8
    assert all(r["open"] for r in rows if r["children"])


def test_large_trees_send_the_root_and_a_first_page_of_children():
    """5,000 blocks: the root, its first 100 children (closed) and one 'show more' row."""
    rows = tree_rows(wide_tree(5000))
    assert [r["kind"] for r in rows] == ["block"] + ["block"] * 100 + ["more"]
    assert rows[0]["open"] and not any(r["open"] for r in rows[1:])
    assert rows[-1]["id"] == ".more:" and rows[-1]["detail"] == "4,900 hidden"
    assert rows[-1]["next"] == {"first": "0", "shown": 200}
    assert len(json.dumps(rows)) < 40_000


def test_opening_a_block_sends_its_children():
    """After the browser says block 7 is open, its weight and bias rows are sent."""
    rows = tree_rows(wide_tree(500), view=TreeView(open={"7": True}))
    ids = [r["id"] for r in rows]
    assert ids[ids.index("7") : ids.index("7") + 3] == ["7", "7/weight", "7/bias"]
    assert len(rows) == 1 + 100 + 2 + 1


def test_closing_the_root_sends_one_row():
    """A closed root is the only row."""
    rows = tree_rows(tied_tree(), view=TreeView(open={"": False}))
    assert [r["id"] for r in rows] == [""]


def test_show_more_pages_further():
    """Asking for 200 children of the root sends 200 and says how many are left."""
    rows = tree_rows(wide_tree(500), view=TreeView(shown={"": 200}))
    assert len(rows) == 1 + 200 + 1 and rows[-1]["detail"] == "300 hidden"


def test_selection_deep_in_a_large_tree_is_opened_in_a_page_around_it():
    """Selecting 250/weight opens block 250 and sends one page of the root's children around it."""
    rows = tree_rows(wide_tree(500), selected="250/weight")
    ids = [r["id"] for r in rows]
    assert "250/weight" in ids and by_id(rows)["250"]["open"]
    blocks = [r["id"] for r in rows if r["kind"] == "block" and r["id"]]
    assert blocks == [str(i) for i in range(200, 300)]
    assert ids[1] == ".earlier:" and by_id(rows)[".earlier:"]["detail"] == "200 hidden"
    assert ids[-1] == ".more:" and by_id(rows)[".more:"]["detail"] == "200 hidden"


def test_a_selection_at_the_end_of_5000_blocks_sends_what_a_first_one_does():
    """The last block's weight costs a page of rows, as the first block's does, not 5,000."""
    tree = wide_tree(5000)
    first = tree_rows(tree, selected="0/weight")
    last = tree_rows(tree, selected="4999/weight")
    assert "4999/weight" in [r["id"] for r in last]
    assert len(last) == len(first) == 1 + 100 + 2 + 1
    assert len(json.dumps(last)) < 40_000


def test_a_click_inside_the_page_around_a_selection_keeps_that_page():
    """After 250/weight brought blocks 200 to 299, clicking 220 or 205 leaves them in place."""
    tree = wide_tree(500)

    def blocks(selected):
        return [r["id"] for r in tree_rows(tree, selected=selected) if r["kind"] == "block"]

    assert blocks("220/weight") == blocks("205") == blocks("250/weight")


def test_a_window_paged_without_a_filter_hides_no_match_of_one():
    """The browser's window starts at a child's id: a filter that drops that child starts
    its list at the top, so no match is hidden above 'show earlier'."""
    tree = wide_tree(500)
    view = TreeView(first={"": "300"}, shown={"": 100})
    pattern = r"(1[0-4][0-9]|[0-9][0-9]?)\.weight"  # blocks 0 to 149
    rows = tree_rows(tree, view=view, pattern=pattern)
    blocks = [r["id"] for r in rows if r["kind"] == "block" and r["id"]]
    assert blocks == [str(i) for i in range(100)] and ".earlier:" not in by_id(rows)
    kept = tree_rows(tree, view=TreeView(first={"": "120"}), pattern=pattern)
    assert [r["id"] for r in kept if r["kind"] == "block"][1] == "120"


def test_paging_rows_never_share_an_id_with_a_block():
    """A block may be keyed "/" and hold one keyed "earlier": its path "/.earlier" is not
    the id of any paging row, so every row's id is unique."""
    net = nn.Sequential(*(nn.Linear(2, 2) for _ in range(150)))
    net.add_module("/", nn.ModuleDict({"earlier": nn.Linear(2, 2), "more": nn.Linear(2, 2)}))
    rows = tree_rows(explorer.inspect(net), selected="/.earlier/weight")
    ids = [r["id"] for r in rows]
    assert "/.earlier" in ids and ".earlier:" in ids
    assert len(ids) == len(set(ids))


def test_show_earlier_pages_back_and_keeps_the_selection_on_screen():
    """The 'show earlier' row's next view adds a page above; the selection stays sent."""
    tree = wide_tree(500)
    earlier = by_id(tree_rows(tree, selected="250/weight"))[".earlier:"]
    assert earlier["name"] == "show 100 earlier"
    view = TreeView(first={"": earlier["next"]["first"]}, shown={"": earlier["next"]["shown"]})
    rows = tree_rows(tree, view=view, selected="250/weight")
    ids = [r["id"] for r in rows]
    blocks = [r["id"] for r in rows if r["kind"] == "block" and r["id"]]
    assert blocks == [str(i) for i in range(100, 300)] and "250/weight" in ids


def test_show_more_after_a_window_keeps_its_start():
    """'show more' under a window around the selection extends it downward from the same start."""
    tree = wide_tree(500)
    more = by_id(tree_rows(tree, selected="250/weight"))[".more:"]
    assert more["next"] == {"first": "200", "shown": 200}
    view = TreeView(first={"": "200"}, shown={"": 200})
    blocks = [r["id"] for r in tree_rows(tree, view=view) if r["kind"] == "block" and r["id"]]
    assert blocks == [str(i) for i in range(200, 400)]


def test_a_block_the_user_closed_stays_closed_around_the_selection():
    """The user's choice wins over opening the selection's ancestors."""
    rows = by_id(tree_rows(tied_tree(), selected="2/weight", view=TreeView(open={"2": False})))
    assert "2/weight" not in rows and not rows["2"]["open"]


def test_tree_view_from_the_browser_ignores_malformed_entries():
    """Only boolean-ish open flags, positive whole page sizes and child ids are taken."""
    view = TreeView.from_json(
        {
            "open": {"1": True, "2": 0},
            "shown": {"": 200, "x": "no"},
            "first": {"": "100", "y": -3, "z": None},
        }
    )
    assert view == TreeView(open={"1": True, "2": False}, shown={"": 200}, first={"": "100"})
    assert TreeView.from_json(["not", "a", "dict"]) == TreeView()


def test_treemap_rows_stay_within_the_node_budget():
    """5,000 blocks make one box for the root, holding every element."""
    tree = explorer.inspect(nn.Sequential(*(nn.Linear(2, 2) for _ in range(5000))))
    rows = treemap_rows(tree)
    assert len(rows) <= DEFAULT_LIMITS.treemap_nodes
    assert sum(r["value"] for r in rows) == 5000 * 6


def test_treemap_rows_of_a_small_model_list_every_parameter():
    """The tied net's treemap has every block and parameter name, each name once."""
    rows = treemap_rows(tied_tree())
    assert sorted(r["id"] for r in rows if r["kind"] == "param") == sorted(
        param_id(n) for n in tied_tree().params
    )
    assert sum(r["value"] for r in rows) == 193


def test_parameter_rows_of_a_block_give_state_dict_keys():
    """Block 2's table lists weight and bias under their local keys, as net[2].state_dict()."""
    net = chapter_mlp()
    rows = parameter_rows(explorer.inspect(net), block="2")
    assert [r["local key"] for r in rows] == list(net[2].state_dict())
    assert rows[1]["access"] == "net[2].bias"
    assert rows[0]["shape"] == str(tuple(torch.Size([1, 8])))


def test_filter_refuses_what_re2_cannot_run():
    """A lookahead filter is refused with the reason, before any name is matched."""
    assert compile_filter(".*weight") == ".*weight" and compile_filter("") is None
    with pytest.raises(SpecError) as refused:
        compile_filter("(?=x).*")
    assert str(refused.value).startswith("filter: not supported: lookahead")


def test_a_filter_keeping_many_rows_opens_like_a_large_tree():
    """'.*weight' on 500 blocks keeps 1,001 rows: only the root opens, one page of blocks."""
    rows = tree_rows(wide_tree(500), pattern=".*weight")
    assert len(rows) == 1 + 100 + 1 and not any(r["open"] for r in rows[1:])
    assert rows[1]["children"] == 1  # the bias is filtered out
