/* safecity area dashboard: the live parts of /dash/{level}/{code} (no framework, no CDN).
 *
 * - Areas: a click on a column heading sorts the table (aria-sort follows).
 * - Open calls: the area's call feed (SSE, /dash/.../calls/feed, replayed from the event id
 *   the page was rendered at, so nothing posted in between is lost) adds, updates and
 *   removes rows; ages tick every 15 s and rows past the 2-minute acknowledgement
 *   threshold are marked "overdue".
 * - Alerts: the area's alert feed (SSE) adds and updates items; Acknowledge and Resolve
 *   post through the alert service with the page's CSRF token.
 */
(function () {
  "use strict";

  var root = document.querySelector(".sc-dash[data-level]");
  if (!root) { return; }
  var boot = JSON.parse(document.getElementById("dash-boot").textContent);
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.content : "";
  var OPEN = {received: 1, transferred: 1, acknowledged: 1, dispatched: 1, en_route: 1, on_scene: 1};
  var UNACK = {received: 1, transferred: 1};
  var OVERDUE_MS = 2 * 60 * 1000;

  function esc(text) {
    return String(text === null || text === undefined ? "" : text).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }

  /* ------------------------------------------------------------------ sorting */
  function sortValue(text, numeric) {
    if (!numeric) { return text; }
    var v = parseFloat(text.replace(/[^0-9.\-]/g, ""));
    return isNaN(v) ? -Infinity : v;
  }

  document.querySelectorAll("table.sc-sortable").forEach(function (table) {
    table.querySelectorAll("thead button[data-sort]").forEach(function (button, column) {
      button.addEventListener("click", function () {
        var heading = button.parentElement;
        var ascending = heading.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("thead th").forEach(function (th) { th.removeAttribute("aria-sort"); });
        heading.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var numeric = button.dataset.sort === "num";
        var rows = Array.prototype.slice.call(table.tBodies[0].rows);
        rows.sort(function (a, b) {
          var x = sortValue(a.cells[column].textContent.trim(), numeric);
          var y = sortValue(b.cells[column].textContent.trim(), numeric);
          var order = numeric ? x - y : String(x).localeCompare(String(y));
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
      });
    });
  });

  /* ------------------------------------------------------------------ open calls */
  var callsTable = document.getElementById("calls-table");
  var callsNote = document.getElementById("calls-live");
  // live rows have the columns the page drew (a station's table has no Station column)
  var stationColumn = !!(callsTable && callsTable.querySelector("thead th.sc-station"));

  function stamp(iso) {
    return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace(/(\+00:00|Z)$/, " UTC") : "";
  }

  function markAge(row) {
    var received = Date.parse(row.dataset.received);
    var age = Date.now() - received;
    row.querySelector(".sc-age").textContent = Math.max(0, Math.floor(age / 60000)) + " min";
    var overdue = UNACK[row.dataset.status] && age > OVERDUE_MS;
    row.classList.toggle("sc-overdue", !!overdue);
    var status = row.querySelector(".sc-status");
    status.innerHTML = esc(row.dataset.status) + (overdue ? ' <strong class="sc-flag">overdue</strong>' : "");
  }

  function countCalls() {
    if (callsNote) { callsNote.textContent = callsTable.tBodies[0].rows.length + " open; live."; }
  }

  function callRow(call) {
    var sho = call.sho_on_duty ? (call.sho_on_duty.rank + " " + call.sho_on_duty.officer_name)
      : (call.unstaffed ? "unstaffed" : "–");
    var row = document.createElement("tr");
    row.dataset.id = call.id;
    row.dataset.received = call.received_at;
    row.dataset.status = call.status;
    row.innerHTML = '<th scope="row"><a href="/calls/' + esc(call.id) + '">' + esc(call.id.slice(0, 8)) + "</a></th>" +
      '<td class="sc-received">' + esc(stamp(call.received_at)) + '</td><td class="sc-age"></td>' +
      '<td class="sc-wrap">' + esc(call.category_label) + (call.serious ? " <strong>(serious)</strong>" : "") + "</td>" +
      (stationColumn ? '<td class="sc-wrap">' + esc(call.station_name || call.station_code) + "</td>" : "") +
      '<td class="sc-wrap">' + esc(sho) + "</td>" +
      '<td class="sc-status"></td>';
    return row;
  }

  function onCall(message) {
    var body = JSON.parse(message.data);
    var call = body.call;
    if (!call || !callsTable) { return; }
    var existing = callsTable.querySelector('tr[data-id="' + call.id + '"]');
    var inArea = boot.level === "province" || call[boot.level + "_code"] === boot.code;
    if (!OPEN[call.status] || !inArea) {
      if (existing) { existing.remove(); }
    } else if (existing) {
      existing.dataset.status = call.status;
      markAge(existing);
    } else {
      var row = callRow(call);
      callsTable.tBodies[0].insertBefore(row, callsTable.tBodies[0].firstChild);
      markAge(row);
      row.classList.add("sc-new");
    }
    countCalls();
  }

  if (callsTable && boot.feeds) {
    var calls = new EventSource("/dash/" + boot.level + "/" + boot.code + "/calls/feed?after=" + boot.callsAfter);
    ["received", "acknowledged", "dispatched", "en_route", "on_scene", "closed", "transferred", "cancelled"]
      .forEach(function (type) { calls.addEventListener(type, onCall); });
    window.setInterval(function () {
      Array.prototype.forEach.call(callsTable.tBodies[0].rows, markAge);
    }, 15000);
  }

  /* ------------------------------------------------------------------ alerts */
  var alertsList = document.getElementById("alerts-list");

  function alertItem(alert) {
    var item = document.createElement("li");
    item.dataset.alert = alert.id;
    fillAlert(item, alert);
    return item;
  }

  function fillAlert(item, alert) {
    item.dataset.state = alert.state;
    item.innerHTML = '<span class="sc-alert-text"><strong>' + esc(alert.type) + "</strong> · " + esc(alert.state) +
      " · " + esc(alert.level) + " · " + esc(alert.summary) +
      (alert.call_id ? ' · <a href="/calls/' + esc(alert.call_id) + '">call ' + esc(alert.call_id.slice(0, 8)) + "</a>" : "") +
      "</span>" + (alert.state === "open" ? '<button type="button" data-action="acknowledge">Acknowledge</button>' : "") +
      '<button type="button" data-action="resolve">Resolve</button>';
  }

  function showAlert(alert) {
    if (!alertsList) { return; }
    var item = alertsList.querySelector('li[data-alert="' + alert.id + '"]');
    if (alert.state === "resolved") {
      if (item) { item.remove(); }
      return;
    }
    if (item) { fillAlert(item, alert); } else {
      alertsList.insertBefore(alertItem(alert), alertsList.firstChild);
      var empty = document.getElementById("alerts-empty");
      if (empty) { empty.remove(); }
    }
  }

  if (alertsList) {
    alertsList.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-action]");
      if (!button) { return; }
      var item = button.closest("li[data-alert]");
      button.disabled = true;
      fetch("/dash/alerts/" + item.dataset.alert + "/" + button.dataset.action, {
        method: "POST", credentials: "same-origin",
        headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"}, body: "{}"
      }).then(function (answer) {
        if (!answer.ok) { throw new Error("HTTP " + answer.status); }
        return answer.json();
      }).then(showAlert).catch(function (error) {
        button.disabled = false;
        item.querySelector(".sc-alert-text").insertAdjacentHTML("beforeend",
          ' <strong class="sc-flag">failed: ' + esc(error.message) + "</strong>");
      });
    });
    if (boot.alertFeeds) {
      var alerts = new EventSource("/dash/" + boot.level + "/" + boot.code + "/alerts/feed?after=" + boot.alertsAfter);
      ["alert.raised", "alert.updated", "alert.escalated", "alert.acknowledged", "alert.resolved"]
        .forEach(function (type) {
          alerts.addEventListener(type, function (message) { showAlert(JSON.parse(message.data).alert); });
        });
    }
  }
})();
