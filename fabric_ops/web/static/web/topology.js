// Topology page: draw the fabric with Cytoscape.js from the server's preset layout, filter, and keep link state live.
// Exposes window.fabricTopology = {cy, nodes, edges, renderedMs, updates} for the browser tests and the benchmark.
(function () {
  "use strict";
  const box = document.getElementById("cy");
  const t0 = performance.now();
  const POLL_MS = 5000;
  const BIG = 3000; // elements beyond which panning paints a texture and hides edges (stays interactive)
  const LABELS_MAX = 1500; // nodes beyond which names are shown on tap only (measuring thousands of labels is slow)
  const state = { graph: null, cy: null, renderedMs: null, updates: 0, timings: {} };
  window.fabricTopology = state;

  const ROLE_COLOURS = {
    superspine: "#6a1b9a", spine: "#1565c0", leaf: "#00897b", "border-leaf": "#00acc1",
    dci: "#ef6c00", "optical-terminal": "#757575", amplifier: "#9e9e9e", host: "#b0bec5",
  };

  function style(labels) {
    // Every property here is resolved for every element at start; above LABELS_MAX no label properties at all.
    const node = { "width": 14, "height": 14, "background-color": "data(colour)" };
    if (labels) Object.assign(node, { "label": "data(name)", "font-size": 7, "min-zoomed-font-size": 9, "text-valign": "bottom", "text-margin-y": 2, "color": "#263238" });
    const s = [
      { selector: "node", style: node },
      { selector: "node[role = 'host']", style: { "width": 8, "height": 8, "shape": "round-rectangle" } },
      { selector: "node[?external]", style: { "border-width": 2, "border-style": "dashed", "border-color": "#37474f", "opacity": 0.8 } },
      { selector: "node[lifecycle = 'drained'], node[lifecycle = 'maintenance']", style: { "border-width": 3, "border-color": "#f57c00" } },
      { selector: "node:selected", style: { "border-width": 3, "border-color": "#fbc02d" } },
      { selector: "edge", style: { "curve-style": "haystack", "haystack-radius": 0, "width": 1, "line-color": "#43a047", "opacity": 0.55 } },
      { selector: "edge[kind = 'dci']", style: { "line-style": "dashed", "width": 2 } },
      { selector: "edge[kind = 'nic']", style: { "line-color": "#90a4ae", "opacity": 0.4 } },
      { selector: "edge[util >= 0]", style: { "width": "mapData(util, 0, 1, 1, 7)", "line-color": "mapData(util, 0, 1, #43a047, #c62828)" } },
      { selector: "edge[state = 'up'][!live]", style: { "line-color": "#9e9e9e" } },
      { selector: "edge[state = 'drained']", style: { "line-color": "#f57c00", "width": 2, "opacity": 0.9 } },
      { selector: "edge[state = 'down']", style: { "line-color": "#d32f2f", "width": 3, "opacity": 1 } },
      { selector: "edge[state = 'planned']", style: { "line-color": "#cfd8dc", "line-style": "dotted" } },
      { selector: ".hidden", style: { "display": "none" } },
    ];
    return s;
  }

  // An edge from a row of the graph (or of state.json, same order: id, a, b, kind, capacity_gbps, state, live).
  function edgeData(id, a, b, kind, capacity, st, live) {
    return { id: "e" + id, lid: id, source: "n" + a, target: "n" + b, a, b, kind, capacity_gbps: capacity, state: st, live };
  }

  function elements(graph) {
    const nf = graph.node_fields, ef = graph.edge_fields;
    const col = (name) => ef.indexOf(name);
    const els = [];
    graph.nodes.forEach((row, i) => {
      const data = { id: "n" + i };
      nf.forEach((f, k) => { data[f] = row[k]; });
      data.colour = ROLE_COLOURS[data.role] || "#607d8b"; // one data mapping instead of a selector per role
      els.push({ group: "nodes", data, position: { x: graph.positions[i][0], y: graph.positions[i][1] } });
    });
    const c = ["id", "a", "b", "kind", "capacity_gbps", "state", "live"].map(col);
    graph.edges.forEach((r) => els.push({ group: "edges", data: edgeData(...c.map((k) => r[k])) }));
    return els;
  }

  function fillFilters(graph) {
    document.querySelectorAll("#topo-filters select[data-key]").forEach((sel) => {
      const key = sel.dataset.key, current = sel.value;
      sel.length = 1;
      (graph.choices[key] || []).forEach((v) => sel.add(new Option(v, v, false, v === current)));
      sel.parentElement.style.display = (graph.choices[key] || []).length ? "" : "none";
    });
  }

  function applyFilters() {
    const cy = state.cy;
    if (!cy) return;
    const want = {};
    document.querySelectorAll("#topo-filters select[data-key]").forEach((sel) => { if (sel.value) want[sel.dataset.key] = sel.value; });
    const problemsOnly = document.getElementById("f-problems").checked;
    const wanted = Object.entries(want);
    // Only elements whose visibility changes are touched: a class change restyles the element (and, for a node,
    // its edges), which at 4,000+ switches is most of the cost of a filter.
    const hide = (el, yes) => { if (el.hasClass("hidden") !== yes) el.toggleClass("hidden", yes); };
    cy.batch(() => {
      cy.nodes().forEach((n) => {
        const d = n.data();
        let ok = true;
        for (const [k, v] of wanted) if (d[k] !== v && !(d.external && k !== "role")) ok = false;
        hide(n, !ok);
      });
      cy.edges().forEach((e) => { const d = e.data(); hide(e, problemsOnly && d.state === "up" && d.live); });
    });
    counts();
  }

  function counts() {
    const cy = state.cy;
    let shown = 0, edges = 0, down = 0, drained = 0;
    cy.nodes().forEach((n) => { if (!n.hasClass("hidden")) shown += 1; });
    cy.edges().forEach((e) => {
      const st = e.data("state");
      if (st === "down") down += 1; else if (st === "drained") drained += 1;
      if (!e.hasClass("hidden") && !e.source().hasClass("hidden") && !e.target().hasClass("hidden")) edges += 1;
    });
    const hidden = state.graph && state.graph.links === "problems"
      ? ` · ${state.graph.counts.edges_total} links in all; healthy ones not drawn (tick "all links")` : "";
    document.getElementById("topo-counts").textContent =
      `${cy.nodes().length} nodes (${shown} shown), ${cy.edges().length} links drawn (${edges} shown): ${down} down, ${drained} drained${hidden}`;
  }

  function draw(graph) {
    state.graph = graph;
    const te = performance.now();
    const els = elements(graph);
    state.timings.elementsMs = Math.round(performance.now() - te);
    const big = els.length > BIG;
    if (state.cy) state.cy.destroy();
    document.getElementById("f-all-links").checked = graph.links === "all";
    const t2 = performance.now();
    const cy = cytoscape({
      container: box, elements: els, style: style(graph.nodes.length <= LABELS_MAX),
      layout: { name: "preset", fit: true, padding: 20 },
      textureOnViewport: big, hideEdgesOnViewport: big, motionBlur: false, pixelRatio: big ? 1 : "auto",
      minZoom: 0.01, maxZoom: 4, wheelSensitivity: 0.3, boxSelectionEnabled: false,
    });
    state.cy = cy;
    state.timings.initMs = Math.round(performance.now() - t2);
    const tf = performance.now();
    fillFilters(graph);
    cy.one("render", () => {
      requestAnimationFrame(() => {
        state.renderedMs = Math.round(performance.now() - t0);
        state.timings.renderMs = Math.round(performance.now() - t2);
        box.dataset.rendered = "1";
        box.dataset.nodes = String(cy.nodes().length);
      });
    });
    cy.on("tap", "node", (ev) => info(ev.target));
    cy.on("tap", "edge", (ev) => info(ev.target));
    cy.on("dbltap", "node", (ev) => { if (ev.target.data("role") !== "host") location.href = box.dataset.deviceUrl.replace("HOST", encodeURIComponent(ev.target.data("name"))); });
    cy.on("dbltap", "edge", (ev) => { if (typeof ev.target.data("lid") === "number") location.href = box.dataset.linkUrl.replace(/0\/$/, ev.target.data("lid") + "/"); });
    applyFilters();
    state.timings.filtersMs = Math.round(performance.now() - tf);
  }

  function info(el) {
    const d = el.data(), div = document.getElementById("topo-info");
    div.replaceChildren();
    const line = (text, href) => {
      const p = document.createElement("p");
      if (href) { const a = document.createElement("a"); a.href = href; a.textContent = text; p.append(a); } else p.textContent = text;
      div.append(p);
    };
    if (el.isNode()) {
      line(`${d.name}: ${d.role}, ${d.fabric}${d.site ? " / " + d.site : ""}${d.pod ? " / " + d.pod : ""}${d.plane ? " / " + d.plane : ""}, ${d.lifecycle}`);
      if (d.role !== "host") line("device details", box.dataset.deviceUrl.replace("HOST", encodeURIComponent(d.name)));
    } else {
      const a = el.source().data("name"), b = el.target().data("name");
      line(`${a} ↔ ${b}: ${d.kind}, ${d.capacity_gbps}G, ${d.state}${d.live ? "" : " (not carrying)"}${d.util != null ? ", " + Math.round(d.util * 100) + " % used" : ""}`);
      if (typeof d.lid === "number") line("link details", box.dataset.linkUrl.replace(/0\/$/, d.lid + "/"));
    }
  }

  async function load() {
    const params = new URLSearchParams();
    if (document.getElementById("f-hosts").checked) params.set("hosts", "1");
    params.set("links", state.wantAll === undefined ? "auto" : (state.wantAll ? "all" : "problems"));
    const t1 = performance.now();
    const url = box.dataset.graphUrl + "?" + params;
    // The page's head started this request while the scripts loaded (first load with the default filters only).
    const pre = window.topologyPrefetch;
    window.topologyPrefetch = null;
    let resp = null;
    if (pre && pre.url === url) resp = await pre.answer.catch(() => null);
    state.timings.prefetched = resp !== null;
    if (resp === null) resp = await fetch(url, { credentials: "same-origin" });
    if (!resp.ok) { document.getElementById("topo-counts").textContent = `cannot load the graph: HTTP ${resp.status}`; return; }
    const graph = await resp.json();
    state.timings.fetchMs = Math.round(performance.now() - t1);
    state.timings.scriptStartMs = Math.round(t0);
    draw(graph);
  }

  async function poll() {
    try {
      const problems = state.graph && state.graph.links === "problems";
      const resp = await fetch(box.dataset.stateUrl + (problems ? "?links=problems" : ""), { credentials: "same-origin" });
      if (!resp.ok || !state.cy) return;
      const body = await resp.json(), cy = state.cy;
      cy.batch(() => {
        const seen = new Set();
        for (const [lid, st, live, util, a, b, kind, capacity] of body.edges) {
          seen.add("e" + lid);
          let e = cy.getElementById("e" + lid);
          if (e.empty()) {
            if (!problems) continue;
            e = cy.add({ group: "edges", data: edgeData(lid, a, b, kind, capacity, st, live) });
          }
          if (e.data("state") !== st) e.data("state", st);
          if (e.data("live") !== live) e.data("live", live);
          if (util === null) { if (e.data("util") !== undefined) e.removeData("util"); } else if (e.data("util") !== util) e.data("util", util);
        }
        // Large fabrics: a link that recovered leaves the drawing, like the healthy ones never drawn.
        if (problems) cy.edges().forEach((e) => { if (!seen.has(e.id())) cy.remove(e); });
        cy.nodes().forEach((n) => { const lc = body.nodes[n.data("name")]; if (lc && lc !== n.data("lifecycle")) n.data("lifecycle", lc); });
      });
      state.updates += 1;
      document.getElementById("topo-telemetry").textContent = body.telemetry ? `telemetry unavailable: ${body.telemetry}` : "utilisation from telemetry";
      document.getElementById("topo-updated").textContent = "updated " + new Date().toLocaleTimeString();
      applyFilters();
    } catch (err) {
      document.getElementById("topo-updated").textContent = "update failed: " + err;
    }
  }

  document.querySelectorAll("#topo-filters select[data-key], #f-problems").forEach((el) => el.addEventListener("change", applyFilters));
  document.getElementById("f-hosts").addEventListener("change", load);
  document.getElementById("f-all-links").addEventListener("change", (ev) => { state.wantAll = ev.target.checked; load(); });
  document.getElementById("f-fit").addEventListener("click", () => state.cy && state.cy.fit(state.cy.elements(":visible"), 20));
  load().then(() => setInterval(poll, POLL_MS));
})();
