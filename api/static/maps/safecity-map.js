/* safecity map client: one deck.gl map for every map page.
 *
 * Few layer types on purpose (solid polygons, paths, points, text): each type is one shader
 * program to compile, and on a machine without a GPU compiling is most of the first draw.
 *
 * Reads the JSON the server embeds in <script id="map-data"> (see api/domain/maps/page.py)
 * and draws, bottom to top: the basemap (urban areas, lakes, rivers, railways, roads), a
 * veil over everything outside the study area, the H3 cells (one legend class each), the
 * area outlines (region, district, tehsil, station, the study area itself), town dots, and
 * the labels (areas, towns, rivers) that fit at the current zoom, placed in priority order
 * so none overlaps another. A scale bar follows zoom and latitude; tooltips
 * lead with the station, tehsil and district names, then the figures.
 * Nothing is fetched: the deck.gl bundle and this file come from the service itself.
 */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("map-data").textContent);
  var container = document.getElementById("map");
  var cells = data.cells;
  var classes = data.classes;
  var places = data.places;
  var basemap = data.basemap;
  var FONT = "Liberation Sans, Arial, DejaVu Sans, sans-serif";
  var EARTH_M = 40075016.686;
  var HALO = [255, 255, 255, 235];

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  function formatted(value, figure) {
    if (figure.digits === null || typeof value !== "number") { return esc(value); }
    var text = figure.digits === 0 ? Math.round(value).toLocaleString("en") : value.toFixed(figure.digits);
    if (figure.key.indexOf("p") === 0 && figure.digits >= 3 && value > 0 && value < 0.0001) { text = "< 0.0001"; }
    return text + esc(figure.unit || "");
  }

  /* ------------------------------------------------------------------ names */

  function stationLines(at) {
    if (at < 0) { return "<strong>" + esc(data.area.name) + "</strong> (no station area)"; }
    var st = places.station;
    var tehsil = st.up[at];
    var district = tehsil >= 0 ? places.tehsil.up[tehsil] : -1;
    var where = [];
    if (tehsil >= 0) { where.push("Tehsil " + esc(places.tehsil.name[tehsil])); }
    if (district >= 0) { where.push("District " + esc(places.district.name[district])); }
    return "<strong>" + esc(st.name[at]) + "</strong>" +
      (st.standIn[at] ? " <span class=\"sc-muted\">(stand-in)</span>" : "") +
      (where.length ? "<br>" + where.join(" · ") : "");
  }

  function cellTip(index) {
    var lines = [stationLines(cells.at[index]), "<em>" + esc(classes[cells.cls[index]].label) + "</em>"];
    data.figures.forEach(function (figure) {
      var value = cells.values[figure.key][index];
      if (value !== null && value !== undefined) { lines.push(esc(figure.label) + ": " + formatted(value, figure)); }
    });
    lines.push("<span class=\"sc-muted\">H3 cell " + esc(cells.h3[index]) + "</span>");
    return lines.join("<br>");
  }

  function siteTip(index) {
    var s = data.sites;
    return "<strong>" + esc(s.name[index]) + "</strong><br>" + esc(s.kind[index]) +
      "<br>demand assigned: " + esc(s.demand[index]) + " (" + esc(s.share[index]) + " of the tehsil's)";
  }

  /* ------------------------------------------------------------------ view */

  function initialView() {
    var width = container.clientWidth || window.innerWidth;
    var height = container.clientHeight || window.innerHeight;
    var b = data.area.bounds;
    var legend = document.getElementById("legend");
    var wide = width > 700;
    var right = wide && legend ? Math.min(legend.offsetWidth + 30, width / 3) : 16;
    var bottom = wide ? 44 : 16;
    var top = wide ? 16 : 34;  /* the scale bar sits at the top on a phone */
    var viewport = new deck.WebMercatorViewport({width: width, height: height});
    var fitted;
    try {
      fitted = viewport.fitBounds([[b[0], b[1]], [b[2], b[3]]],
        {padding: {top: top, left: 16, right: right, bottom: bottom}});
    } catch (error) {
      fitted = viewport.fitBounds([[b[0], b[1]], [b[2], b[3]]], {padding: 4});
    }
    return {longitude: fitted.longitude, latitude: fitted.latitude, zoom: fitted.zoom,
      minZoom: 4, maxZoom: 16, pitch: 0, bearing: 0};
  }

  var scaleBar = document.querySelector("#scale .sc-scale-bar");
  var scaleText = document.querySelector("#scale .sc-scale-text");

  function updateScale(view) {
    var metresPerPixel = EARTH_M * Math.cos(view.latitude * Math.PI / 180) / (512 * Math.pow(2, view.zoom));
    var most = metresPerPixel * 120;
    var power = Math.pow(10, Math.floor(Math.log10(most)));
    var nice = [5, 2, 1].map(function (f) { return f * power; }).find(function (v) { return v <= most; });
    scaleBar.style.width = Math.round(nice / metresPerPixel) + "px";
    scaleText.textContent = nice >= 1000 ? (nice / 1000).toLocaleString("en") + " km" : nice + " m";
  }

  /* ------------------------------------------------------------------ layers */

  var cellData = {length: cells.h3.length};

  function cellColor(_, info) {
    var c = classes[cells.cls[info.index]].color;
    return cells.alpha ? [c[0], c[1], c[2], c[3] === 0 ? 0 : cells.alpha[info.index]] : c;
  }

  function lines(id, paths, color, width, extra) {
    return new deck.PathLayer(Object.assign({
      id: id, data: paths || [], getPath: function (d) { return d; }, getColor: color,
      getWidth: width, widthUnits: "pixels", capRounded: true, jointRounded: true, pickable: false
    }, extra || {}));
  }

  function areaLabels(zoom) {
    var out = [];
    data.labels.forEach(function (group) {
      if (zoom < group.minZoom || zoom >= group.maxZoom) { return; }
      group.items.forEach(function (item) {
        out.push({p: [item[0], item[1]], t: item[2], level: group.level});
      });
    });
    return out;
  }

  /* Labels are placed here, not by deck.gl's CollisionFilterExtension: on a TextLayer that
     extension decides glyph by glyph (names are cut into fragments) and across layers it
     ignores priorities (deck.gl issue 9479). Overlap between point labels depends on the
     zoom only, so at each quarter zoom step the labels are taken in priority order and
     one whose box would overlap a box already placed is left out. */
  var LABEL_STYLE = {
    district: {size: 13, color: [40, 40, 40, 255], upper: true, rank: 800, bold: true},
    town: {size: 12, color: [20, 20, 20, 255], upper: false, rank: 700, bold: false},
    tehsil: {size: 11.5, color: [85, 85, 85, 255], upper: false, rank: 650, bold: false},
    station: {size: 10.5, color: [70, 70, 125, 255], upper: false, rank: 450, bold: false},
    river: {size: 11, color: [50, 100, 160, 255], upper: false, rank: 100, bold: false}
  };
  var CHAR_WIDTH = 0.62;  /* average advance of DejaVu Sans, in font sizes (bold a little wider) */

  function worldPixels(lonLat, zoom) {
    var scale = 512 * Math.pow(2, zoom);
    var lat = lonLat[1] * Math.PI / 180;
    return [scale * (lonLat[0] + 180) / 360,
      scale * (0.5 - Math.log(Math.tan(Math.PI / 4 + lat / 2)) / (2 * Math.PI))];
  }

  var SAME_NAME_PX = 160;  /* a town and the tehsil named after it: one label is enough */

  function place(candidates, zoom) {
    var placed = [];
    var boxes = [];
    var named = {};
    candidates.sort(function (a, b) { return b.rank - a.rank; });
    candidates.forEach(function (c) {
      var style = LABEL_STYLE[c.kind];
      var text = style.upper ? c.t.toUpperCase() : c.t;
      var width = text.length * style.size * (style.bold ? CHAR_WIDTH + 0.06 : CHAR_WIDTH) + 6;
      var height = style.size * 1.35;
      var at = worldPixels(c.p, zoom);
      var dy = c.kind === "town" ? -(height / 2 + 5) : 0;
      var box = [at[0] - width / 2, at[1] + dy - height / 2, at[0] + width / 2, at[1] + dy + height / 2];
      var clash = boxes.some(function (o) {
        return box[0] < o[2] && o[0] < box[2] && box[1] < o[3] && o[1] < box[3];
      });
      var key = c.t.toLowerCase().replace(/[^a-z]/g, "");
      var twin = (named[key] || []).some(function (q) {
        return Math.abs(q[0] - at[0]) < SAME_NAME_PX && Math.abs(q[1] - at[1]) < SAME_NAME_PX;
      });
      if (!clash && !twin) {
        boxes.push(box);
        (named[key] = named[key] || []).push(at);
        placed.push({p: c.p, t: text, size: style.size, color: style.color, bold: style.bold,
          offset: [0, dy]});
      }
    });
    return placed;
  }

  function labelLayer(id, items) {
    return new deck.TextLayer({
      id: id, data: items, getPosition: function (d) { return d.p; }, getText: function (d) { return d.t; },
      getSize: function (d) { return d.size; }, getColor: function (d) { return d.color; },
      getPixelOffset: function (d) { return d.offset; }, fontFamily: FONT,
      fontWeight: id === "labels-bold" ? "bold" : "normal",
      fontSettings: {sdf: true, fontSize: 40, buffer: 10, radius: 12},
      outlineWidth: 4, outlineColor: HALO, getTextAnchor: "middle", getAlignmentBaseline: "center",
      pickable: false
    });
  }

  function build(zoom) {
    var towns = basemap.towns.filter(function (t) { return t[3] <= zoom; }).map(function (t) {
      return {p: [t[0], t[1]], t: t[2], order: Math.min(t[4], 400)};
    });
    var layers = [
      new deck.SolidPolygonLayer({id: "urban", data: basemap.urban, getPolygon: function (d) { return d; },
        getFillColor: [224, 215, 201, 255], pickable: false}),
      new deck.SolidPolygonLayer({id: "lakes", data: basemap.lakes, getPolygon: function (d) { return d; },
        getFillColor: [170, 205, 232, 255], pickable: false}),
      lines("rivers", basemap.rivers, [125, 170, 215, 255], zoom < 8 ? 1.5 : 2.5),
      lines("railways", basemap.railways, [122, 92, 122, 255], 1.5),
      new deck.PathLayer({id: "road-casing", data: basemap.roads, getPath: function (d) { return d.path; },
        getColor: [150, 150, 150, 255], widthUnits: "pixels", capRounded: true, jointRounded: true,
        getWidth: function (d) { return d.kind === "highway" ? 4 : 2.6; }, pickable: false}),
      new deck.PathLayer({id: "roads", data: basemap.roads, getPath: function (d) { return d.path; },
        getColor: [255, 255, 255, 255], widthUnits: "pixels", capRounded: true, jointRounded: true,
        getWidth: function (d) { return d.kind === "highway" ? 2.2 : 1.1; }, pickable: false}),
      new deck.SolidPolygonLayer({id: "veil", data: data.veil.length ? [data.veil] : [],
        getPolygon: function (d) { return d; }, getFillColor: [243, 241, 236, 165], pickable: false}),
      new deck.H3HexagonLayer({id: "cells", data: cellData, getHexagon: function (_, info) { return cells.h3[info.index]; },
        getFillColor: cellColor, filled: true, stroked: false, extruded: false, pickable: true,
        highPrecision: true, autoHighlight: true, highlightColor: [30, 30, 30, 90]}),
      lines("region-lines", data.lines.region, [70, 70, 70, 255], 2.4),
      lines("tehsil-lines", data.lines.tehsil, [120, 120, 120, 220], 0.9),
      lines("station-lines", data.lines.station, [110, 110, 150, 200], 0.8, {visible: zoom >= 9}),
      lines("district-lines", data.lines.district, [55, 55, 55, 255], 1.6),
      lines("focus-lines", data.lines.focus, [20, 20, 20, 255], 3)
    ];
    if (data.sites) {
      var s = data.sites;
      var siteData = {length: s.lon.length};
      var at = function (_, info) { return [s.lon[info.index], s.lat[info.index]]; };
      layers.push(new deck.ScatterplotLayer({id: "coverage", data: siteData, getPosition: at,
        getRadius: s.radius, radiusUnits: "meters", stroked: true, filled: true,
        getFillColor: function (_, info) { return s.disk[info.index]; },
        getLineColor: function (_, info) { return s.color[info.index]; },
        lineWidthMinPixels: 1, pickable: false}));
      layers.push(new deck.ScatterplotLayer({id: "sites", data: siteData, getPosition: at, getRadius: 5,
        radiusUnits: "pixels", getFillColor: function (_, info) { return s.color[info.index]; },
        getLineColor: [255, 255, 255, 255], stroked: true, lineWidthMinPixels: 1.5, pickable: true}));
    }
    layers.push(new deck.ScatterplotLayer({id: "town-dots", data: towns, getPosition: function (d) { return d.p; },
      getRadius: 2.6, radiusUnits: "pixels", getFillColor: [50, 50, 50, 255], getLineColor: HALO,
      stroked: true, lineWidthMinPixels: 1, pickable: false}));
    var candidates = [];
    areaLabels(zoom).forEach(function (a) {
      candidates.push({kind: a.level, p: a.p, t: a.t, rank: LABEL_STYLE[a.level].rank});
    });
    towns.forEach(function (t) {
      candidates.push({kind: "town", p: t.p, t: t.t, rank: LABEL_STYLE.town.rank - t.order});
    });
    if (zoom >= 7) {
      basemap.riverNames.forEach(function (r) {
        candidates.push({kind: "river", p: [r[0], r[1]], t: r[2], rank: LABEL_STYLE.river.rank});
      });
    }
    if (window.safecityOverlay) {  /* a page's own points over the map (the SHO console's calls) */
      layers.push.apply(layers, window.safecityOverlay(zoom));
    }
    var placed = place(candidates, zoom);
    layers.push(labelLayer("labels", placed.filter(function (l) { return !l.bold; })));
    layers.push(labelLayer("labels-bold", placed.filter(function (l) { return l.bold; })));
    return layers;
  }

  /* ------------------------------------------------------------------ the deck */

  var view = initialView();
  var band = null;
  var currentZoom = view.zoom;
  var ready = false;

  function bandOf(zoom) { return Math.floor(zoom * 4); }

  function loaded(instance) {
    var manager = instance.layerManager;
    return Boolean(manager) && manager.getLayers().every(function (layer) { return layer.isLoaded; });
  }

  /* The canvas is made here at its final size: left to deck.gl, it starts at the default
     300 × 150 and the map is drawn a second time, about a second later, once resized. */
  var canvas = document.createElement("canvas");
  var ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(container.clientWidth * ratio);
  canvas.height = Math.round(container.clientHeight * ratio);
  canvas.style.width = "100%";
  canvas.style.height = "100%";
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", container.getAttribute("data-label"));
  canvas.setAttribute("tabindex", "0");
  container.appendChild(canvas);

  var map = new deck.Deck({
    canvas: canvas,
    views: new deck.MapView({repeat: false}),
    initialViewState: view,
    controller: {dragRotate: false, touchRotate: false, keyboard: true, doubleClickZoom: true},
    layers: build(view.zoom),
    getTooltip: function (info) {
      if (!info.layer || info.index < 0) { return null; }
      var html = info.layer.id === "cells" ? cellTip(info.index) : info.layer.id === "sites" ? siteTip(info.index) : null;
      return html && {html: html, className: "sc-tooltip", style: {
        backgroundColor: "#fff", color: "#1a1a1a", border: "1px solid #999", borderRadius: "3px",
        fontFamily: FONT, fontSize: "12px", lineHeight: "1.35", padding: "6px 8px", maxWidth: "280px"}};
    },
    onViewStateChange: function (event) {
      var next = event.viewState;
      currentZoom = next.zoom;
      updateScale(next);
      if (bandOf(next.zoom) !== band) {
        band = bandOf(next.zoom);
        map.setProps({layers: build(next.zoom)});
      }
    },
    onAfterRender: function () {
      if (!ready && loaded(map)) {
        ready = true;
        performance.mark("safecity-map-ready");
        document.body.setAttribute("data-map-ready", "true");
      }
    }
  });
  band = bandOf(view.zoom);
  updateScale(view);

  if (window.innerWidth < 600) {
    var details = document.querySelector("#legend details");
    if (details) { details.open = false; }
  }
  window.safecityMap = map;
  window.safecityRedraw = function () {  /* the overlay changed: draw the layers again */
    map.setProps({layers: build(currentZoom)});
  };
}());
