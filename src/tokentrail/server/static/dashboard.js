// tokentrail live dashboard: reads the JSON API of `tokentrail serve`, draws SVG charts by
// hand (no library, nothing fetched from elsewhere) and refreshes itself when new calls
// arrive. The API token (if the server needs one) is kept in sessionStorage only.
"use strict";

(function () {
  const POLL_MS = 2000; // look for new calls this often (one cached stats request)
  const FULL_MS = 30000; // redraw everything at least this often (projection, windows)
  const SVG = "http://www.w3.org/2000/svg";
  const state = {
    token: null,
    me: null,
    range: "30d",
    period: "day",
    user: "",
    model: "",
    operation: "",
    signature: null,
    lastFull: 0,
    seen: new Set(),
    older: null,
    busy: false,
    pending: false,
    staleSeen: false,
  };

  // ------------------------------------------------------------------ formatting
  const intFmt = new Intl.NumberFormat("en-US");
  function count(n) { return intFmt.format(Number(n || 0)); }
  function compact(n) {
    n = Number(n || 0);
    const a = Math.abs(n);
    const short = (v, unit) => Number(v.toPrecision(3)).toString() + unit;
    if (a >= 1e9) return short(n / 1e9, "B");
    if (a >= 1e6) return short(n / 1e6, "M");
    if (a >= 1e3) return short(n / 1e3, "k");
    return String(Math.round(n));
  }
  // Money arrives as a decimal string at full precision; shown rounded, never zeroed.
  function money(s) {
    if (s === null || s === undefined) return "—";
    const n = Number(s);
    if (n === 0) return "$0.00";
    if (Math.abs(n) < 0.000001) return "<$0.000001";
    if (Math.abs(n) < 0.01) return "$" + n.toPrecision(2);
    if (Math.abs(n) < 100) return "$" + n.toFixed(2);
    return "$" + intFmt.format(Math.round(n));
  }
  // Axis labels: as many digits as the tick needs ($0.025, not $0.03).
  function axisMoney(v) {
    if (v === 0) return "$0";
    if (v < 1) return "$" + Number(v.toPrecision(2));
    return "$" + Number(v.toPrecision(3)).toLocaleString("en-US");
  }
  function plural(n, word) { return `${count(n)} ${word}${Number(n) === 1 ? "" : "s"}`; }
  function when(iso) {
    const d = new Date(iso);
    return d.toISOString().slice(0, 19).replace("T", " ");
  }
  const RANGE_WORDS = { "24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days",
    "90d": "last 90 days", "": "all time" };

  // ------------------------------------------------------------------ DOM helpers
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ API
  class Unauthorized extends Error {}
  async function api(path, params) {
    const url = new URL("api/" + path, document.baseURI);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== "" && v !== null && v !== undefined) url.searchParams.set(k, v);
    }
    const headers = {};
    if (state.token) headers.Authorization = "Bearer " + state.token;
    const res = await fetch(url, { headers, cache: "no-store" });
    if (res.status === 401) throw new Unauthorized("token refused");
    if (!res.ok) throw new Error(path + ": HTTP " + res.status);
    // An answer from before the latest calls (a fresh one is being computed): ask again.
    if (res.headers.get("X-Tokentrail-Stale")) state.staleSeen = true;
    return res.json();
  }
  function filters() {
    return { since: state.range, userId: state.user, model: state.model,
      operation: state.operation };
  }

  // ------------------------------------------------------------------ charts
  function empty(box, text) {
    box.replaceChildren(el("div", { class: "empty", text: text || "No calls in this range" }));
  }

  function lineChart(box, rows) {
    if (!rows.length || rows.every((r) => !r.tokens && !r.calls)) return empty(box);
    const W = 1180, H = 300, L = 64, R = 64, T = 16, B = 34;
    const maxT = Math.max(1, ...rows.map((r) => r.tokens));
    const maxC = Math.max(1e-12, ...rows.map((r) => Number(r.cost)));
    const niceT = nice(maxT), niceC = nice(maxC);
    const x = (i) => L + (rows.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (rows.length - 1));
    const y = (v) => T + (H - T - B) * (1 - v / niceT);
    const yc = (v) => T + (H - T - B) * (1 - v / niceC);
    const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": "Tokens over time" });
    for (let k = 0; k <= 4; k++) {
      const v = (niceT * k) / 4, yy = y(v);
      s.append(svg("line", { class: "grid-line", x1: L, x2: W - R, y1: yy, y2: yy }));
      s.append(svg("text", { x: L - 8, y: yy + 4, "text-anchor": "end", text: compact(v) }));
      s.append(svg("text", { x: W - R + 8, y: yy + 4, "text-anchor": "start",
        text: axisMoney((niceC * k) / 4) }));
    }
    s.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    const pts = rows.map((r, i) => `${x(i).toFixed(1)},${y(r.tokens).toFixed(1)}`);
    s.append(svg("path", { class: "area",
      d: `M${x(0)},${H - B} L${pts.join(" L")} L${x(rows.length - 1)},${H - B} Z` }));
    s.append(svg("path", { class: "line", d: "M" + pts.join(" L") }));
    const cpts = rows.map((r, i) => `${x(i).toFixed(1)},${yc(Number(r.cost)).toFixed(1)}`);
    s.append(svg("path", { class: "cost-line", d: "M" + cpts.join(" L") }));
    const every = Math.max(1, Math.ceil(rows.length / 12));
    rows.forEach((r, i) => {
      const dot = svg("circle", { class: "dot", cx: x(i), cy: y(r.tokens), r: rows.length > 60 ? 1.5 : 3 });
      dot.append(svg("title", { text: `${r.date}: ${count(r.tokens)} tokens, ${money(r.cost)}, ${count(r.calls)} calls` }));
      s.append(dot);
      if (i % every === 0 || i === rows.length - 1) {
        s.append(svg("text", { x: x(i), y: H - B + 16, "text-anchor": "middle", text: r.date.slice(5) }));
      }
    });
    s.append(svg("text", { class: "legend", x: L, y: 10, text: "— tokens (left axis)" }));
    s.append(svg("text", { class: "legend", x: W - R, y: 10, "text-anchor": "end",
      text: "- - spend, USD (right axis)" }));
    box.replaceChildren(s);
  }

  function nice(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function barChart(box, rows, nameKey, onPick) {
    rows = rows.slice(0, 10);
    if (!rows.length) return empty(box);
    const W = 560, rowH = 26, L = 150, R = 90, H = rows.length * rowH + 6;
    const max = Math.max(1e-12, ...rows.map((r) => Number(r.cost)));
    const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": box.parentNode.querySelector("h2").firstChild.textContent.trim() });
    rows.forEach((r, i) => {
      const name = String(r[nameKey]);
      const yy = 3 + i * rowH;
      const w = Math.max(1, ((W - L - R) * Number(r.cost)) / max);
      const g = svg("g", { class: "row", "data-name": name, tabindex: "0" });
      g.append(svg("title", { text: `${name}: ${money(r.cost)}, ${count(r.totalTokens)} tokens, ${count(r.calls)} calls` }));
      g.append(svg("text", { class: "label", x: L - 8, y: yy + 16, "text-anchor": "end",
        text: name.length > 22 ? name.slice(0, 21) + "…" : name }));
      g.append(svg("rect", { class: "bar" + (name === "other" ? " other" : ""), x: L, y: yy + 4,
        width: w.toFixed(1), height: rowH - 9, rx: 3 }));
      const unpriced = r.unpricedCalls === r.calls;
      g.append(svg("text", { class: "value", x: L + w + 6, y: yy + 16,
        text: unpriced ? `unpriced · ${compact(r.totalTokens)} tokens`
          : `${money(r.cost)} · ${(r.share * 100).toFixed(0)}%` }));
      if (onPick) g.addEventListener("click", () => onPick(name));
      s.append(g);
    });
    box.replaceChildren(s);
  }

  // ------------------------------------------------------------------ panels
  function tiles(stats, today, projection) {
    const mostModel = [...today.byModel].sort((a, b) => b.totalTokens - a.totalTokens)[0];
    const mostOp = [...today.byOperation].sort((a, b) => b.totalTokens - a.totalTokens)[0];
    const items = [
      ["Spend", money(stats.totalCost), `${plural(stats.unpricedCalls, "unpriced call")}`],
      ["Tokens", compact(stats.totalTokens), `${compact(stats.totalInputTokens)} in · ${compact(stats.totalOutputTokens)} out`],
      ["Calls", count(stats.calls), plural(stats.errors, "error")],
      ["Tokens today (UTC)", compact(today.totalTokens), `${money(today.totalCost)} · ${plural(today.calls, "call")}`],
      ["Most used today (UTC)", mostModel ? mostModel.model : "—", mostModel ? `${compact(mostModel.totalTokens)} tokens · ${mostOp ? mostOp.operation : "—"} most` : "no calls yet today"],
      [`Projected ${projection.month}`, money(projection.projected), `${money(projection.runRatePerDay)}/day run rate`],
    ];
    $("kpis").replaceChildren(...items.map(([label, value, note]) =>
      el("div", { class: "tile" + (/^[$0-9<]/.test(value) ? "" : " text"), "data-kpi": label },
        el("div", { class: "label", text: label }),
        el("div", { class: "value", text: value, title: value }),
        el("div", { class: "note", text: note, title: note }))));
  }

  function budgets(list) {
    const box = document.querySelector("#budgets .body");
    if (!list.budgets.length) return empty(box, "No budgets (tracker.budget(...) saves them).");
    const rows = list.budgets.slice(0, 12).map((b) => {
      const pct = Math.min(100, b.percent);
      const bar = el("span", { class: b.percent >= 100 ? "over" : b.percent >= 80 ? "warn" : "" });
      bar.style.width = pct.toFixed(1) + "%";
      const fmt = (v) => (b.unit === "usd" ? money(v) : count(v));
      const who = b.key ? `${b.scope} ${b.key}` : b.scope;
      return el("div", { class: "budget" },
        el("div", { class: "top" },
          el("span", { text: `${b.name || who} · ${b.window}` }),
          el("span", { text: `${fmt(b.spent)} / ${fmt(b.limit)} (${b.percent.toFixed(0)}%)` })),
        el("div", { class: "meter" }, bar));
    });
    box.replaceChildren(...rows);
  }

  function table(columns, rows) {
    const head = el("tr", {}, ...columns.map(([name, num]) => el("th", { class: num ? "num" : "", text: name })));
    return el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows));
  }
  function drill(text, onClick) {
    if (!text) return document.createTextNode("—");
    return el("button", { class: "drill", type: "button", text, onclick: onClick });
  }

  function users(stats) {
    const box = document.querySelector("#top-users .body");
    if (!stats.byUser.length) return empty(box);
    const rows = stats.byUser.slice(0, 12).map((u) => el("tr", {},
      el("td", {}, u.userId === "other" || u.userId === "(none)" ? document.createTextNode(u.userId)
        : drill(u.userId, () => setFilter("user", u.userId))),
      el("td", { class: "num", text: count(u.calls) }),
      el("td", { class: "num", text: compact(u.totalTokens) }),
      el("td", { class: "num", text: money(u.cost) }),
      el("td", { class: "num", text: (u.share * 100).toFixed(1) + "%" })));
    box.replaceChildren(table([["User"], ["Calls", 1], ["Tokens", 1], ["Spend", 1], ["Share", 1]], rows));
  }

  function callRow(c, fresh) {
    return el("tr", { class: (c.status === "error" ? "error " : "") + (fresh ? "new" : ""), "data-id": c.id },
      el("td", { text: when(c.createdAt) }),
      el("td", {}, drill(c.userId, () => setFilter("user", c.userId))),
      el("td", {}, drill(c.operation, () => setFilter("operation", c.operation))),
      el("td", { text: c.model || "—" }),
      el("td", { class: "num", text: count(c.inputTokens) }),
      el("td", { class: "num", text: count(c.outputTokens) }),
      el("td", { class: "num", text: count(c.cacheReadTokens) }),
      el("td", { class: "num", text: money(c.cost) }),
      el("td", { class: "num", text: c.latencyMs === null ? "—" : count(Math.round(c.latencyMs)) + " ms" }),
      el("td", { text: c.status || "—" }));
  }
  const CALL_COLUMNS = [["Time (UTC)"], ["User"], ["Operation"], ["Model"], ["Input", 1], ["Output", 1],
    ["Cached", 1], ["Cost", 1], ["Latency", 1], ["Status"]];

  function calls(history) {
    const box = document.querySelector("#recent-calls .body");
    if (!history.usage.length) { $("older").hidden = true; return empty(box); }
    const first = state.seen.size === 0;
    const rows = history.usage.map((c) => callRow(c, !first && !state.seen.has(c.id)));
    history.usage.forEach((c) => state.seen.add(c.id));
    box.replaceChildren(table(CALL_COLUMNS, rows));
    state.older = history.nextBefore;
    $("older").hidden = !state.older;
  }

  async function older() {
    if (!state.older) return;
    const page = await api("tokens/history", { ...filters(), limit: 25, before: state.older });
    const body = document.querySelector("#recent-calls tbody");
    page.usage.forEach((c) => { state.seen.add(c.id); body.append(callRow(c, false)); });
    state.older = page.nextBefore;
    $("older").hidden = !state.older;
  }

  // ------------------------------------------------------------------ filters
  function options(select, values, label) {
    const current = select.value;
    const wanted = new Set(values);
    if (current) wanted.add(current);
    const opts = [el("option", { value: "", text: label })];
    for (const v of [...wanted].sort()) opts.push(el("option", { value: v, text: v }));
    select.replaceChildren(...opts);
    select.value = current;
  }

  function setFilter(name, value) {
    state[name] = value || "";
    $(name).value = state[name];
    state.seen.clear();
    writeHash();
    refresh(true);
  }

  function chips() {
    const box = $("filters");
    const parts = [el("span", { text: "Showing:" }),
      el("span", { class: "chip" }, el("b", { text: "range" }), document.createTextNode(" " + RANGE_WORDS[state.range]))];
    if (state.me && !state.me.admin) {
      parts.push(el("span", { class: "chip" }, el("b", { text: "user" }), document.createTextNode(` ${state.me.userId} (your token)`)));
    }
    for (const name of ["user", "model", "operation"]) {
      if (!state[name]) continue;
      parts.push(el("span", { class: "chip", "data-filter": name }, el("b", { text: name }),
        document.createTextNode(" " + state[name]),
        el("button", { type: "button", title: `clear the ${name} filter`, text: "×",
          onclick: () => setFilter(name, "") })));
    }
    if (!state.user && !state.model && !state.operation && (!state.me || state.me.admin)) {
      parts.push(el("span", { class: "muted", text: "all users, models and operations" }));
    }
    box.replaceChildren(...parts);
  }

  function writeHash() {
    const p = new URLSearchParams();
    for (const k of ["range", "period", "user", "model", "operation"]) if (state[k]) p.set(k, state[k]);
    if (!state.range) p.set("range", "all");
    history.replaceState(null, "", "#" + p.toString());
  }
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    if (p.has("token")) {
      state.token = p.get("token");
      sessionStorage.setItem("tokentrail-token", state.token);
      p.delete("token"); // never leave the secret in the address bar
    }
    for (const k of ["period", "user", "model", "operation"]) if (p.has(k)) state[k] = p.get(k);
    if (p.has("range")) state.range = p.get("range") === "all" ? "" : p.get("range");
    for (const k of ["range", "period", "user", "model", "operation"]) {
      const s = $(k);
      if (state[k] && ![...s.options].some((o) => o.value === state[k])) s.append(el("option", { value: state[k], text: state[k] }));
      s.value = state[k];
    }
  }

  // ------------------------------------------------------------------ refresh
  function live(ok, text) {
    const node = $("live");
    node.className = "live " + (ok ? "on" : "off");
    node.textContent = text;
  }

  async function refresh(full) {
    if (state.busy) {
      if (full) state.pending = true; // a filter changed mid-refresh: redraw right after
      return;
    }
    state.busy = true;
    try {
      const f = filters();
      const stats = await api("tokens/stats", f);
      const signature = [stats.calls, stats.totalTokens, stats.totalCost].join("|");
      const due = Date.now() - state.lastFull > FULL_MS || state.staleSeen;
      if (full || due || signature !== state.signature) {
        state.staleSeen = false;
        const [today, series, recent, projection, budgetList] = await Promise.all([
          api("tokens/stats", { ...f, since: "today" }),
          api("tokens/usage-by-period", { ...f, period: state.period }),
          api("tokens/history", { ...f, limit: 25 }),
          api("tokens/projection", { userId: f.userId, model: f.model, operation: f.operation }),
          api("budgets", { userId: f.userId }),
        ]);
        state.signature = signature;
        state.lastFull = Date.now();
        draw(stats, today, series, recent, projection, budgetList);
      }
      live(true, "live · " + new Date().toLocaleTimeString());
    } catch (err) {
      if (err instanceof Unauthorized) return showLogin("That token was refused.");
      live(false, "offline · retrying");
    } finally {
      state.busy = false;
      if (state.pending) {
        state.pending = false;
        refresh(true);
      }
    }
  }

  function draw(stats, today, series, recent, projection, budgetList) {
    const who = state.me && !state.me.admin ? `user ${state.me.userId}`
      : state.user ? `admin token, user ${state.user}` : "admin token, every user";
    $("subtitle").textContent = `${plural(stats.calls, "call")} · ${money(stats.totalCost)} · ${who}`;
    chips();
    tiles(stats, today, projection);
    lineChart(document.querySelector("#tokens-over-time .chart"), series.data);
    barChart(document.querySelector("#spend-by-operation .chart"), stats.byOperation, "operation",
      (name) => name !== "other" && name !== "(none)" && setFilter("operation", name));
    barChart(document.querySelector("#spend-by-model .chart"), stats.byModel, "model",
      (name) => name !== "other" && setFilter("model", name));
    budgets(budgetList);
    users(stats);
    calls(recent);
    options($("model"), stats.byModel.map((r) => r.model).filter((m) => m !== "other"), "All models");
    options($("operation"), stats.byOperation.map((r) => r.operation).filter((m) => m !== "other"), "All operations");
    if (state.me && state.me.admin) {
      options($("user"), stats.byUser.map((r) => r.userId).filter((u) => u !== "other"), "All users");
    }
    $("footer").textContent = `Money in USD (full precision in the API); ${count(stats.unpricedCalls)} calls with an unknown price are counted but not priced. Projection: ${projection.method}. Updates by itself every few seconds. Made by tokentrail.`;
    document.body.dataset.updated = String(Date.now());
  }

  // ------------------------------------------------------------------ start
  function showLogin(message) {
    $("dashboard").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = message || "";
    live(false, "signed out");
  }

  async function start() {
    try {
      state.me = await api("me");
    } catch (err) {
      if (err instanceof Unauthorized) {
        if (state.token) sessionStorage.removeItem("tokentrail-token");
        return showLogin(state.token ? "That token was refused." : "");
      }
      live(false, "offline · retrying");
      return setTimeout(start, POLL_MS);
    }
    $("login").hidden = true;
    $("dashboard").hidden = false;
    $("user-label").hidden = !state.me.admin;
    $("top-users").hidden = !state.me.admin;
    if (!state.me.admin) state.user = "";
    await refresh(true);
    setInterval(() => refresh(false), POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    state.token = sessionStorage.getItem("tokentrail-token");
    readHash();
    writeHash();
    for (const name of ["range", "period", "user", "model", "operation"]) {
      $(name).addEventListener("change", (e) => setFilter(name, e.target.value));
    }
    $("older").addEventListener("click", () => older().catch(() => live(false, "offline")));
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      state.token = $("token").value.trim();
      sessionStorage.setItem("tokentrail-token", state.token);
      start();
    });
    start();
  });
})();
