// v6ray monitor: polls /api/status every second and draws what it says. No library, no
// request anywhere but this server. Every number shown sits in an element whose
// data-field names its path in the JSON, so a test can compare the page with the API.
"use strict";

const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const COLORS = {"PENDING 1": "#d62728", "PENDING 2": "#ff7f0e", "PENDING 3": "#bcbd22",
                "PROCESSING 1": "#1f77b4", "PROCESSING 2": "#17becf", "PROCESSING 3": "#9467bd"};

function lookup(data, path) {
  return path.split(".").reduce((v, k) => (v == null ? undefined : v[k]), data);
}

function show(value) {
  return value === null || value === undefined ? "" : String(value);
}

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
                                      : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fillFields(data) {
  for (const node of document.querySelectorAll("[data-field]")) {
    if (node.closest("#errors, #failures, #gauges")) continue;  // rebuilt below
    const value = lookup(data, node.dataset.field);
    const text = node.dataset.field === "queue.oldest_pending_age_s" && value == null
      ? "-" : show(value);
    node.textContent = text;
    if (node.hasAttribute("data-hide-empty")) node.closest(".warn").hidden = !text;
  }
  document.getElementById("conn").className =
    "badge " + (data.connection.state === "connected" ? "ok" : "bad");
  document.getElementById("circuit").className =
    "badge " + (data.connection.circuit === "closed" ? "ok" : "bad");
}

function drawGauges(pacing) {
  const box = document.getElementById("gauges");
  box.replaceChildren();
  pacing.forEach((g, i) => {
    const row = el("div", {"class": "gauge"});
    const head = el("div", {"class": "gauge-head"});
    head.append(el("span", {}, g.label));
    const nums = el("span", {"class": "gauge-nums"});
    nums.append(el("b", {"data-field": `pacing.${i}.used`}, show(g.used)), " / ",
                el("span", {"data-field": `pacing.${i}.limit`}, show(g.limit)), " (",
                el("span", {"data-field": `pacing.${i}.percent`}, show(g.percent)), "%)");
    head.append(nums);
    const bar = el("div", {"class": "bar"});
    const fill = el("div", {"class": "fill" + (g.percent >= 90 ? " hot" : "")});
    fill.style.width = Math.min(100, g.percent) + "%";
    bar.append(fill);
    row.append(head, bar);
    box.append(row);
  });
}

function drawErrors(errors) {
  const body = document.getElementById("errors");
  body.replaceChildren();
  const codes = Object.keys(errors).sort((a, b) => Number(a) - Number(b));
  if (!codes.length) {
    const tr = el("tr");
    tr.append(el("td", {colspan: 2}, "none"));
    body.append(tr);
  }
  for (const code of codes) {
    const tr = el("tr");
    tr.append(el("td", {}, code), el("td", {"data-field": `ib_errors.${code}`}, show(errors[code])));
    body.append(tr);
  }
}

function drawFailures(failures) {
  const body = document.getElementById("failures");
  body.replaceChildren();
  if (!failures.length) {
    const tr = el("tr");
    tr.append(el("td", {colspan: 7}, "none"));
    body.append(tr);
  }
  failures.forEach((f, i) => {
    const tr = el("tr");
    for (const key of ["updated_at", "request_id", "request_type", "symbol", "status",
                       "attempts", "error_message"]) {
      tr.append(el("td", {"data-field": `failures.${i}.${key}`}, show(f[key])));
    }
    body.append(tr);
  });
}

function drawChart(history) {
  const svg = document.getElementById("chart");
  svg.replaceChildren();
  const W = 900, H = 240, PAD = 28;
  const t = history.t;
  const names = Object.keys(history.series);
  let top = 1;
  for (const n of names) for (const v of history.series[n]) top = Math.max(top, v);
  const now = t.length ? t[t.length - 1] : 0, span = 15 * 60;
  const x = (ts) => PAD + (W - PAD) * (1 - (now - ts) / span);
  const y = (v) => H - PAD - (H - 2 * PAD) * (v / top);
  svg.append(el("svg:line", {x1: PAD, y1: H - PAD, x2: W, y2: H - PAD, stroke: "#888"}));
  svg.append(el("svg:text", {x: 2, y: PAD, fill: "#555", "font-size": 12}, String(top)));
  svg.append(el("svg:text", {x: 2, y: H - PAD, fill: "#555", "font-size": 12}, "0"));
  svg.append(el("svg:text", {x: PAD, y: H - 8, fill: "#555", "font-size": 12}, "-15 min"));
  svg.append(el("svg:text", {x: W - 30, y: H - 8, fill: "#555", "font-size": 12}, "now"));
  for (const n of names) {
    const pts = t.map((ts, i) => `${x(ts).toFixed(1)},${y(history.series[n][i]).toFixed(1)}`);
    if (pts.length) {
      svg.append(el("svg:polyline", {points: pts.join(" "), fill: "none",
                                     stroke: COLORS[n] || "#333", "stroke-width": 2}));
    }
  }
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  for (const n of names) {
    const item = el("span", {"class": "key"});
    const swatch = el("i");
    swatch.style.background = COLORS[n] || "#333";
    item.append(swatch, n.replace(" 1", " IMMEDIATE").replace(" 2", " NORMAL")
                         .replace(" 3", " BACKGROUND"));
    legend.append(item);
  }
}

function render(data) {
  fillFields(data);
  drawGauges(data.pacing);
  drawErrors(data.ib_errors);
  drawFailures(data.failures);
  drawChart(data.history);
  window.v6rayLast = data;  // what the page shows, for anyone inspecting it
}

async function poll() {
  try {
    const response = await fetch("/api/status", {cache: "no-store", credentials: "same-origin"});
    if (!response.ok) throw new Error(String(response.status));
    render(await response.json());
    document.getElementById("offline").hidden = true;
  } catch (err) {
    document.getElementById("offline").hidden = false;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
