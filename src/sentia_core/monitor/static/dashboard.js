/* sentia_core monitor dashboard.
 *
 * Polls /dashboard.json?window=... and draws every panel's charts with the
 * vendored uPlot and its tables with plain DOM nodes. Every label and cell is
 * set with textContent, never as markup: series labels, SQL fingerprints and
 * alert reasons come from the application. No request leaves this origin.
 * The state is exposed as window.sentiaDashboard for the browser tests.
 */
(function () {
  "use strict";

  const params = new URLSearchParams(window.location.search);
  const refresh = Math.max(1, Number(params.get("refresh")) || 5) * 1000;
  const COLORS = ["#1f6feb", "#cf222e", "#1a7f37", "#9a6700", "#8250df", "#bf3989",
                  "#0a7ea4", "#57606a"];
  const STATE_NAMES = { 0: "ok", 1: "half-open", 2: "open" };

  const state = {
    window: params.get("window") || "1h",
    charts: new Map(),   // chart id -> {plot, key, el}
    updates: 0,
    failures: 0,
    last: null,
    timer: null,
  };
  window.sentiaDashboard = state;

  // ------------------------------------------------------------------ formats

  function fmtNum(v) {
    if (v === null || v === undefined) return "–";
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 1e9) return (v / 1e9).toPrecision(3) + "G";
    if (a >= 1e6) return (v / 1e6).toPrecision(3) + "M";
    if (a >= 1e4) return (v / 1e3).toPrecision(3) + "k";
    if (a >= 100) return v.toFixed(0);
    if (a >= 1) return v.toPrecision(3).replace(/\.?0+$/, "");
    return v.toPrecision(2);
  }

  function fmtBytes(v) {
    if (v === null || v === undefined) return "–";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : v.toFixed(0)) + " " + units[i];
  }

  function formatter(format, states) {
    switch (format) {
      case "pct": return (v) => (v === null || v === undefined ? "–" : v.toFixed(1) + " %");
      case "ms": return (v) => (v === null || v === undefined ? "–" : fmtNum(v) + " ms");
      case "bytes": return fmtBytes;
      case "state": {
        const names = states || STATE_NAMES;
        return (v) => (v === null || v === undefined ? "–" :
          (names[String(Math.round(v))] || ""));
      }
      default: return fmtNum;
    }
  }

  function fmtTime(t) {
    if (t === null || t === undefined) return "–";
    const d = new Date(t * 1000);
    return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit",
                                         minute: "2-digit", second: "2-digit" });
  }

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function panelNode(panel) {
    const id = "panel-" + panel.id;
    let node = document.getElementById(id);
    if (!node) {
      node = el("section", "panel");
      node.id = id;
      node.dataset.panel = panel.id;
      node.appendChild(el("h2", null, panel.title));
      node.appendChild(el("div", "panel-error"));
      node.appendChild(el("div", "charts"));
      node.appendChild(el("div", "tables"));
      document.getElementById("panels").appendChild(node);
    }
    return node;
  }

  // ------------------------------------------------------------------ charts

  function yRange(format) {
    if (format === "state") return () => [0, 2.2];
    return (u, min, max) => {
      const hi = max === null || max <= 0 ? 1 : max * 1.1;
      return [Math.min(0, min === null ? 0 : min), format === "pct" ? Math.min(hi, 105) : hi];
    };
  }

  function chartOptions(spec, width) {
    const fmt = formatter(spec.format, spec.states);
    const stepped = spec.kind === "step" ? uPlot.paths.stepped({ align: 1 }) : undefined;
    return {
      width: width,
      height: 170,
      scales: { x: { time: true }, y: { range: yRange(spec.format) } },
      series: [{ value: (u, v) => fmtTime(v) }].concat(spec.series.map((s, i) => ({
        label: s.label,
        stroke: COLORS[i % COLORS.length],
        width: 1.5,
        paths: stepped,
        points: { show: false },
        value: (u, v) => fmt(v),
      }))),
      axes: [
        { size: 30 },
        { size: 72, values: (u, splits) => splits.map(fmt),
          splits: spec.format === "state" ?
            () => Object.keys(spec.states || STATE_NAMES).map(Number) : undefined },
      ],
      legend: { live: false },
      cursor: { drag: { x: true, y: false } },
    };
  }

  function renderChart(container, spec, times) {
    let entry = state.charts.get(spec.id);
    if (!entry) {
      const node = el("div", "chart");
      node.dataset.chart = spec.id;
      const title = el("h3", null, spec.title + (spec.unit ? " (" + spec.unit + ")" : ""));
      node.appendChild(title);
      const plot = el("div", "plot");
      node.appendChild(plot);
      container.appendChild(node);
      entry = { node: node, plotEl: plot, plot: null, key: null };
      state.charts.set(spec.id, entry);
    }
    const labels = spec.series.map((s) => s.label);
    let points = 0;
    for (const s of spec.series) for (const v of s.values) if (v !== null) points++;
    entry.node.dataset.series = JSON.stringify(labels);
    entry.node.dataset.points = String(points);
    entry.node.dataset.version = String(state.updates);
    const key = labels.join("\u0000") + "|" + spec.format + "|" + spec.kind;
    if (!labels.length || points === 0) {
      if (entry.plot) { entry.plot.destroy(); entry.plot = null; }
      entry.key = null;
      entry.plotEl.replaceChildren(el("div", "empty", "no data in this window yet"));
      entry.node.dataset.empty = "true";
      return;
    }
    entry.node.dataset.empty = "false";
    const data = [times].concat(spec.series.map((s) => s.values));
    if (entry.plot && entry.key === key) {
      entry.plot.setData(data);
    } else {
      if (entry.plot) entry.plot.destroy();
      entry.plotEl.replaceChildren();
      const width = Math.max(200, entry.plotEl.clientWidth || 300);
      entry.plot = new uPlot(chartOptions(spec, width), data, entry.plotEl);
      entry.key = key;
    }
  }

  // ------------------------------------------------------------------ tables

  function renderTable(container, spec) {
    let node = container.querySelector('[data-table="' + CSS.escape(spec.id) + '"]');
    if (!node) {
      node = el("div", "table");
      node.dataset.table = spec.id;
      node.appendChild(el("h3", null, spec.title));
      const table = el("table");
      const head = el("thead");
      const tr = el("tr");
      for (const col of spec.columns) tr.appendChild(el("th", null, col[0]));
      head.appendChild(tr);
      table.appendChild(head);
      table.appendChild(el("tbody"));
      node.appendChild(table);
      container.appendChild(node);
    }
    const body = node.querySelector("tbody");
    const rows = [];
    for (const row of spec.rows) {
      const tr = el("tr");
      row.forEach((value, i) => {
        const format = (spec.columns[i] || ["", "text"])[1];
        let td;
        if (value === null || value === undefined) {
          td = el("td", "none", "–");
        } else if (format === "time") {
          td = el("td", "time", fmtTime(value));
        } else if (format === "num" || format === "ms" || format === "pct" || format === "bytes") {
          td = el("td", "num", formatter(format)(Number(value)));
        } else if (format === "state") {
          td = el("td");
          td.appendChild(el("span", "state-" + String(value).replace(/[^a-z_]/gi, ""), value));
        } else {
          td = el("td", format === "code" ? "code" : null, value);
        }
        tr.appendChild(td);
      });
      rows.push(tr);
    }
    if (!rows.length) {
      const tr = el("tr");
      const td = el("td", "none", "nothing in this window");
      td.colSpan = spec.columns.length;
      tr.appendChild(td);
      rows.push(tr);
    }
    body.replaceChildren.apply(body, rows);
    node.dataset.rows = String(spec.rows.length);
  }

  // ------------------------------------------------------------------ update loop

  function render(doc) {
    state.updates++;
    state.last = doc;
    renderWindows(doc.windows);
    for (const panel of doc.panels) {
      const node = panelNode(panel);
      node.querySelector(".panel-error").textContent = panel.error || "";
      const charts = node.querySelector(".charts");
      for (const spec of panel.charts) renderChart(charts, spec, doc.times);
      const tables = node.querySelector(".tables");
      for (const spec of panel.tables) renderTable(tables, spec);
    }
    document.body.dataset.updates = String(state.updates);
    const res = doc.resolution >= 60 ? (doc.resolution / 60) + " min" : doc.resolution + " s";
    setStatus("updated " + fmtTime(doc.generated_at) + " · " + doc.window + " at " + res +
              " resolution", false);
  }

  function renderWindows(windows) {
    const nav = document.getElementById("windows");
    if (nav.childElementCount !== windows.length) {
      nav.replaceChildren();
      for (const w of windows) {
        const b = el("button", null, w);
        b.type = "button";
        b.dataset.window = w;
        b.addEventListener("click", () => selectWindow(w));
        nav.appendChild(b);
      }
    }
    for (const b of nav.children) {
      b.setAttribute("aria-pressed", String(b.dataset.window === state.window));
    }
  }

  function selectWindow(w) {
    if (w === state.window) return;
    state.window = w;
    params.set("window", w);
    window.history.replaceState(null, "", "?" + params.toString());
    poll();
  }

  function setStatus(text, bad) {
    const node = document.getElementById("status");
    node.textContent = text;
    node.classList.toggle("error", bad);
  }

  async function poll() {
    clearTimeout(state.timer);
    try {
      const r = await fetch("/dashboard.json?window=" + encodeURIComponent(state.window),
                            { cache: "no-store", credentials: "same-origin" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
    } catch (err) {
      state.failures++;
      setStatus("update failed (" + err.message + "); retrying", true);
    }
    state.timer = setTimeout(poll, refresh);
  }

  function resize() {
    for (const entry of state.charts.values()) {
      if (entry.plot) {
        const width = Math.max(200, entry.plotEl.clientWidth || 300);
        if (Math.abs(width - entry.plot.width) > 2) entry.plot.setSize({ width: width, height: 170 });
      }
    }
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resize, 100);
  });
  poll();
})();
