// livinglab city map: every station with a location as a circle coloured by its derived
// state; a click opens the device page. Tiles only when [console] map_tiles is set: with
// none (a lab network without internet) the stations still show on a blank background.
(function () {
  "use strict";
  var COLOURS = {"online": "#16803c", "delayed": "#d97706", "silent": "#b42318",
                 "offline": "#7f1d1d", "never-seen": "#6b7280", "retired": "#c4c9cf",
                 "unknown": "#7c3aed"};
  var REFRESH_MS = 10000;

  function start() {
    var box = document.getElementById("map");
    if (!box || !window.L) return;
    var map = L.map(box, {zoomSnap: 0.25});  // SVG: each station an element (data-site, data-device)
    if (box.dataset.tiles) {
      var osm = /openstreetmap\.org/.test(box.dataset.tiles);
      L.tileLayer(box.dataset.tiles, {maxZoom: 19,
        attribution: osm ? "&copy; OpenStreetMap contributors" : ""}).addTo(map);
    } else {
      box.classList.add("blank");
    }
    map.setView([0, 0], 2);
    var layer = L.layerGroup().addTo(map);
    var fitted = false;
    var dot = document.getElementById("live");

    function draw(doc) {
      layer.clearLayers();
      var bounds = [];
      doc.features.forEach(function (f) {
        var p = f.properties, c = f.geometry.coordinates;
        var colour = COLOURS[p.state] || "#333";
        var m = L.circleMarker([c[1], c[0]], {radius: 8, color: "#fff", weight: 1.5,
                                              fillColor: colour, fillOpacity: 0.9});
        // text only (never HTML): ids, rooms and zones come from the sites
        m.bindTooltip(p.site + " / " + p.device + " · " + p.state +
                      (p.room ? " · " + p.room : "") + (p.zone ? " · " + p.zone : ""));
        m.on("click", function () {
          window.location.href = "/sites/" + encodeURIComponent(p.site) + "/devices/" +
            encodeURIComponent(p.device);
        });
        m.addTo(layer);
        var path = m.getElement && m.getElement();
        if (path) { path.dataset.site = p.site; path.dataset.device = p.device; }
        if (!box.dataset.site || box.dataset.site === p.site) bounds.push([c[1], c[0]]);
      });
      box.dataset.stations = String(doc.features.length);
      document.getElementById("map-empty").hidden = doc.features.length > 0;
      if (bounds.length && !fitted) {
        map.fitBounds(bounds, {padding: [30, 30], maxZoom: 17});
        fitted = true;
      }
    }

    function load() {
      fetch(box.dataset.geojson, {credentials: "same-origin"}).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      }).then(function (doc) {
        draw(doc);
        if (dot) dot.classList.add("on");
      }).catch(function () {
        if (dot) dot.classList.remove("on");
      });
    }
    load();
    setInterval(load, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
