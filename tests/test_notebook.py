"""The notebook views of a ParamTree: self-contained HTML and a pandas table."""

from html.parser import HTMLParser

import pytest
import torch
from torch import nn

import explorer
from explorer.view.reduce import STAT_NAMES
from tests.models import TiedLM, batchnorm_net, gpt2_small, lazy_mlp, rgnet, tied_net

ALLOWED_TAGS = {"div", "style", "details", "summary", "b", "span", "code", "ul", "li"}


class _Tags(HTMLParser):
    """Every start tag and attribute name of a document."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[str] = []
        self.attributes: set[str] = set()
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes |= {name for name, _ in attrs}


def test_html_shows_counts_shapes_ties_and_access_paths():
    """The tied net: 121 parameters, both aliases badged 'tied B', reached as net[4].weight."""
    html = explorer.inspect(tied_net())._repr_html_()
    assert "<b>121</b> parameters" in html and "193 elements" in html
    assert "121 params (+72 via aliases)" in html
    assert html.count('<span class="pe-badge">tied B</span>') == 3  # the summary and 2 rows
    assert "<code>net[4].weight</code>" in html and "(8, 8) float32" in html


def test_html_is_collapsible_and_fetches_nothing():
    """Blocks are <details>; no script, link, image, url() or http reference."""
    html = explorer.inspect(rgnet(), root_name="rgnet")._repr_html_()
    tags = _Tags(html)
    assert tags.tags.count("details") == len(explorer.inspect(rgnet()).blocks)
    assert set(tags.tags) <= ALLOWED_TAGS
    assert tags.attributes <= {"class", "open", "title"}
    for needle in ("http", "url(", "@import", "src="):
        assert needle not in html


def test_html_escapes_every_name():
    """A module named <script> and a parameter named like an <img> show as text, not markup."""
    net = nn.Sequential(nn.Linear(2, 2))
    net.add_module("<script>alert(1)</script>", nn.Linear(2, 2))
    net.register_parameter('<img src=x onerror="alert(1)">', nn.Parameter(torch.ones(1)))
    html = explorer.inspect(net)._repr_html_()
    assert set(_Tags(html).tags) <= ALLOWED_TAGS
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_html_of_lazy_model_says_question_mark():
    """Before the first forward the counts and shapes are '?'."""
    html = explorer.inspect(lazy_mlp())._repr_html_()
    assert "? params" in html and "? float32" in html


def test_html_of_gpt2_small_on_meta_stays_under_200_kb():
    """GPT-2-small's structure (124 M parameters, no values) is under 200 kB of HTML."""
    tree = explorer.inspect(gpt2_small())
    html = tree._repr_html_()
    assert tree.counts().unique_elements == 124_439_808
    assert len(html.encode()) < 200_000
    assert "<code>net.lm_head.weight</code>" in html and "tied A" in html


def test_html_of_a_wide_block_shows_one_page_and_says_how_many_more():
    """A Sequential of 500 layers lists 100 of them and '400 more'."""
    with torch.device("meta"):
        net = nn.Sequential(*(nn.Linear(2, 2) for _ in range(500)))
    html = explorer.inspect(net)._repr_html_()
    assert html.count("<details") == 1 + 100
    assert "… 400 more here" in html


def test_frame_has_one_row_per_name_with_aliases_marked():
    """The tied net's frame lists all 8 names; 4.weight is an alias of 2.weight in group B."""
    net = tied_net()
    frame = explorer.inspect(net).to_frame()
    assert list(frame["path"]) == [n for n, _ in net.named_parameters(remove_duplicate=False)]
    row = frame.set_index("path").loc["4.weight"]
    assert (row["alias_of"], row["tied"], row["shape"], row["numel"]) == (
        "2.weight",
        "B",
        (8, 8),
        64,
    )
    assert frame.set_index("path").loc["2.weight", "alias_of"] == ""
    assert list(frame.columns) == [
        "path", "shape", "dtype", "device", "numel", "tied", "alias_of", "access"
    ]  # fmt: skip


def test_frame_stats_equal_torch():
    """stats=True adds the value statistics, equal to PyTorch's own reductions."""
    net = TiedLM()
    frame = explorer.inspect(net).to_frame(stats=True).set_index("path")
    w = net.emb.weight.detach()
    assert list(frame.columns[-len(STAT_NAMES) :]) == list(STAT_NAMES)
    assert frame.loc["emb.weight", "mean"] == pytest.approx(w.mean().item())
    assert frame.loc["head.weight", "std"] == pytest.approx(w.std().item())
    assert frame.loc["emb.weight", "max"] == w.max().item()


def test_frame_rule_column_from_provenance():
    """With the provenance of initialize(), each name says which rule set it."""
    net = batchnorm_net()
    provenance = explorer.initialize(net, [{"init": "zeros", "target": "*.bias"}], seed=0)
    frame = explorer.inspect(net).to_frame(provenance=provenance).set_index("path")
    assert frame.loc["0.bias", "rule"] == 0
    assert frame["rule"].isna()["0.weight"]


def test_frame_of_lazy_parameters_has_no_shape_or_count():
    """Lazy rows have shape None and a missing numel, not 0."""
    frame = explorer.inspect(lazy_mlp()).to_frame()
    assert frame["shape"].isna().all() and frame["numel"].isna().all()
