// A small SVG line chart: no dependencies, hover shows every series at the nearest x.
// lineChart(container, {title, unit, stacked, xFormat, yFormat}) -> {update(xs, series, marks)}
// series: {name: [y or null, ...]} aligned with xs; marks: [{x, label}] (dashed verticals).
"use strict";
const PALETTE = ["#2458d6", "#d62f2f", "#1a7f37", "#b54708", "#7a4cc2", "#0e7490",
  "#9f1239", "#4d7c0f", "#475467", "#c026d3"];
const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, attrs, parent) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function niceNumber(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1000) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 0.01) return v.toFixed(3);
  return v.toExponential(1);
}

// A card (section) with a heading and an empty box for a chart, appended to `holder`.
function chartCard(holder, id, title, cls) {
  const card = document.createElement("section");
  card.className = cls;
  card.id = id;
  const h = document.createElement("h2");
  h.textContent = title;
  card.appendChild(h);
  const box = document.createElement("div");
  card.appendChild(box);
  holder.appendChild(card);
  return { card, box };
}

function lineChart(container, opts) {
  const o = Object.assign({ unit: "", stacked: false, height: 180,
    xFormat: (x) => new Date(x * 1000).toLocaleTimeString(), yFormat: niceNumber }, opts);
  container.classList.add("chart");
  const H = o.height, L = 46, R = 8, T = 8, B = 20;
  let W = 600;  // the drawing's width in pixels: set from the container at each draw
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": o.title || "chart", "data-points": "0" }, null);
  container.appendChild(svg);
  const legend = document.createElement("div");
  legend.className = "legend";
  container.appendChild(legend);
  const tip = document.createElement("div");
  tip.className = "tip";
  tip.style.display = "none";
  container.appendChild(tip);
  const colours = {};
  let state = { xs: [], series: {}, marks: [] };

  function colour(name) {
    if (!(name in colours)) colours[name] = PALETTE[Object.keys(colours).length % PALETTE.length];
    return colours[name];
  }

  function draw() {
    const { xs, series, marks } = state;
    W = Math.max(200, Math.round(container.clientWidth || 600));
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.style.height = `${H}px`;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const names = Object.keys(series).sort();
    svg.setAttribute("data-points", String(xs.length));
    svg.setAttribute("data-series", String(names.length));
    if (xs.length === 0) {
      el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#98a2b3",
        "font-size": 12 }, svg).textContent = "waiting for data";
      legend.textContent = "";
      return;
    }
    // stacked: cumulative sums in name order
    const shown = {};
    const base = xs.map(() => 0);
    for (const n of names) {
      shown[n] = series[n].map((v, i) => {
        if (v === null || v === undefined) return null;
        if (!o.stacked) return v;
        base[i] += v;
        return base[i];
      });
    }
    let yMax = 0, yMin = 0;
    for (const n of names) for (const v of shown[n]) if (v !== null) {
      yMax = Math.max(yMax, v); yMin = Math.min(yMin, v);
    }
    if (yMax === yMin) yMax = yMin + 1;
    const x0 = xs[0], x1 = xs[xs.length - 1] === x0 ? x0 + 1 : xs[xs.length - 1];
    const sx = (x) => L + (W - L - R) * (x - x0) / (x1 - x0);
    const sy = (y) => T + (H - T - B) * (1 - (y - yMin) / (yMax - yMin));
    for (let k = 0; k <= 3; k++) {
      const y = yMin + (yMax - yMin) * k / 3;
      el("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), stroke: "#eaecf0" }, svg);
      el("text", { x: L - 4, y: sy(y) + 4, "text-anchor": "end", fill: "#667085",
        "font-size": 11 }, svg).textContent = o.yFormat(y);
    }
    el("text", { x: L, y: H - 4, fill: "#667085", "font-size": 11 }, svg).textContent = o.xFormat(x0);
    el("text", { x: W - R, y: H - 4, "text-anchor": "end", fill: "#667085", "font-size": 11 },
      svg).textContent = o.xFormat(x1);
    for (const m of marks || []) {
      if (m.x < x0 || m.x > x1) continue;
      const line = el("line", { x1: sx(m.x), x2: sx(m.x), y1: T, y2: H - B, stroke: "#98a2b3",
        "stroke-dasharray": "3 3", class: "mark" }, svg);
      el("title", {}, line).textContent = m.label;
    }
    for (const n of names) {
      let d = "", pen = false;
      shown[n].forEach((v, i) => {
        if (v === null) { pen = false; return; }
        d += `${pen ? "L" : "M"}${sx(xs[i]).toFixed(1)},${sy(v).toFixed(1)}`;
        pen = true;
      });
      el("path", { d, fill: "none", stroke: colour(n), "stroke-width": 1.6,
        "vector-effect": "non-scaling-stroke", "data-series": n }, svg);
    }
    legend.textContent = "";
    for (const n of names) {
      const last = series[n][series[n].length - 1];
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = colour(n);
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(`${n || o.title} ${o.yFormat(last)} ${o.unit}`));
      legend.appendChild(item);
    }
    const cursor = el("line", { y1: T, y2: H - B, stroke: "#1d2430", "stroke-width": 1,
      "vector-effect": "non-scaling-stroke", visibility: "hidden" }, svg);
    const hit = el("rect", { x: L, y: T, width: W - L - R, height: H - T - B,
      fill: "transparent", "pointer-events": "all" }, svg);
    hit.addEventListener("mousemove", (ev) => {
      const box = svg.getBoundingClientRect();
      const fx = (ev.clientX - box.left) / box.width * W;
      let best = 0;
      xs.forEach((x, i) => { if (Math.abs(sx(x) - fx) < Math.abs(sx(xs[best]) - fx)) best = i; });
      cursor.setAttribute("x1", sx(xs[best]));
      cursor.setAttribute("x2", sx(xs[best]));
      cursor.setAttribute("visibility", "visible");
      tip.textContent = "";
      const head = document.createElement("div");
      head.textContent = o.xFormat(xs[best]);
      tip.appendChild(head);
      for (const n of names) {
        const row = document.createElement("div");
        row.textContent = `${n || o.title}: ${o.yFormat(series[n][best])} ${o.unit}`;
        tip.appendChild(row);
      }
      tip.style.display = "block";
      tip.style.left = `${Math.min(ev.clientX - box.left + 12, box.width - 160)}px`;
      tip.style.top = `${ev.clientY - box.top + 12}px`;
    });
    hit.addEventListener("mouseleave", () => {
      tip.style.display = "none";
      cursor.setAttribute("visibility", "hidden");
    });
  }

  let pending = false;
  window.addEventListener("resize", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; draw(); });
  });
  return {
    update(xs, series, marks) { state = { xs, series, marks: marks || [] }; draw(); },
    svg,
  };
}
