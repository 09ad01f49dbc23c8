// The live dashboard: history from /dashboard/state, then one event per second from
// /dashboard/events (server-sent events read with fetch, so an API key can be sent).
"use strict";
const $ = (id) => document.getElementById(id);
let state = null;
let charts = {};
let points = [];
let maxPoints = 600;

function headers() {
  const key = sessionStorage.getItem("hadis-key");
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function askForKey(message) {
  $("keybar").classList.add("show");
  $("meta").textContent = message;
}

$("keybtn").addEventListener("click", () => {
  sessionStorage.setItem("hadis-key", $("key").value.trim());
  $("keybar").classList.remove("show");
  start();
});

function text(tag, content, cls) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (cls) node.className = cls;
  return node;
}

function fmtPlan(p) {
  if (!p) return "no plan yet";
  const route = p.split
    ? Object.entries(p.split).map(([m, s]) => `${m} ${(s * 100).toFixed(0)}%`).join(", ")
    : p.pair.length === 2 ? `${p.pair[0]} → ${p.pair[1]}, r=${p.r} d=${p.d}` : p.pair[0];
  const gpus = Object.entries(p.gpus).map(([m, n]) => `${m}: ${n} GPU, batch ${p.batch[m] ?? "–"}`);
  return `${p.policy}: ${route}; ${gpus.join("; ")}; predicted ${state.metric} ${niceNumber(p.quality)}`;
}

function renderLive(live) {
  $("status").textContent = live.ready ? "ready" : "starting";
  $("status").className = `badge ${live.ready ? "ok" : "bad"}`;
  $("plan").textContent = fmtPlan(live.plan);
  $("plan").className = live.plan && !live.plan.feasible ? "error" : "";
  const workers = $("workers");
  workers.textContent = "";
  for (const w of live.workers) {
    const box = text("span", `#${w.id} ${w.model || "–"} · ${w.state}`, `worker ${w.state}`);
    box.dataset.state = w.state;
    // where a Ray worker runs: its node id, on hover
    if (w.placement && w.placement !== "local") box.title = `node ${w.placement}`;
    workers.appendChild(box);
  }
  const list = $("timeline");
  list.textContent = "";
  for (const e of live.timeline.slice().reverse()) {
    const when = new Date(e.t * 1000).toLocaleTimeString();
    const item = text("li", `${when} · ${e.reason} · ${fmtPlan(e)}`);
    item.dataset.reason = e.reason;
    list.appendChild(item);
  }
}

function lineName(panel, key) {
  if (panel.id === "outcomes" && key in state.outcome_status) {
    return `${key} (${state.outcome_status[key]})`;
  }
  return key;
}

function renderCharts() {
  const xs = points.map((p) => p.t);
  const marks = (state.timelineAll || []).map((e) => ({ x: e.t, label: `${e.reason}: ${fmtPlan(e)}` }));
  for (const panel of state.panels) {
    const keys = new Set();
    for (const p of points) for (const k of Object.keys(p.values[panel.id] || {})) keys.add(k);
    const series = {};
    for (const k of keys) {
      series[lineName(panel, k)] = points.map((p) => {
        const v = (p.values[panel.id] || {})[k];
        return v === undefined ? null : v;
      });
    }
    charts[panel.id].update(xs, series, marks);
  }
}

function buildCharts() {
  const holder = $("charts");
  holder.textContent = "";
  charts = {};
  for (const panel of state.panels) {
    const { card, box } = chartCard(holder, `panel-${panel.id}`, panel.title, "card");
    const q = text("div", panel.promql, "muted");
    q.style.fontSize = "11px";
    q.title = "the same query as the Grafana board";
    card.appendChild(q);
    charts[panel.id] = lineChart(box, { title: panel.title, unit: panel.unit, stacked: panel.stacked });
  }
}

function mergeTimeline(entries) {
  const seen = new Set((state.timelineAll || []).map((e) => `${e.t}|${e.reason}`));
  state.timelineAll = state.timelineAll || [];
  for (const e of entries) if (!seen.has(`${e.t}|${e.reason}`)) state.timelineAll.push(e);
}

async function stream() {
  const res = await fetch("/dashboard/events", { headers: headers() });
  if (!res.ok) throw new Error(`events: HTTP ${res.status}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const chunk = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = chunk.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n");
      if (!data) continue;
      const ev = JSON.parse(data);
      points.push(ev.point);
      if (points.length > maxPoints) points.splice(0, points.length - maxPoints);
      mergeTimeline(ev.timeline);
      renderLive(ev);
      renderCharts();
    }
  }
}

async function pollGallery() {
  const res = await fetch("/dashboard/gallery", { headers: headers() });
  if (!res.ok) return;
  const items = await res.json();
  const box = $("gallery");
  box.textContent = "";
  for (const it of items.slice().reverse()) {
    const fig = document.createElement("figure");
    if (it.thumbnail) {
      const img = document.createElement("img");
      img.src = `data:image/png;base64,${it.thumbnail}`;
      img.alt = it.prompt;
      fig.appendChild(img);
    }
    fig.appendChild(text("figcaption", `${it.prompt} · ${it.path} · ${it.model} · ${niceNumber(it.total_s)} s`));
    box.appendChild(fig);
  }
}

async function start() {
  let res;
  try {
    res = await fetch("/dashboard/state", { headers: headers() });
  } catch (e) {
    $("meta").textContent = `cannot reach the server: ${e}`;
    return;
  }
  if (res.status === 401) return askForKey("this server needs an API key");
  if (!res.ok) {
    $("meta").textContent = `dashboard: HTTP ${res.status}`;
    return;
  }
  state = await res.json();
  maxPoints = Math.max(2, state.points.length, Math.round(600 / state.interval_s));
  points = state.points;
  state.timelineAll = [];
  mergeTimeline(state.timeline);
  $("meta").textContent = `${state.profile} · policy ${state.policy} · SLO ${state.slo_s} s · time scale ${state.time_scale}`;
  buildCharts();
  renderLive(state);
  renderCharts();
  if (state.gallery) {
    $("gallery-card").hidden = false;
    pollGallery();
    setInterval(pollGallery, 5000);
  }
  for (;;) {
    try {
      await stream();
    } catch (e) {
      $("status").textContent = "reconnecting";
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

$("play").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = $("result");
  out.textContent = "generating…";
  const started = performance.now();
  try {
    const res = await fetch("/v1/images/generations", {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/json" }, headers()),
      body: JSON.stringify({ prompt: $("prompt").value, n: 1 }),
    });
    const body = await res.json();
    out.textContent = "";
    if (!res.ok) {
      out.appendChild(text("div", `HTTP ${res.status}: ${body.error ? body.error.message : ""}`, "error"));
      return;
    }
    const item = body.data[0];
    const meta = item.hadis;
    const img = document.createElement("img");
    img.src = `data:image/png;base64,${item.b64_json}`;
    img.alt = $("prompt").value;
    img.id = "result-image";
    out.appendChild(img);
    const table = document.createElement("table");
    table.id = "result-meta";
    const rows = [
      ["path", meta.path],
      ["model", meta.model],
      ["pair", meta.pair.join(" → ")],
      ["router score", niceNumber(meta.router_score)],
      ["discriminator confidence", niceNumber(meta.discriminator_confidence)],
      ["queue", `${niceNumber(meta.queue_s)} s`],
      ["latency (server)", `${niceNumber(meta.total_s)} s`],
      ["latency (here)", `${niceNumber((performance.now() - started) / 1000)} s`],
    ];
    for (const [k, v] of rows) {
      const tr = document.createElement("tr");
      tr.appendChild(text("th", k));
      const td = text("td", v);
      td.dataset.field = k;
      tr.appendChild(td);
      table.appendChild(tr);
    }
    out.appendChild(table);
  } catch (e) {
    out.textContent = `failed: ${e}`;
  }
});

start();
