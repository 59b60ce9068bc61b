// dnlb's web console. Reads /v1/status every second; draws rates as SVG;
// sends changes with the token typed into the page (kept in sessionStorage),
// each after a confirmation. No framework, nothing loaded from elsewhere.
"use strict";

const POLL_MS = 1000;
const HISTORY_SECS = 300;
const MAX_EVENTS = 100;
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const page = {
  token: sessionStorage.getItem("dnlb-token") || "",
  prev: null, // the previous status and when it came
  series: new Map(), // chart key -> Map(name -> [{t, v}])
  shapes: new Map(), // container id -> the structure last rendered
};

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => "&#" + c.charCodeAt(0) + ";");
}
function safeId(s) {
  return String(s).replace(/[^A-Za-z0-9_-]/g, "_");
}
function count(n) {
  return Number(n || 0).toLocaleString("en-US");
}
function rate(v, unit) {
  const a = Math.abs(v);
  const [d, p] = a >= 1e9 ? [1e9, "G"] : a >= 1e6 ? [1e6, "M"] : a >= 1e3 ? [1e3, "k"] : [1, ""];
  return (v / d).toFixed(d === 1 && a < 10 ? 1 : a / d >= 100 ? 0 : 1) + " " + p + unit;
}
function sum(o) {
  return Object.values(o || {}).reduce((a, b) => a + b, 0);
}
function backendKey(b) {
  return b.target_group + "/" + b.address + (b.port ? ":" + b.port : "");
}
function backendPath(b) {
  return "/v1/target_groups/" + encodeURIComponent(b.target_group) + "/backends/" +
    encodeURIComponent(b.address) + (b.port ? "?port=" + b.port : "");
}
function state(b) {
  if (!b.usable) return b.drain_until && b.healthy ? "drained" : "down";
  if (!b.healthy) return "fail-open";
  if (b.takes_new_flows) return b.health_presumed ? "presumed" : "up";
  return b.drain_until ? "draining" : "standby";
}

// ---- the API ----

async function api(method, path, body) {
  const headers = {};
  if (page.token) headers.Authorization = "Bearer " + page.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method, headers, cache: "no-store", credentials: "omit",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let v = null;
  try { v = await r.json(); } catch (_) { v = null; }
  return { status: r.status, body: v };
}

async function poll() {
  try {
    const r = await api("GET", "/v1/status");
    if (r.status === 200) {
      $("connection").textContent = "";
      update(r.body, Date.now() / 1000);
    } else {
      $("connection").textContent = "The gateway answered " + r.status + ": " +
        ((r.body && r.body.error) || "no status") + (r.status === 401 ? " (check the token)" : "");
    }
  } catch (e) {
    $("connection").textContent = "Cannot reach the gateway; retrying every second.";
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// ---- one status ----

function update(s, now) {
  const prev = page.prev;
  events(prev && prev.s, s);
  rates(prev, s, now);
  page.prev = { s, t: now };
  $("gateway-name").textContent = s.gateway + (s.zone ? " (zone " + s.zone + ")" : "");
  $("summary").textContent = "Config generation " + s.generation + " · up " + Math.round(s.uptime_secs) +
    " s · reloads " + s.reloads_ok + " ok / " + s.reloads_rejected + " rejected" +
    (s.counters_fresh ? "" : " · counters not fresh (a worker did not answer)");
  listeners(s);
  groups(s);
  charts(now);
  gateway(s);
}

// Renders `html` into container `id` only when `shape` (what the HTML is
// built from, less the counters) changed, keeping the focused control;
// counters are then set by id, so buttons never move under the user.
function render(id, shape, html) {
  const key = JSON.stringify(shape) + (page.token ? "w" : "r");
  if (page.shapes.get(id) === key) return;
  page.shapes.set(id, key);
  const focused = document.activeElement && document.activeElement.id;
  $(id).innerHTML = html;
  if (focused && $(focused) && $(id).contains($(focused))) $(focused).focus();
}
function setText(id, text) {
  const e = $(id);
  if (e && e.textContent !== text) e.textContent = text;
}
function actionButton(id, label, aria) {
  return '<button type="button" class="write" id="' + esc(id) + '" aria-label="' + esc(aria) + '"' +
    (page.token ? "" : " disabled") + ">" + esc(label) + "</button>";
}

function listeners(s) {
  const shape = s.listeners.map((l) => [l.name, l.vips, l.elastic_ip, l.protocol, l.port, l.target_group]);
  let h = '<table><caption class="sr">Listeners</caption><thead><tr><th scope="col">Name</th>' +
    '<th scope="col">Addresses</th><th scope="col">Protocol</th><th scope="col">Port</th>' +
    '<th scope="col">Group</th><th scope="col" class="n">Backends taking new flows</th>' +
    '<th scope="col" class="n">Packets</th><th scope="col" class="n">Bytes</th>' +
    '<th scope="col" class="n">Packets/s</th><th scope="col" class="n">Drops</th><th scope="col">Actions</th></tr></thead><tbody>';
  for (const l of s.listeners) {
    const id = "l-" + safeId(l.name);
    const addrs = l.vips.join(", ") + (l.elastic_ip ? ", " + l.elastic_ip + " (elastic)" : "");
    h += '<tr id="' + id + '"><th scope="row">' + esc(l.name) + "</th><td>" + esc(addrs) + "</td><td>" +
      esc(l.protocol) + "</td><td>" + esc(l.port ?? "all") + "</td><td>" + esc(l.target_group) +
      '</td><td class="n" id="' + id + '-nf"></td><td class="n" id="' + id + '-p"></td><td class="n" id="' +
      id + '-b"></td><td class="n" id="' + id + '-r"></td><td class="n" id="' + id + '-d"></td><td>' +
      (l.elastic_ip
        ? actionButton(id + "-detach", "Detach elastic IP…", "Detach elastic IP " + l.elastic_ip + " from listener " + l.name)
        : actionButton(id + "-attach", "Attach elastic IP…", "Attach an elastic IP to listener " + l.name)) +
      "</td></tr>";
  }
  render("listeners", shape, s.listeners.length ? h + "</tbody></table>" : "<p>No listeners.</p>");
  for (const l of s.listeners) {
    const id = "l-" + safeId(l.name);
    setText(id + "-nf", String(l.backends_taking_new_flows));
    setText(id + "-p", count(l.packets));
    setText(id + "-b", count(l.bytes));
    setText(id + "-r", rate(last("listener-packets", l.name), "pkt/s"));
    setText(id + "-d", count(sum(l.drops)));
    bind(id + "-attach", () => attachDialog(l));
    bind(id + "-detach", () => detachDialog(l));
  }
}

function groupsOf(s) {
  const g = new Map();
  for (const l of s.listeners) if (!g.has(l.target_group)) g.set(l.target_group, []);
  for (const b of s.backends) {
    if (!g.has(b.target_group)) g.set(b.target_group, []);
    g.get(b.target_group).push(b);
  }
  return g;
}

function groups(s) {
  const g = groupsOf(s);
  const shape = s.backends.map((b) => [backendKey(b), b.zone, b.kind, b.tunnel, b.weight, state(b), b.drain_until, b.runtime]);
  shape.push([...g.keys()]);
  let h = "";
  for (const [name, backends] of g) {
    const gid = "g-" + safeId(name);
    h += '<section aria-labelledby="' + gid + '-h"><h3 id="' + gid + '-h">' + esc(name) + " " +
      actionButton(gid + "-register", "Register a backend…", "Register a backend in group " + name) + "</h3>";
    const zones = new Map();
    for (const b of backends) {
      const z = b.zone || "no zone";
      if (!zones.has(z)) zones.set(z, []);
      zones.get(z).push(b);
    }
    for (const [zone, list] of [...zones].sort((a, b) => a[0].localeCompare(b[0]))) {
      const zid = gid + "-z-" + safeId(zone);
      h += '<h4 id="' + zid + '">Zone ' + esc(zone) + "</h4>" + '<table class="backends" aria-labelledby="' + gid + "-h " + zid +
        '"><thead><tr><th scope="col">Backend</th><th scope="col">Kind</th><th scope="col">Tunnel</th>' +
        '<th scope="col" class="n">Weight</th><th scope="col">State</th><th scope="col">Drain until</th>' +
        '<th scope="col" class="n">Packets</th><th scope="col" class="n">Bytes</th>' +
        '<th scope="col" class="n">Packets/s</th><th scope="col" class="n">Drops</th><th scope="col">Actions</th></tr></thead><tbody>';
      for (const b of list) h += backendRow(b);
      h += "</tbody></table>";
    }
    if (!backends.length) h += "<p>No backends.</p>";
    h += "</section>";
  }
  render("groups", shape, h || "<p>No target groups.</p>");
  for (const b of s.backends) {
    const id = "b-" + safeId(backendKey(b));
    setText(id + "-p", count(b.packets));
    setText(id + "-b", count(b.bytes));
    setText(id + "-r", rate(last("backend-packets", backendKey(b)), "pkt/s"));
    setText(id + "-d", count(sum(b.drops)));
    bind(id + "-drain", () => drainDialog(b));
    bind(id + "-undrain", () => undrainDialog(b));
    bind(id + "-weight", () => weightDialog(b));
    bind(id + "-deregister", () => deregisterDialog(b));
  }
  for (const name of g.keys()) bind("g-" + safeId(name) + "-register", () => registerDialog(name));
}

function backendRow(b) {
  const id = "b-" + safeId(backendKey(b));
  const st = state(b);
  const who = b.address + (b.port ? ":" + b.port : "") + " in group " + b.target_group;
  return '<tr id="' + id + '" data-state="' + st + '"><th scope="row">' + esc(b.address + (b.port ? ":" + b.port : "")) +
    (b.runtime ? ' <span class="note">(run-time change)</span>' : "") + "</th><td>" + esc(b.kind) +
    "</td><td>" + esc(b.tunnel) + '</td><td class="n">' + esc(b.weight) + '</td><td class="state-' + st +
    '" id="' + id + '-state">' + st + "</td><td>" + esc(b.drain_until || "") + '</td><td class="n" id="' +
    id + '-p"></td><td class="n" id="' + id + '-b"></td><td class="n" id="' + id + '-r"></td><td class="n" id="' +
    id + '-d"></td><td>' +
    (b.drain_until
      ? actionButton(id + "-undrain", "Cancel drain…", "Cancel the drain of " + who)
      : actionButton(id + "-drain", "Drain…", "Drain " + who)) + " " +
    actionButton(id + "-weight", "Weight…", "Change the weight of " + who) + " " +
    actionButton(id + "-deregister", "Deregister…", "Deregister " + who) + "</td></tr>";
}

function bind(id, f) {
  const e = $(id);
  if (e && !e.dataset.bound) {
    e.dataset.bound = "1";
    e.addEventListener("click", f);
  }
}

function gateway(s) {
  let h = '<table><caption>Workers</caption><thead><tr><th scope="col">Lcore</th><th scope="col" class="n">Received</th>' +
    '<th scope="col" class="n">Sent</th><th scope="col" class="n">Dropped</th><th scope="col" class="n">Busy</th></tr></thead><tbody>';
  for (const w of s.workers) {
    h += "<tr><td>" + w.lcore + '</td><td class="n">' + count(w.rx_packets) + '</td><td class="n">' +
      count(w.tx_packets) + '</td><td class="n">' + count(w.dropped) + '</td><td class="n">' +
      (w.busy_seconds || 0).toFixed(1) + " s</td></tr>";
  }
  h += "</tbody></table>";
  const f = s.flows;
  h += "<p>Flows: " + count(f.entries) + " tracked of " + count(f.capacity) + "; created " + count(f.created) +
    ", table full " + count(f.table_full) + ", rescheduled " + count(f.rescheduled) + "</p>";
  const drops = Object.entries(s.drops).filter(([, n]) => n > 0);
  h += "<p>Drops by reason: " + (drops.length ? drops.map(([r, n]) => esc(r) + " " + count(n)).join(", ") : "none") + "</p>";
  if (s.routes) {
    const r = s.routes;
    h += "<p>Routes: BIRD " + (r.up ? "up" : "not up") + " at " + esc(r.bird_socket) + "; announced " +
      esc(r.announced ? "[" + r.announced.join(", ") + "]" : "nothing confirmed yet") + "; wanted [" +
      esc(r.wanted.join(", ")) + "]" + (r.pending ? " (change pending)" : "") + "; " + r.attempts +
      " attempts, " + r.failures + " failed" + (r.last_error ? "; last error: " + esc(r.last_error) : "") + "</p>";
  } else {
    h += "<p>Routes: no [routing] section (VIPs are not announced by dnlb).</p>";
  }
  if (s.sync) {
    const y = s.sync;
    h += "<p>Sync: " + (y.staged ? "a version is staged; " : "") + count(y.shared) + " exceptions shared, " +
      count(y.from_peers) + " from peers, " + count(y.received_messages) + " messages received, " +
      count(sum(y.rejected)) + " rejected, " + count(y.learned_entries) + " learned entries held</p>";
  }
  h += "<p>Run-time changes" + (s.runtime_file ? " (" + esc(s.runtime_file) + ")" : "") + ": " +
    (s.runtime_changes.length ? "</p><ul>" + s.runtime_changes.map((c) => "<li>" + esc(c) + "</li>").join("") + "</ul>" : "none</p>");
  if (s.stale_changes.length) {
    h += "<p>Stale (no longer apply):</p><ul>" + s.stale_changes.map((c) => "<li>" + esc(c) + "</li>").join("") + "</ul>";
  }
  if ($("gateway").innerHTML !== h) $("gateway").innerHTML = h;
}

// ---- rates and charts ----

const CHARTS = [
  ["listener-packets", "Listeners: packets/s", "pkt/s"],
  ["listener-bytes", "Listeners: bytes/s", "B/s"],
  ["listener-drops", "Listeners: drops/s", "drops/s"],
  ["backend-packets", "Backends: packets/s", "pkt/s"],
  ["backend-bytes", "Backends: bytes/s", "B/s"],
  ["backend-drops", "Backends: drops/s", "drops/s"],
];

function push(chart, name, t, v) {
  if (!page.series.has(chart)) page.series.set(chart, new Map());
  const m = page.series.get(chart);
  if (!m.has(name)) m.set(name, []);
  const pts = m.get(name);
  pts.push({ t, v: Math.max(0, v) });
  while (pts.length && pts[0].t < t - HISTORY_SECS) pts.shift();
}
function last(chart, name) {
  const pts = page.series.has(chart) && page.series.get(chart).get(name);
  return pts && pts.length ? pts[pts.length - 1].v : 0;
}

function rates(prev, s, now) {
  if (!prev) return;
  const dt = now - prev.t;
  if (dt <= 0) return;
  const before = new Map();
  for (const l of prev.s.listeners) before.set("l/" + l.name, l);
  for (const b of prev.s.backends) before.set("b/" + backendKey(b), b);
  const d = (a, b) => (b === undefined || a < b ? 0 : (a - b) / dt);
  for (const l of s.listeners) {
    const p = before.get("l/" + l.name) || {};
    push("listener-packets", l.name, now, d(l.packets, p.packets));
    push("listener-bytes", l.name, now, d(l.bytes, p.bytes));
    push("listener-drops", l.name, now, d(sum(l.drops), p.drops && sum(p.drops)));
  }
  for (const b of s.backends) {
    const k = backendKey(b);
    const p = before.get("b/" + k) || {};
    push("backend-packets", k, now, d(b.packets, p.packets));
    push("backend-bytes", k, now, d(b.bytes, p.bytes));
    push("backend-drops", k, now, d(sum(b.drops), p.drops && sum(p.drops)));
  }
  // Forget what is gone from the status.
  const live = new Set([...s.listeners.map((l) => l.name), ...s.backends.map(backendKey)]);
  for (const m of page.series.values()) for (const k of m.keys()) if (!live.has(k)) m.delete(k);
}

function charts(now) {
  const box = $("charts");
  for (const [key, title, unit] of CHARTS) {
    let fig = $("chart-" + key);
    if (!fig) {
      fig = document.createElement("figure");
      fig.id = "chart-" + key;
      fig.innerHTML = '<figcaption id="chart-' + key + '-t">' + esc(title) + ' <span class="scale" id="chart-' +
        key + '-scale"></span></figcaption>';
      const svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("class", "chart");
      svg.setAttribute("viewBox", "0 0 600 140");
      svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("role", "img");
      fig.appendChild(svg);
      const legend = document.createElement("ul");
      legend.className = "legend";
      legend.setAttribute("aria-label", title + ", now");
      fig.appendChild(legend);
      box.appendChild(fig);
    }
    drawChart(fig, key, title, unit, now);
  }
}

function drawChart(fig, key, title, unit, now) {
  const series = [...(page.series.get(key) || new Map())];
  const W = 600, H = 140, top = 14, left = 0;
  let max = 0;
  for (const [, pts] of series) for (const p of pts) max = Math.max(max, p.v);
  max = max > 0 ? max * 1.1 : 1;
  const svg = fig.querySelector("svg");
  const x = (t) => left + ((t - (now - HISTORY_SECS)) / HISTORY_SECS) * (W - left);
  const y = (v) => H - 1 - (v / max) * (H - top - 1);
  let inner = '<line class="axis" x1="0" y1="' + (H - 1) + '" x2="' + W + '" y2="' + (H - 1) + '"/>' +
    '<line class="axis" x1="0" y1="' + top + '" x2="' + W + '" y2="' + top + '"/>';
  setText("chart-" + key + "-scale", "top line " + rate(max, unit) + "; from −" + HISTORY_SECS / 60 + " min to now");
  series.forEach(([name, pts], i) => {
    const points = pts.map((p) => x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join(" ");
    inner += '<polyline class="s' + (i % 8) + '" data-name="' + esc(name) + '" data-last="' +
      (pts.length ? pts[pts.length - 1].v : 0) + '" points="' + points + '"/>';
  });
  svg.innerHTML = inner;
  const now_ = series.map(([name, pts]) => name + " " + rate(pts.length ? pts[pts.length - 1].v : 0, unit));
  svg.setAttribute("aria-label", title + " over the last " + HISTORY_SECS / 60 + " minutes; now: " +
    (now_.length ? now_.join(", ") : "no data yet"));
  const legend = fig.querySelector("ul");
  const lh = series.map(([name], i) => '<li class="s' + (i % 8) + '">' + esc(now_[i]) + "</li>").join("");
  if (legend.innerHTML !== lh) legend.innerHTML = lh;
}

// ---- events seen by the page ----

function logEvent(text, kind) {
  const li = document.createElement("li");
  const t = new Date();
  li.textContent = t.toLocaleTimeString("en-GB") + " " + text;
  if (kind) li.className = kind;
  const ol = $("events");
  ol.insertBefore(li, ol.firstChild);
  while (ol.children.length > MAX_EVENTS) ol.removeChild(ol.lastChild);
}

function events(p, s) {
  if (!p) {
    logEvent("connected to " + s.gateway + ", config generation " + s.generation);
    return;
  }
  if (s.uptime_secs < p.uptime_secs) logEvent("the gateway restarted");
  if (s.reloads_ok > p.reloads_ok) logEvent("config reloaded (" + s.reloads_ok + " reloads so far)");
  if (s.reloads_rejected > p.reloads_rejected) logEvent("a reload was rejected; the running config stayed", "del");
  if (s.generation !== p.generation) logEvent("config generation " + p.generation + " → " + s.generation);
  const before = new Map(p.backends.map((b) => [backendKey(b), b]));
  for (const b of s.backends) {
    const o = before.get(backendKey(b));
    if (!o) logEvent("backend " + backendKey(b) + " added (" + state(b) + ")");
    else {
      if (state(o) !== state(b)) logEvent("backend " + backendKey(b) + ": " + state(o) + " → " + state(b));
      if (o.weight !== b.weight) logEvent("backend " + backendKey(b) + ": weight " + o.weight + " → " + b.weight);
    }
    before.delete(backendKey(b));
  }
  for (const k of before.keys()) logEvent("backend " + k + " removed");
  const eips = new Map(p.listeners.map((l) => [l.name, l.elastic_ip]));
  for (const l of s.listeners) {
    if (eips.has(l.name) && eips.get(l.name) !== l.elastic_ip) {
      logEvent("listener " + l.name + ": elastic IP " + (l.elastic_ip ? l.elastic_ip + " attached" : "detached"));
    }
  }
  if (s.routes && p.routes) {
    if (s.routes.up !== p.routes.up) logEvent("BIRD " + (s.routes.up ? "up" : "down: " + (s.routes.last_error || "")));
    const a = JSON.stringify(s.routes.announced), b = JSON.stringify(p.routes.announced);
    if (a !== b) logEvent("BIRD announces " + (s.routes.announced ? "[" + s.routes.announced.join(", ") + "]" : "nothing"));
  }
  if (s.sync && p.sync && s.sync.staged !== p.sync.staged) {
    logEvent(s.sync.staged ? "sync: a new version is staged" : "sync: the staged version is in use");
  }
}

// ---- actions ----

// Asks for confirmation (and fields), shows what will be sent, sends it.
// `build(values)` returns [method, path, body] or throws a message.
function confirmAction(title, fields, build) {
  const dlg = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-fields").innerHTML = fields.map((f) => {
    const id = "cf-" + f.name;
    const attrs = ' id="' + id + '" name="' + f.name + '"' + (f.required ? " required" : "") +
      (f.min !== undefined ? ' min="' + f.min + '" max="' + f.max + '"' : "");
    const input = f.options
      ? "<select" + attrs + ">" + f.options.map((o) => "<option" + (o === f.value ? " selected" : "") + ">" + esc(o) + "</option>").join("") + "</select>"
      : f.type === "textarea"
        ? "<textarea" + attrs + ' rows="3">' + esc(f.value ?? "") + "</textarea>"
        : '<input type="' + (f.type || "text") + '"' + attrs + ' value="' + esc(f.value ?? "") + '">';
    return '<label for="' + id + '">' + esc(f.label) + "</label>" + input;
  }).join("");
  const values = () => Object.fromEntries(fields.map((f) => [f.name, $("cf-" + f.name).value.trim()]));
  const describe = () => {
    try {
      const [m, path, body] = build(values());
      $("confirm-what").textContent = "Will send: " + m + " " + path + (body === undefined ? "" : " " + JSON.stringify(body));
      $("confirm-ok").disabled = false;
    } catch (e) {
      $("confirm-what").textContent = String(e.message || e);
      $("confirm-ok").disabled = true;
    }
  };
  $("confirm-fields").oninput = describe;
  describe();
  $("confirm-form").onsubmit = async (ev) => {
    ev.preventDefault();
    let req;
    try { req = build(values()); } catch (e) { return; }
    dlg.close();
    await send(title, ...req);
  };
  dlg.showModal();
  const first = dlg.querySelector("input, select, textarea") || $("confirm-ok");
  first.focus();
}

async function send(what, method, path, body) {
  try {
    const r = await api(method, path, body);
    if (r.status === 200) {
      logEvent(what + ": done" + (r.body && r.body.generation !== undefined ? ", generation " + r.body.generation : ""), "add");
    } else {
      logEvent(what + ": refused (" + r.status + "): " + ((r.body && r.body.error) || "no reason given"), "del");
    }
    return r;
  } catch (e) {
    logEvent(what + ": the gateway could not be reached", "del");
    return null;
  }
}

function intIn(v, lo, hi, what) {
  if (!/^[0-9]+$/.test(v) || +v < lo || +v > hi) throw new Error(what + ": give a whole number from " + lo + " to " + hi);
  return +v;
}

function drainDialog(b) {
  confirmAction("Drain " + backendKey(b),
    [{ name: "secs", label: "Deadline (seconds from now, 0–604800)", type: "number", value: "300", min: 0, max: 604800, required: true }],
    (v) => ["PUT", backendPath(b).replace(/(\?|$)/, "/drain$1"), { deadline_secs: intIn(v.secs, 0, 604800, "deadline") }]);
}
function undrainDialog(b) {
  confirmAction("Cancel the drain of " + backendKey(b), [], () => ["DELETE", backendPath(b).replace(/(\?|$)/, "/drain$1"), undefined]);
}
function weightDialog(b) {
  confirmAction("Weight of " + backendKey(b),
    [{ name: "weight", label: "Weight (0–100; 0: no new flows)", type: "number", value: String(b.weight), min: 0, max: 100, required: true }],
    (v) => ["PUT", backendPath(b).replace(/(\?|$)/, "/weight$1"), { weight: intIn(v.weight, 0, 100, "weight") }]);
}
function deregisterDialog(b) {
  confirmAction("Deregister " + backendKey(b), [], () => ["DELETE", backendPath(b), undefined]);
}
function registerDialog(group) {
  confirmAction("Register a backend in " + group, [
    { name: "address", label: "Address", required: true },
    { name: "tunnel", label: "Tunnel", options: ["ipip", "gue", "vxlan", "gre"], value: "gue" },
    { name: "zone", label: "Zone (optional)" },
    { name: "weight", label: "Weight (0–100)", type: "number", value: "100", min: 0, max: 100 },
    { name: "extra", label: 'Other keys as JSON (optional), e.g. {"vni": 5, "port": 8080}', type: "textarea" },
  ], (v) => {
    if (!v.address) throw new Error("give the backend's address");
    let body = { address: v.address, tunnel: v.tunnel, weight: intIn(v.weight || "100", 0, 100, "weight") };
    if (v.zone) body.zone = v.zone;
    if (v.extra) {
      let extra;
      try { extra = JSON.parse(v.extra); } catch (_) { throw new Error("other keys: not JSON"); }
      if (typeof extra !== "object" || extra === null || Array.isArray(extra)) throw new Error("other keys: give a JSON object");
      body = Object.assign(body, extra);
    }
    return ["POST", "/v1/target_groups/" + encodeURIComponent(group) + "/backends", body];
  });
}
function attachDialog(l) {
  confirmAction("Attach an elastic IP to " + l.name,
    [{ name: "address", label: "Elastic IP address", required: true }],
    (v) => {
      if (!v.address) throw new Error("give the address");
      return ["PUT", "/v1/listeners/" + encodeURIComponent(l.name) + "/elastic_ip", { address: v.address }];
    });
}
function detachDialog(l) {
  confirmAction("Detach elastic IP " + l.elastic_ip + " from " + l.name, [],
    () => ["DELETE", "/v1/listeners/" + encodeURIComponent(l.name) + "/elastic_ip", undefined]);
}
function reloadDialog() {
  confirmAction("Reload the config file", [], () => ["POST", "/v1/reload", undefined]);
}

// ---- the token and the dry run ----

function setToken(t) {
  page.token = t;
  if (t) sessionStorage.setItem("dnlb-token", t);
  else sessionStorage.removeItem("dnlb-token");
  $("token").value = "";
  $("mode").textContent = t
    ? "Changes enabled: the token is kept in this tab only (sessionStorage)."
    : "Read-only: type the admin token to make changes.";
  for (const b of document.querySelectorAll("button.write")) b.disabled = !t;
  page.shapes.clear();
  if (page.prev) update(page.prev.s, page.prev.t);
}

async function checkConfig(ev) {
  ev.preventDefault();
  const out = $("check-out");
  out.textContent = "Checking…";
  let r;
  try {
    r = await api("POST", "/v1/config/check", { toml: $("check-text").value });
  } catch (e) {
    out.textContent = "The gateway could not be reached.";
    return;
  }
  const v = r.body || {};
  if (r.status !== 200) {
    out.textContent = "Refused (" + r.status + "): " + (v.error || "");
    return;
  }
  out.textContent = "";
  const head = document.createElement("strong");
  head.textContent = v.valid
    ? (v.changes ? "Valid. What a reload with it would change:" : "Valid, and the same plan as the running config.")
    : "Invalid: a reload with it would be rejected.";
  out.appendChild(head);
  for (const line of v.valid ? v.diff : v.errors) {
    const span = document.createElement("span");
    span.textContent = "\n" + line;
    if (line.startsWith("+")) span.className = "add";
    if (line.startsWith("-")) span.className = "del";
    out.appendChild(span);
  }
}

function start() {
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setToken($("token").value.trim());
  });
  $("token-forget").addEventListener("click", () => setToken(""));
  $("reload").addEventListener("click", reloadDialog);
  $("confirm-cancel").addEventListener("click", () => $("confirm").close());
  $("check-form").addEventListener("submit", checkConfig);
  $("check-file").addEventListener("change", async () => {
    const f = $("check-file").files[0];
    if (f) $("check-text").value = await f.text();
  });
  setToken(page.token);
  poll();
}

start();
