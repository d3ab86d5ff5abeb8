/* safecity SHO console: the station's open calls, live over SSE, with the lifecycle buttons.
 *
 * Reads the state the server embeds in <script id="console-data"> (the open calls as the API
 * answers them), draws one list item per call, keeps it current from the station feed
 * (/console/feed, the API's station feed for this session) and posts each button to
 * /console/calls/{id}/events with the session's CSRF token (the API's lifecycle service).
 * A new call is announced in a live region and with a short two-tone sound made here
 * (WebAudio; no audio file). The callers' locations are drawn over the station map by the
 * map pages' client (safecity-map.js), through its overlay hook.
 */
(function () {
  "use strict";

  var state = JSON.parse(document.getElementById("console-data").textContent);
  var station = state.station.code;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var calls = {};          /* id -> call, as the API answers it */
  var selected = null;
  var list = document.getElementById("calls");
  var empty = document.getElementById("no-calls");
  var announce = document.getElementById("announce");
  var actionError = document.getElementById("action-error");
  var liveState = document.getElementById("live-state");
  var soundButton = document.getElementById("sound");
  var dialog = document.getElementById("transfer");
  var transferFor = null;
  var TYPES = ["received", "acknowledged", "dispatched", "en_route", "on_scene", "closed",
    "transferred", "cancelled"];
  var CLOSED = {closed: true, cancelled: true};
  var STATUS_TEXT = {received: "new", transferred: "transferred in", acknowledged: "acknowledged",
    dispatched: "dispatched", en_route: "en route", on_scene: "on scene"};

  state.calls.forEach(function (call) { calls[call.id] = call; });

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function clock(iso) {  /* Pakistan time, whatever the device's zone */
    return new Date(iso).toLocaleTimeString("en-GB", {timeZone: "Asia/Karachi", hour: "2-digit",
      minute: "2-digit"});
  }

  function age(iso) {
    var minutes = Math.max(0, Math.floor((Date.now() - new Date(iso).getTime()) / 60000));
    return minutes < 60 ? minutes + " min" : Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function row(call) {
    var item = el("li", {"class": "sc-call sc-status-" + call.status, "data-call-id": call.id,
      "data-status": call.status, "aria-labelledby": "call-" + call.id});
    if (call.id === selected) { item.classList.add("sc-selected"); }
    var head = el("div", {"class": "sc-call-head"});
    var title = el("h3", {id: "call-" + call.id});
    title.appendChild(el("span", {"class": "sc-cat" + (call.serious ? " sc-serious" : "")}, call.category_label));
    title.appendChild(document.createTextNode(" · received " + clock(call.received_at)));
    head.appendChild(title);
    head.appendChild(el("span", {"class": "sc-badge"}, STATUS_TEXT[call.status] || call.status));
    head.appendChild(el("span", {"class": "sc-age", "data-received": call.received_at}, age(call.received_at)));
    item.appendChild(head);
    var where = call.lat.toFixed(5) + ", " + call.lon.toFixed(5) +
      (call.radius_m ? " (± " + Math.round(call.radius_m) + " m)" : "");
    var facts = el("p", {"class": "sc-call-facts"});
    var show = el("button", {type: "button", "class": "sc-link", "data-show": call.id}, "Show on map");
    facts.appendChild(document.createTextNode("Caller at " + where + " "));
    facts.appendChild(show);
    if (call.caller_phone) { facts.appendChild(document.createTextNode(" · caller " + call.caller_phone)); }
    item.appendChild(facts);
    if (call.description) { item.appendChild(el("p", {"class": "sc-call-note"}, call.description)); }
    var buttons = el("div", {"class": "sc-actions", role: "group", "aria-label": "Actions on this call"});
    state.buttons.forEach(function (pair) {
      var allowed = call.allowed_events.indexOf(pair[0]) >= 0;
      var button = el("button", {type: "button", "data-event": pair[0], "data-call": call.id}, pair[1]);
      if (!allowed) { button.disabled = true; }
      buttons.appendChild(button);
    });
    item.appendChild(buttons);
    return item;
  }

  function render() {
    var open = Object.keys(calls).map(function (id) { return calls[id]; })
      .sort(function (a, b) { return a.received_at < b.received_at ? -1 : 1; });
    var focused = document.activeElement && document.activeElement.getAttribute("data-event");
    var focusedCall = document.activeElement && document.activeElement.getAttribute("data-call");
    list.replaceChildren.apply(list, open.map(row));
    empty.hidden = open.length > 0;
    if (focused && focusedCall) {
      var again = list.querySelector('button[data-call="' + focusedCall + '"][data-event="' + focused + '"]');
      if (again && !again.disabled) { again.focus(); }
    }
    if (window.safecityRedraw) { window.safecityRedraw(); }
  }

  /* ------------------------------------------------------------------ sound */

  var audio = null;
  var soundOn = false;
  function beep() {
    document.body.setAttribute("data-beeps", String(Number(document.body.getAttribute("data-beeps") || 0) + 1));
    if (!soundOn) { return; }
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    audio = audio || new Context();
    [[880, 0], [660, 0.22]].forEach(function (tone) {
      var oscillator = audio.createOscillator();
      var gain = audio.createGain();
      var start = audio.currentTime + tone[1];
      oscillator.frequency.value = tone[0];
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.3, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.2);
      oscillator.connect(gain).connect(audio.destination);
      oscillator.start(start);
      oscillator.stop(start + 0.21);
    });
  }
  soundButton.addEventListener("click", function () {
    soundOn = !soundOn;  /* a click lets the page make sound (browsers' autoplay rule) */
    soundButton.setAttribute("aria-pressed", String(soundOn));
    soundButton.textContent = soundOn ? "Sound on" : "Sound off";
    if (soundOn) { beep(); }
  });

  function announceCall(call) {
    announce.hidden = false;
    announce.textContent = "New call: " + call.category_label + " at " + clock(call.received_at) +
      " (" + call.lat.toFixed(4) + ", " + call.lon.toFixed(4) + ")";
    announce.classList.remove("sc-flash");
    void announce.offsetWidth;  /* restart the flash animation */
    announce.classList.add("sc-flash");
    beep();
  }

  /* ------------------------------------------------------------------ live feed */

  function take(message) {
    var call = message.call;
    var known = Boolean(calls[call.id]);
    if (CLOSED[call.status] || call.station_code !== station) {
      delete calls[call.id];
    } else {
      calls[call.id] = call;
      if (!known && (message.type === "received" || message.type === "transferred")) {
        selected = call.id;
        announceCall(call);
      }
    }
    render();
  }

  var feed = new EventSource("/console/feed?station=" + encodeURIComponent(station));
  TYPES.forEach(function (type) {
    feed.addEventListener(type, function (event) { take(JSON.parse(event.data)); });
  });
  feed.onopen = function () {
    liveState.textContent = "live";
    document.body.setAttribute("data-live", "true");
  };
  feed.onerror = function () { liveState.textContent = "reconnecting…"; };

  /* ------------------------------------------------------------------ buttons */

  function post(id, body) {
    actionError.hidden = true;
    return fetch("/console/calls/" + encodeURIComponent(id) + "/events", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify(body)
    }).then(function (answer) {
      return answer.json().then(function (data) {
        if (!answer.ok) { throw new Error(data.detail || ("error " + answer.status)); }
        take({type: body.type, call: data});
      });
    }).catch(function (error) {
      actionError.textContent = "Not recorded: " + error.message;
      actionError.hidden = false;
    });
  }

  list.addEventListener("click", function (event) {
    var target = event.target.closest("button");
    if (!target) { return; }
    if (target.hasAttribute("data-show")) {
      selected = target.getAttribute("data-show");
      render();
      var call = calls[selected];
      if (call && window.safecityMap) {
        window.safecityMap.setProps({initialViewState: {longitude: call.lon, latitude: call.lat,
          zoom: 14, minZoom: 4, maxZoom: 16, pitch: 0, bearing: 0, transitionDuration: 400}});
      }
      return;
    }
    var type = target.getAttribute("data-event");
    var id = target.getAttribute("data-call");
    if (type === "transferred") {
      transferFor = id;
      document.getElementById("transfer-form").reset();
      dialog.showModal();
      return;
    }
    post(id, {type: type});
  });

  document.getElementById("transfer-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    var body = {type: "transferred", to_station: form.to_station.value, reason: form.reason.value};
    dialog.close();
    if (transferFor) { post(transferFor, body); }
  });
  document.getElementById("transfer-cancel").addEventListener("click", function () { dialog.close(); });

  /* ------------------------------------------------------------------ the map overlay */

  window.safecityOverlay = function () {
    var open = Object.keys(calls).map(function (id) { return calls[id]; });
    return [new deck.ScatterplotLayer({id: "console-calls", data: open,
      getPosition: function (c) { return [c.lon, c.lat]; },
      getRadius: function (c) { return c.id === selected ? 9 : 6; }, radiusUnits: "pixels",
      getFillColor: function (c) { return c.id === selected ? [179, 38, 30, 255] : [22, 58, 95, 230]; },
      getLineColor: [255, 255, 255, 255], stroked: true, lineWidthMinPixels: 2,
      updateTriggers: {getRadius: selected, getFillColor: selected}})];
  };

  setInterval(function () {
    Array.prototype.forEach.call(list.querySelectorAll(".sc-age"), function (node) {
      node.textContent = age(node.getAttribute("data-received"));
    });
  }, 30000);

  render();
}());
