"""Sharing by storage, then by byte range, checked against a brute-force reference."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.view.ties import find_sharing, group_label


def test_group_labels_stay_unique_past_26_groups():
    """Group 0 is A, 25 is Z, 26 is AA, 27 is AB: no two groups share a label."""
    labels = [group_label(i) for i in range(800)]
    assert labels[:3] == ["A", "B", "C"] and labels[25:28] == ["Z", "AA", "AB"]
    assert len(set(labels)) == len(labels)


def _reference(slices: list[tuple[int, int]]) -> tuple[list[set[str]], list[set[str]]]:
    """Aliases: equal (start, stop). Overlaps: components of 'shares an element', 2+ views."""
    names = [f"p{i}" for i in range(len(slices))]
    cells = [set(range(a, b)) for a, b in slices]
    aliases: dict[tuple[int, int], set[str]] = {}
    for name, (a, b) in zip(names, slices, strict=True):
        if b > a:  # an empty slice covers no bytes
            aliases.setdefault((a, b), set()).add(name)
    seen: set[int] = set()
    overlaps = []
    for i in range(len(names)):
        if i in seen or not cells[i]:
            continue
        component, todo = {i}, [i]
        while todo:
            j = todo.pop()
            for k in range(len(names)):
                if k not in component and cells[j] & cells[k]:
                    component.add(k)
                    todo.append(k)
        seen |= component
        if len({slices[k] for k in component}) > 1:
            overlaps.append({names[k] for k in component})
    return sorted((g for g in aliases.values() if len(g) > 1), key=sorted), sorted(
        overlaps, key=sorted
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 20)).map(lambda t: (min(t), max(t))),
        min_size=1,
        max_size=6,
    )
)
def test_contiguous_slices_match_the_brute_force_reference(slices):
    """Random slices of one buffer: aliases and overlaps equal a per-element comparison."""
    buffer = torch.zeros(20)
    named = [(f"p{i}", torch.nn.Parameter(buffer[a:b])) for i, (a, b) in enumerate(slices)]
    sharing = find_sharing(named)
    assert (sharing.aliases, sharing.overlaps) == _reference(slices)


def test_views_of_different_storages_never_share():
    """Equal shapes and offsets in two buffers are neither aliases nor overlaps."""
    named = [("a", torch.zeros(4)), ("b", torch.zeros(4))]
    sharing = find_sharing(named)
    assert (sharing.aliases, sharing.overlaps) == ([], [])


def test_same_bytes_as_another_dtype_overlap():
    """A float32 tensor and its int32 reinterpretation cover the same bytes in another type."""
    w = torch.randn(4)
    sharing = find_sharing([("f", w), ("i", w.view(torch.int32))])
    assert (sharing.aliases, sharing.overlaps) == ([], [{"f", "i"}])
