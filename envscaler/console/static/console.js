// The console's own script: heartbeats of a play page, the pool page's live charts, the rollouts charts.
// Data arrives as JSON (script blocks of type application/json, or SSE); nothing from it is ever run as code.
"use strict";

function json(id) {
  const el = document.getElementById(id);
  return el ? JSON.parse(el.textContent) : null;
}

function rows(tbody, items) {  // items: arrays of cell texts; textContent only, so nothing is parsed as HTML
  tbody.replaceChildren(...items.map((cells) => {
    const tr = document.createElement("tr");
    for (const [i, text] of cells.entries()) {
      const td = document.createElement("td");
      td.textContent = String(text);
      if (i > 0 && typeof text === "number") td.className = "n";
      tr.appendChild(td);
    }
    return tr;
  }));
}

function barChart(canvas, labels, datasets, stacked, xTitle, yTitle) {
  const title = (text) => ({ display: Boolean(text), text: text || "", color: "#667085" });
  return new Chart(canvas, {
    type: "bar",
    data: { labels, datasets },
    options: { animation: false, maintainAspectRatio: false, responsive: true,
      plugins: { legend: { display: datasets.length > 1 } },
      scales: { x: { stacked, title: title(xTitle) },
                y: { stacked, beginAtZero: true, ticks: { precision: 0 }, title: title(yTitle) } } },
  });
}

const COLORS = { idle: "#1f8a4c", leased: "#2f6fdb", starting: "#b7791f", failed: "#c0392b" };

// ---- play: keep the lease while this page is open
function startHeartbeat() {
  const body = document.body;
  const id = body.dataset.playId;
  if (!id) return;
  const every = Math.max(1000, Number(body.dataset.playTtl) * 1000 / 4);
  const status = () => document.getElementById("beat-status");
  let stopped = false;
  const beat = async () => {
    if (stopped) return;
    try {
      const answer = await (await fetch(`/play/${id}/beat`, { method: "POST" })).json();
      if (!answer.held && !stopped) {
        stopped = true;
        clearInterval(timer);
        if (status()) status().textContent = "released";
        document.getElementById("banner").textContent = answer.message;
        document.getElementById("banner").className = "banner error";
      }
    } catch (e) { if (status()) status().textContent = "console unreachable"; }
  };
  const timer = setInterval(beat, every);
  // releasing on purpose ends the heartbeat first
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    if (e.detail.elt && e.detail.elt.id === "release") { stopped = true; clearInterval(timer); }
  });
}

// ---- pool: live from SSE
function startPool() {
  const initial = json("pool-data");
  if (!initial) return;
  let charts = {};
  const update = (snap) => {
    const err = document.getElementById("stats-error");
    err.hidden = !snap.stats_error; err.textContent = snap.stats_error || "";
    const s = snap.stats;
    if (s) {
      const envs = Object.entries(s.envs);
      const total = (k) => envs.reduce((a, [, e]) => a + e[k], 0);
      for (const [id, v] of [["c-containers", s.containers], ["c-size", s.size], ["c-idle", total("idle")],
                             ["c-leased", total("leased")], ["c-acquired", s.acquired], ["c-replaced", s.replaced],
                             ["c-expired", s.expired]]) document.getElementById(id).textContent = v;
      rows(document.querySelector("#env-table tbody"),
           envs.map(([env, e]) => [env, e.idle, e.leased, e.starting, e.failed, e.failing || ""]));
      const labels = envs.map(([env]) => env);
      const sets = ["idle", "leased", "starting"].map((k) => ({ label: k === "idle" ? "ready" : k,
        data: envs.map(([, e]) => e[k]), backgroundColor: COLORS[k] }));
      if (!charts.containers) charts.containers = barChart(document.getElementById("chart-containers"), labels, sets, true, "", "containers");
      else { charts.containers.data.labels = labels; charts.containers.data.datasets.forEach((d, i) => { d.data = sets[i].data; }); charts.containers.update("none"); }
    }
    const leases = snap.console_leases || [];
    rows(document.querySelector("#lease-table tbody"),
         leases.length ? leases.map((l) => [l.env, l.scenario, l.lease, l.steps]) : [["none", "", "", ""]]);
    const me = document.getElementById("metrics-error");
    me.hidden = !snap.metrics_error; me.textContent = snap.metrics_error || "";
    const m = snap.metrics;
    for (const el of document.querySelectorAll(".needs-metrics")) el.hidden = !m;
    if (m) {
      for (const [key, id, label] of [["acquire_wait", "chart-acquire", "acquires"], ["call_latency", "chart-latency", "calls"]]) {
        const labels = m[key].map((b) => b.le), data = m[key].map((b) => b.count);
        if (!charts[key]) charts[key] = barChart(document.getElementById(id), labels, [{ label, data, backgroundColor: "#2f6fdb" }], false, "seconds", label);
        else { charts[key].data.labels = labels; charts[key].data.datasets[0].data = data; charts[key].update("none"); }
      }
      const table = (id, obj) => rows(document.querySelector(`#${id} tbody`),
        Object.keys(obj).length ? Object.entries(obj) : [["none", ""]]);
      table("replacements", m.replacements); table("errors", m.errors); table("methods", m.calls_by_method);
    }
  };
  update(Object.assign({ console_leases: [] }, initial));
  const live = document.getElementById("live");
  const source = new EventSource("/pool/events");
  source.onmessage = (e) => { live.textContent = "live"; live.className = "badge pass"; update(JSON.parse(e.data)); };
  source.onerror = () => { live.textContent = "reconnecting…"; live.className = "badge not-built"; };
}

// ---- rollouts: the two distributions
function startRollouts() {
  const data = json("rollout-data");
  if (!data) return;
  // [label, count] pairs, in the report's own bin order
  barChart(document.getElementById("chart-rewards"), data.rewards.map((p) => p[0]),
           [{ label: "episodes", data: data.rewards.map((p) => p[1]), backgroundColor: "#2f6fdb" }], false, "reward", "episodes");
  barChart(document.getElementById("chart-steps"), data.steps.map((p) => p[0]),
           [{ label: "episodes", data: data.steps.map((p) => p[1]), backgroundColor: "#8e6bd1" }], false, "steps", "episodes");
}

// An action htmx could not complete (console down, server error): say so instead of doing nothing.
function keepStatePanel() {  // the state panel is re-sent after each call; it stays as open as it was
  document.body.addEventListener("htmx:configRequest", (e) => {
    const panel = document.getElementById("state-panel");
    e.detail.headers["X-State-Open"] = panel && panel.open ? "1" : "0";
  });
}

function showFailures() {
  const say = (text) => { const b = document.getElementById("banner"); b.textContent = text; b.className = "banner error"; };
  document.body.addEventListener("htmx:responseError", (e) => say(`The console answered ${e.detail.xhr.status}: ${e.detail.xhr.responseText.slice(0, 300)}`));
  document.body.addEventListener("htmx:sendError", () => say("The console cannot be reached."));
}

document.addEventListener("DOMContentLoaded", () => {
  showFailures();
  keepStatePanel();
  startHeartbeat();
  startPool();
  startRollouts();
});
