// Refreshes the open escalations without a reload: polls the table body
// (?partial=1) and swaps it in. Without JavaScript the page still works
// (reload to refresh).
(function () {
  "use strict";
  var body = document.getElementById("open-rows");
  if (!body || !window.fetch) { return; }
  var every = parseInt(body.getAttribute("data-poll-ms"), 10) || 1000;
  var last = body.innerHTML;
  function tick() {
    // Not while a control in the table has the keyboard focus.
    if (body.contains(document.activeElement)) { setTimeout(tick, every); return; }
    fetch("/console/?partial=1", {credentials: "same-origin", cache: "no-store"})
      .then(function (r) {
        if (r.status === 401) { window.location.href = "/console/login"; return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined && html !== last) { body.innerHTML = html; last = html; }
      })
      .catch(function () {})
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
