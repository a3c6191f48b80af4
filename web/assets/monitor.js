// The live monitor: puts the rows the server renders (server-sent events
// from /monitor/stream) in place. The browser reconnects by itself and
// sends the last event id, so nothing is missed across a restart.
(function () {
  "use strict";
  var root = document.getElementById("monitor");
  if (!root || !window.EventSource) { return; }
  var state = document.getElementById("stream-state");
  var events = document.getElementById("events");
  var MAX_ROWS = 200;

  function parse(html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    return t.content.firstElementChild;
  }
  function show(text, cls) {
    state.textContent = state.getAttribute(text);
    state.className = "stream " + cls;
  }
  function upsert(body, html) {
    var row = parse(html);
    if (!row) { return; }
    var old = document.getElementById(row.id);
    if (old) { old.replaceWith(row); } else { document.getElementById(body).appendChild(row); }
  }

  var source = new EventSource(root.getAttribute("data-stream"));
  source.onopen = function () { show("data-live", "live"); };
  source.onerror = function () {
    if (source.readyState === EventSource.CLOSED) { show("data-ended", "down"); }
    else { show("data-reconnecting", "down"); }
  };
  source.addEventListener("event", function (m) {
    var row = parse(m.data);
    if (!row) { return; }
    var empty = document.getElementById("no-events");
    if (empty) { empty.remove(); }
    events.insertBefore(row, events.firstChild);
    while (events.rows.length > MAX_ROWS) { events.deleteRow(-1); }
  });
  source.addEventListener("door", function (m) { upsert("doors", m.data); });
  source.addEventListener("controller", function (m) { upsert("controllers", m.data); });
  source.addEventListener("alarms", function (m) {
    var fresh = parse(m.data);
    var old = document.getElementById("open-alarms");
    if (fresh && old) { old.replaceWith(fresh); }
  });
})();
