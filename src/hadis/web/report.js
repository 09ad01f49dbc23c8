// The simulation report: the results table and per-window time series of every policy
// (hover a window to read each policy's value). Data is embedded in the page.
"use strict";
const data = JSON.parse(document.getElementById("data").textContent);
const byId = (id) => document.getElementById(id);

function cell(tag, content, cls) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (cls) node.className = cls;
  return node;
}

byId("title").textContent = data.title;
const table = byId("results");
const head = document.createElement("tr");
for (const [name, , num] of data.columns) head.appendChild(cell("th", name, num ? "num" : ""));
table.appendChild(head);
for (const row of data.rows) {
  const tr = document.createElement("tr");
  tr.dataset.policy = row.label;
  for (const [, key, num, digits] of data.columns) {
    const v = row[key];
    const text = v === null || v === undefined ? "–" : num ? Number(v).toFixed(digits) : String(v);
    tr.appendChild(cell("td", text, num ? "num" : ""));
  }
  table.appendChild(tr);
}
byId("note").textContent = data.note;

const settings = byId("settings");
for (const [k, v] of Object.entries(data.settings)) {
  const tr = document.createElement("tr");
  tr.appendChild(cell("th", k));
  tr.appendChild(cell("td", typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)));
  settings.appendChild(tr);
}

const holder = byId("charts");
for (const chart of data.charts) {
  const { box } = chartCard(holder, `chart-${chart.id}`, chart.title, "card wide");
  const c = lineChart(box, { title: chart.title, unit: chart.unit, stacked: !!chart.stacked,
    height: 220, xFormat: (x) => `${Math.round(x)} s` });
  c.update(data.xs, chart.series, []);
}
