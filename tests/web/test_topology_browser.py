"""Topology page in headless Chromium: the graph request starts in the page head, and the counts follow filters."""

from __future__ import annotations

import pytest

from tests.web.test_browser import async_unsafe_allowed, browser, lab_fabric, log_in, page  # noqa: F401 (fixtures)

COUNTS = """() => { const cy = window.fabricTopology.cy;
    return {text: document.getElementById('topo-counts').textContent,
            nodes: cy.nodes(':visible').length, edges: cy.edges(':visible').length}; }"""


@pytest.mark.timeout(120)
def test_graph_is_prefetched_once_and_counts_match_what_is_visible(page, live_server, lab_fabric):  # noqa: F811
    log_in(page, live_server, "viewer")
    asked = []
    page.on("request", lambda request: asked.append(request.url) if "/graph.json" in request.url else None)
    page.goto(f"{live_server.url}/topology/sjc-ai/")
    page.wait_for_selector("#cy[data-rendered='1']")
    assert [url.split("?", 1)[1] for url in asked] == ["links=auto"], "one request, started by the page head"
    assert page.evaluate("() => window.fabricTopology.timings.prefetched") is True
    assert page.evaluate("() => window.topologyPrefetch") is None, "used once"

    shown = page.evaluate(COUNTS)
    assert f"({shown['nodes']} shown)" in shown["text"] and f"({shown['edges']} shown)" in shown["text"]
    page.select_option("#f-role", "spine")
    page.wait_for_function("() => window.fabricTopology.cy.nodes(':visible').length === 4")
    spines = page.evaluate(COUNTS)
    assert "(4 shown)" in spines["text"] and f"({spines['edges']} shown)" in spines["text"]
    assert spines["edges"] < shown["edges"], "links to hidden switches are not counted as shown"

    # Another graph (all links ticked off and on again) is fetched normally, not from the used prefetch.
    page.uncheck("#f-all-links")
    page.wait_for_function("() => window.fabricTopology.timings.prefetched === false")
    assert len(asked) == 2 and asked[1].endswith("links=problems")
