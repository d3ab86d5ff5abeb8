/* safecity dashboard map: the area, its child areas (click one to open its dashboard), police
 * stations, today's calls and open alerts over the offline basemap (deck.gl, vendored).
 *
 * Reads two parts, both preloaded by the page's <head> so they arrive while deck.gl loads:
 * the still part (/dash/{level}/{code}/map/still.json?v=…: basemap, outlines, names,
 * stations; the same for a boundary set, kept by the browser) and the live part
 * (/dash/{level}/{code}/map.json: today's calls as columns, open alerts; the same layer
 * GET /api/v1/dashboard?parts=map answers). Few layer types (solid polygons, paths,
 * points, text), as on the map pages.
 */
(function () {
  "use strict";

  var container = document.getElementById("dash-map");
  var bootNode = document.getElementById("dash-boot");
  if (!container || !bootNode || !window.deck) { return; }
  var boot = JSON.parse(bootNode.textContent);
  var FONT = "Liberation Sans, Arial, DejaVu Sans, sans-serif";
  var shown = {calls: true, alerts: true, stations: true};
  var map = null;
  var data = null;

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  function view() {
    var width = container.clientWidth || 600;
    var height = container.clientHeight || 400;
    var b = data.area.bounds;
    var viewport = new deck.WebMercatorViewport({width: width, height: height});
    var fitted = viewport.fitBounds([[b[0], b[1]], [b[2], b[3]]], {padding: Math.min(24, width / 10)});
    return {longitude: fitted.longitude, latitude: fitted.latitude, zoom: fitted.zoom,
      minZoom: 4, maxZoom: 16, pitch: 0, bearing: 0};
  }

  function childPolygons() {
    var out = [];
    if (!data.children) { return out; }
    data.children.polygons.forEach(function (parts, i) {
      parts.forEach(function (rings) { out.push({rings: rings, i: i}); });
    });
    return out;
  }

  /* today's calls come as columns; category and status are indexes into their lists */
  function callPoints() {
    var c = data.calls;
    var out = [];
    for (var i = 0; i < c.lon.length; i += 1) {
      out.push({p: [c.lon[i], c.lat[i]], category: c.categories[c.category[i]],
        status: c.statuses[c.status[i]], serious: c.serious[i] === 1});
    }
    return out;
  }

  var OPEN = {received: 1, transferred: 1, acknowledged: 1, dispatched: 1, en_route: 1, on_scene: 1};

  function layers() {
    var base = data.basemap;
    var children = data.children;
    var list = [
      new deck.SolidPolygonLayer({id: "urban", data: base.urban, getPolygon: function (d) { return d; },
        getFillColor: [226, 219, 206, 255]}),
      new deck.SolidPolygonLayer({id: "lakes", data: base.lakes, getPolygon: function (d) { return d; },
        getFillColor: [170, 205, 235, 255]}),
      new deck.PathLayer({id: "rivers", data: base.rivers, getPath: function (d) { return d; },
        getColor: [120, 170, 220, 255], getWidth: 1.5, widthUnits: "pixels"}),
      new deck.PathLayer({id: "roads", data: base.roads, getPath: function (d) { return d.path; },
        getColor: [200, 160, 120, 255], getWidth: function (d) { return d.rank <= 4 ? 1.6 : 0.8; },
        widthUnits: "pixels"}),
      new deck.SolidPolygonLayer({id: "children", data: childPolygons(), pickable: true,
        getPolygon: function (d) { return d.rings; }, getFillColor: [70, 90, 160, 30],
        autoHighlight: true, highlightColor: [70, 90, 160, 70]}),
      new deck.PathLayer({id: "child-lines", data: children ? children.outlines : [],
        getPath: function (d) { return d; }, getColor: [80, 80, 120, 220], getWidth: 1.2, widthUnits: "pixels"}),
      new deck.PathLayer({id: "area-line", data: data.area.outline, getPath: function (d) { return d; },
        getColor: [30, 30, 60, 255], getWidth: 2.5, widthUnits: "pixels"})
    ];
    var under = list.findIndex(function (l) { return l.id === "children"; });  /* over the basemap, under the areas */
    Array.prototype.splice.apply(list, [under, 0].concat(heatLayers()));
    if (shown.stations) {
      list.push(new deck.ScatterplotLayer({id: "stations", data: data.stations.points.map(function (p, i) {
        return {p: p, i: i}; }), getPosition: function (d) { return d.p; }, getRadius: 3, radiusUnits: "pixels",
        getFillColor: [60, 60, 140, 200], pickable: true}));
    }
    if (shown.calls) {
      list.push(new deck.ScatterplotLayer({id: "calls", data: callPoints(), getPosition: function (d) { return d.p; },
        getRadius: function (d) { return OPEN[d.status] ? 4 : 2.5; }, radiusUnits: "pixels", pickable: true,
        getFillColor: function (d) {
          if (!OPEN[d.status]) { return [110, 110, 110, 150]; }
          return d.serious ? [190, 20, 30, 230] : [235, 120, 20, 230];
        }}));
    }
    if (shown.alerts) {
      list.push(new deck.ScatterplotLayer({id: "alerts", data: data.alerts, pickable: true,
        getPosition: function (d) { return [d.lon, d.lat]; }, getRadius: 9, radiusUnits: "pixels",
        stroked: true, filled: false, getLineColor: [160, 0, 160, 255], getLineWidth: 2.5,
        lineWidthUnits: "pixels"}));
    }
    if (children) {
      list.push(new deck.TextLayer({id: "child-names", data: children.labels.map(function (p, i) {
        return {p: p, t: children.names[i]}; }), getPosition: function (d) { return d.p; },
        getText: function (d) { return d.t; }, getSize: 12, getColor: [20, 20, 40, 255], fontFamily: FONT,
        fontWeight: "bold", outlineWidth: 3, outlineColor: [255, 255, 255, 230],
        fontSettings: {sdf: true}, characterSet: "auto"}));
    }
    return list;
  }

  function tooltip(info) {
    var d = info.object;
    if (!d) { return null; }
    var html;
    if (info.layer.id === "children") {
      html = "<strong>" + esc(data.children.names[d.i]) + "</strong><br>open its dashboard";
    } else if (info.layer.id === "stations") {
      html = "<strong>" + esc(data.stations.names[d.i]) + "</strong> (stand-in)";
    } else if (info.layer.id === "calls") {
      html = esc(d.category) + " · " + esc(d.status) + (d.serious ? " · serious" : "");
    } else if (info.layer.id === "alerts") {
      html = "<strong>Alert</strong> " + esc(d.state) + "<br>" + esc(d.summary);
    } else if (info.layer.id.indexOf("heat-") === 0) {
      html = heatTip(info.layer.id.slice(5), info.index);
    } else { return null; }
    return {html: html, style: {fontFamily: FONT, fontSize: "13px"}};
  }

  /* A click anywhere inside a child area opens its dashboard, also on a call, station or
     alert drawn over it (the child beneath is picked). */
  function drillDown(info) {
    if (!data.children) { return; }
    var hit = map.pickObject({x: info.x, y: info.y, layerIds: ["children"]});
    if (hit && hit.object) {
      window.location.href = "/dash/" + data.children.level + "/" + data.children.codes[hit.object.i];
    }
  }

  function draw() {
    if (map) { map.setProps({layers: layers()}); return; }
    map = new deck.Deck({parent: container, initialViewState: view(), controller: true,
      layers: layers(), getTooltip: tooltip, onClick: drillDown,
      onAfterRender: function () {
        if (!performance.getEntriesByName("dash-map-drawn").length) { performance.mark("dash-map-drawn"); }
      },
      getCursor: function (s) { return s.isHovering ? "pointer" : "grab"; }});
    container.scMap = {deck: map, data: data, drillDown: drillDown};  /* for tests and the console */
  }

  [["layer-calls", "calls"], ["layer-alerts", "alerts"], ["layer-stations", "stations"]].forEach(function (pair) {
    var box = document.getElementById(pair[0]);
    if (box) {
      box.addEventListener("change", function () { shown[pair[1]] = box.checked; if (data) { draw(); } });
    }
  });

  /* ------------------------------------------------------------------ heatmaps
     Hotspot heatmap / Response-time heatmap: fetched when first switched on (the
     analytics answer classed by the map pages' legend, /dash/.../heatmaps/{kind}), drawn
     as H3 hexagons under the areas; one at a time, each with its legend. */
  var heat = {};      /* kind -> the answer, once loaded */
  var heatOn = null;  /* the kind shown */
  var legendBox = document.getElementById("heat-legend");
  var HEAT_NAMES = {hotspots: "Hotspot heatmap", response: "Response-time heatmap"};

  function heatLayers() {
    var h = heatOn && heat[heatOn];
    if (!h) { return []; }
    var cols = h.columns;
    return [new deck.H3HexagonLayer({id: "heat-" + heatOn, data: {length: cols.h3.length},
      getHexagon: function (_, info) { return cols.h3[info.index]; },
      getFillColor: function (_, info) { return h.classes[cols.cls[info.index]].color; },
      filled: true, stroked: false, extruded: false, highPrecision: true, pickable: true,
      autoHighlight: true, highlightColor: [30, 30, 30, 90]})];
  }

  function heatTip(kind, index) {
    var h = heat[kind];
    var lines = ["<strong>" + esc(h.classes[h.columns.cls[index]].label) + "</strong>"];
    h.figures.forEach(function (f) {
      var v = h.columns.values[f.key][index];
      if (v === null || v === undefined) { return; }
      var text = typeof v === "number" && f.digits !== null ? v.toFixed(f.digits) : String(v);
      lines.push(esc(f.label) + ": " + esc(text) + esc(f.unit || ""));
    });
    return lines.join("<br>");
  }

  function element(tag, text, cls) {
    var node = document.createElement(tag);
    if (text) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }

  function showLegend(kind, message) {
    if (!legendBox) { return; }
    legendBox.textContent = "";
    if (!kind) { return; }
    var box = element("section", "", "sc-heat-box");
    box.setAttribute("aria-label", HEAT_NAMES[kind] + " legend");
    var h = heat[kind];
    if (!h) { box.appendChild(element("p", message, "sc-note")); legendBox.appendChild(box); return; }
    box.appendChild(element("h3", h.title + ", " + h.area.name));
    var list = element("ul", "", "sc-heat-classes");
    h.classes.forEach(function (c) {
      var item = element("li");
      var swatch = element("span", "", "sc-swatch");
      swatch.style.background = "rgba(" + c.color[0] + "," + c.color[1] + "," + c.color[2] + "," +
        (c.color[3] / 255).toFixed(2) + ")";
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(" " + c.label));
      list.appendChild(item);
    });
    box.appendChild(list);
    box.appendChild(element("p", h.calls.toLocaleString("en") + " calls (dispatched cases), " + h.window +
      "; H3 res " + h.res + " cells of about " + h.cell_km2 + ": " + h.drawn.toLocaleString("en") + " of " +
      h.cells.toLocaleString("en") + " cells drawn" + (h.not_drawn.length ? " (not drawn: " +
      h.not_drawn.join(", ") + ")" : "") + ".", "sc-note"));
    h.notes.forEach(function (n) { box.appendChild(element("p", n, "sc-note")); });
    legendBox.appendChild(box);
  }

  function setHeat(kind) {
    heatOn = kind;
    Object.keys(HEAT_NAMES).forEach(function (k) {
      var other = document.getElementById("layer-" + k);
      if (other && k !== kind) { other.checked = false; }
    });
    container.dataset.heat = kind && heat[kind] ? kind : "";
    showLegend(kind, kind ? "Loading the " + HEAT_NAMES[kind].toLowerCase() + "…" : "");
    if (data) { draw(); }
  }

  Object.keys(HEAT_NAMES).forEach(function (kind) {
    var box = document.getElementById("layer-" + kind);
    if (!box) { return; }
    box.addEventListener("change", function () {
      if (!box.checked) { if (heatOn === kind) { setHeat(null); } return; }
      if (heat[kind]) { setHeat(kind); return; }
      setHeat(kind);
      fetch(box.dataset.heatmap, {credentials: "same-origin"}).then(function (answer) {
        if (!answer.ok) {
          return answer.json().then(function (e) { throw new Error(e.detail || ("HTTP " + answer.status)); },
            function () { throw new Error("HTTP " + answer.status); });
        }
        return answer.json();
      }).then(function (body) {
        heat[kind] = body;
        if (box.checked) { setHeat(kind); }
      }).catch(function (error) {
        box.checked = false;
        if (heatOn === kind) { heatOn = null; }
        showLegend(kind, "The " + HEAT_NAMES[kind].toLowerCase() + " could not be loaded (" + error.message + ").");
      });
    });
  });

  function part(url) {
    return fetch(url, {credentials: "same-origin"}).then(function (answer) {
      if (!answer.ok) { throw new Error("map layer: HTTP " + answer.status); }
      return answer.json();
    });
  }

  Promise.all([part(boot.stillUrl), part(boot.mapUrl)]).then(function (parts) {
    performance.mark("dash-map-data");
    data = parts[0];
    Object.keys(parts[1]).forEach(function (key) { data[key] = parts[1][key]; });
    draw();
    container.dataset.drawn = "yes";
  }).catch(function (error) {
    container.textContent = "The map could not be loaded (" + error.message + ").";
  });
})();
