"""Figure builders: reductions match PyTorch, figures carry only what they show."""

from __future__ import annotations

import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

import explorer
from explorer.core.errors import ExplorerError, SpecError
from explorer.core.limits import DEFAULT_LIMITS
from explorer.init.initializers import Expected, expected
from explorer.view.figures import (
    ROOT_ID,
    downsample,
    heatmap,
    heatmap_size,
    histogram,
    histogram_counts,
    treemap,
    treemap_id_to_path,
    uses_figure,
)
from explorer.view.reduce import matrix_shape
from tests.models import chapter_mlp, lazy_mlp, tied_net

NAN, INF = float("nan"), float("inf")
MIXTURE = Expected(
    "mixture",
    "U[5,10] ¼ · 0 ½ · U[-10,-5] ¼",
    point_masses=((0.0, 0.5),),
    segments=((5.0, 10.0, 0.25), (-10.0, -5.0, 0.25)),
)


def _block_means(t: torch.Tensor, k_rows: int, k_cols: int) -> torch.Tensor:
    """Reference: the mean of each k_rows×k_cols block, the last ones ragged, by plain loops."""
    rows, cols = t.shape
    return torch.tensor(
        [
            [t[i : i + k_rows, j : j + k_cols].mean().item() for j in range(0, cols, k_cols)]
            for i in range(0, rows, k_rows)
        ]
    )


def _rows() -> list[dict]:
    """Treemap rows as ``view.treemap_rows`` gives them: blocks at 0, parameters counted."""
    return [
        {"id": "", "parent": None, "label": "net Sequential", "value": 0, "kind": "block"},
        {"id": "0", "parent": "", "label": "0 Linear", "value": 0, "kind": "block"},
        {"id": "0/weight", "parent": "0", "label": "0.weight", "value": 32, "kind": "param"},
        {"id": "0/bias", "parent": "0", "label": "0.bias", "value": 8, "kind": "param"},
        {"id": "1", "parent": "", "label": "1 ReLU", "value": 0, "kind": "block"},
        {"id": "2", "parent": "", "label": "2 Linear", "value": 0, "kind": "block"},
        {"id": "2/weight", "parent": "2", "label": "2.weight", "value": 8, "kind": "param"},
        {"id": "/scale", "parent": "", "label": "scale", "value": 1, "kind": "param"},
    ]


def test_downsample_large_matrix_to_the_cell_budget_in_square_blocks():
    """An 8192×8192 matrix becomes 256×256 means of 32×32 blocks (64 Ki cells at most)."""
    t = torch.randn(8192, 8192)
    small, note = downsample(t)
    assert small.shape == (256, 256)
    assert small.numel() <= DEFAULT_LIMITS.max_heatmap_cells
    assert note == "8192×8192 shown as 256×256, mean of 32×32 blocks"
    torch.testing.assert_close(small[0, 0], t[:32, :32].mean())
    torch.testing.assert_close(small[-1, -1], t[-32:, -32:].mean())


def test_downsample_shares_the_cells_as_the_plot_shares_its_sides():
    """GPT-2's 3072×768 c_fc weight: about 3 rows per column, as its 900×300 px plot, in
    nearly square blocks; a ragged last block averages what it holds."""
    t = torch.randn(3072, 768)
    small, note = downsample(t)
    assert note == "3072×768 shown as 439×128, mean of 7×6 blocks"
    assert small.numel() <= DEFAULT_LIMITS.max_heatmap_cells
    torch.testing.assert_close(small[0, 0], t[:7, :6].mean())
    torch.testing.assert_close(small[-1, -1], t[438 * 7 :, 127 * 6 :].mean())


def test_downsample_keeps_each_side_within_max_side():
    """A 2048×8 matrix is cut only along its long side, to at most 512 rows."""
    small, note = downsample(torch.randn(2048, 8))
    assert small.shape == (512, 8)
    assert note == "2048×8 shown as 512×8, mean of 4×1 blocks"


def test_downsample_tall_matrix_reduces_only_the_long_side():
    """A 1000×3 matrix keeps its 3 columns and averages pairs of rows."""
    t = torch.randn(1000, 3)
    small, note = downsample(t)
    assert note == "1000×3 shown as 500×3, mean of 2×1 blocks"
    torch.testing.assert_close(small, _block_means(t, 2, 1))


def test_downsample_ragged_edge_blocks_average_only_their_own_values():
    """The last, partial blocks are means over the values they hold, not over padding."""
    t = torch.randn(1000, 3)
    small, note = downsample(t, max_side=64)  # 16-row blocks: 62 full and one of 8 rows
    assert note == "1000×3 shown as 63×3, mean of 16×1 blocks"
    torch.testing.assert_close(small, _block_means(t, 16, 1))
    torch.testing.assert_close(small[-1], t[992:].mean(0))


def test_downsample_ragged_in_both_directions():
    """A 1001×700 matrix at max_side 100 matches the loop reference, both edges ragged."""
    t = torch.randn(1001, 700, dtype=torch.float64)
    small, _ = downsample(t, max_side=100)
    assert small.shape == (91, 100)
    torch.testing.assert_close(small, _block_means(t, 11, 7).double())


def test_downsample_small_matrix_is_an_exact_copy():
    """A matrix within the limit comes back value for value, as a copy, not a view."""
    t = torch.randn(8, 4)
    small, note = downsample(t)
    assert note == "8×4, every value shown"
    assert torch.equal(small, t)
    small[0, 0] = 99.0
    assert t[0, 0] != 99.0


def test_downsample_vector_is_one_row():
    """A 1-D tensor of n values is shown as a 1×n row."""
    small, note = downsample(torch.arange(10.0))
    assert torch.equal(small, torch.arange(10.0)[None])
    assert note == "(10,) shown as 1×10"


def test_downsample_conv_weight_flattens_the_kernel():
    """A (16, 3, 3, 3) conv weight is shown as 16×27, one row per output channel."""
    t = torch.randn(16, 3, 3, 3)
    small, note = downsample(t)
    assert note == "(16, 3, 3, 3) shown as 16×27"
    assert torch.equal(small, t.reshape(16, 27))


def test_downsample_bfloat16_gives_float32_means():
    """A bfloat16 matrix is reduced and returned as float32 for plotting."""
    t = torch.randn(1024, 1024).bfloat16()
    small, note = downsample(t)
    assert small.dtype == torch.float32 and small.shape == (256, 256)
    assert note.endswith("mean of 4×4 blocks")
    torch.testing.assert_close(small[0, 0], t[:4, :4].float().mean(), atol=1e-2, rtol=1e-2)


def test_downsample_scalar_is_one_cell():
    """A 0-D tensor is a 1×1 matrix."""
    small, note = downsample(torch.tensor(3.5))
    assert small.tolist() == [[3.5]]
    assert note == "scalar shown as 1×1"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_reductions_run_on_the_device_and_return_cpu_results():
    """A CUDA tensor is reduced on the GPU; only the small results come back, to the CPU."""
    t = torch.randn(2048, 2048, device="cuda")
    small, _ = downsample(t)
    edges, counts, _ = histogram_counts(t)
    assert small.device.type == edges.device.type == counts.device.type == "cpu"
    torch.testing.assert_close(small, downsample(t.cpu())[0])
    assert t.device.type == "cuda"


def test_histogram_counts_add_up_to_numel():
    """Every value of a finite tensor lands in exactly one bin."""
    t = torch.randn(10_000)
    edges, counts, skipped = histogram_counts(t, bins=60)
    assert edges.shape == (61,) and counts.shape == (60,)
    assert int(counts.sum()) == t.numel() and skipped == 0


def test_histogram_counts_equal_torch_histc():
    """Counts and edges are torch.histc's over [min, max]."""
    t = torch.randn(50, 40)
    edges, counts, _ = histogram_counts(t, bins=30)
    lo, hi = t.min().item(), t.max().item()
    assert counts.tolist() == torch.histc(t, 30, min=lo, max=hi).long().tolist()
    torch.testing.assert_close(edges, torch.linspace(lo, hi, 31, dtype=torch.float64))


def test_histogram_counts_skip_and_count_non_finite_values():
    """nan and ±inf are left out of the bins and counted as skipped."""
    t = torch.tensor([1.0, 2.0, NAN, INF, -INF, 3.0])
    edges, counts, skipped = histogram_counts(t, bins=4)
    assert skipped == 3
    assert counts.tolist() == [1, 0, 1, 1]
    assert (edges[0].item(), edges[-1].item()) == (1.0, 3.0)


def test_histogram_counts_constant_tensor_is_one_narrow_bin():
    """A constant tensor gives one bin around its value holding every element."""
    edges, counts, _ = histogram_counts(torch.full((7,), 2.0))
    assert counts.tolist() == [7]
    assert edges.tolist() == pytest.approx([1.98, 2.02])


def test_histogram_has_density_bars():
    """The bars are densities: their areas add up to 1."""
    fig = histogram(torch.randn(5000), "w")
    bars = fig.data[0]
    assert bars.type == "bar"
    assert np.sum(np.asarray(bars.y) * np.asarray(bars.width)) == pytest.approx(1.0)


def test_histogram_title_says_non_finite_values_were_left_out():
    """nan/inf values are named in the title, not drawn."""
    fig = histogram(torch.tensor([0.0, 1.0, NAN, INF]), "w")
    assert "2 nan/inf left out" in fig.layout.title.text
    assert int(np.sum(fig.data[0].customdata)) == 2


def test_histogram_uniform_draws_bounds_and_flat_density():
    """A uniform expectation draws dashed lines at exactly ±a and the density 1/(2a)."""
    a = math.sqrt(6 / (4 + 8))
    fig = histogram(
        torch.empty(1000).uniform_(-a, a),
        "w",
        expected=Expected("uniform", "Xavier U", bounds=(-a, a)),
    )
    assert sorted((s.x0, s.x1) for s in fig.layout.shapes) == [(-a, -a), (a, a)]
    assert [ann.text for ann in fig.layout.annotations] == ["±0.707"]
    line = fig.data[1]
    assert line.name == "Xavier U" and max(line.y) == pytest.approx(1 / (2 * a))


def test_histogram_normal_overlay_peaks_at_the_pdf_maximum():
    """A normal expectation is its pdf, peaking at 1/(std·√(2π))."""
    std = 0.05
    fig = histogram(
        torch.randn(1000) * std, "w", expected=Expected("normal", "N(0, 0.05²)", mean=0.0, std=std)
    )
    assert max(fig.data[1].y) == pytest.approx(1 / (std * math.sqrt(2 * math.pi)))


def test_histogram_mixture_draws_segments_and_point_mass():
    """The chapter's mixture: densities 0.05 on [-10, -5] and [5, 10] and "50% at 0"."""
    fig = histogram(torch.randn(1000), "w", expected=MIXTURE)
    line = fig.data[1]
    assert list(line.x) == [-10.0, -10.0, -5.0, -5.0, None, 5.0, 5.0, 10.0, 10.0]
    assert list(line.y) == [0.0, 0.05, 0.05, 0.0, None, 0.0, 0.05, 0.05, 0.0]
    assert [ann.text for ann in fig.layout.annotations] == ["50% at 0"]


def test_histogram_legend_has_one_entry_named_by_the_label():
    """Only the expectation appears in the legend, under its label."""
    fig = histogram(torch.randn(1000), "w", expected=MIXTURE)
    assert [t.name for t in fig.data if t.showlegend is not False] == [MIXTURE.label]


def test_heatmap_z_is_the_downsampled_matrix():
    """z holds downsample's values and the title carries its note."""
    t = torch.randn(1030, 20)
    small, note = downsample(t)
    fig = heatmap(t, "0.weight")
    assert np.asarray(fig.data[0].z).shape == (344, 20)
    np.testing.assert_array_equal(fig.data[0].z, small.numpy())
    assert note in fig.layout.title.text


def test_every_heatmap_uses_one_diverging_scale_centred_on_zero():
    """Mixed, positive-only and tiny values all get red-white-blue on a range symmetric about 0."""
    for t in (torch.tensor([[-1.0, 2.0]]), torch.tensor([[1.0, 2.0]]), torch.rand(8, 8) * 1e-6):
        trace = heatmap(t, "w").data[0]
        scale = [(stop, colour) for stop, colour in trace.colorscale]
        assert scale[0] == (0.0, "rgb(5,48,97)") and scale[-1] == (1.0, "rgb(103,0,31)")
        assert (0.5, "rgb(247,247,247)") in scale  # blue, white at 0, red
        assert trace.zauto is False and trace.zmin == -trace.zmax > -math.inf


def test_heatmap_range_is_the_99th_percentile_of_magnitudes_and_says_so():
    """One outlier among 1..1000 saturates: the range is ±991 (rank 991 of 1001), stated."""
    t = torch.cat([torch.arange(1.0, 1001.0), torch.tensor([1e6])])[torch.randperm(1001)]
    trace = heatmap(t.reshape(7, 143), "w").data[0]
    assert trace.zmax == 991.0
    assert trace.colorbar.title.text.startswith("±991: 99th percentile of |value|")


def test_heatmap_range_ignores_zero_cells():
    """An embedding gradient with one used row is scaled by that row, not by the zeros."""
    grad = torch.zeros(100, 4)
    grad[7] = torch.tensor([1.0, -2.0, 3.0, -4.0])
    expected = torch.quantile(torch.tensor([1.0, 2.0, 3.0, 4.0]), 0.99).item()  # 3.97
    assert heatmap(grad, "g").data[0].zmax == pytest.approx(expected)


def test_heatmap_zmax_sets_the_scale_and_its_note_is_shown():
    """A given zmax fixes the range, and the colour bar carries the caller's note."""
    trace = heatmap(torch.randn(4, 4), "w", zmax=0.5, scale_note="same as use 1").data[0]
    assert (trace.zmin, trace.zmax) == (-0.5, 0.5)
    assert "±0.5: same as use 1" in trace.colorbar.title.text


@pytest.mark.parametrize(
    ("shape", "area"),
    [
        ((8, 8), (300, 300)),
        ((600, 300), (300, 600)),
        ((300, 600), (600, 300)),
        ((256, 20), (300, 900)),
        ((20, 256), (900, 300)),
        ((8,), (900, 300)),
        ((), (300, 300)),
    ],
)
def test_heatmap_is_sized_to_the_aspect_ratio_with_a_300px_short_side(shape, area):
    """The plot area follows rows:cols (capped at 3:1) and its short side is 300 px."""
    layout = heatmap(torch.randn(shape), "w").layout
    margin = layout.margin
    drawn = (layout.width - margin.l - margin.r, layout.height - margin.t - margin.b)
    assert drawn == area
    assert heatmap_size(*matrix_shape(shape)) == area


def test_heatmap_and_histogram_of_an_empty_tensor_say_it_is_empty():
    """A (0, 5) tensor draws an empty 300 px picture and a histogram titled "no values"."""
    t = torch.empty(0, 5)
    fig = heatmap(t, "w")
    assert "empty" in fig.layout.title.text and np.asarray(fig.data[0].z).size == 0
    assert "no values" in histogram(t, "w").layout.title.text


def test_heatmap_keeps_its_cell_aspect_when_stretched():
    """y is anchored to x at the drawn ratio, so a wider page does not flatten the picture."""
    layout = heatmap(torch.randn(600, 300), "w").layout
    assert layout.yaxis.scaleanchor == "x"
    assert layout.yaxis.scaleratio == pytest.approx((600 / 600) / (300 / 300))
    layout = heatmap(torch.randn(256, 20), "w").layout
    assert layout.yaxis.scaleratio == pytest.approx((900 / 256) / (300 / 20))


def test_uses_and_total_share_one_robust_scale_stated_once():
    """One figure: each use and the total on one colour axis, ±the 99th percentile of all cells."""
    generator = torch.Generator().manual_seed(0)
    first, second = (
        torch.randn(30, 40, generator=generator),
        torch.randn(30, 40, generator=generator),
    )
    second[0, 0] = 1e4  # one outlier must not wash out every other cell
    total = first + second
    fig = uses_figure([first, second], total)
    expected = torch.quantile(torch.cat([first, second, total]).abs().flatten(), 0.99).item()
    assert [a.text for a in fig.layout.annotations] == [
        "use 1",
        "use 2",
        "use 1 + use 2 = total .grad",
    ]
    assert [t.coloraxis for t in fig.data] == ["coloraxis"] * 3
    assert fig.layout.coloraxis.cmax == pytest.approx(expected) and expected < 10
    assert fig.layout.coloraxis.cmin == -fig.layout.coloraxis.cmax
    assert "over all panels" in fig.layout.coloraxis.colorbar.title.text


def test_tied_gradient_panels_share_their_axes_at_240_px():
    """The chapter's 8×8 tied weight: three stacked 240 px panels, x and y matched to the first,
    in a 300 px wide figure that fits the detail panel at a 1,024 px window."""
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(8, 8, generator=generator), torch.randn(8, 8, generator=generator)
    fig = uses_figure([first, second], first + second)
    layout = fig.layout
    assert layout.width == 300
    assert [layout.xaxis2.matches, layout.xaxis3.matches] == ["x", "x"]
    assert [layout.yaxis2.matches, layout.yaxis3.matches] == ["y", "y"]
    plot_height = layout.height - layout.margin.t - layout.margin.b
    assert plot_height == 3 * 240 + 2 * 30
    tall = uses_figure([torch.randn(50, 16), torch.randn(50, 16)], torch.randn(50, 16))
    assert tall.layout.width - tall.layout.margin.l - tall.layout.margin.r == 240


def test_heatmap_matrix_layout_and_highlight_box():
    """Row 0 is on top, axes are named for a weight, and the highlight boxes one cell."""
    fig = heatmap(torch.randn(8, 4), "w", highlight=(2, 3))
    assert fig.layout.yaxis.autorange == "reversed"
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == (
        "column (input)",
        "row (output)",
    )
    box = fig.layout.shapes[0]
    assert (box.x0, box.x1, box.y0, box.y1) == (2.5, 3.5, 1.5, 2.5)


def test_heatmap_of_a_huge_matrix_carries_at_most_the_cell_budget():
    """The figure's payload is bounded by what it shows, not by the tensor."""
    fig = heatmap(torch.randn(4096, 4096), "w")
    arrays = [
        np.asarray(trace[key])
        for trace in fig.data
        for key in ("x", "y", "z", "customdata", "text")
        if trace[key] is not None
    ]
    assert sum(a.size for a in arrays) == 256 * 256 <= DEFAULT_LIMITS.max_heatmap_cells


def test_heatmap_of_8192_squared_sends_float32_binary_under_1_1_mb():
    """Issue 9 row 5: the JSON Streamlit sends carries z as base64 float32, under 1.1 MB."""
    t = torch.randn(8192, 8192, generator=torch.Generator().manual_seed(0))
    payload = heatmap(t, "w").to_json()
    assert '"z":{"dtype":"f4","bdata":' in payload
    assert len(payload.encode()) < 1_100_000


def test_histogram_of_a_constant_tensor_is_one_bar_of_its_count_labelled_by_its_value():
    """Seven 2.0s: one bar of height 7 (counts, not a 'density 50' spike), labelled 2."""
    fig = histogram(torch.full((7,), 2.0), "w")
    bars = fig.data[0]
    assert list(bars.x) == pytest.approx([2.0]) and list(bars.y) == [7]
    assert bars.text == ("2",)
    assert fig.layout.yaxis.title.text == "count"
    assert "every value is 2 (7 values)" in fig.layout.title.text


def test_histogram_of_a_constant_tensor_draws_no_density_line_over_counts():
    """Over a count bar, a normal overlay's pdf is not drawn; a constant's point mass is."""
    normal = Expected("normal", "N(0, 0.1²)", mean=0.0, std=0.1)
    assert [t.mode for t in histogram(torch.zeros(5), "b", expected=normal).data[1:]] == []
    point = Expected("constant", "0", mean=0.0)
    assert [t.mode for t in histogram(torch.zeros(5), "b", expected=point).data[1:]] == ["markers"]


def test_histogram_sends_at_most_max_histogram_bins():
    """Asking for ten thousand bins gives max_histogram_bins bars."""
    fig = histogram(torch.randn(100_000), "w", bins=10_000)
    assert len(fig.data[0].x) == DEFAULT_LIMITS.max_histogram_bins


@pytest.mark.parametrize(
    "make",
    [
        lambda: heatmap(torch.randn(40, 30), "w", highlight=(3, 4)),
        lambda: heatmap(torch.randn(2000, 3), "w", zmax=1.0, scale_note="shared"),
        lambda: heatmap(torch.tensor(2.0), "w"),
        lambda: histogram(torch.randn(500), "w"),
        lambda: histogram(torch.full((4,), 3.0), "w"),
        lambda: histogram(torch.tensor([1.0, math.nan]), "w", expected=MIXTURE),
    ],
)
def test_figures_built_without_validation_are_valid_plotly(make):
    """Each kind of figure, validated by plotly from scratch, gives the same JSON."""
    fig = make()
    validated = go.Figure(fig.to_dict())
    mine, theirs = json.loads(fig.to_json()), json.loads(validated.to_json())
    mine["layout"].pop("template"), theirs["layout"].pop("template")
    assert mine == theirs


def test_figures_carry_no_plotly_template():
    """No template is copied into a figure: only plotly's empty 'none' template is named."""
    for fig in (heatmap(torch.randn(4, 4), "w"), histogram(torch.randn(40), "w")):
        template = fig.layout.template.to_plotly_json()
        assert "layout" not in template and set(template.get("data", {})) <= {"scatter"}


def test_treemap_parents_total_their_children():
    """With branchvalues="total", each parent's value is exactly the sum of its children's."""
    trace = treemap(_rows()).data[0]
    assert trace.branchvalues == "total"
    value = dict(zip(trace.ids, trace.values, strict=True))
    for node, parent in zip(trace.ids, trace.parents, strict=True):
        kids = [k for k, p in zip(trace.ids, trace.parents, strict=True) if p == node]
        if kids:
            assert value[node] == sum(value[k] for k in kids)
        if parent:
            assert parent in value


def test_treemap_shows_true_counts_and_a_sliver_for_empty_blocks():
    """customdata holds the real counts; the 0-parameter ReLU still gets a visible size."""
    trace = treemap(_rows()).data[0]
    count = dict(zip(trace.ids, trace.customdata, strict=True))
    size = dict(zip(trace.ids, trace.values, strict=True))
    assert count == {
        ROOT_ID: 49,
        "0": 40,
        "0/weight": 32,
        "0/bias": 8,
        "1": 0,
        "2": 8,
        "2/weight": 8,
        "/scale": 1,
    }
    assert size["1"] >= 1


def test_treemap_ids_map_back_to_row_ids():
    """Every plotly id maps back to its row id; the root "" is drawn as "(model)"."""
    trace = treemap(_rows()).data[0]
    assert trace.ids[0] == "(model)"
    assert [treemap_id_to_path(i) for i in trace.ids] == [r["id"] for r in _rows()]


def test_treemap_highlighted_and_selected_nodes_stand_out():
    """Highlighted ids share a colour no other node has; the selected one has a thick border."""
    trace = treemap(_rows(), highlighted={"0/weight", "2/weight"}, selected="0").data[0]
    color = dict(zip(trace.ids, trace.marker.colors, strict=True))
    width = dict(zip(trace.ids, trace.marker.line.width, strict=True))
    assert color["0/weight"] == color["2/weight"]
    assert color["0/weight"] not in {
        c for i, c in color.items() if i not in {"0/weight", "2/weight"}
    }
    assert width["0"] > max(w for i, w in width.items() if i != "0")


def _same(a, b) -> bool:
    """Two figures are the same when their JSON is."""
    return a.to_json() == b.to_json()


def test_package_heatmap_of_a_name_is_the_apps_heatmap():
    """explorer.heatmap("0.weight", net) is the figure the Explore tab draws for it."""
    net = chapter_mlp()
    assert "heatmap" in explorer.__all__ and "histogram" in explorer.__all__
    assert _same(explorer.heatmap("0.weight", net), heatmap(net[0].weight, "0.weight values"))


def test_package_heatmap_finds_a_parameter_by_identity():
    """A tensor and its module: named as the app names it (a tied alias by its first name)."""
    net = tied_net()
    assert explorer.heatmap(net[4].weight, net).layout.title.text.startswith("2.weight values")


def test_package_histogram_overlays_pytorch_default_init_like_the_app():
    """Without a rule, a named parameter is drawn over its layer's default initialization."""
    net = chapter_mlp()
    weight = net[0].weight
    overlay = expected({"init": "default"}, weight, net[0], "weight")
    app = histogram(weight, "0.weight histogram", expected=overlay)
    assert _same(explorer.histogram("0.weight", net), app)
    assert "U(±" in explorer.histogram("0.weight", net).data[1].name


def test_package_histogram_with_a_rule_draws_that_rules_density():
    """rule={"init": "xavier_uniform"} draws Xavier's bounds ±√(6/(fan_in+fan_out))."""
    net = chapter_mlp()
    fig = explorer.histogram("0.weight", net, rule={"init": "xavier_uniform"})
    bound = math.sqrt(6 / (4 + 8))
    assert sorted(s.x0 for s in fig.layout.shapes) == pytest.approx([-bound, bound])


def test_package_figures_of_a_loose_tensor_and_of_a_gradient():
    """A tensor alone is titled by its shape; grad=True draws .grad, or says there is none."""
    assert explorer.histogram(torch.randn(3, 5)).layout.title.text.startswith("tensor (3, 5)")
    net = chapter_mlp()
    with pytest.raises(ExplorerError, match="no gradient yet"):
        explorer.heatmap("0.weight", net, grad=True)
    net(torch.rand(2, 4)).sum().backward()
    fig = explorer.heatmap("0.weight", net, grad=True)
    assert _same(fig, heatmap(net[0].weight.grad, "0.weight.grad"))


def test_package_figures_refuse_unknown_names_and_lazy_parameters():
    """An unknown name lists the real ones; a lazy parameter says to run a forward pass."""
    with pytest.raises(SpecError, match="no parameter is named '9.weight'; parameters: 0.weight"):
        explorer.heatmap("9.weight", chapter_mlp())
    with pytest.raises(ExplorerError, match="shape unknown until the first forward pass"):
        explorer.histogram("0.weight", lazy_mlp())
