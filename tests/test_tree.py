"""ParamTree: structure, tied groups by identity and storage, access paths, stats and counts."""

import pytest
import torch
from torch import nn

import explorer
from tests.models import (
    OverlappingViews,
    TiedLM,
    TiedWeights,
    batchnorm_net,
    chapter_mlp,
    deepcopied_layer,
    lazy_mlp,
    rgnet,
    spaced_blocks,
    tied_net,
)


def test_tree_mirrors_the_module_structure():
    """Nodes carry paths and types, and parameters are leaves with shape and dtype."""
    tree = explorer.inspect(chapter_mlp())
    assert [(n.path, n.type) for n in tree.root.walk()] == [
        ("", "Sequential"),
        ("0", "Linear"),
        ("1", "ReLU"),
        ("2", "Linear"),
    ]
    bias = tree.params["2.bias"]
    assert (bias.shape, bias.dtype, bias.numel, bias.block) == ((1,), "float32", 1, "2")


def test_tied_groups_of_the_chapters_shared_layer():
    """The shared layer's weight and bias each form a group of two names."""
    assert explorer.inspect(tied_net()).tied_groups == [
        {"2.bias", "4.bias"},
        {"2.weight", "4.weight"},
    ]


def test_attribute_tie_is_a_group():
    """Assigning one layer's Parameter to another layer ties them."""
    assert explorer.inspect(TiedWeights()).tied_groups == [{"a.weight", "b.weight"}]


def test_deepcopied_layer_is_not_tied():
    """A deepcopy has equal values but its own storage, so it is not a tied group."""
    assert explorer.inspect(deepcopied_layer()).tied_groups == []


def test_sharing_by_storage_is_detected():
    """Two Parameters viewing the same storage are tied even though they are different objects."""
    net = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False))
    net[1].weight = nn.Parameter(net[0].weight.data)  # new Parameter object, same storage
    assert net[1].weight is not net[0].weight
    assert explorer.inspect(net).tied_groups == [{"0.weight", "1.weight"}]


def test_editing_one_alias_shows_through_the_other():
    """net[2].weight.data[0, 0] = 100 is visible at net[4], as the chapter checks."""
    net = tied_net()
    net[2].weight.data[0, 0] = 100
    tree = explorer.inspect(net)
    assert tree.tensor("4.weight")[0, 0].item() == 100


def test_rgnet_access_paths_index_like_the_chapter():
    """rgnet[0][1][0].bias reaches the first layer's bias of the second block."""
    tree = explorer.inspect(rgnet(), root_name="rgnet")
    assert tree.access_path("0.block 1.0.bias") == "rgnet[0][1][0].bias"
    assert tree.access_path("1.weight") == "rgnet[1].weight"


def test_access_path_of_named_submodules_uses_attributes():
    """A custom module's children are reached by attribute."""
    assert explorer.inspect(TiedWeights()).access_path("b.weight") == "net.b.weight"


def test_select_filters_names_with_a_full_match_regex():
    """select('.*weight') keeps only weights, like Gluon's collect_params."""
    tree = explorer.inspect(chapter_mlp())
    assert tree.select(".*weight") == ["0.weight", "2.weight"]
    with pytest.raises(explorer.SpecError, match="not a valid regular expression"):
        tree.select("(")


def test_lazy_parameters_are_uninitialized_before_the_first_forward():
    """Lazy parameters have no shape before a forward and the chapter's shapes after."""
    net = lazy_mlp()
    before = explorer.inspect(net)
    assert all(p.is_lazy and p.shape is None for p in before.params.values())
    net(torch.rand(2, 4))
    after = explorer.inspect(net)
    assert [p.shape for p in after.params.values()] == [(8, 4), (8,), (1, 8), (1,)]


def test_counts_three_ways_for_the_tied_net():
    """Unique tensors, state_dict names and the per-layer sum differ when layers are tied."""
    counts = explorer.inspect(tied_net()).counts()
    assert (counts.unique_tensors, counts.state_dict_entries) == (6, 8)
    assert counts.unique_elements == 40 + 72 + 9
    assert counts.state_dict_elements == counts.per_layer_sum == 40 + 72 + 72 + 9
    assert len(tied_net().state_dict()) == counts.state_dict_entries


def test_stats_match_torch():
    """Stats of values and gradient equal torch's own reductions."""
    net = chapter_mlp()
    net(torch.rand(2, 4)).sum().backward()
    w = net[0].weight
    stats = explorer.inspect(net).stats("0.weight")
    assert stats["mean"] == pytest.approx(w.mean().item())
    assert stats["std"] == pytest.approx(w.std().item())
    assert stats["norm"] == pytest.approx(w.norm().item())
    assert stats["grad_max"] == pytest.approx(w.grad.max().item())
    assert stats["zero_fraction"] == 0.0


def test_no_gradient_before_backward():
    """Before any backward pass a parameter has no gradient, as net[2].weight.grad == None."""
    tree = explorer.inspect(chapter_mlp())
    assert tree.params["0.weight"].has_grad is False
    assert "grad_mean" not in tree.stats("0.weight")


def test_meta_device_model_is_inspected_without_allocating():
    """A model on the meta device is described, and its tensors are not grouped by storage."""
    with torch.device("meta"):
        net = nn.Sequential(nn.Linear(4096, 4096), nn.Linear(4096, 4096))
    tree = explorer.inspect(net)
    assert tree.tied_groups == []
    assert tree.counts().unique_elements == 2 * (4096 * 4096 + 4096)


def test_overlapping_views_are_reported_as_an_overlap_not_a_tie():
    """a = Parameter(w) and b = Parameter(w[:4]) share bytes: an overlap, not an exact alias."""
    model = OverlappingViews()
    model.b.data[0, 0] = 42.0  # plain PyTorch: editing b changes a
    assert model.a[0, 0].item() == 42.0
    tree = explorer.inspect(model)
    assert tree.overlaps == [{"a", "b"}]
    assert tree.tied_groups == []


def test_deepcopy_neither_tied_nor_overlapping():
    """A deepcopy owns its storage: no tied group and no overlap."""
    tree = explorer.inspect(deepcopied_layer())
    assert (tree.tied_groups, tree.overlaps) == ([], [])


def test_tied_net_has_aliases_and_no_overlaps():
    """The shared layer's names are exact aliases; nothing overlaps partially."""
    tree = explorer.inspect(tied_net())
    assert tree.overlaps == []
    assert tree.tied_groups == [{"2.bias", "4.bias"}, {"2.weight", "4.weight"}]


def test_disjoint_views_of_one_storage_are_not_shared():
    """Two halves of one buffer share a storage but no bytes."""
    w = torch.randn(8, 3)
    model = nn.Module()
    model.top, model.bottom = nn.Parameter(w[:4]), nn.Parameter(w[4:])
    tree = explorer.inspect(model)
    assert (tree.tied_groups, tree.overlaps) == ([], [])


def test_transposed_view_overlaps_its_source():
    """w and w.T cover the same bytes in another layout: an overlap, not an alias."""
    w = torch.randn(4, 3)
    model = nn.Module()
    model.w, model.wt = nn.Parameter(w), nn.Parameter(w.T)
    assert explorer.inspect(model).overlaps == [{"w", "wt"}]


def test_aliases_inside_an_overlap_are_reported_in_both():
    """An exact alias pair that also overlaps a partial view: a tie, and one overlap of three."""
    model = OverlappingViews()
    model.a2 = model.a
    tree = explorer.inspect(model)
    assert tree.tied_groups == [{"a", "a2"}]
    assert tree.overlaps == [{"a", "a2", "b"}]


def test_empty_parameters_are_never_shared():
    """Zero-element tensors can share a null storage pointer; they are not tied."""
    model = nn.Module()
    model.p, model.q = nn.Parameter(torch.empty(0)), nn.Parameter(torch.empty(0))
    tree = explorer.inspect(model)
    assert (tree.tied_groups, tree.overlaps) == ([], [])


def test_meta_device_ties_are_found_by_identity():
    """On meta every pointer is 0: the shared layer is still tied, separate layers are not."""
    with torch.device("meta"):
        net = tied_net()
    tree = explorer.inspect(net)
    assert tree.tied_groups == [{"2.bias", "4.bias"}, {"2.weight", "4.weight"}]
    assert tree.overlaps == []


def test_lazy_layer_used_twice_is_tied_by_identity():
    """An uninitialized layer reused at two places is one tied group, without crashing."""
    shared = nn.LazyLinear(4)
    tree = explorer.inspect(nn.Sequential(shared, nn.ReLU(), shared))
    assert tree.tied_groups == [{"0.bias", "2.bias"}, {"0.weight", "2.weight"}]
    assert tree.overlaps == []


def test_tied_language_model_head_is_its_embedding():
    """The tied LM's head.weight and emb.weight are one tensor."""
    assert explorer.inspect(TiedLM()).tied_groups == [{"emb.weight", "head.weight"}]


def _parameters_elements(module: nn.Module) -> int:
    """The reference: what ``module.parameters()`` holds, each tensor once."""
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("make", [tied_net, rgnet, TiedLM, TiedWeights, OverlappingViews])
def test_every_block_count_equals_its_parameters(make):
    """Each block's count is what its own parameters() counts, aliases once."""
    net = make()
    tree = explorer.inspect(net)
    for node in tree.root.walk():
        block = net.get_submodule(node.path)
        assert tree.block_count(node.path).elements == _parameters_elements(block), node.path


def test_root_count_of_the_tied_net_is_121_of_193_names():
    """parameters() holds 121 elements; 72 more are counted under the alias names."""
    count = explorer.inspect(tied_net()).block_count()
    assert (count.elements, count.alias_elements, count.lazy) == (121, 72, 0)
    assert count.elements + count.alias_elements == sum(
        p.numel() for p in tied_net().state_dict().values()
    )


def test_block_holding_two_aliases_but_not_the_first_counts_once():
    """A layer used at 0, 1.0 and 1.1: block 1 holds it twice and counts it once."""
    shared = nn.Linear(2, 2)
    net = nn.Sequential(shared, nn.Sequential(shared, shared))
    tree = explorer.inspect(net)
    assert tree.block_count("1").elements == _parameters_elements(net[1]) == 6
    assert tree.block_count("1").alias_elements == 6


def test_lazy_blocks_count_their_unknown_parameters():
    """Before the first forward every lazy parameter is counted as unknown, not as 0."""
    tree = explorer.inspect(lazy_mlp())
    assert tree.block_count() == explorer.view.tree.BlockCount(0, 0, 4)
    assert tree.block_count("1") == explorer.view.tree.BlockCount(0, 0, 0)


def test_alias_names_point_to_the_first_name():
    """named_parameters() lists 2.weight; 4.weight is the same Parameter under a second name."""
    params = explorer.inspect(tied_net()).params
    assert params["4.weight"].alias_of == "2.weight"
    assert params["2.weight"].alias_of is None and params["0.weight"].alias_of is None


def test_shared_blocks_are_the_paths_of_one_module():
    """The shared Linear sits at 2 and 4."""
    assert explorer.inspect(tied_net()).shared_blocks == [{"2", "4"}]


def test_group_labels_are_one_letter_per_tied_group():
    """Aliases share one label; the groups are lettered in tied_groups order."""
    assert explorer.inspect(tied_net()).group_labels == {
        "2.bias": "A",
        "4.bias": "A",
        "2.weight": "B",
        "4.weight": "B",
    }


def test_structure_key_ignores_values_and_shapes_but_not_structure():
    """Two seeds and a lazy model before/after its forward share a key; one more layer does not."""
    assert (
        explorer.inspect(tied_net(0)).structure_key == explorer.inspect(tied_net(1)).structure_key
    )
    net = lazy_mlp()
    before = explorer.inspect(net).structure_key
    net(torch.rand(2, 4))
    assert explorer.inspect(net).structure_key == before
    assert explorer.inspect(nn.Sequential(*net, nn.ReLU())).structure_key != before


def test_batchnorm_buffers_are_not_parameters():
    """Running statistics are buffers: the tree lists weight and bias of the norm only."""
    net = batchnorm_net()
    tree = explorer.inspect(net)
    assert list(tree.params) == [name for name, _ in net.named_parameters()]
    assert tree.block_count().elements == _parameters_elements(net)


def test_select_runs_in_re2_not_python_re(monkeypatch):
    """Python's backtracking re is never called; a backreference is refused as RE2 refuses it."""
    import re

    def forbidden(*args, **kwargs):
        raise AssertionError("Python's re was called on user text")

    for name in ("compile", "fullmatch", "match", "search"):
        monkeypatch.setattr(re, name, forbidden)
    tree = explorer.inspect(chapter_mlp())
    assert tree.select(".*weight") == ["0.weight", "2.weight"]
    with pytest.raises(explorer.SpecError) as refused:
        tree.select(r"(0)\1.*")
    assert "backreferences" in str(refused.value)  # pytest's match= would call re itself


def test_select_prefix_and_glob_modes():
    """Gluon's collect_params reads from the start; a glob reads as fnmatch."""
    tree = explorer.inspect(tied_net())
    assert tree.select("2", mode="prefix") == ["2.weight", "2.bias"]
    assert tree.select("*.bias", mode="glob") == ["0.bias", "2.bias", "4.bias", "6.bias"]


def _evaluate(expr: str, net: nn.Module):
    """Our own generated access expression (never user text), evaluated on its model."""
    return eval(
        compile(expr, "<access>", "eval"), {"__builtins__": {"getattr": getattr}, "net": net}
    )


def test_access_path_of_spaced_names_is_valid_python():
    """add_module('block 0', ...) on a plain Module is reached with getattr, and evaluates."""
    net = spaced_blocks()
    tree = explorer.inspect(net)
    expr = tree.access_path("block 1.weight")
    assert expr == "getattr(net, 'block 1').weight"
    # our own generated expression, evaluated against the model it describes
    assert (
        eval(compile(expr, "<access>", "eval"), {"net": net}) is net.get_submodule("block 1").weight
    )


def test_access_path_of_keyword_and_odd_parameter_names():
    """A child named like a keyword and a parameter with a space are reached with getattr."""
    net = nn.Module()
    net.add_module("class", nn.Linear(2, 2))
    net.get_submodule("class").register_parameter("my scale", nn.Parameter(torch.ones(1)))
    tree = explorer.inspect(net)
    expr = tree.access_path("class.my scale")
    assert expr == "getattr(getattr(net, 'class'), 'my scale')"
    assert eval(compile(expr, "<access>", "eval"), {"net": net}) is net.get_parameter(
        "class.my scale"
    )


def test_access_path_of_a_wide_sequential_indexes_every_layer():
    """Each of 300 layers is net[i]: the index of its key among the children."""
    net = nn.Sequential(*(nn.Linear(1, 1) for _ in range(300)))
    tree = explorer.inspect(net)
    assert [tree.access_path(f"{i}.bias") for i in (0, 299)] == ["net[0].bias", "net[299].bias"]
