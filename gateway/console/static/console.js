// livinglab console: local times, live fleet rows over SSE, uPlot charts on the device page.
// Every value that came from a device is put into the page with textContent, never innerHTML.
(function () {
  "use strict";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function localTime(iso, mode) {
    var d = new Date(iso);
    if (isNaN(d)) return iso;
    if (mode === "hour") return d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
    var age = (Date.now() - d.getTime()) / 1000;
    var text = d.toLocaleString();
    if (age >= 0 && age < 86400) {
      var ago = age < 60 ? Math.round(age) + " s ago" : age < 3600 ? Math.round(age / 60) + " min ago"
        : Math.round(age / 3600) + " h ago";
      text = d.toLocaleTimeString() + " (" + ago + ")";
    }
    return text;
  }

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      t.title = t.getAttribute("datetime");
      t.textContent = localTime(t.getAttribute("datetime"), t.dataset.format);
    });
  }

  function isoOf(ts) { return new Date(ts * 1000).toISOString().replace(/\.\d{3}Z$/, "Z"); }

  // -- fleet page -------------------------------------------------------------------
  function valuesCell(td, row) {
    td.textContent = "";
    var qs = Object.keys(row.values || {});
    if (!qs.length) { td.appendChild(el("span", "none", "–")); return; }
    qs.forEach(function (q) {
      var v = row.values[q];
      var s = el("span", "v");
      s.dataset.device = row.device;
      s.dataset.quantity = q;
      s.dataset.value = String(v.value);
      s.appendChild(el("span", "q", q));
      s.appendChild(document.createTextNode(" "));
      s.appendChild(el("b", null, v.value));
      s.appendChild(document.createTextNode(" "));
      s.appendChild(el("span", "u", v.unit));
      td.appendChild(s);
    });
  }

  function cell(label, col, cls) {
    var td = el("td", cls);
    td.dataset.label = label;
    if (col) td.dataset.col = col;
    return td;
  }

  function newRow(row, base) {
    var tr = el("tr");
    if (row.site) tr.dataset.site = row.site;
    tr.dataset.device = row.device;
    var td = cell("Device");
    var a = el("a", "mono", row.device);
    a.href = (base || "") + "/devices/" + encodeURIComponent(row.device);
    td.appendChild(a);
    tr.appendChild(td);
    td = cell("State");
    var b = el("span", "badge");
    b.dataset.col = "state";
    td.appendChild(b);
    tr.appendChild(td);
    tr.appendChild(cell("Board", "board"));
    td = cell("Firmware");
    td.appendChild(el("span", null));
    td.firstChild.dataset.col = "firmware";
    td.appendChild(el("div", "sub update"));
    td.lastChild.dataset.col = "update";
    tr.appendChild(td);
    tr.appendChild(cell("Last seen", "last_seen"));
    tr.appendChild(cell("Latest", "values", "values"));
    tr.appendChild(cell("Rejected 24 h", "rejected_24h", "num"));
    tr.appendChild(cell("Delivery 24 h", "delivery_24h", "num"));
    return tr;
  }

  function updateRow(tbody, row, base) {
    var tr = tbody.querySelector('tr[data-device="' + CSS.escape(row.device) + '"]');
    if (!tr) {
      tr = newRow(row, base);
      var after = Array.prototype.find.call(tbody.rows, function (r) { return r.dataset.device > row.device; });
      tbody.insertBefore(tr, after || null);
      var empty = document.getElementById("empty");
      if (empty) empty.remove();
    }
    tr.dataset.state = row.state;
    tr.querySelector('[data-col="state"]').textContent = row.state;
    tr.querySelector('[data-col="board"]').textContent = row.board || "–";
    tr.querySelector('[data-col="firmware"]').textContent = row.firmware || "–";
    var seen = tr.querySelector('[data-col="last_seen"]');
    seen.textContent = "";
    if (row.last_seen) {
      var t = el("time");
      t.setAttribute("datetime", isoOf(row.last_seen));
      seen.appendChild(t);
    } else {
      seen.textContent = "never seen";
    }
    valuesCell(tr.querySelector('[data-col="values"]'), row);
    var rej = tr.querySelector('[data-col="rejected_24h"]');
    rej.textContent = "";
    if (row.rejected_24h && !row.site) {
      var a = el("a", null, row.rejected_24h);
      a.href = "/rejected?device=" + encodeURIComponent(row.device);
      rej.appendChild(a);
    } else { rej.textContent = String(row.rejected_24h || 0); }
    updateCell(tr.querySelector('[data-col="update"]'), row.update);
    deliveryCell(tr.querySelector('[data-col="delivery_24h"]'), row.delivery_24h);
    localizeTimes(tr);
  }

  // the device's last firmware update: "→ 0.3.0 refused: reason", all as text
  function updateCell(div, u) {
    div.textContent = "";
    ["updateState", "updateVersion"].forEach(function (k) { delete div.dataset[k]; });
    div.removeAttribute("title");
    if (!u) return;
    div.dataset.updateState = u.state;
    div.dataset.updateVersion = u.version;
    div.appendChild(document.createTextNode("→ " + u.version + " "));
    div.appendChild(el("span", "ustate", u.state));
    if (u.reason) {
      div.title = u.reason;
      div.appendChild(document.createTextNode(": "));
      div.appendChild(el("span", "reason", u.reason));
    }
  }

  var COUNTS = ["received", "accepted", "duplicates", "rejected", "missing", "capture"];

  // delivery over 24 h from the gateway's accounting: capture, then the counts
  function deliveryCell(td, d) {
    td.textContent = "";
    COUNTS.forEach(function (k) { td.removeAttribute("data-" + k); });
    if (!d) { td.textContent = "–"; return; }
    COUNTS.forEach(function (k) { td.setAttribute("data-" + k, String(d[k])); });
    td.appendChild(el("b", "capture" + (d.capture < 0.95 ? " low" : ""),
                      (100 * d.capture).toFixed(1) + " %"));
    td.appendChild(el("div", "sub", d.received + " received · " + d.accepted + " accepted · " +
                      d.missing + " missing"));
  }

  function updateGateway(gw) {
    var p = document.getElementById("gateway-panel");
    if (!p || !gw) return;
    function set(name, text) { var e = p.querySelector('[data-field="' + name + '"]'); if (e) e.textContent = text; }
    var st = p.querySelector('[data-field="state"]');
    st.textContent = gw.state; st.dataset.state = gw.state;
    set("broker_connected", gw.broker_connected === null ? "unknown" : gw.broker_connected ? "connected" : "disconnected");
    set("buffer_depth", gw.buffer_depth === null || gw.buffer_depth === undefined ? "–" : gw.buffer_depth);
    set("oldest_age_s", gw.oldest_age_s === null || gw.oldest_age_s === undefined ? "–" : Number(gw.oldest_age_s).toFixed(1));
    set("store_reachable", gw.store_reachable ? "reachable" : "unreachable");
  }

  function liveFleet() {
    var table = document.getElementById("fleet");
    if (!table || !window.EventSource) return;
    var dot = document.getElementById("live");
    var es = new EventSource(table.dataset.events || "/api/events");
    es.onopen = function () { dot.classList.add("on"); };
    es.onerror = function () { dot.classList.remove("on"); };
    es.addEventListener("fleet", function (ev) {
      var doc = JSON.parse(ev.data);
      var tbody = table.tBodies[0];
      doc.rows.forEach(function (row) { updateRow(tbody, row, table.dataset.base); });
      if (doc.ids) {  // city scope: the page shows these devices (state filter, page)
        var keep = {};
        doc.ids.forEach(function (id) { keep[id] = true; });
        Array.prototype.slice.call(tbody.rows).forEach(function (tr) {
          if (!keep[tr.dataset.device]) tr.remove();
        });
      }
      document.getElementById("count").textContent = String(tbody.rows.length);
      updateGateway(doc.gateway);
      if (doc.summary) updateSummary(doc.summary);
      if ("store_error" in doc) storeBanner(doc.store_error);
    });
  }

  // -- city scope -------------------------------------------------------------------
  function storeBanner(error) {
    var b = document.getElementById("store-banner");
    if (!b) return;
    b.hidden = !error;
    if (error) b.dataset.banner = "store-down"; else delete b.dataset.banner;
    b.querySelector('[data-field="store_error"]').textContent = error || "";
  }

  function bytes(n) {
    var units = ["B", "kB", "MB", "GB", "TB"], i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : String(Math.round(n))) + " " + units[i];
  }

  function timeEl(ts) {
    var t = el("time");
    t.setAttribute("datetime", isoOf(ts));
    return t;
  }

  function gatewayLine(g) {
    var d = el("div", "sub gwline");
    d.dataset.gateway = g.gateway;
    d.dataset.state = g.state;
    d.appendChild(el("span", "mono", g.gateway));
    var text = " · buffer " + Math.round(g.buffer_points) +
      (g.buffer_oldest_s ? " (" + Math.round(g.buffer_oldest_s) + " s)" : "") +
      " · disk " + bytes(g.disk_free_bytes) + " · ";
    d.appendChild(document.createTextNode(text));
    d.appendChild(timeEl(g.last_seen));
    return d;
  }

  // a site page's panel and state counts
  function updateSummary(s) {
    var p = document.getElementById("site-panel");
    if (p) {
      p.dataset.gatewayState = s.state;
      var b = p.querySelector('[data-field="site-state"]');
      b.dataset.state = s.state; b.textContent = "gateway " + s.state;
      p.querySelector('[data-field="capture_24h"]').textContent =
        s.capture_24h === null ? "–" : (100 * s.capture_24h).toFixed(1) + " %";
      var box = document.getElementById("site-gateways");
      box.textContent = "";
      if (!s.gateways.length) box.appendChild(el("p", "empty", "No gateway of this site has written a health point to the store."));
      s.gateways.forEach(function (g) { box.appendChild(gatewayLine(g)); });
      localizeTimes(box);
    }
    var total = 0;
    Object.keys(s.devices).forEach(function (st) {
      total += s.devices[st];
      var c = document.querySelector('#state-filter [data-count-state="' + st + '"]');
      if (c) c.textContent = String(s.devices[st]);
    });
    var all = document.querySelector('#state-filter [data-count-state="all"]');
    if (all) all.textContent = String(total);
  }

  function cityRow(s, states) {
    var tr = el("tr");
    tr.dataset.site = s.site;
    tr.dataset.gatewayState = s.state;
    var td = cell("Site");
    var a = el("a", "mono", s.site);
    a.href = "/sites/" + encodeURIComponent(s.site);
    td.appendChild(a);
    td.appendChild(el("div", "sub", s.device_count + (s.device_count === 1 ? " device" : " devices")));
    tr.appendChild(td);
    td = cell("Gateway", "gateways");
    var badge = el("span", "badge", s.state);
    badge.dataset.state = s.state;
    td.appendChild(badge);
    if (!s.gateways.length) td.appendChild(el("div", "sub", "no health point yet"));
    s.gateways.forEach(function (g) { td.appendChild(gatewayLine(g)); });
    tr.appendChild(td);
    states.forEach(function (st) {
      var c = cell(st, null, "num count");
      var n = el("a", s.devices[st] ? null : "zero", s.devices[st]);
      n.href = "/sites/" + encodeURIComponent(s.site) + "?state=" + st;
      n.dataset.site = s.site;
      n.dataset.countState = st;
      c.appendChild(n);
      tr.appendChild(c);
    });
    td = cell("Capture 24 h", "capture_24h", "num");
    if (s.capture_24h === null) td.textContent = "–";
    else td.appendChild(el("b", "capture" + (s.capture_24h < 0.95 ? " low" : ""),
                           (100 * s.capture_24h).toFixed(1) + " %"));
    tr.appendChild(td);
    td = cell("Alerts", "alerts", "num");
    if (s.alerts) { var l = el("a", "firing", s.alerts); l.href = "/alerts"; td.appendChild(l); }
    else td.textContent = "0";
    tr.appendChild(td);
    return tr;
  }

  function liveCity() {
    var table = document.getElementById("city");
    if (!table || !window.EventSource) return;
    var states = Array.prototype.map.call(table.tHead.querySelectorAll("th[data-state]"),
                                          function (th) { return th.dataset.state; });
    var dot = document.getElementById("live");
    var es = new EventSource("/api/events");
    es.onopen = function () { dot.classList.add("on"); };
    es.onerror = function () { dot.classList.remove("on"); };
    es.addEventListener("city", function (ev) {
      var doc = JSON.parse(ev.data);
      var tbody = table.tBodies[0];
      tbody.textContent = "";
      doc.sites.forEach(function (s) { tbody.appendChild(cityRow(s, states)); });
      table.hidden = !doc.sites.length;
      var empty = document.getElementById("empty");
      if (empty) empty.hidden = !!doc.sites.length;
      document.getElementById("site-count").textContent = String(doc.sites.length);
      localizeTimes(tbody);
      storeBanner(doc.store_error);
    });
  }

  // -- device page ------------------------------------------------------------------
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

  // room for the widest tick label (e.g. "1,008.03") next to the unit label
  function yAxisSize(u, values) {
    var longest = (values || []).reduce(function (n, v) { return Math.max(n, String(v).length); }, 0);
    return 24 + longest * 7;
  }

  function drawChart(fig, device, windowName) {
    var q = fig.dataset.chart, unit = fig.dataset.unit;
    var box = fig.querySelector(".plot");
    var api = fig.parentNode.dataset.api || "/api/devices/" + encodeURIComponent(device);
    var url = api + "/readings?quantity=" +
      encodeURIComponent(q) + "&window=" + encodeURIComponent(windowName);
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (doc) {
      box.textContent = "";
      if (!doc.times_ms || !doc.times_ms.length) {
        box.appendChild(el("p", "empty", doc.error ? doc.error : "No readings in this window."));
        fig.dataset.points = "0";
        return;
      }
      var sensors = Object.keys(doc.sensors);
      var data = [doc.times_ms.map(function (t) { return t / 1000; })];
      var series = [{}];
      sensors.forEach(function (s, i) {
        data.push(doc.sensors[s]);
        series.push({label: s, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
                     points: {show: doc.times_ms.length < 60, size: 4}});
      });
      var width = Math.max(box.clientWidth, 240);
      // the whole chosen window on the x axis, in local time (uPlot's default)
      var range = [doc.since_ms / 1000, doc.until_ms / 1000];
      var opts = {width: width, height: 180, series: series, legend: {show: sensors.length > 1, live: false},
                  axes: [{}, {label: unit, labelSize: 18, size: yAxisSize}],
                  scales: {x: {time: true, range: function () { return range; }}}};
      new uPlot(opts, data, box);
      fig.dataset.points = String(doc.times_ms.length);
    }).catch(function (err) {
      box.textContent = "";
      box.appendChild(el("p", "empty", "Could not load readings: " + err));
    });
  }

  function charts() {
    var sec = document.getElementById("charts");
    if (!sec || !window.uPlot) return;
    sec.querySelectorAll("[data-chart]").forEach(function (fig) {
      drawChart(fig, sec.dataset.device, sec.dataset.window);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    liveFleet();
    liveCity();
    charts();
  });
})();
