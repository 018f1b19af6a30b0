"""The topology layout cache: reused while the drawing's inputs are unchanged, rebuilt when they change."""

from __future__ import annotations

from fabric_ops.web.graphdata import NODE_FIELDS
from fabric_ops.web.views import topology


def nodes(leaves: int, lifecycle: str = "active") -> list[list]:
    rows = [["s1", "spine", "f", "site", "pod1", None, lifecycle, False]]
    rows += [[f"l{i}", "leaf", "f", "site", f"pod{1 + i % 2}", None, lifecycle, False] for i in range(leaves)]
    rows.append(["far-dci", "dci", "other", "site2", None, None, "active", True])
    return rows


def test_layout_is_cached_by_structure_not_by_lifecycle(monkeypatch) -> None:
    topology._layouts.clear()
    calls = []
    real = topology.preset_layout
    monkeypatch.setattr(topology, "preset_layout", lambda n, f: calls.append(len(n)) or real(n, f))
    first, choices = topology.layout_and_choices(nodes(5), NODE_FIELDS)
    again, _ = topology.layout_and_choices(nodes(5, lifecycle="drained"), NODE_FIELDS)
    assert again is first and calls == [7], "a lifecycle change does not move anything"
    assert choices == {
        "site": ["site", "site2"],
        "pod": ["pod1", "pod2"],
        "plane": [],
        "role": ["dci", "leaf", "spine"],
    }
    bigger, _ = topology.layout_and_choices(nodes(6), NODE_FIELDS)
    assert calls == [7, 8] and len(bigger) == 8, "a new switch is a new layout"
    assert topology.layout_and_choices(nodes(6), NODE_FIELDS)[0] is bigger
    assert all(isinstance(v, int) for p in bigger for v in p), "whole pixels"


def test_layout_cache_is_bounded(monkeypatch) -> None:
    topology._layouts.clear()
    monkeypatch.setattr(topology, "LAYOUT_CACHE_SIZE", 3)
    for n in range(1, 8):
        topology.layout_and_choices(nodes(n), NODE_FIELDS)
    assert len(topology._layouts) == 3
