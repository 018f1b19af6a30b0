// Small canvas line charts for the last hour of an interface (no chart library needed for a handful of series).
// Every element with class "charts" and a data-url gets one chart per series of the JSON it answers.
(function () {
  "use strict";
  function fmt(v, unit) {
    if (v === null || v === undefined) return "—";
    if (unit === "bps") {
      const units = [["T", 1e12], ["G", 1e9], ["M", 1e6], ["k", 1e3]];
      for (const [u, d] of units) if (Math.abs(v) >= d) return (v / d).toFixed(2) + " " + u + "b/s";
      return v.toFixed(0) + " b/s";
    }
    return (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) + " " + unit;
  }

  function draw(canvas, chart) {
    const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height, pad = 4;
    ctx.clearRect(0, 0, w, h);
    const pts = chart.points.filter((p) => p[1] !== null);
    ctx.strokeStyle = "#cfd8dc";
    ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
    if (pts.length < 2) { ctx.fillStyle = "#90a4ae"; ctx.fillText("no data", 8, h / 2); return; }
    const t0 = pts[0][0], t1 = pts[pts.length - 1][0];
    let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
    if (chart.unit !== "dBm") lo = Math.min(0, lo);
    if (hi === lo) hi = lo + 1;
    const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (w - 2 * pad);
    const y = (v) => h - pad - ((v - lo) / (hi - lo)) * (h - 2 * pad);
    ctx.strokeStyle = "#1565c0";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let pen = false;
    for (const [t, v] of chart.points) {
      if (v === null) { pen = false; continue; }
      if (pen) ctx.lineTo(x(t), y(v)); else ctx.moveTo(x(t), y(v));
      pen = true;
    }
    ctx.stroke();
    ctx.fillStyle = "#455a64";
    ctx.fillText(fmt(hi, chart.unit), 6, 12);
    ctx.fillText(fmt(lo, chart.unit), 6, h - 6);
  }

  async function fill(box) {
    const resp = await fetch(box.dataset.url, { credentials: "same-origin" });
    if (!resp.ok) { box.textContent = `charts unavailable: HTTP ${resp.status}`; return; }
    const body = await resp.json();
    box.replaceChildren();
    if (body.reason) {
      const p = document.createElement("p");
      p.className = "unavailable";
      p.textContent = "telemetry unavailable: " + body.reason;
      box.append(p);
      return;
    }
    for (const chart of body.charts) {
      const fig = document.createElement("figure");
      fig.className = "chart";
      const cap = document.createElement("figcaption");
      const last = [...chart.points].reverse().find((p) => p[1] !== null);
      cap.textContent = `${chart.label}: ${fmt(last ? last[1] : null, chart.unit)}`;
      const canvas = document.createElement("canvas");
      canvas.width = 320; canvas.height = 110;
      canvas.dataset.key = chart.key;
      fig.append(cap, canvas);
      box.append(fig);
      draw(canvas, chart);
    }
  }

  const boxes = document.querySelectorAll(".charts[data-url]");
  boxes.forEach(fill);
  setInterval(() => boxes.forEach(fill), 30000);
})();
